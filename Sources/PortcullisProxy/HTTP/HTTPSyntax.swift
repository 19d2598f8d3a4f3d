#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// An HTTP/1.1 message that cannot be read without guessing (RFC 9112 framing, RFC 9110 field
/// syntax). Each parser turns it into its own answer: 400 to a client, 502 for an upstream.
///
/// Made per bad message on the event loop, so it allocates nothing: the reason is a string
/// literal (with at most one number, see ``HTTPErrorMessage``) and the file a `StaticString`;
/// the text is spelled out only when read. `description` is the reason alone (a client reads it
/// in the 400 body); `debugDescription` adds the code and the throw site. Errors compare equal
/// when their codes do.
struct HTTPFramingError: Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: UInt8, Hashable, Sendable {
            case lineEnding
            case requestLine
            case headerField
            case host
            case tooManyFields
            case headTooLarge
            case contentLength
            case transferEncoding
            case chunk
            case trailer
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// A bare CR or LF, or a line not ended by CRLF.
        static let lineEnding = Code(.lineEnding)
        /// The method, the request target or the version.
        static let requestLine = Code(.requestLine)
        /// A field line: obs-fold, a malformed name, a control byte in a value.
        static let headerField = Code(.headerField)
        /// No `Host` in HTTP/1.1, more than one, or one that is not `host[:port]`.
        static let host = Code(.host)
        /// More fields than `max_header_count`.
        static let tooManyFields = Code(.tooManyFields)
        /// More bytes than `max_header_bytes` (the request parser words its own message).
        static let headTooLarge = Code(.headTooLarge)
        /// Not plain digits, or repeated.
        static let contentLength = Code(.contentLength)
        /// Other than one `chunked`, in HTTP/1.0, or beside `Content-Length`.
        static let transferEncoding = Code(.transferEncoding)
        /// A chunk size line or the CRLF after chunk data.
        static let chunk = Code(.chunk)
        static let trailer = Code(.trailer)

        var description: String { "\(self.backing)" }
    }

    let code: Code
    let message: HTTPErrorMessage
    let file: StaticString
    let line: UInt

    @inline(__always)
    init(_ code: Code, reason: StaticString, file: StaticString = #fileID, line: UInt = #line) {
        self.code = code
        self.message = HTTPErrorMessage(reason)
        self.file = file
        self.line = line
    }

    /// `reason limit unit`, e.g. `more than 100 header fields`.
    @inline(__always)
    init(_ code: Code, reason: StaticString, limit: Int, unit: StaticString, file: StaticString = #fileID, line: UInt = #line) {
        self.code = code
        self.message = HTTPErrorMessage(reason, limit: limit, unit: unit)
        self.file = file
        self.line = line
    }

    var reason: String { self.message.text }

    var description: String { self.message.text }

    var debugDescription: String { "\(self.code): \(self.message.text) (\(self.file):\(self.line))" }

    static func == (lhs: HTTPFramingError, rhs: HTTPFramingError) -> Bool { lhs.code == rhs.code }

    func hash(into hasher: inout Hasher) { hasher.combine(self.code) }
}

/// The words of an error made on the request path: string literals and at most one number,
/// stored as they are and joined only when read (`text`), so that refusing a message costs no
/// allocation.
struct HTTPErrorMessage: Sendable {
    private let reason: StaticString
    private let limit: Int?
    private let unit: StaticString

    @inline(__always)
    init(_ reason: StaticString) {
        self.reason = reason
        self.limit = nil
        self.unit = ""
    }

    /// Reads `reason limit unit`.
    @inline(__always)
    init(_ reason: StaticString, limit: Int, unit: StaticString) {
        self.reason = reason
        self.limit = limit
        self.unit = unit
    }

    var text: String {
        guard let limit = self.limit else { return "\(self.reason)" }
        return "\(self.reason) \(limit) \(self.unit)"
    }
}

