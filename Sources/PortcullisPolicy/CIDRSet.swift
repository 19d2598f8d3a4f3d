/// An address block such as `203.0.113.0/24` or `2001:db8::/48`.
///
/// The address is the network address: host bits under the mask are always zero, because
/// `1.2.3.4/24` is more likely a typo for `/32` than a deliberate `/24`, so parsing refuses it.
/// IPv4-mapped IPv6 blocks (`::ffff:0:0/96` and longer) are stored as the IPv4 block they
/// cover, so they match the same peers as the IPv4 form.
public struct CIDRPrefix: Hashable, Sendable {
    /// The network address; `.v4` or `.v6`, never an IPv4-mapped `.v6`.
    public let address: IPAddress
    /// 0...32 for IPv4, 0...128 for IPv6.
    public let length: Int

    /// A block from its network address; nil when `length` is out of range or host bits are set.
    public init?(address: IPAddress, length: Int) {
        guard case .success(let prefix) = CIDRPrefix.make(address, length) else { return nil }
        self = prefix
    }

    /// A block holding exactly one address (/32 or /128).
    public init(host address: IPAddress) {
        let address = address.unmappedIPv4
        self.address = address
        self.length = address.isIPv4 ? 32 : 128
    }

    /// Parses `a.b.c.d/n`, `v6/n`, or a bare address (/32, /128).
    public init?(parsing text: some StringProtocol) {
        guard case .success(let prefix) = CIDRPrefix.validate(text) else { return nil }
        self = prefix
    }

    /// Parses like `init(parsing:)` and, on failure, says why in words fit for a config error.
    public static func validate(_ text: some StringProtocol) -> Result<CIDRPrefix, CIDRError> {
        let text = String(text)
        guard let slash = text.utf8.firstIndex(of: UInt8(ascii: "/")) else {
            return IPAddress.validate(text)
                .map { CIDRPrefix(host: $0) }
                .mapError { CIDRError(.invalidAddress, reason: $0.reason, addressError: $0) }
        }
        let address: IPAddress
        switch IPAddress.validate(text[..<slash]) {
        case .success(let parsed): address = parsed
        case .failure(let error): return .failure(CIDRError(.invalidAddress, reason: error.reason, addressError: error))
        }
        let lengthText = text[text.utf8.index(after: slash)...]
        let maximum = address.isIPv4 ? 32 : 128
        guard let length = CIDRPrefix.parseLength(lengthText.utf8) else {
            return .failure(
                CIDRError(
                    .invalidLength,
                    reason: "prefix length '\(lengthText)' in '\(text)' must be a number 0-\(maximum) "
                        + "without sign or leading zeros"
                )
            )
        }
        return CIDRPrefix.make(address, length).mapError { error in
            guard error.code == .hostBitsSet else {
                return CIDRError(.lengthOutOfRange, reason: "prefix length /\(length) in '\(text)' is over \(maximum)")
            }
            let network = CIDRPrefix.masked(address, length)
            return CIDRError(
                .hostBitsSet,
                reason: "\(text) has host bits set; did you mean \(network)/\(length)?"
            )
        }
    }

    /// Whether `address` lies in this block; IPv4-mapped addresses are matched as IPv4.
    public func contains(_ address: IPAddress) -> Bool {
        switch (self.address, address.unmappedIPv4) {
        case (.v4(let network), .v4(let value)):
            return value & CIDRPrefix.mask4(self.length) == network
        case (.v6(let high, let low), .v6(let valueHigh, let valueLow)):
            let mask = CIDRPrefix.mask6(self.length)
            return valueHigh & mask.high == high && valueLow & mask.low == low
        default:
            return false
        }
    }

    private init(unchecked address: IPAddress, length: Int) {
        self.address = address
        self.length = length
    }

    private static func make(_ address: IPAddress, _ length: Int) -> Result<CIDRPrefix, CIDRError> {
        let maximum = address.isIPv4 ? 32 : 128
        guard (0...maximum).contains(length) else { return .failure(CIDRError(.lengthOutOfRange, reason: "")) }
        guard masked(address, length) == address else { return .failure(CIDRError(.hostBitsSet, reason: "")) }
        if address.isIPv4Mapped, length >= 96 {
            return .success(CIDRPrefix(unchecked: address.unmappedIPv4, length: length - 96))
        }
        return .success(CIDRPrefix(unchecked: address, length: length))
    }

