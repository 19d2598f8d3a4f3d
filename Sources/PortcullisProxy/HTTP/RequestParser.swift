#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1
import PortcullisPolicy

/// A client's request head, and what the request path needs to know of its headers, found
/// while parsing so that no handler walks the header list for it again.
///
/// A class: the head rides in `RequestParser.Event` and is handed down the request path, and
/// as a struct of a dozen fields, most of them strings, every copy and destroy of the event
/// cost a reference-count operation per field (measured with callgrind: about 2,400
/// instructions per request).
final class ParsedRequestHead {
    let method: HTTPMethod
    /// The request target as sent (visible ASCII).
    let uri: String
    let version: HTTPVersion
    let fields: RequestFields
    /// Validated: one header, digits only.
    let contentLength: Int?
    let chunked: Bool
    let keepAlive: Bool
    /// `Expect: 100-continue` (the only expectation there is).
    let expectsContinue: Bool
    /// Some other `Expect` value: 417.
    let hasUnsupportedExpectation: Bool
    let upgrade: Bool
    /// The first `Authorization` value, and how many there were.
    let authorization: String?
    let authorizationCount: Int
    /// The first `Content-Type` value.
    let contentType: String?
    let userAgent: String?
    /// The trace id of a valid W3C `traceparent` (version 00), nil when there is none or more
    /// than one, or it is malformed (the gateway then sends its own).
    let traceID: String?
    /// The coding `Accept-Encoding` lets the gateway use (gzip preferred), if any.
    let acceptEncoding: ContentCoding?

    init(
        method: HTTPMethod,
        uri: String,
        version: HTTPVersion,
        fields: RequestFields,
        contentLength: Int?,
        chunked: Bool,
        keepAlive: Bool,
        expectsContinue: Bool,
        hasUnsupportedExpectation: Bool,
        upgrade: Bool,
        authorization: String?,
        authorizationCount: Int,
        contentType: String?,
        userAgent: String?,
        traceID: String?,
        acceptEncoding: ContentCoding? = nil
    ) {
        self.method = method
        self.uri = uri
        self.version = version
        self.fields = fields
        self.contentLength = contentLength
        self.chunked = chunked
        self.keepAlive = keepAlive
        self.expectsContinue = expectsContinue
        self.hasUnsupportedExpectation = hasUnsupportedExpectation
        self.upgrade = upgrade
        self.authorization = authorization
        self.authorizationCount = authorizationCount
        self.contentType = contentType
        self.userAgent = userAgent
        self.traceID = traceID
        self.acceptEncoding = acceptEncoding
    }

    var hasBody: Bool { self.chunked || (self.contentLength ?? 0) > 0 }
}

/// Why a request could not be read; nothing of it goes upstream.
///
/// Made per bad request on the event loop, so it allocates nothing (see ``HTTPFramingError``).
/// `description` is the reason alone, the text of the 400 body; `debugDescription` adds the
/// code and the throw site (the framing error's, for one made from it). Errors compare equal
/// when their codes do.
struct RequestParseError: Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: UInt8, Hashable, Sendable {
            case malformed
            case headTooLarge
            case tooManyFields
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// 400
        static let malformed = Code(.malformed)
        /// 431: the head is longer than `max_header_bytes`.
        static let headTooLarge = Code(.headTooLarge)
        /// 431: the head has more fields than `max_header_count`.
        static let tooManyFields = Code(.tooManyFields)

        /// The code as an exhaustive enum, for the switch that picks the answer.
        var kind: Kind {
            switch self.backing {
            case .malformed: return .malformed
            case .headTooLarge: return .headTooLarge
            case .tooManyFields: return .tooManyFields
            }
        }

