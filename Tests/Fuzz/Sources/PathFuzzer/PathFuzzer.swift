import PortcullisPolicyFuzzChecks

// The checks live in Tests/Support/PortcullisFuzzChecks so the regression tests run the same ones.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let failures = PathFuzzCheck.failures(Array(UnsafeRawBufferPointer(start: start, count: count)))
    precondition(failures.isEmpty, "path: " + failures.joined(separator: "; "))
    return 0
}
