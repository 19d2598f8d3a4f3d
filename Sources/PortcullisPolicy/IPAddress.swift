/// An IPv4 or IPv6 address as fixed-width integers, parsed strictly.
///
/// `.v4` holds the address in host integer order with the first octet in the top byte, so
/// `1.2.3.4` is `0x0102_0304`. `.v6` holds the high and low 64 bits the same way: the first
/// group of the text is the top 16 bits of `high`.
///
/// Parsing accepts only the unambiguous forms: IPv4 as exactly four decimal octets without
/// leading zeros, IPv6 per RFC 4291 §2.2 without zone ids or brackets. Anything an OS resolver
/// would guess at (`127.1`, `010.0.0.1`, `0x7f.0.0.1`) is rejected, because a guess that differs
/// from the operator's intent silently widens an allowlist.
public enum IPAddress: Hashable, Sendable {
    case v4(UInt32)
    case v6(UInt64, UInt64)

    /// Parses the text form of an IPv4 or IPv6 address; nil when it is not exactly one.
    public init?(parsing text: some StringProtocol) {
        self.init(utf8: text.utf8)
    }

    /// Parses an address from its UTF-8 bytes without allocating.
    @inlinable
    public init?<Bytes: Collection>(utf8 bytes: Bytes) where Bytes.Element == UInt8 {
        // Inlinable so the contiguous-storage check specialises in the caller (NIO's ByteBufferView).
        let parsed =
            bytes.withContiguousStorageIfAvailable { IPAddress.parseOrNil($0) } ?? IPAddress.parseOrNil(copying: bytes)
        guard let parsed else { return nil }
        self = parsed
    }

    /// Parses `[v6]` or a bare address; brackets are only accepted around IPv6.
    public init?(bracketedOrBare text: some StringProtocol) {
        self.init(bracketedOrBareUTF8: text.utf8)
    }

    /// Parses `[v6]` or a bare address from UTF-8 bytes without allocating.
    @inlinable
    public init?<Bytes: Collection>(bracketedOrBareUTF8 bytes: Bytes) where Bytes.Element == UInt8 {
        guard let first = bytes.first, first == UInt8(ascii: "[") else {
            self.init(utf8: bytes)
            return
        }
        let inner = bytes.dropFirst()
        guard let close = inner.firstIndex(of: UInt8(ascii: "]")), inner.index(after: close) == inner.endIndex,
            case .v6(let high, let low)? = IPAddress(utf8: inner[..<close])
        else { return nil }
        self = .v6(high, low)
    }

    /// Parses `text` and, when it is not an address, says why in words fit for a config error.
    public static func validate(_ text: some StringProtocol) -> Result<IPAddress, IPAddressError> {
        var text = String(text)
        text.makeContiguousUTF8()
        switch IPAddress.parse(text.utf8) {
        case .success(let address): return .success(address)
        case .failure(let failure): return .failure(IPAddressError(failure, in: text))
        }
    }

    /// True for `::ffff:a.b.c.d`, the IPv6 form dual-stack sockets report for IPv4 peers.
    public var isIPv4Mapped: Bool {
        guard case .v6(let high, let low) = self else { return false }
        return high == 0 && low >> 32 == 0xffff
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 address; any other address unchanged.
    public var unmappedIPv4: IPAddress {
        guard case .v6(_, let low) = self, self.isIPv4Mapped else { return self }
        return .v4(UInt32(truncatingIfNeeded: low))
    }

    public var isIPv4: Bool {
        if case .v4 = self { return true }
        return false
    }

    public var isIPv6: Bool { !self.isIPv4 }
}

// MARK: - Parsing

extension IPAddress {
    /// Why a parse failed, as a kind plus the byte offsets it concerns; no allocation.
    struct ParseFailure: Error, Hashable {
        enum Kind: Hashable {
            case empty
            case tooLong
            case invalidCharacter
            case whitespace
            case brackets
            case zoneID
            case port
            case leadingZero
            case octetOutOfRange
            case hexOctet
            case emptyOctet
            case tooFewOctets(Int)
            case tooManyOctets
            case leadingColon
            case trailingColon
            case tripleColon
            case multipleDoubleColons
            case groupTooLong
            case tooManyGroups
            case tooFewGroups(Int)
            case misplacedIPv4
        }