        var description: String { "\(self.backing)" }
    }

    /// Which answer the request gets: ``Code`` as an exhaustive enum.
    enum Kind {
        /// 400
        case malformed
        /// 431: the head is longer than `max_header_bytes`.
        case headTooLarge
        /// 431: the head has more fields than `max_header_count`.
        case tooManyFields
    }

    let code: Code
    let message: HTTPErrorMessage
    let file: StaticString
    let line: UInt

    /// `reason limit unit`, e.g. `request head larger than 65536 bytes`.
    @inline(__always)
    init(_ code: Code, reason: StaticString, limit: Int, unit: StaticString, file: StaticString = #fileID, line: UInt = #line) {
        self.code = code
        self.message = HTTPErrorMessage(reason, limit: limit, unit: unit)
        self.file = file
        self.line = line
    }

    /// The framing error's words and throw site under `code`.
    @inline(__always)
    init(_ code: Code, _ framing: HTTPFramingError) {
        self.code = code
        self.message = framing.message
        self.file = framing.file
        self.line = framing.line
    }

    var kind: Kind { self.code.kind }

    var reason: String { self.message.text }

    var description: String { self.message.text }

    var debugDescription: String { "\(self.code): \(self.message.text) (\(self.file):\(self.line))" }

    static func == (lhs: RequestParseError, rhs: RequestParseError) -> Bool { lhs.code == rhs.code }

    func hash(into hasher: inout Hasher) { hasher.combine(self.code) }
}

/// A strict, incremental HTTP/1.1 request parser: the first thing a client's bytes meet.
///
/// Only unambiguous requests pass (DESIGN.md: smuggling -> 400). Refused: a method that is not
/// a known HTTP method; a request target with bytes outside visible ASCII; a version other
/// than HTTP/1.0 and HTTP/1.1; anything but single spaces in the request line; bare CR or LF;
/// obs-fold; whitespace before a colon; control bytes in names or values; `Content-Length`
/// that is not plain digits, repeated, or beside `Transfer-Encoding`; `Transfer-Encoding`
/// other than one `chunked` (and any in HTTP/1.0); no `Host` in HTTP/1.1, more than one, or
/// one that is not a plain `host[:port]` (see `HeadBuilder.isValidHost`);
/// chunk sizes with a sign, `0x`, whitespace or more than 15 hex digits.
///
/// Bodies come out as slices of the bytes read; chunked ones decoded (the gateway re-frames).
struct RequestParser {
    enum Event {
        case head(ParsedRequestHead)
        case body(ByteBuffer)
        case end
    }

    private enum State {
        case head
        case fixed(remaining: Int)
        case chunked
    }

    private let maxHeadBytes: Int
    private let maxFields: Int
    private var state: State = .head
    private var chunked: ChunkedBodyDecoder
    /// A head split across reads, as far as it has been read. Its lines are judged as they
    /// complete, so a bad one is refused without waiting for the rest of the head. A head read
    /// whole in one read (most are) is built on the stack: between requests, and while a head
    /// comes in one piece, the parser holds no builder.
    private var splitHead: SplitHead?
    /// An incomplete line of a head split across reads (rare: most heads come in one read).
    private var partialLine: ByteBuffer?
    /// Bytes of `partialLine` already scanned for its end: a line fed a byte at a time is
    /// scanned once, not once per byte.
    private var partialScanned = 0
    /// Room for the rest of a head split across reads, past the bytes read so far.
    private static let partialLineRoom = 2048
    /// The fields of the last head, until its request has ended (`messageEnded`).
    private var lastFields: RequestFields?
    /// `Accept-Encoding` is read only when compression is on (the handler sets this from the
    /// settings between requests), so clients that send it cost nothing more otherwise.
    var readsAcceptEncoding = false {
        didSet { self.splitHead?.builder.readsAcceptEncoding = self.readsAcceptEncoding }
    }

    /// `maxFields`: header fields one head may have (`limits.max_header_count`); trailers,
    /// which are not forwarded, count only against `maxHeadBytes`.
    init(maxHeadBytes: Int, maxFields: Int = Limits.defaultMaxHeaderCount) {
        self.maxHeadBytes = maxHeadBytes
        self.maxFields = maxFields
        self.chunked = ChunkedBodyDecoder(lenient: false, maxTrailerBytes: maxHeadBytes)
    }

    /// Between requests, with no byte of the next one read.
    var isAtMessageBoundary: Bool {
        if case .head = self.state { return self.partialLine == nil && self.splitHead == nil }
        return false
    }

