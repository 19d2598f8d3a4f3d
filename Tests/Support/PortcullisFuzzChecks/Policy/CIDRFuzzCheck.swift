import PortcullisPolicy

/// The properties of the address and block parsers and of `CIDRSet` that the `cidr` fuzz
/// target checks, and the regression tests with it.
///
/// Each line of the input is parsed as an address (bare, bracketed, through a non-contiguous
/// collection) and as a block; every parse that succeeds must print back to itself. The blocks
/// that parse form a `CIDRSet`, which must answer like a linear scan of its blocks for every
/// parsed address, the edges of every block (first, last, one below, one above), and addresses
/// taken from the input's raw bytes.
public enum CIDRFuzzCheck {
    static let maximumLines = 64

    /// The properties `input` breaks; empty when all hold.
    public static func failures(_ input: [UInt8]) -> [String] {
        var failures: [String] = []
        var prefixes: [CIDRPrefix] = []
        var probes: [IPAddress] = []
        let lines = input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).prefix(maximumLines)
        for lineBytes in lines {
            let line = String(decoding: lineBytes, as: UTF8.self)
            if let address = checkAddress(line, &failures) { probes.append(address) }
            if let prefix = checkPrefix(line, &failures) { prefixes.append(prefix) }
        }
        for prefix in prefixes {
            let (first, last) = bounds(prefix)
            probes += [first, last]
            if let below = step(first, by: -1) { probes.append(below) }
            if let above = step(last, by: 1) { probes.append(above) }
        }
        probes += rawAddresses(input)
        probes += probes.compactMap(mapped)

        let set = CIDRSet(prefixes)
        let reversed = CIDRSet(prefixes.reversed())
        if set.count != Set(prefixes).count { failures.append("set of \(prefixes.count) blocks counts \(set.count)") }
        for probe in probes {
            let expected = prefixes.contains { $0.contains(probe) }
            if set.contains(probe) != expected {
                failures.append("set \(set) says \(!expected) for \(probe), a linear scan \(expected)")
            }
            if reversed.contains(probe) != expected {
                failures.append("set built in reverse order says \(!expected) for \(probe)")
            }
        }
        if CIDRSet.empty.contains(probes.first ?? .v4(0)) { failures.append("the empty set matched an address") }
        return failures
    }

    private static func checkAddress(_ line: String, _ failures: inout [String]) -> IPAddress? {
        let parsed = IPAddress(parsing: line)
        let validated = try? IPAddress.validate(line).get()
        if parsed != validated { failures.append("'\(line)': init(parsing:) \(String(describing: parsed)), validate \(String(describing: validated))") }
        let copied = IPAddress(utf8: line.utf8.lazy.map { $0 })
        if copied != parsed { failures.append("'\(line)': non-contiguous parse \(String(describing: copied)), contiguous \(String(describing: parsed))") }

        let bracketed = IPAddress(bracketedOrBare: line)
        var expectedBracketed = parsed
        if line.utf8.first == UInt8(ascii: "[") {
            expectedBracketed = nil
            if line.utf8.last == UInt8(ascii: "]"), line.utf8.count >= 2,
                let inner = IPAddress(parsing: line.dropFirst().dropLast()), inner.isIPv6
            {
                expectedBracketed = inner
            }
        }
        if bracketed != expectedBracketed {
            failures.append("'\(line)': bracketedOrBare \(String(describing: bracketed)), expected \(String(describing: expectedBracketed))")
        }

        guard let parsed else { return nil }
        let text = parsed.description
        if IPAddress(parsing: text) != parsed { failures.append("'\(line)' prints as '\(text)', which does not parse back") }
        if IPAddress(parsing: text)?.description != text { failures.append("'\(text)' is not a fixed point of printing") }
        if parsed.isIPv4Mapped, !parsed.unmappedIPv4.isIPv4 { failures.append("'\(line)' is mapped but does not unmap to IPv4") }
        return parsed
    }

    private static func checkPrefix(_ line: String, _ failures: inout [String]) -> CIDRPrefix? {
        let parsed = CIDRPrefix(parsing: line)
        let validated = try? CIDRPrefix.validate(line).get()
        if parsed != validated { failures.append("'\(line)': CIDRPrefix(parsing:) and validate disagree") }
        guard let parsed else { return nil }
        let maximum = parsed.address.isIPv4 ? 32 : 128
        if !(0...maximum).contains(parsed.length) { failures.append("'\(line)': length \(parsed.length) out of range") }
        if parsed.address.isIPv4Mapped { failures.append("'\(line)': block kept as IPv4-mapped \(parsed)") }
        if CIDRPrefix(address: parsed.address, length: parsed.length) != parsed {
            failures.append("'\(line)': \(parsed) has host bits set or does not rebuild")
        }
        if CIDRPrefix(parsing: parsed.description) != parsed { failures.append("'\(line)' prints as '\(parsed)', which does not parse back") }
        if !parsed.contains(parsed.address) { failures.append("\(parsed) does not hold its own network address") }
        return parsed
    }

    /// The first and last address of a block.
    public static func bounds(_ prefix: CIDRPrefix) -> (IPAddress, IPAddress) {
        switch prefix.address {
        case .v4(let network):
            let hostMask: UInt32 = prefix.length == 0 ? .max : (prefix.length == 32 ? 0 : UInt32.max >> UInt32(prefix.length))
            return (.v4(network), .v4(network | hostMask))
        case .v6(let high, let low):
            let length = prefix.length
            let highMask: UInt64 = length == 0 ? .max : (length >= 64 ? 0 : UInt64.max >> UInt64(length))
            let lowMask: UInt64 = length <= 64 ? .max : (length == 128 ? 0 : UInt64.max >> UInt64(length - 64))
            return (.v6(high, low), .v6(high | highMask, low | lowMask))
        }
    }

    /// `address` plus or minus one, nil past either end of its family.
    static func step(_ address: IPAddress, by delta: Int) -> IPAddress? {
        switch address {
        case .v4(let value):
            if delta > 0 { return value == .max ? nil : .v4(value + 1) }
            return value == 0 ? nil : .v4(value - 1)
        case .v6(let high, let low):
            if delta > 0 {
                if low != .max { return .v6(high, low + 1) }
                return high == .max ? nil : .v6(high + 1, 0)
            }
            if low != 0 { return .v6(high, low - 1) }
            return high == 0 ? nil : .v6(high - 1, .max)
        }
    }

    private static func mapped(_ address: IPAddress) -> IPAddress? {
        guard case .v4(let value) = address else { return nil }
        return .v6(0, 0xFFFF_0000_0000 | UInt64(value))
    }

    /// Addresses read straight from the input's bytes: every 4-byte and 16-byte window (a few).
    private static func rawAddresses(_ input: [UInt8]) -> [IPAddress] {
        var addresses: [IPAddress] = []
        func word(_ start: Int, _ count: Int) -> UInt64 {
            var value: UInt64 = 0
            for index in start..<(start + count) { value = value << 8 | UInt64(input[index]) }
            return value
        }
        var start = 0
        while start + 4 <= input.count, addresses.count < 32 {
            addresses.append(.v4(UInt32(word(start, 4))))
            if start + 16 <= input.count { addresses.append(.v6(word(start, 8), word(start + 8, 8))) }
            start += 3
        }
        return addresses
    }
}