        var kind: Kind
        var start: Int
        var end: Int

        init(_ kind: Kind, _ start: Int, _ end: Int) {
            self.kind = kind
            self.start = start
            self.end = end
        }
    }

    /// "0000:0000:0000:0000:0000:0000:255.255.255.255"; nothing longer can be valid.
    static let maximumTextLength = 45

    static func parse<Bytes: Collection>(_ bytes: Bytes) -> Result<IPAddress, ParseFailure>
    where Bytes.Element == UInt8 {
        if let result = bytes.withContiguousStorageIfAvailable({ IPAddress.parse(buffer: $0) }) {
            return result
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maximumTextLength) { scratch in
            var count = 0
            for byte in bytes {
                guard count < maximumTextLength else {
                    return .failure(ParseFailure(.tooLong, 0, count))
                }
                scratch[count] = byte
                count += 1
            }
            return IPAddress.parse(buffer: UnsafeBufferPointer(rebasing: scratch[..<count]))
        }
    }

    @usableFromInline
    static func parseOrNil(_ buffer: UnsafeBufferPointer<UInt8>) -> IPAddress? {
        guard case .success(let address) = parse(buffer: buffer) else { return nil }
        return address
    }

    @usableFromInline
    static func parseOrNil<Bytes: Collection>(copying bytes: Bytes) -> IPAddress? where Bytes.Element == UInt8 {
        guard case .success(let address) = parse(bytes) else { return nil }
        return address
    }

    static func parse(buffer p: UnsafeBufferPointer<UInt8>) -> Result<IPAddress, ParseFailure> {
        guard !p.isEmpty else { return .failure(ParseFailure(.empty, 0, 0)) }
        for byte in p {
            if byte == UInt8(ascii: ":") { return parseV6(p) }
            if byte == UInt8(ascii: ".") { break }
        }
        return parseV4(p, from: 0).map { .v4($0) }
    }

    static func unexpected(_ p: UnsafeBufferPointer<UInt8>, at i: Int, inIPv4: Bool) -> ParseFailure {
        let kind: ParseFailure.Kind
        switch p[i] {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"): kind = .whitespace
        case UInt8(ascii: "["), UInt8(ascii: "]"): kind = .brackets
        case UInt8(ascii: "%"): kind = .zoneID
        case UInt8(ascii: ":") where inIPv4: kind = .port
        default: kind = .invalidCharacter
        }
        return ParseFailure(kind, i, i + 1)
    }

    /// Parses a dotted quad that runs from `start` to the end of `p`.
    static func parseV4(_ p: UnsafeBufferPointer<UInt8>, from start: Int) -> Result<UInt32, ParseFailure> {
        let end = p.count
        var value: UInt32 = 0
        var octets = 0
        var i = start
        while true {
            let octetStart = i
            var octet: UInt32 = 0
            while i < end, p[i] &- UInt8(ascii: "0") < 10 {
                if i - octetStart < 3 { octet = octet * 10 + UInt32(p[i] &- UInt8(ascii: "0")) }
                i += 1
            }
            let digits = i - octetStart
            if i < end, p[i] | 0x20 == UInt8(ascii: "x"), digits == 1, p[octetStart] == UInt8(ascii: "0") {
                var hexEnd = i
                while hexEnd < end, p[hexEnd] != UInt8(ascii: ".") { hexEnd += 1 }
                return .failure(ParseFailure(.hexOctet, octetStart, hexEnd))
            }
            if digits == 0 {
                if i == end || p[i] == UInt8(ascii: ".") { return .failure(ParseFailure(.emptyOctet, i, i)) }
                return .failure(unexpected(p, at: i, inIPv4: true))
            }
            if digits > 1, p[octetStart] == UInt8(ascii: "0") {
                return .failure(ParseFailure(.leadingZero, octetStart, i))
            }
            if digits > 3 || octet > 255 { return .failure(ParseFailure(.octetOutOfRange, octetStart, i)) }
            value = value << 8 | octet
            octets += 1
            if i == end { break }
            guard p[i] == UInt8(ascii: ".") else { return .failure(unexpected(p, at: i, inIPv4: true)) }
            if octets == 4 { return .failure(ParseFailure(.tooManyOctets, start, end)) }
            i += 1
        }
        guard octets == 4 else { return .failure(ParseFailure(.tooFewOctets(octets), start, end)) }
        return .success(value)
    }