    /// The next event from `buffer`, or nil when more bytes are needed. A head takes the memory
    /// of its fields from `fields` (the loop's, shared by its connections) and gives it back
    /// there when its request has ended.
    mutating func next(_ buffer: inout ByteBuffer, fields pool: RequestFieldsPool) throws(RequestParseError) -> Event? {
        switch self.state {
        case .head:
            guard let head = try self.readHead(&buffer, pool) else { return nil }
            if head.chunked {
                self.state = .chunked
                self.chunked = ChunkedBodyDecoder(lenient: false, maxTrailerBytes: self.maxHeadBytes)
            } else {
                self.state = .fixed(remaining: head.contentLength ?? 0)
            }
            return .head(head)

        case .fixed(let remaining):
            if remaining == 0 {
                self.state = .head
                self.messageEnded(pool)
                return .end
            }
            let count = min(remaining, buffer.readableBytes)
            if count == 0 { return nil }
            self.state = .fixed(remaining: remaining - count)
            return .body(buffer.readSlice(length: count)!)

        case .chunked:
            let event: ChunkedBodyDecoder.Event?
            do throws(HTTPFramingError) {
                event = try self.chunked.next(&buffer)
            } catch {
                throw RequestParseError(.malformed, error)
            }
            switch event {
            case .data(let bytes): return .body(bytes)
            case .end:
                self.state = .head
                self.messageEnded(pool)
                return .end
            case nil: return nil
            }
        }
    }

    /// The request has been read whole: the memory of its fields goes back to the pool
    /// (`RequestFieldsPool`), so a connection between requests holds none.
    private mutating func messageEnded(_ pool: RequestFieldsPool) {
        if let fields = self.lastFields.take() { pool.give(fields) }
    }

    // MARK: - Head

    private mutating func readHead(_ buffer: inout ByteBuffer, _ pool: RequestFieldsPool) throws(RequestParseError) -> ParsedRequestHead? {
        guard var partial = self.partialLine else {
            return try self.readLines(&buffer, scanFrom: 0, ownStorage: false, pool)
        }
        self.partialLine = nil
        partial.writeBuffer(&buffer)
        let head = try self.readLines(&partial, scanFrom: self.partialScanned, ownStorage: true, pool)
        buffer = partial  // what follows the head, if it ended
        return head
    }