/// Byte classes and small grammars shared by the request and response parsers.
enum HTTPSyntax {
    /// The offset of the first CR in `p[from...]` (memchr), nil if there is none.
    @inline(__always)
    static func firstCR(_ p: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard from < p.count, let found = memchr(p.baseAddress! + from, 0x0D, p.count - from) else { return nil }
        return UnsafeRawPointer(found) - p.baseAddress!
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: return Int(byte - 0x30)
        case 0x41...0x46: return Int(byte - 0x41 + 10)
        case 0x61...0x66: return Int(byte - 0x61 + 10)
        default: return nil
        }
    }

    /// RFC 9110 field-vchar, SP and HTAB (obs-text allowed): anything but CTLs and DEL.
    @inline(__always)
    static func isFieldByte(_ byte: UInt8) -> Bool {
        byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
    }

    /// Every byte of `p[start..<end]` is a field byte. Words of eight bytes, four to a step,
    /// their flags gathered and tested once at the end: a value with no CTL and no DEL (header
    /// values are mostly long tokens) gets no closer look; one with a flag (an HTAB, or a byte
    /// refused) is checked byte by byte.
    @inline(__always)
    static func allFieldBytes(_ p: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Bool {
        guard end - start >= 8 else { return Self.allFieldBytesOneByOne(p, from: start, to: end) }
        var flags: UInt64 = 0
        var index = start
        while index + 32 <= end {
            flags |= Self.controlFlags(p.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                | Self.controlFlags(p.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self))
                | Self.controlFlags(p.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self))
                | Self.controlFlags(p.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self))
            index += 32
        }
        while index + 8 <= end {
            flags |= Self.controlFlags(p.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            index += 8
        }
        // The last bytes: the value's last word, overlapping what was read.
        flags |= Self.controlFlags(p.loadUnaligned(fromByteOffset: end - 8, as: UInt64.self))
        return flags == 0 || Self.allFieldBytesOneByOne(p, from: start, to: end)
    }

    /// The high bit of each byte of `word` that is a CTL (below 0x20) or DEL, exactly: on
    /// its low seven bits, +0x60 stays below 0x80 only under 0x20, +0x01 reaches 0x80 only at
    /// 0x7F, and neither carries out of its byte.
    @inline(__always)
    private static func controlFlags(_ word: UInt64) -> UInt64 {
        let low = word & 0x7F7F_7F7F_7F7F_7F7F
        let belowSpace = ~(low &+ 0x6060_6060_6060_6060)
        let isDEL = low &+ 0x0101_0101_0101_0101
        return (belowSpace | isDEL) & ~word & 0x8080_8080_8080_8080
    }

    private static func allFieldBytesOneByOne(_ p: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Bool {
        var index = start
        while index < end {
            if !Self.isFieldByte(p[index]) { return false }
            index += 1
        }
        return true
    }

    /// RFC 9110 tchar.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), 0x30...0x39:
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Offset just past the first CRLF CRLF at or after `from`, if any. A bare LF is refused at
    /// once rather than waited past (a head that never has CRLF CRLF would wait for a timeout).
    static func endOfHead(_ buffer: ByteBuffer, from: Int) throws(HTTPFramingError) -> Int? {
        let found = buffer.withUnsafeReadableBytes { bytes -> Int? in
            // From LF to LF (memchr): a head's lines are checked for their CR and the blank line.
            var index = from
            while index < bytes.count, let lf = memchr(bytes.baseAddress! + index, 0x0A, bytes.count - index) {
                index = UnsafeRawPointer(lf) - bytes.baseAddress!
                if index == 0 || bytes[index - 1] != 0x0D { return -1 }
                if index >= 3 && bytes[index - 2] == 0x0A && bytes[index - 3] == 0x0D { return index + 1 }
                index += 1
            }
            return nil
        }
        if found == -1 { throw HTTPFramingError(.lineEnding, reason: "bare LF in the head") }
        return found
    }

    /// `Content-Length`: 1*DIGIT, no sign, no list, at most 18 digits (no overflow); from a
    /// client, no leading zero either (`0` itself excepted).
    static func contentLength(_ value: UnsafeRawBufferPointer, allowsLeadingZeros: Bool) throws(HTTPFramingError) -> Int {
        guard !value.isEmpty, value.count <= 18,
            allowsLeadingZeros || value.count == 1 || value[0] != UInt8(ascii: "0")
        else {
            throw HTTPFramingError(.contentLength, reason: "malformed Content-Length")
        }
        var length = 0
        for byte in value {
            guard Self.isDigit(byte) else { throw HTTPFramingError(.contentLength, reason: "malformed Content-Length") }
            length = length * 10 + Int(byte &- 0x30)
        }
        return length
    }

    /// Calls `body` with each comma-separated element of a list value, OWS trimmed, empty
    /// elements skipped.
    @inline(__always)
    static func forEachListElement(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count && value[end] != UInt8(ascii: ",") { end += 1 }
            var a = start
            var b = end
            while a < b && (value[a] == 0x20 || value[a] == 0x09) { a += 1 }
            while b > a && (value[b - 1] == 0x20 || value[b - 1] == 0x09) { b -= 1 }
            if a < b { body(UnsafeRawBufferPointer(rebasing: value[a..<b])) }
            start = end + 1
        }
    }
}