    static func parseV6(_ p: UnsafeBufferPointer<UInt8>) -> Result<IPAddress, ParseFailure> {
        let end = p.count
        let colon = UInt8(ascii: ":")
        var head = UInt128Parts()
        var tail = UInt128Parts()
        var headCount = 0
        var tailCount = 0
        var compressed = false
        var i = 0

        if p[0] == colon {
            guard end > 1, p[1] == colon else { return .failure(ParseFailure(.leadingColon, 0, 1)) }
            if end > 2, p[2] == colon { return .failure(ParseFailure(.tripleColon, 0, 3)) }
            compressed = true
            i = 2
        }
        while i < end {
            let groupStart = i
            var group: UInt64 = 0
            while i < end, let digit = hexValue(p[i]) {
                if i - groupStart < 4 { group = group << 4 | digit }
                i += 1
            }
            if i < end, p[i] == UInt8(ascii: "."), i > groupStart {
                let v4: UInt32
                switch parseV4(p, from: groupStart) {
                case .success(let value): v4 = value
                case .failure(let failure): return .failure(failure)
                }
                guard headCount + tailCount <= 6 else {
                    return .failure(ParseFailure(.misplacedIPv4, groupStart, end))
                }
                if compressed {
                    tail.append16(UInt64(v4 >> 16))
                    tail.append16(UInt64(v4 & 0xffff))
                    tailCount += 2
                } else {
                    head.append16(UInt64(v4 >> 16))
                    head.append16(UInt64(v4 & 0xffff))
                    headCount += 2
                }
                i = end
                break
            }
            if i == groupStart { return .failure(unexpected(p, at: i, inIPv4: false)) }
            if i - groupStart > 4 { return .failure(ParseFailure(.groupTooLong, groupStart, i)) }
            if headCount + tailCount == 8 { return .failure(ParseFailure(.tooManyGroups, 0, end)) }
            if compressed {
                tail.append16(group)
                tailCount += 1
            } else {
                head.append16(group)
                headCount += 1
            }
            if i == end { break }
            guard p[i] == colon else { return .failure(unexpected(p, at: i, inIPv4: false)) }
            i += 1
            if i == end { return .failure(ParseFailure(.trailingColon, end - 1, end)) }
            if p[i] == colon {
                if compressed { return .failure(ParseFailure(.multipleDoubleColons, i - 1, i + 1)) }
                compressed = true
                i += 1
                if i < end, p[i] == colon { return .failure(ParseFailure(.tripleColon, i - 2, i + 1)) }
            }
        }
        let groups = headCount + tailCount
        if compressed {
            if groups > 7 { return .failure(ParseFailure(.tooManyGroups, 0, end)) }
        } else if groups < 8 {
            return .failure(ParseFailure(.tooFewGroups(groups), 0, end))
        }
        head.shiftLeft(by: 16 * (8 - headCount))
        return .success(.v6(head.high | tail.high, head.low | tail.low))
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt64? {
        if byte &- UInt8(ascii: "0") < 10 { return UInt64(byte &- UInt8(ascii: "0")) }
        let lower = byte | 0x20
        if lower &- UInt8(ascii: "a") < 6 { return UInt64(lower &- UInt8(ascii: "a") + 10) }
        return nil
    }
}

/// A 128-bit value as two words; `UInt128` needs macOS 15 and the package supports 14.
struct UInt128Parts {
    var high: UInt64 = 0
    var low: UInt64 = 0

    mutating func append16(_ group: UInt64) {
        self.high = self.high << 16 | self.low >> 48
        self.low = self.low << 16 | group
    }