    /// Consumes complete lines of `buffer` into the head; the head once its empty line is read.
    /// An incomplete last line is kept in `partialLine`: a slice of `buffer` when it is the
    /// parser's own (`ownStorage`), else a copy.
    private mutating func readLines(
        _ buffer: inout ByteBuffer,
        scanFrom: Int,
        ownStorage: Bool,
        _ pool: RequestFieldsPool
    ) throws(RequestParseError) -> ParsedRequestHead? {
        let limit = self.maxHeadBytes
        var builder = self.splitHead.take()?.builder ?? HeadBuilder(readsAcceptEncoding: self.readsAcceptEncoding, maxFields: self.maxFields)
        let outcome: Result<(consumed: Int, scanned: Int, complete: Bool), HTTPFramingError> = buffer.withUnsafeReadableBytes { p in
            // Lines end at CR (which must be followed by LF); a bare LF inside a line is refused
            // by the line's own checks, since no line may contain a control byte.
            var lineStart = 0
            var index = scanFrom
            while let cr = HTTPSyntax.firstCR(p, from: index) {
                index = cr
                // Wait if the LF has not come yet.
                guard index + 1 < p.count else { break }
                guard p[index + 1] == 0x0A else { return .failure(HTTPFramingError(.lineEnding, reason: "bare CR in the request head")) }
                let line = UnsafeRawBufferPointer(rebasing: p[lineStart..<index])
                index += 2
                do throws(HTTPFramingError) {
                    builder.bytes += index - lineStart
                    guard builder.bytes <= limit else { return .failure(HTTPFramingError(.headTooLarge, reason: "")) }
                    if try builder.line(line, pool: pool) { return .success((index, index, true)) }
                } catch {
                    return .failure(error)
                }
                lineStart = index
            }
            if index < p.count && p[index] != 0x0D { index = p.count }
            // Seen nowhere else before the line ends: a bare LF in the incomplete line.
            let tailFrom = max(scanFrom, lineStart)
            if index > tailFrom && memchr(p.baseAddress! + tailFrom, 0x0A, index - tailFrom) != nil {
                return .failure(HTTPFramingError(.lineEnding, reason: "bare LF in the request head"))
            }
            // The line so far may already be wrong (llhttp refuses as early): say so now rather
            // than after a timeout. Long tails wait for their end (no rescans of a slow line).
            if index - lineStart <= 1024 {
                do throws(HTTPFramingError) {
                    try builder.checkIncompleteLine(UnsafeRawBufferPointer(rebasing: p[lineStart..<index]))
                } catch {
                    return .failure(error)
                }
            }
            return .success((lineStart, index, false))
        }
        let consumed: Int
        let scanned: Int
        switch outcome {
        case .success(let result):
            if result.complete {
                buffer.moveReaderIndex(forwardBy: result.consumed)
                defer { self.lastFields = builder.fieldStorage }
                do throws(HTTPFramingError) {
                    return try builder.finish()
                } catch {
                    throw RequestParseError(.malformed, error)
                }
            }
            consumed = result.consumed
            scanned = result.scanned
        case .failure(let error):
            if builder.bytes > limit {
                throw RequestParseError(.headTooLarge, reason: "request head larger than", limit: limit, unit: "bytes")
            }
            if builder.hasTooManyFields {
                throw RequestParseError(.tooManyFields, error)
            }
            throw RequestParseError(.malformed, error)
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        // Not whole yet: the lines read so far wait for the rest (the first bytes of a head,
        // even blank lines before its request line, count against `max_header_bytes`).
        if builder.bytes > 0 { self.splitHead = SplitHead(builder) }
        if buffer.readableBytes > 0 {
            if builder.bytes + buffer.readableBytes > limit {
                throw RequestParseError(.headTooLarge, reason: "request head larger than", limit: limit, unit: "bytes")
            }
            if ownStorage {
                self.partialLine = buffer.readSlice(length: buffer.readableBytes)
            } else {
                // A copy, made now rather than when the rest is appended (the same one copy): a
                // slice would keep the channel's receive buffer shared, and NIO, which reuses
                // that buffer only when nothing else holds it, would read the rest of the head
                // into a second buffer and keep both for the connection's life (with 2.3 KB
                // heads: 10.5 KiB per idle connection with the slice, 8.3 KiB with the copy,
                // `IDLE_PAD=1500 Benchmarks/idle-memory`).
                var copy = ByteBuffer()
                copy.reserveCapacity(buffer.readableBytes + Self.partialLineRoom)
                copy.writeBuffer(&buffer)
                self.partialLine = copy
            }
            self.partialScanned = scanned - consumed
        }
        return nil
    }
}

/// A head being read across reads (`RequestParser.splitHead`).
private final class SplitHead {
    var builder: HeadBuilder

    init(_ builder: HeadBuilder) {
        self.builder = builder
    }
}

/// A request head assembled line by line; what the request path needs is noted on the way.
private struct HeadBuilder {
    /// Bytes of the head so far, CRLFs included (against `max_header_bytes`).
    var bytes = 0
    private var hasRequestLine = false
    private var method: HTTPMethod = .GET
    private var uri = ""
    private var http10 = false
    private var fields: RequestFields
    private var hosts = 0
    private var transferEncodings = 0
    private var connectionClose = false
    private var connectionKeepAlive = false
    private var contentLength: Int?
    private var chunked = false
    private var expectsContinue = false
    private var hasUnsupportedExpectation = false
    private var upgrade = false
    private var authorization: String?
    private var authorizationCount = 0
    private var contentType: String?
    private var userAgent: String?
    private var traceparents = 0
    private var traceID: String?
    private var acceptEncoding: ContentCoding?
    var readsAcceptEncoding = false
    private let maxFields: Int
    /// The head was refused for having more than `maxFields` fields (431, not 400).
    private(set) var hasTooManyFields = false

    /// `fields` takes its memory from the loop's `RequestFieldsPool` when the request line
    /// comes; until then the builder holds none.
    init(readsAcceptEncoding: Bool, maxFields: Int) {
        self.fields = RequestFields()
        self.readsAcceptEncoding = readsAcceptEncoding
        self.maxFields = maxFields
    }

    /// The fields read so far (the finished head's, for the pool once its request has ended).
    var fieldStorage: RequestFields { self.fields }

    /// One line, without its CRLF. True when it is the empty line that ends the head.
    mutating func line(_ p: UnsafeRawBufferPointer, pool: RequestFieldsPool) throws(HTTPFramingError) -> Bool {
        if !self.hasRequestLine {
            // RFC 9112 2.2: empty lines before a request line are ignored.
            if p.isEmpty { return false }
            try self.requestLine(p)
            self.hasRequestLine = true
            self.fields = pool.take()
            return false
        }
        if p.isEmpty { return true }
        try self.fieldLine(p)
        return false
    }

