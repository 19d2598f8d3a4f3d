// swift-tools-version: 6.0
// libFuzzer targets, one executable each; built and run by ./run (see its header). A package of
// its own so the root package's `swift build` and `swift test` never see the fuzzer flags.
import PackageDescription

let fuzzers = ["JWSFuzzer": "PortcullisAuthFuzzChecks", "CIDRFuzzer": "PortcullisPolicyFuzzChecks",
    "PathFuzzer": "PortcullisPolicyFuzzChecks", "ConfigFuzzer": "PortcullisPolicyFuzzChecks"]
// A path dependency's identity is its folder's name (`main`, or a clone's), not its manifest name.
let root = String(Context.packageDirectory.split(separator: "/").dropLast(2).last ?? "main").lowercased()

let package = Package(
    name: "portcullis-fuzz",
    dependencies: [
        .package(path: "../..")
    ],
    targets: fuzzers.sorted { $0.key < $1.key }.map { name, checks in
        .executableTarget(name: name, dependencies: [.product(name: checks, package: root)])
    },
    swiftLanguageModes: [.v5]
)