    mutating func shiftLeft(by bits: Int) {
        if bits >= 64 {
            self.high = self.low << (bits - 64)
            self.low = 0
        } else if bits > 0 {
            self.high = self.high << bits | self.low >> (64 - bits)
            self.low <<= bits
        }
    }
}

// MARK: - Text

extension IPAddress: CustomStringConvertible {
    /// Canonical text: dotted IPv4, or IPv6 per RFC 5952 (`::ffff:1.2.3.4` for mapped IPv4).
    public var description: String {
        // Written on the stack first: a String made with room for 45 bytes is a heap object
        // even when the address takes 9, where one made from the bytes is stored inline up to
        // 15 (every IPv4 address). The gateway keeps one per connection.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: IPAddress.maximumTextLength) { buffer in
            var writer = ByteWriter(buffer: buffer)
            self.write(to: &writer)
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<writer.count]), as: UTF8.self)
        }
    }

    func write(to writer: inout ByteWriter) {
        switch self {
        case .v4(let value):
            IPAddress.writeV4(value, to: &writer)
        case .v6(let high, let low):
            if self.isIPv4Mapped {
                writer.append(contentsOf: "::ffff:")
                IPAddress.writeV4(UInt32(truncatingIfNeeded: low), to: &writer)
                return
            }
            let groups = (0..<8).lazy.map { index -> UInt16 in
                let word = index < 4 ? high : low
                return UInt16(truncatingIfNeeded: word >> (48 - 16 * UInt64(index % 4)))
            }
            var bestStart = -1
            var bestLength = 1
            var runStart = 0
            var runLength = 0
            for index in 0..<8 {
                if groups[index] == 0 {
                    if runLength == 0 { runStart = index }
                    runLength += 1
                    if runLength > bestLength {
                        bestStart = runStart
                        bestLength = runLength
                    }
                } else {
                    runLength = 0
                }
            }
            var index = 0
            while index < 8 {
                if index == bestStart {
                    writer.append(contentsOf: "::")
                    index += bestLength
                    continue
                }
                let followsCompression = bestStart >= 0 && index == bestStart + bestLength
                if index > 0, !followsCompression { writer.append(UInt8(ascii: ":")) }
                writer.appendHex(groups[index])
                index += 1
            }
        }
    }

    static func writeV4(_ value: UInt32, to writer: inout ByteWriter) {
        for shift in stride(from: 24, through: 0, by: -8) {
            writer.appendDecimal(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
            if shift > 0 { writer.append(UInt8(ascii: ".")) }
        }
    }
}

/// Appends ASCII into a fixed buffer; callers size the buffer for the longest output.
struct ByteWriter {
    let buffer: UnsafeMutableBufferPointer<UInt8>
    var count = 0

    init(buffer: UnsafeMutableBufferPointer<UInt8>) {
        self.buffer = buffer
    }

    mutating func append(_ byte: UInt8) {
        self.buffer[self.count] = byte
        self.count += 1
    }

    mutating func append(contentsOf text: StaticString) {
        text.withUTF8Buffer { bytes in
            for byte in bytes { self.append(byte) }
        }
    }

    mutating func appendDecimal(_ value: UInt8) {
        if value >= 100 { self.append(UInt8(ascii: "0") + value / 100) }
        if value >= 10 { self.append(UInt8(ascii: "0") + value / 10 % 10) }
        self.append(UInt8(ascii: "0") + value % 10)
    }

    mutating func appendHex(_ value: UInt16) {
        var started = false
        for shift in stride(from: 12, through: 0, by: -4) {
            let digit = UInt8(truncatingIfNeeded: value >> UInt16(shift)) & 0xf
            guard started || digit != 0 || shift == 0 else { continue }
            started = true
            self.append(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
        }
    }
}

// MARK: - Errors

/// Why a piece of text is not an IP address, worded for an operator reading a config error.
///
/// Errors compare equal when their codes do; `reason` quotes the offending part of the text.
public struct IPAddressError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of mistake the text makes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case empty
            case tooLong
            case invalidCharacter
            case whitespace
            case brackets
            case zoneID
            case port
            case leadingZero
            case octetOutOfRange
            case hexOctet
            case wrongOctetCount
            case ipv6Syntax
            case groupTooLong
            case wrongGroupCount
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        public static let empty = Code(.empty)
        public static let tooLong = Code(.tooLong)
        public static let invalidCharacter = Code(.invalidCharacter)
        public static let whitespace = Code(.whitespace)
        public static let brackets = Code(.brackets)
        public static let zoneID = Code(.zoneID)
        public static let port = Code(.port)
        /// `010.0.0.1`: some parsers read a leading zero as octal.
        public static let leadingZero = Code(.leadingZero)
        public static let octetOutOfRange = Code(.octetOutOfRange)
        public static let hexOctet = Code(.hexOctet)
        /// `127.1`, `1.2.3`, `1.2.3.4.5`, `1..2.3`, `1.2.3.4.`.
        public static let wrongOctetCount = Code(.wrongOctetCount)
        /// Misplaced or repeated colons, or an embedded IPv4 part that is not last.
        public static let ipv6Syntax = Code(.ipv6Syntax)
        public static let groupTooLong = Code(.groupTooLong)
        public static let wrongGroupCount = Code(.wrongGroupCount)