    /// The start of a line whose end has not come: refused if no ending could make it valid.
    func checkIncompleteLine(_ p: UnsafeRawBufferPointer) throws(HTTPFramingError) {
        guard !p.isEmpty else { return }
        if self.hasRequestLine {
            if p[0] == 0x20 || p[0] == 0x09 {
                throw HTTPFramingError(.headerField, reason: "obs-fold or whitespace at the start of a header line")
            }
            return
        }
        // method SP target SP, then a prefix of "HTTP/1.x".
        var index = 0
        while index < p.count && HTTPSyntax.isTokenByte(p[index]) { index += 1 }
        guard index < p.count else { return }
        guard index > 0, p[index] == 0x20 else { throw HTTPFramingError(.requestLine, reason: "malformed method") }
        _ = try Self.method(UnsafeRawBufferPointer(rebasing: p[0..<index]))
        index += 1
        let targetStart = index
        while index < p.count && p[index] >= 0x21 && p[index] <= 0x7E { index += 1 }
        guard index < p.count else { return }
        guard index > targetStart, p[index] == 0x20 else { throw HTTPFramingError(.requestLine, reason: "malformed request line") }
        index += 1
        let version: StaticString = "HTTP/1."
        var offset = 0
        while index < p.count && offset < 7 {
            guard p[index] == version.utf8Start[offset] else { throw HTTPFramingError(.requestLine, reason: "unsupported HTTP version") }
            index += 1
            offset += 1
        }
        if index < p.count {
            guard p[index] == UInt8(ascii: "0") || p[index] == UInt8(ascii: "1"), index + 1 == p.count else {
                throw HTTPFramingError(.requestLine, reason: "unsupported HTTP version")
            }
        }
    }

    /// request-line = method SP request-target SP HTTP-version
    private mutating func requestLine(_ p: UnsafeRawBufferPointer) throws(HTTPFramingError) {
        var index = 0
        while index < p.count && HTTPSyntax.isTokenByte(p[index]) { index += 1 }
        guard index > 0, index < p.count, p[index] == 0x20 else { throw HTTPFramingError(.requestLine, reason: "malformed method") }
        self.method = try Self.method(UnsafeRawBufferPointer(rebasing: p[0..<index]))
        index += 1
        let targetStart = index
        while index < p.count && p[index] >= 0x21 && p[index] <= 0x7E { index += 1 }
        guard index > targetStart, index < p.count, p[index] == 0x20 else {
            throw HTTPFramingError(
                .requestLine,
                reason: index == targetStart || index == p.count ? "malformed request line" : "invalid byte in the request target"
            )
        }
        self.uri = String(decoding: UnsafeRawBufferPointer(rebasing: p[targetStart..<index]), as: UTF8.self)
        index += 1
        guard p.count - index == 8,
            p[index] == UInt8(ascii: "H"), p[index + 1] == UInt8(ascii: "T"), p[index + 2] == UInt8(ascii: "T"),
            p[index + 3] == UInt8(ascii: "P"), p[index + 4] == UInt8(ascii: "/"), p[index + 5] == UInt8(ascii: "1"),
            p[index + 6] == UInt8(ascii: "."), p[index + 7] == UInt8(ascii: "1") || p[index + 7] == UInt8(ascii: "0")
        else { throw HTTPFramingError(.requestLine, reason: "unsupported HTTP version") }
        self.http10 = p[index + 7] == UInt8(ascii: "0")
    }