    /// Digits only, no sign, no leading zero, at most three digits.
    private static func parseLength(_ text: Substring.UTF8View) -> Int? {
        guard let first = text.first, text.count <= 3, first != UInt8(ascii: "0") || text.count == 1 else {
            return nil
        }
        var value = 0
        for byte in text {
            guard byte &- UInt8(ascii: "0") < 10 else { return nil }
            value = value * 10 + Int(byte &- UInt8(ascii: "0"))
        }
        return value
    }

    static func masked(_ address: IPAddress, _ length: Int) -> IPAddress {
        switch address {
        case .v4(let value):
            return .v4(value & mask4(length))
        case .v6(let high, let low):
            let mask = mask6(length)
            return .v6(high & mask.high, low & mask.low)
        }
    }

    @inline(__always)
    static func mask4(_ length: Int) -> UInt32 {
        // Swift's `<<` yields 0 for a shift of 32, which is the /0 mask.
        UInt32.max << UInt32(32 - length)
    }

    @inline(__always)
    static func mask6(_ length: Int) -> (high: UInt64, low: UInt64) {
        (
            length >= 64 ? UInt64.max : UInt64.max << UInt64(64 - length),
            length <= 64 ? 0 : UInt64.max << UInt64(128 - length)
        )
    }
}

extension CIDRPrefix: CustomStringConvertible {
    public var description: String { "\(self.address)/\(self.length)" }
}

/// A set of address blocks, compiled once for allocation-free membership tests.
///
/// Blocks are grouped by prefix length; each group is a sorted array of network addresses,
/// so a lookup costs one binary search per distinct prefix length. Blocks covered by a shorter
/// block in the set are dropped at build time. IPv4-mapped IPv6 addresses are matched as IPv4.
public struct CIDRSet: Sendable {
    /// The blocks the set was built from, without duplicates, in their original order.
    public let prefixes: [CIDRPrefix]

    private let v4Networks: [UInt32]
    private let v4Groups: [V4Group]
    private let v6Networks: [V6Network]
    private let v6Groups: [V6Group]

    private struct V4Group: Sendable {
        var mask: UInt32
        var range: Range<Int>
    }

    private struct V6Group: Sendable {
        var maskHigh: UInt64
        var maskLow: UInt64
        var range: Range<Int>
    }

    private struct V6Network: Comparable, Sendable {
        var high: UInt64
        var low: UInt64

        static func < (lhs: V6Network, rhs: V6Network) -> Bool {
            lhs.high != rhs.high ? lhs.high < rhs.high : lhs.low < rhs.low
        }
    }

    /// A set matching no address.
    public static let empty = CIDRSet([])

    public init(_ prefixes: some Sequence<CIDRPrefix>) {
        var seen = Set<CIDRPrefix>()
        var unique: [CIDRPrefix] = []
        var byLength4 = [[UInt32]](repeating: [], count: 33)
        var byLength6 = [[V6Network]](repeating: [], count: 129)
        for prefix in prefixes where seen.insert(prefix).inserted {
            unique.append(prefix)
            switch prefix.address {
            case .v4(let network): byLength4[prefix.length].append(network)
            case .v6(let high, let low): byLength6[prefix.length].append(V6Network(high: high, low: low))
            }
        }
        self.prefixes = unique

        var v4Networks: [UInt32] = []
        var v4Groups: [V4Group] = []
        for (length, networks) in byLength4.enumerated() where !networks.isEmpty {
            let uncovered = networks.filter { !CIDRSet.search4($0, v4Networks, v4Groups) }.sorted()
            guard !uncovered.isEmpty else { continue }
            let range = v4Networks.count..<v4Networks.count + uncovered.count
            v4Groups.append(V4Group(mask: CIDRPrefix.mask4(length), range: range))
            v4Networks.append(contentsOf: uncovered)
        }

        var v6Networks: [V6Network] = []
        var v6Groups: [V6Group] = []
        for (length, networks) in byLength6.enumerated() where !networks.isEmpty {
            let uncovered = networks.filter { !CIDRSet.search6($0.high, $0.low, v6Networks, v6Groups) }.sorted()
            guard !uncovered.isEmpty else { continue }
            let mask = CIDRPrefix.mask6(length)
            v6Groups.append(
                V6Group(
                    maskHigh: mask.high,
                    maskLow: mask.low,
                    range: v6Networks.count..<v6Networks.count + uncovered.count
                )
            )
            v6Networks.append(contentsOf: uncovered)
        }
        self.v4Networks = v4Networks
        self.v4Groups = v4Groups
        self.v6Networks = v6Networks
        self.v6Groups = v6Groups
    }

