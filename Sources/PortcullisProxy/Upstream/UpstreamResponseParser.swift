import NIOCore

/// An upstream response head: its status, its framing, and its bytes, which the client's head
/// is written from line by line (no header is decoded into a `String`).
struct UpstreamResponseHead {
    var status: Int
    var isHTTP10: Bool
    /// The head as received, from the status line to the empty line, validated.
    var bytes: ByteBuffer
    var contentLength: Int?
    var chunked: Bool
    var connectionClose: Bool
    var connectionKeepAlive: Bool
    /// A `Connection` header names other headers (rare): they are removed too.
    var connectionNamesHeaders: Bool

    var isKeepAlive: Bool {
        !self.connectionClose && (!self.isHTTP10 || self.connectionKeepAlive)
    }

    /// 204, 304 and answers to HEAD carry no body whatever their headers say.
    var mayHaveBody: Bool { self.status != 204 && self.status != 304 }
}

/// What the parser found; `body` buffers are slices of the bytes read (no copy).
enum UpstreamResponseEvent {
    case head(UpstreamResponseHead)
    case body(ByteBuffer)
    case end
}

/// Why an upstream's response cannot be read: answered 502 and the connection dropped.
///
/// Allocates nothing when made (see ``HTTPFramingError``). `description` is the reason alone;
/// `debugDescription` adds the code and the throw site. Errors compare equal when their codes do.
struct UpstreamProtocolError: Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: UInt8, Hashable, Sendable {
            case unexpectedBytes
            case switchedProtocols
            case truncated
            case headTooLarge
            case malformedHead
            case ambiguousFraming
            case malformedBody
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// Bytes with no request outstanding.
        static let unexpectedBytes = Code(.unexpectedBytes)
        /// A `101` (the gateway never asks to upgrade).
        static let switchedProtocols = Code(.switchedProtocols)
        /// The connection closed before the response ended.
        static let truncated = Code(.truncated)
        static let headTooLarge = Code(.headTooLarge)
        /// The status line, a field line, or a line ending.
        static let malformedHead = Code(.malformedHead)
        /// `Content-Length` malformed or conflicting, `Transfer-Encoding` other than one
        /// `chunked`, or both.
        static let ambiguousFraming = Code(.ambiguousFraming)
        /// The chunked framing of the body or its trailers.
        static let malformedBody = Code(.malformedBody)

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

    /// The framing error's words and throw site under `code`.
    @inline(__always)
    init(_ code: Code, _ framing: HTTPFramingError) {
        self.code = code
        self.message = framing.message
        self.file = framing.file
        self.line = framing.line
    }

    var reason: String { self.message.text }

    var description: String { self.message.text }

    var debugDescription: String { "\(self.code): \(self.message.text) (\(self.file):\(self.line))" }

    static func == (lhs: UpstreamProtocolError, rhs: UpstreamProtocolError) -> Bool { lhs.code == rhs.code }

    func hash(into hasher: inout Hasher) { hasher.combine(self.code) }
}

/// A strict, incremental HTTP/1.x response parser for the upstream side of an exchange.
///
/// The upstream is trusted to speak HTTP, not to be unambiguous: a response whose framing is
/// unclear (`Transfer-Encoding` other than `chunked`, both framing headers, conflicting or
/// malformed `Content-Length`, bare LF, obs-fold, control bytes) is a protocol error, answered
/// 502 and the connection dropped. Interim 1xx responses are skipped; 101 is an error (the
/// gateway never asks to upgrade). Trailers are read and dropped.
struct UpstreamResponseParser {
    static let maxHeadBytes = 64 * 1024

    private enum State {
        /// Between exchanges: any byte is an error.
        case idle
        case head
        case fixed(remaining: Int)
        case chunked
        case untilClose
    }

    private var state: State = .idle
    private var chunked = ChunkedBodyDecoder(lenient: true, maxTrailerBytes: maxHeadBytes)
    private var requestWasHEAD = false
    /// A head split across reads, gathered here (rare: most heads come in one read).
    private var partialHead: ByteBuffer?

    var isIdle: Bool {
        if case .idle = self.state { return true }
        return false
    }

    /// True while the body is framed by the connection's end.
    var isReadingUntilClose: Bool {
        if case .untilClose = self.state { return true }
        return false
    }

    /// A request was sent: its response comes next.
    mutating func expectResponse(toHEAD isHEAD: Bool) {
        precondition(self.isIdle, "new request while the parser is in state \(self.state)")
        self.state = .head
        self.requestWasHEAD = isHEAD
        self.partialHead = nil
    }