    /// field-line = field-name ":" OWS field-value OWS
    private mutating func fieldLine(_ p: UnsafeRawBufferPointer) throws(HTTPFramingError) {
        guard self.fields.count < self.maxFields else {
            self.hasTooManyFields = true
            throw HTTPFramingError(.tooManyFields, reason: "more than", limit: self.maxFields, unit: "header fields")
        }
        var index = 0
        while index < p.count && HTTPSyntax.isTokenByte(p[index]) { index += 1 }
        guard index > 0, index < p.count, p[index] == UInt8(ascii: ":") else {
            if p[0] == 0x20 || p[0] == 0x09 {
                throw HTTPFramingError(.headerField, reason: "obs-fold or whitespace at the start of a header line")
            }
            throw HTTPFramingError(.headerField, reason: index > 0 ? "malformed header name" : "malformed header line")
        }
        let name = UnsafeRawBufferPointer(rebasing: p[0..<index])
        index += 1
        while index < p.count && (p[index] == 0x20 || p[index] == 0x09) { index += 1 }
        let valueStart = index
        guard HTTPSyntax.allFieldBytes(p, from: valueStart, to: p.count) else {
            throw HTTPFramingError(.headerField, reason: "control byte in a header value")
        }
        var valueEnd = p.count
        while valueEnd > valueStart && (p[valueEnd - 1] == 0x20 || p[valueEnd - 1] == 0x09) { valueEnd -= 1 }
        let value = UnsafeRawBufferPointer(rebasing: p[valueStart..<valueEnd])

        switch name.count {
        case 4 where HeaderName.equals(name, "host"):
            self.hosts += 1
            guard Self.isValidHost(value) else { throw HTTPFramingError(.host, reason: "invalid Host header") }
        case 6 where HeaderName.equals(name, "expect"):
            if HeaderName.equals(value, "100-continue") {
                self.expectsContinue = true
            } else {
                self.hasUnsupportedExpectation = true
            }
        case 7 where HeaderName.equals(name, "upgrade"):
            self.upgrade = true
        case 10 where HeaderName.equals(name, "user-agent"):
            if self.userAgent == nil { self.userAgent = String(decoding: value, as: UTF8.self) }
        case 11 where HeaderName.equals(name, "traceparent"):
            self.traceparents += 1
            self.traceID = Self.traceID(value)
        case 10 where HeaderName.equals(name, "connection"):
            HTTPSyntax.forEachListElement(value) { token in
                if HeaderName.equals(token, "close") { self.connectionClose = true }
                if HeaderName.equals(token, "keep-alive") { self.connectionKeepAlive = true }
            }
        case 12 where HeaderName.equals(name, "content-type"):
            if self.contentType == nil { self.contentType = String(decoding: value, as: UTF8.self) }
        case 13 where HeaderName.equals(name, "authorization"):
            self.authorizationCount += 1
            if self.authorization == nil { self.authorization = String(decoding: value, as: UTF8.self) }
        case 14 where HeaderName.equals(name, "content-length"):
            guard self.contentLength == nil else { throw HTTPFramingError(.contentLength, reason: "more than one Content-Length") }
            self.contentLength = try HTTPSyntax.contentLength(value, allowsLeadingZeros: false)
        case 15 where self.readsAcceptEncoding && HeaderName.equals(name, "accept-encoding"):
            if self.acceptEncoding == nil { self.acceptEncoding = AcceptEncoding.preferred(value) }
        case 17 where HeaderName.equals(name, "transfer-encoding"):
            self.transferEncodings += 1
            // Exactly `chunked`; trailing spaces pass, a trailing tab does not (as llhttp).
            var end = p.count
            while end > valueEnd && p[end - 1] == 0x20 { end -= 1 }
            guard self.transferEncodings == 1, end == valueEnd, HeaderName.equals(value, "chunked") else {
                throw HTTPFramingError(.transferEncoding, reason: "only Transfer-Encoding: chunked is accepted")
            }
            self.chunked = true
        default:
            break
        }
        self.fields.append(name: name, value: value)
    }

    /// The empty line came: checks that need the whole head.
    func finish() throws(HTTPFramingError) -> ParsedRequestHead {
        if self.hosts > 1 { throw HTTPFramingError(.host, reason: "more than one Host header") }
        if self.hosts == 0 && !self.http10 { throw HTTPFramingError(.host, reason: "HTTP/1.1 request without Host") }
        if self.chunked {
            if self.http10 { throw HTTPFramingError(.transferEncoding, reason: "Transfer-Encoding is not allowed in HTTP/1.0") }
            if self.contentLength != nil { throw HTTPFramingError(.transferEncoding, reason: "both Content-Length and Transfer-Encoding") }
        }
        let keepAlive = self.connectionClose ? false : (self.connectionKeepAlive || !self.http10)
        return ParsedRequestHead(
            method: self.method,
            uri: self.uri,
            version: self.http10 ? .http1_0 : .http1_1,
            fields: self.fields,
            contentLength: self.contentLength,
            chunked: self.chunked,
            keepAlive: keepAlive,
            expectsContinue: self.expectsContinue,
            hasUnsupportedExpectation: self.hasUnsupportedExpectation,
            upgrade: self.upgrade,
            authorization: self.authorization,
            authorizationCount: self.authorizationCount,
            contentType: self.contentType,
            userAgent: self.userAgent,
            traceID: self.traceparents == 1 ? self.traceID : nil,
            acceptEncoding: self.acceptEncoding
        )
    }

