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
/// The blocks of each family become sorted, disjoint address ranges (overlapping and adjacent
/// blocks merged), and an index over a few leading bits of the address says which ranges can
/// hold it; a lookup is one index read and a search among the (usually one or two) ranges it
/// names. The index bits are the ones right after the leading bits every range shares, so a set
/// of blocks all inside `2001:db8::/32` still spreads over the index. IPv4-mapped IPv6
/// addresses are matched as IPv4.
public struct CIDRSet: Sendable {
    /// The blocks the set was built from, without duplicates, in their original order.
    public let prefixes: [CIDRPrefix]

    private let v4: RangeTable<UInt32>
    private let v6: RangeTable<IPv6Key>

    /// A set matching no address.
    public static let empty = CIDRSet([])

    public init(_ prefixes: some Sequence<CIDRPrefix>) {
        var seen = Set<CIDRPrefix>()
        var unique: [CIDRPrefix] = []
        var ranges4: [(UInt32, UInt32)] = []
        var ranges6: [(IPv6Key, IPv6Key)] = []
        for prefix in prefixes where seen.insert(prefix).inserted {
            unique.append(prefix)
            switch prefix.address {
            case .v4(let network):
                let key = network
                ranges4.append((key.keepingTop(prefix.length), key.fillingBelowTop(prefix.length)))
            case .v6(let high, let low):
                let key = IPv6Key(high: high, low: low)
                ranges6.append((key.keepingTop(prefix.length), key.fillingBelowTop(prefix.length)))
            }
        }
        self.prefixes = unique
        self.v4 = RangeTable(ranges4)
        self.v6 = RangeTable(ranges6)
    }

    public var isEmpty: Bool { self.prefixes.isEmpty }

    /// The number of distinct blocks the set was built from.
    public var count: Int { self.prefixes.count }

    /// Whether some block holds `address`; IPv4-mapped IPv6 addresses are matched as IPv4.
    public func contains(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let value):
            return self.v4.contains(value)
        case .v6(let high, let low):
            if high == 0, low >> 32 == 0xffff {
                return self.v4.contains(UInt32(truncatingIfNeeded: low))
            }
            return self.v6.contains(IPv6Key(high: high, low: low))
        }
    }
}

/// What `RangeTable` needs of an address: order and a few bit operations.
protocol RangeKey: Comparable, Sendable {
    static var bitWidth: Int { get }
    static var zero: Self { get }
    /// The top `count` bits kept, the others zero.
    func keepingTop(_ count: Int) -> Self
    /// The top `count` bits kept, the others one.
    func fillingBelowTop(_ count: Int) -> Self
    /// `count` (at most 16) bits starting `skip` bits from the top, as a number.
    func bits(from skip: Int, count: Int) -> Int
    /// How many leading bits `self` and `other` share.
    func commonPrefixLength(with other: Self) -> Int
    /// `self + 1`, or nil for the largest key.
    var successor: Self? { get }
}

extension UInt32: RangeKey {
    static var zero: UInt32 { 0 }

    @inline(__always)
    func keepingTop(_ count: Int) -> UInt32 {
        count <= 0 ? 0 : count >= 32 ? self : self & (UInt32.max << UInt32(32 - count))
    }

    @inline(__always)
    func fillingBelowTop(_ count: Int) -> UInt32 {
        count <= 0 ? .max : count >= 32 ? self : self | ~(UInt32.max << UInt32(32 - count))
    }

    @inline(__always)
    func bits(from skip: Int, count: Int) -> Int {
        Int(truncatingIfNeeded: (self &<< UInt32(skip)) >> UInt32(32 - count))
    }

    func commonPrefixLength(with other: UInt32) -> Int {
        (self ^ other).leadingZeroBitCount
    }

    var successor: UInt32? { self == .max ? nil : self + 1 }
}

/// An IPv6 address as a 128-bit key (`high` holds the first 64 bits).
struct IPv6Key: RangeKey {
    var high: UInt64
    var low: UInt64

    static var bitWidth: Int { 128 }
    static var zero: IPv6Key { IPv6Key(high: 0, low: 0) }

    @inline(__always)
    static func < (lhs: IPv6Key, rhs: IPv6Key) -> Bool {
        lhs.high != rhs.high ? lhs.high < rhs.high : lhs.low < rhs.low
    }

    @inline(__always)
    static func <= (lhs: IPv6Key, rhs: IPv6Key) -> Bool {
        lhs.high != rhs.high ? lhs.high < rhs.high : lhs.low <= rhs.low
    }

    func keepingTop(_ count: Int) -> IPv6Key {
        let mask = CIDRPrefix.mask6(max(0, min(128, count)))
        return IPv6Key(high: self.high & mask.high, low: self.low & mask.low)
    }