        public var description: String { "\(self.backing)" }
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: UInt

    public init(_ code: Code, reason: String, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    init(_ failure: IPAddress.ParseFailure, in text: String, file: String = #fileID, line: UInt = #line) {
        let bytes = Array(text.utf8)
        func quoted(_ start: Int, _ end: Int) -> String {
            "'" + String(decoding: bytes[max(0, start)..<min(bytes.count, end)], as: UTF8.self) + "'"
        }
        let part = quoted(failure.start, failure.end)
        let whole = quoted(0, bytes.count)
        switch failure.kind {
        case .empty:
            self.init(.empty, reason: "an IP address is required, found an empty string", file: file, line: line)
        case .tooLong:
            self.init(.tooLong, reason: "\(whole) is too long to be an IP address", file: file, line: line)
        case .invalidCharacter:
            self.init(.invalidCharacter, reason: "unexpected character \(part) in \(whole)", file: file, line: line)
        case .whitespace:
            self.init(.whitespace, reason: "whitespace is not allowed in IP address \(whole)", file: file, line: line)
        case .brackets:
            self.init(.brackets, reason: "brackets are not allowed here; write the bare address", file: file, line: line)
        case .zoneID:
            self.init(.zoneID, reason: "zone ids are not allowed (\(whole))", file: file, line: line)
        case .port:
            self.init(.port, reason: "a port is not allowed in IP address \(whole)", file: file, line: line)
        case .leadingZero:
            self.init(.leadingZero, reason: "leading zero in IPv4 octet \(part) is ambiguous (octal?)", file: file, line: line)
        case .octetOutOfRange:
            self.init(.octetOutOfRange, reason: "IPv4 octet \(part) is out of range 0-255", file: file, line: line)
        case .hexOctet:
            self.init(.hexOctet, reason: "hexadecimal IPv4 octet \(part) is not allowed; write decimal", file: file, line: line)
        case .emptyOctet:
            self.init(.wrongOctetCount, reason: "empty octet in IPv4 address \(whole)", file: file, line: line)
        case .tooFewOctets(let count):
            self.init(
                .wrongOctetCount,
                reason: "IPv4 address \(whole) has \(count) octet\(count == 1 ? "" : "s"); "
                    + "exactly four are required (short forms such as 127.1 are ambiguous)",
                file: file,
                line: line
            )
        case .tooManyOctets:
            self.init(.wrongOctetCount, reason: "IPv4 address \(whole) has more than four octets", file: file, line: line)
        case .leadingColon:
            self.init(.ipv6Syntax, reason: "IPv6 address \(whole) starts with a single ':'", file: file, line: line)
        case .trailingColon:
            self.init(.ipv6Syntax, reason: "IPv6 address \(whole) ends with a single ':'", file: file, line: line)
        case .tripleColon:
            self.init(.ipv6Syntax, reason: "':::' is not valid in IPv6 address \(whole)", file: file, line: line)
        case .multipleDoubleColons:
            self.init(.ipv6Syntax, reason: "IPv6 address \(whole) uses '::' more than once", file: file, line: line)
        case .groupTooLong:
            self.init(.groupTooLong, reason: "IPv6 group \(part) has more than four hex digits", file: file, line: line)
        case .tooManyGroups:
            self.init(.wrongGroupCount, reason: "IPv6 address \(whole) has too many groups", file: file, line: line)
        case .tooFewGroups(let count):
            self.init(
                .wrongGroupCount,
                reason: "IPv6 address \(whole) has \(count) groups; eight are required unless '::' is used",
                file: file,
                line: line
            )
        case .misplacedIPv4:
            self.init(.ipv6Syntax, reason: "embedded IPv4 \(part) must be the last 32 bits of \(whole)", file: file, line: line)
        }
    }

    public var description: String { self.reason }

}