    /// RFC 9112 3.2 `Host = uri-host [ ":" port ]`, narrowed to what an `http(s)` authority
    /// can name (RFC 9110 4.2.1: never empty): a name of letters, digits, `-`, `.`, `_`, `~`, or
    /// a bracketed IPv6 literal (hex digits, `:` and `.`), then optionally a port 1-65535
    /// without leading zeros. The backend may route on it (`X-Forwarded-Host`), so anything it
    /// could read differently is refused: userinfo (`a@b`), a path, whitespace,
    /// percent-encoding, sub-delims (`,` splits an `X-Forwarded-Host` list), an empty port.
    @inline(__always)
    static func isValidHost(_ value: UnsafeRawBufferPointer) -> Bool {
        let count = value.count
        var index = 0
        if count > 0 && value[0] == UInt8(ascii: "[") {
            index = 1
            var colons = 0
            while index < count && value[index] != UInt8(ascii: "]") {
                let byte = value[index]
                if byte == UInt8(ascii: ":") {
                    colons += 1
                } else if !(HTTPSyntax.hexValue(byte) != nil || byte == UInt8(ascii: ".")) {
                    return false
                }
                index += 1
            }
            guard index < count, colons >= 2 else { return false }
            index += 1
        } else {
            while index < count {
                let byte = value[index]
                let lowered = byte | 0x20
                let isNameByte =
                    (lowered >= 0x61 && lowered <= 0x7A) || HTTPSyntax.isDigit(byte)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                    || byte == UInt8(ascii: "~")
                guard isNameByte else { break }
                index += 1
            }
            guard index > 0 else { return false }
        }
        if index == count { return true }
        guard value[index] == UInt8(ascii: ":") else { return false }
        index += 1
        guard count - index >= 1, count - index <= 5, value[index] != UInt8(ascii: "0") else { return false }
        var port = 0
        while index < count {
            guard HTTPSyntax.isDigit(value[index]) else { return false }
            port = port * 10 + Int(value[index] &- 0x30)
            index += 1
        }
        return port <= 65535
    }

    /// `00-<32 hex>-<16 hex>-<2 hex>`, lowercase, ids not all zero (W3C Trace Context).
    static func traceID(_ value: UnsafeRawBufferPointer) -> String? {
        guard value.count == 55, value[0] == UInt8(ascii: "0"), value[1] == UInt8(ascii: "0"),
            value[2] == UInt8(ascii: "-"), value[35] == UInt8(ascii: "-"), value[52] == UInt8(ascii: "-")
        else { return nil }
        var traceNonZero = false
        var parentNonZero = false
        for index in 3..<55 where index != 35 && index != 52 {
            let byte = value[index]
            guard (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) else { return nil }
            if byte != 0x30 {
                if index < 35 { traceNonZero = true } else if index < 52 { parentNonZero = true }
            }
        }
        guard traceNonZero && parentNonZero else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: value[3..<35]), as: UTF8.self)
    }

    /// A method HTTP defines (NIO's list: RFC 9110, WebDAV and friends), case-sensitive.
    @inline(__always)
    private static func method(_ bytes: UnsafeRawBufferPointer) throws(HTTPFramingError) -> HTTPMethod {
        switch bytes.count {
        case 3 where bytes[0] == UInt8(ascii: "G") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "T"):
            return .GET
        case 4 where bytes[0] == UInt8(ascii: "P") && bytes[1] == UInt8(ascii: "O") && bytes[2] == UInt8(ascii: "S")
            && bytes[3] == UInt8(ascii: "T"):
            return .POST
        default:
            let method = HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self))
            if case .RAW = method { throw HTTPFramingError(.requestLine, reason: "unknown method") }
            return method
        }
    }
}