/// A chunked body (RFC 9112 7.1) read incrementally: chunk-size lines, chunk data (slices of
/// the bytes read, no copy), the CRLF after each chunk, and trailers, which are read and dropped.
/// Extensions are read and dropped too: the gateway frames what it forwards itself.
struct ChunkedBodyDecoder {
    enum Event {
        case data(ByteBuffer)
        case end
    }

    private enum State {
        case size(value: Int, digits: Int, ext: Extension, sawCR: Bool, lineBytes: Int)
        case data(remaining: Int)
        case dataEnd(sawCR: Bool)
        case trailer(lineBytes: Int, sawCR: Bool, total: Int)
        case done
    }

    /// Where a chunk-size line is in its extensions: `*( ";" name [ "=" ( token / quoted-string ) ] )`.
    enum Extension {
        case none
        /// After whitespace or `;` from an upstream: any field bytes.
        case lenient
        case nameStart
        case name
        case valueStart
        case tokenValue
        case quoted
        case quotedEscape
        case afterQuoted

        var mayEndLine: Bool {
            switch self {
            case .none, .lenient, .name, .tokenValue, .afterQuoted: return true
            case .nameStart, .valueStart, .quoted, .quotedEscape: return false
            }
        }

        /// The state after `byte`, nil if the extension is malformed.
        func next(_ byte: UInt8) -> Extension? {
            switch self {
            case .none:
                return byte == UInt8(ascii: ";") ? .nameStart : nil
            case .lenient:
                return HTTPSyntax.isFieldByte(byte) ? .lenient : nil
            case .nameStart:
                return HTTPSyntax.isTokenByte(byte) ? .name : nil
            case .name:
                if HTTPSyntax.isTokenByte(byte) { return .name }
                if byte == UInt8(ascii: "=") { return .valueStart }
                return byte == UInt8(ascii: ";") ? .nameStart : nil
            case .valueStart:
                if byte == UInt8(ascii: "\"") { return .quoted }
                return HTTPSyntax.isTokenByte(byte) ? .tokenValue : nil
            case .tokenValue:
                if HTTPSyntax.isTokenByte(byte) { return .tokenValue }
                return byte == UInt8(ascii: ";") ? .nameStart : nil
            case .quoted:
                if byte == UInt8(ascii: "\\") { return .quotedEscape }
                if byte == UInt8(ascii: "\"") { return .afterQuoted }
                return HTTPSyntax.isFieldByte(byte) ? .quoted : nil
            case .quotedEscape:
                return HTTPSyntax.isFieldByte(byte) ? .quoted : nil
            case .afterQuoted:
                return byte == UInt8(ascii: ";") ? .nameStart : nil
            }
        }
    }

    /// Chunk extensions and whitespace before them, as upstreams send them, are skipped
    /// unread. From clients only RFC 9112's grammar passes, with no whitespace: a front proxy
    /// that reads a looser line differently could frame the body otherwise than the gateway.
    private let lenient: Bool
    private let maxTrailerBytes: Int
    private var state: State = .size(value: 0, digits: 0, ext: .none, sawCR: false, lineBytes: 0)

    static let maxSizeLineBytes = 4096

    init(lenient: Bool, maxTrailerBytes: Int) {
        self.lenient = lenient
        self.maxTrailerBytes = maxTrailerBytes
    }