    func fillingBelowTop(_ count: Int) -> IPv6Key {
        let mask = CIDRPrefix.mask6(max(0, min(128, count)))
        return IPv6Key(high: self.high | ~mask.high, low: self.low | ~mask.low)
    }

    @inline(__always)
    func bits(from skip: Int, count: Int) -> Int {
        // The 64 bits starting at `skip`, then their top `count`.
        let window: UInt64
        if skip == 0 {
            window = self.high
        } else if skip < 64 {
            window = self.high &<< UInt64(skip) | self.low &>> UInt64(64 - skip)
        } else {
            window = self.low &<< UInt64(skip - 64)
        }
        return Int(truncatingIfNeeded: window >> UInt64(64 - count))
    }

    func commonPrefixLength(with other: IPv6Key) -> Int {
        let high = (self.high ^ other.high).leadingZeroBitCount
        return high < 64 ? high : 64 + (self.low ^ other.low).leadingZeroBitCount
    }

    var successor: IPv6Key? {
        if self.low != .max { return IPv6Key(high: self.high, low: self.low + 1) }
        if self.high != .max { return IPv6Key(high: self.high + 1, low: 0) }
        return nil
    }
}

/// Sorted, disjoint, inclusive ranges of keys with a bucket index for one-step lookups.
///
/// `firstInBucket[b]` is the number of ranges starting below the first key of bucket `b`, where
/// bucket `b` is the keys whose `indexBits` bits after the first `skip` bits are `b` (among the
/// keys sharing the ranges' common first `skip` bits). The range that may hold a key of bucket
/// `b` is the last one starting at or below it, among ranges `firstInBucket[b] - 1` to
/// `firstInBucket[b + 1] - 1`.
struct RangeTable<Key: RangeKey>: Sendable {
    private let starts: [Key]
    private let ends: [Key]
    private let firstInBucket: [Int32]
    private let skip: Int
    private let indexBits: Int
    /// The highest key sharing the ranges' common first `skip` bits.
    private let regionEnd: Key

    init(_ ranges: [(Key, Key)]) {
        var starts: [Key] = []
        var ends: [Key] = []
        for (start, end) in ranges.sorted(by: { $0.0 < $1.0 }) {
            if let last = ends.last, last.successor.map({ start <= $0 }) ?? true {
                if last < end { ends[ends.count - 1] = end }
            } else {
                starts.append(start)
                ends.append(end)
            }
        }
        self.starts = starts
        self.ends = ends
        guard let first = starts.first, let last = starts.last else {
            self.firstInBucket = [0, 0]
            self.skip = 0
            self.indexBits = 1
            self.regionEnd = .zero
            return
        }
        // About one range per bucket, at most 2^16 buckets.
        let indexBits = max(1, min(16, Int.bitWidth - starts.count.leadingZeroBitCount))
        let skip = min(first.commonPrefixLength(with: last), Key.bitWidth - indexBits)
        var firstInBucket = [Int32](repeating: 0, count: (1 << indexBits) + 1)
        var range = 0
        for bucket in 0..<(1 << indexBits) {
            while range < starts.count, starts[range].bits(from: skip, count: indexBits) < bucket { range += 1 }
            firstInBucket[bucket] = Int32(range)
        }
        firstInBucket[1 << indexBits] = Int32(starts.count)
        self.firstInBucket = firstInBucket
        self.skip = skip
        self.indexBits = indexBits
        self.regionEnd = first.fillingBelowTop(skip)
    }

    @inline(__always)
    func contains(_ key: Key) -> Bool {
        self.starts.withUnsafeBufferPointer { starts in
            guard let first = starts.first, first <= key else { return false }
            var index: Int
            if self.regionEnd < key {
                index = starts.count - 1
            } else {
                let bucket = key.bits(from: self.skip, count: self.indexBits)
                // Ranges starting in the bucket: find the last one at or below `key`.
                var low = Int(self.firstInBucket.withUnsafeBufferPointer { $0[bucket] })
                var high = Int(self.firstInBucket.withUnsafeBufferPointer { $0[bucket &+ 1] })
                while low < high {
                    let middle = (low &+ high) >> 1
                    if starts[middle] <= key { low = middle &+ 1 } else { high = middle }
                }
                index = low &- 1
            }
            return index >= 0 && key <= self.ends.withUnsafeBufferPointer { $0[index] }
        }
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
public struct CIDRError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
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
    public let file: String
    public let line: UInt

    public init(_ code: Code, reason: String, addressError: IPAddressError? = nil, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.addressError = addressError
        self.file = file
        self.line = line
    }

    public var description: String { self.reason }

}