    public var isEmpty: Bool { self.prefixes.isEmpty }

    /// The number of distinct blocks the set was built from.
    public var count: Int { self.prefixes.count }

    /// Whether some block holds `address`; IPv4-mapped IPv6 addresses are matched as IPv4.
    public func contains(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let value):
            return CIDRSet.search4(value, self.v4Networks, self.v4Groups)
        case .v6(let high, let low):
            if high == 0, low >> 32 == 0xffff {
                return CIDRSet.search4(UInt32(truncatingIfNeeded: low), self.v4Networks, self.v4Groups)
            }
            return CIDRSet.search6(high, low, self.v6Networks, self.v6Groups)
        }
    }

    private static func search4(_ address: UInt32, _ networks: [UInt32], _ groups: [V4Group]) -> Bool {
        for group in groups where binarySearch(networks, group.range, address & group.mask) {
            return true
        }
        return false
    }

    private static func search6(_ high: UInt64, _ low: UInt64, _ networks: [V6Network], _ groups: [V6Group]) -> Bool {
        for group in groups
        where binarySearch(networks, group.range, V6Network(high: high & group.maskHigh, low: low & group.maskLow)) {
            return true
        }
        return false
    }

    @inline(__always)
    private static func binarySearch<Element: Comparable>(
        _ elements: [Element],
        _ range: Range<Int>,
        _ key: Element
    ) -> Bool {
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper {
            let middle = lower + (upper - lower) / 2
            if elements[middle] < key {
                lower = middle + 1
            } else {
                upper = middle
            }
        }
        return lower < range.upperBound && elements[lower] == key
    }
}

extension CIDRSet: Equatable {
    /// Sets are equal when built from the same blocks, in any order.
    public static func == (lhs: CIDRSet, rhs: CIDRSet) -> Bool {
        Set(lhs.prefixes) == Set(rhs.prefixes)
    }
}

extension CIDRSet: CustomStringConvertible {
    public var description: String {
        "[" + self.prefixes.map(\.description).joined(separator: ", ") + "]"
    }
}

/// Why a piece of text is not an address block, worded for an operator reading a config error.
///
/// Errors compare equal when their codes do.
public struct CIDRError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of mistake the text makes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case invalidAddress
            case invalidLength
            case lengthOutOfRange
            case hostBitsSet
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// The part before `/` is not an IP address; `addressError` says why.
        public static let invalidAddress = Code(.invalidAddress)
        /// The part after `/` is not a plain decimal number.
        public static let invalidLength = Code(.invalidLength)
        public static let lengthOutOfRange = Code(.lengthOutOfRange)
        /// `1.2.3.4/24`: ambiguous between the host and the block.
        public static let hostBitsSet = Code(.hostBitsSet)

        public var description: String { "\(self.backing)" }
    }

    public let code: Code
    public let reason: String
    public let addressError: IPAddressError?

    public init(_ code: Code, reason: String, addressError: IPAddressError? = nil) {
        self.code = code
        self.reason = reason
        self.addressError = addressError
    }

    public var description: String { self.reason }

    public static func == (lhs: CIDRError, rhs: CIDRError) -> Bool { lhs.code == rhs.code }

    public func hash(into hasher: inout Hasher) { hasher.combine(self.code) }
}