    /// The next piece of the body, `.end` once after the trailers, nil when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws(HTTPFramingError) -> Event? {
        while true {
            switch self.state {
            case .done:
                return nil
            case .data(let remaining):
                let count = min(remaining, buffer.readableBytes)
                if count == 0 { return nil }
                self.state = remaining == count ? .dataEnd(sawCR: false) : .data(remaining: remaining - count)
                return .data(buffer.readSlice(length: count)!)
            case .size, .dataEnd, .trailer:
                guard try self.readFraming(&buffer) else { return nil }
                if case .done = self.state { return .end }
            }
        }
    }

    /// Consumes framing bytes. False when more bytes are needed; true when the state moved to
    /// chunk data or to the end.
    private mutating func readFraming(_ buffer: inout ByteBuffer) throws(HTTPFramingError) -> Bool {
        while let byte = buffer.readInteger(as: UInt8.self) {
            switch self.state {
            case .size(let value, let digits, let ext, let sawCR, let lineBytes):
                guard lineBytes < Self.maxSizeLineBytes else { throw HTTPFramingError(.chunk, reason: "chunk size line too long") }
                if sawCR {
                    guard byte == 0x0A, digits > 0, ext.mayEndLine else { throw HTTPFramingError(.chunk, reason: "malformed chunk size line") }
                    if value == 0 {
                        self.state = .trailer(lineBytes: 0, sawCR: false, total: 0)
                    } else {
                        self.state = .data(remaining: value)
                        return true
                    }
                } else if byte == 0x0D {
                    self.state = .size(value: value, digits: digits, ext: ext, sawCR: true, lineBytes: lineBytes + 1)
                } else if case .none = ext, let digit = HTTPSyntax.hexValue(byte) {
                    guard digits < 15 else { throw HTTPFramingError(.chunk, reason: "chunk size too large") }
                    self.state = .size(value: value << 4 | digit, digits: digits + 1, ext: .none, sawCR: false, lineBytes: lineBytes + 1)
                } else {
                    guard digits > 0 else { throw HTTPFramingError(.chunk, reason: "malformed chunk size") }
                    let next: Extension?
                    if case .none = ext, self.lenient {
                        next = byte == UInt8(ascii: ";") || byte == 0x20 || byte == 0x09 ? .lenient : nil
                    } else {
                        next = ext.next(byte)
                    }
                    guard let next else {
                        throw HTTPFramingError(.chunk, reason: ext == .none ? "malformed chunk size" : "malformed chunk extension")
                    }
                    self.state = .size(value: value, digits: digits, ext: next, sawCR: false, lineBytes: lineBytes + 1)
                }
            case .dataEnd(let sawCR):
                guard byte == (sawCR ? 0x0A : 0x0D) else { throw HTTPFramingError(.chunk, reason: "chunk data not followed by CRLF") }
                self.state = sawCR ? .size(value: 0, digits: 0, ext: .none, sawCR: false, lineBytes: 0) : .dataEnd(sawCR: true)
            case .trailer(let lineBytes, let sawCR, let total):
                guard total < self.maxTrailerBytes else { throw HTTPFramingError(.trailer, reason: "trailers too large") }
                if sawCR {
                    guard byte == 0x0A else { throw HTTPFramingError(.trailer, reason: "bare CR in trailers") }
                    if lineBytes == 0 {
                        self.state = .done
                        return true
                    }
                    self.state = .trailer(lineBytes: 0, sawCR: false, total: total + 1)
                } else if byte == 0x0D {
                    self.state = .trailer(lineBytes: lineBytes, sawCR: true, total: total + 1)
                } else {
                    guard HTTPSyntax.isFieldByte(byte), lineBytes > 0 || (byte != 0x20 && byte != 0x09) else {
                        throw HTTPFramingError(.trailer, reason: byte == 0x0A ? "bare LF in trailers" : "malformed trailer line")
                    }
                    self.state = .trailer(lineBytes: lineBytes + 1, sawCR: false, total: total + 1)
                }
            case .data, .done:
                preconditionFailure("chunk framing read in state \(self.state)")
            }
        }
        return false
    }
}