    /// The next event from `buffer`, or nil when more bytes are needed (or none is expected).
    mutating func next(_ buffer: inout ByteBuffer) throws(UpstreamProtocolError) -> UpstreamResponseEvent? {
        while true {
            switch self.state {
            case .idle:
                if buffer.readableBytes > 0 { throw UpstreamProtocolError(.unexpectedBytes, reason: "bytes from the upstream with no request outstanding") }
                return nil

            case .head:
                guard let head = try self.readHead(&buffer) else { return nil }
                if head.status < 200 {
                    if head.status == 101 { throw UpstreamProtocolError(.switchedProtocols, reason: "the upstream switched protocols") }
                    continue  // interim response: the final one follows
                }
                if self.requestWasHEAD || !head.mayHaveBody {
                    self.state = .fixed(remaining: 0)
                } else if head.chunked {
                    self.state = .chunked
                    self.chunked = ChunkedBodyDecoder(lenient: true, maxTrailerBytes: Self.maxHeadBytes)
                } else if let length = head.contentLength {
                    self.state = .fixed(remaining: length)
                } else {
                    self.state = .untilClose
                }
                return .head(head)

            case .fixed(let remaining):
                if remaining == 0 {
                    self.state = .idle
                    return .end
                }
                let count = min(remaining, buffer.readableBytes)
                if count == 0 { return nil }
                self.state = .fixed(remaining: remaining - count)
                return .body(buffer.readSlice(length: count)!)

            case .untilClose:
                if buffer.readableBytes == 0 { return nil }
                return .body(buffer.readSlice(length: buffer.readableBytes)!)

            case .chunked:
                let event: ChunkedBodyDecoder.Event?
                do throws(HTTPFramingError) {
                    event = try self.chunked.next(&buffer)
                } catch {
                    throw UpstreamProtocolError(.malformedBody, error)
                }
                switch event {
                case .data(let bytes): return .body(bytes)
                case .end:
                    self.state = .idle
                    return .end
                case nil: return nil
                }
            }
        }
    }

    /// The connection closed: the end of an EOF-framed body, else a truncated response.
    mutating func endOfInput() throws(UpstreamProtocolError) -> UpstreamResponseEvent? {
        switch self.state {
        case .idle:
            return nil
        case .untilClose:
            self.state = .idle
            return .end
        default:
            throw UpstreamProtocolError(.truncated, reason: "the upstream closed the connection mid-response")
        }
    }

    // MARK: - Head

    private mutating func readHead(_ buffer: inout ByteBuffer) throws(UpstreamProtocolError) -> UpstreamResponseHead? {
        if var partial = self.partialHead {
            // Look for the end only in what is new (the LF test looks back three bytes).
            let searchFrom = partial.readableBytes
            partial.writeBuffer(&buffer)
            guard let end = try Self.endOfHead(partial, from: searchFrom) else {
                if partial.readableBytes > Self.maxHeadBytes { throw UpstreamProtocolError(.headTooLarge, reason: "response head too large") }
                self.partialHead = partial
                return nil
            }
            self.partialHead = nil
            let bytes = partial.readSlice(length: end)!
            buffer = partial  // what follows the head
            return try Self.parseHead(bytes)
        }
        guard let end = try Self.endOfHead(buffer, from: 0) else {
            if buffer.readableBytes > Self.maxHeadBytes { throw UpstreamProtocolError(.headTooLarge, reason: "response head too large") }
            self.partialHead = buffer
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return nil
        }
        return try Self.parseHead(buffer.readSlice(length: end)!)
    }

    private static func endOfHead(_ buffer: ByteBuffer, from: Int) throws(UpstreamProtocolError) -> Int? {
        do throws(HTTPFramingError) {
            return try HTTPSyntax.endOfHead(buffer, from: from)
        } catch {
            throw UpstreamProtocolError(.malformedHead, reason: "bare LF in the head of the response")
        }
    }

    static func parseHead(_ bytes: ByteBuffer) throws(UpstreamProtocolError) -> UpstreamResponseHead {
        let result: Result<UpstreamResponseHead, UpstreamProtocolError> = bytes.withUnsafeReadableBytes { raw in
            do throws(UpstreamProtocolError) {
                return .success(try Self.parseHead(raw, bytes: bytes))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func parseHead(_ p: UnsafeRawBufferPointer, bytes: ByteBuffer) throws(UpstreamProtocolError) -> UpstreamResponseHead {
        // Status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF
        guard p.count >= 14,
            p[0] == UInt8(ascii: "H"), p[1] == UInt8(ascii: "T"), p[2] == UInt8(ascii: "T"), p[3] == UInt8(ascii: "P"),
            p[4] == UInt8(ascii: "/"), p[5] == UInt8(ascii: "1"), p[6] == UInt8(ascii: "."),
            p[7] == UInt8(ascii: "0") || p[7] == UInt8(ascii: "1"), p[8] == 0x20,
            HTTPSyntax.isDigit(p[9]), HTTPSyntax.isDigit(p[10]), HTTPSyntax.isDigit(p[11])
        else { throw UpstreamProtocolError(.malformedHead, reason: "malformed status line") }
        let status = Int(p[9] &- 0x30) * 100 + Int(p[10] &- 0x30) * 10 + Int(p[11] &- 0x30)
        guard status >= 100 && status <= 599 else { throw UpstreamProtocolError(.malformedHead, reason: "status code out of range") }
        var index = 12
        if p[index] == 0x20 {
            index += 1
            while index < p.count && p[index] != 0x0D {
                guard HTTPSyntax.isFieldByte(p[index]) else { throw UpstreamProtocolError(.malformedHead, reason: "control byte in the reason phrase") }
                index += 1
            }
        }
        index = try Self.expectCRLF(p, index)

        var head = UpstreamResponseHead(
            status: status,
            isHTTP10: p[7] == UInt8(ascii: "0"),
            bytes: bytes,
            contentLength: nil,
            chunked: false,
            connectionClose: false,
            connectionKeepAlive: false,
            connectionNamesHeaders: false
        )
        var transferEncodings = 0
        while true {
            if p[index] == 0x0D {
                index = try Self.expectCRLF(p, index)
                break
            }
            let nameStart = index
            while index < p.count && HTTPSyntax.isTokenByte(p[index]) { index += 1 }
            guard index > nameStart, index < p.count, p[index] == UInt8(ascii: ":") else {
                throw UpstreamProtocolError(
                    .malformedHead,
                    reason: p[nameStart] == 0x20 || p[nameStart] == 0x09 ? "obs-fold in the response head" : "malformed header line"
                )
            }
            let name = UnsafeRawBufferPointer(rebasing: p[nameStart..<index])
            index += 1
            while index < p.count && (p[index] == 0x20 || p[index] == 0x09) { index += 1 }
            let valueStart = index
            // The value runs to the next CR (found with memchr, checked eight bytes at a time);
            // a CTL before it, a bare LF included, is refused.
            index = HTTPSyntax.firstCR(p, from: index) ?? p.count
            guard HTTPSyntax.allFieldBytes(p, from: valueStart, to: index) else {
                throw UpstreamProtocolError(.malformedHead, reason: "control byte in a header value")
            }
            var valueEnd = index
            while valueEnd > valueStart && (p[valueEnd - 1] == 0x20 || p[valueEnd - 1] == 0x09) { valueEnd -= 1 }
            let value = UnsafeRawBufferPointer(rebasing: p[valueStart..<valueEnd])
            index = try Self.expectCRLF(p, index)

            switch name.count {
            case 14 where HeaderName.equals(name, "content-length"):
                let length = try Self.parseContentLength(value)
                if let previous = head.contentLength, previous != length {
                    throw UpstreamProtocolError(.ambiguousFraming, reason: "conflicting Content-Length headers")
                }
                head.contentLength = length
            case 17 where HeaderName.equals(name, "transfer-encoding"):
                transferEncodings += 1
                guard transferEncodings == 1, HeaderName.equals(value, "chunked") else {
                    throw UpstreamProtocolError(.ambiguousFraming, reason: "Transfer-Encoding other than a single chunked")
                }
                head.chunked = true
            case 10 where HeaderName.equals(name, "connection"):
                Self.scanConnection(value, into: &head)
            default:
                break
            }
        }
        if head.chunked && head.contentLength != nil {
            throw UpstreamProtocolError(.ambiguousFraming, reason: "both Content-Length and Transfer-Encoding")
        }
        if head.chunked && head.isHTTP10 {
            throw UpstreamProtocolError(.ambiguousFraming, reason: "Transfer-Encoding in an HTTP/1.0 response")
        }
        return head
    }

    private static func scanConnection(_ value: UnsafeRawBufferPointer, into head: inout UpstreamResponseHead) {
        HTTPSyntax.forEachListElement(value) { token in
            if token.count == 5 && HeaderName.equals(token, "close") {
                head.connectionClose = true
            } else if token.count == 10 && HeaderName.equals(token, "keep-alive") {
                head.connectionKeepAlive = true
            } else {
                head.connectionNamesHeaders = true
            }
        }
    }

    private static func parseContentLength(_ value: UnsafeRawBufferPointer) throws(UpstreamProtocolError) -> Int {
        do throws(HTTPFramingError) {
            return try HTTPSyntax.contentLength(value, allowsLeadingZeros: true)
        } catch {
            throw UpstreamProtocolError(.ambiguousFraming, error)
        }
    }

    // MARK: - Bytes

    @inline(__always)
    private static func expectCRLF(_ p: UnsafeRawBufferPointer, _ index: Int) throws(UpstreamProtocolError) -> Int {
        guard index + 1 < p.count, p[index] == 0x0D, p[index + 1] == 0x0A else {
            throw UpstreamProtocolError(.malformedHead, reason: "line not ended by CRLF in the response head")
        }
        return index + 2
    }
}
