import NIOCore
import NIOHTTP1

/// Header rewriting of DESIGN.md ("Headers sent upstream"), one pass over the headers.
///
/// Upstream requests lose hop-by-hop headers and those named in `Connection`, the caller's
/// `Authorization`, and every client-sent copy of the headers Portcullis sets itself
/// (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`, `X-Request-Id`, `X-Portcullis-*`) as well as
/// `x-ms-client-principal*`, which Azure's front end would otherwise be trusted to have set,
/// and the method-override headers (`X-HTTP-Method-Override`, `X-Method-Override`,
/// `X-HTTP-Method`): frameworks that honour them would run a method the role decision never saw.
/// A name that is one of these once `_` is read as `-` (`X_Forwarded_For`) is dropped too, and
/// with `upstream.drop_headers_with_underscores` every name holding a `_`.
enum HeaderRewriter {
    private enum RequestHeader {
        case keep
        case drop
        case host
        case connection
        /// Kept when valid; replaced by the gateway's own otherwise.
        case traceparent
    }

    /// Names are compared reading `_` as `-`: a backend that maps headers to variables
    /// (`HTTP_X_FORWARDED_FOR`) would take `X_Forwarded_For` for the header dropped here.
    @inline(__always)
    private static func named(_ name: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        HeaderName.equalsReadingUnderscoreAsDash(name, lowercase)
    }

    @inline(__always)
    private static func classifyRequest(_ name: UnsafeRawBufferPointer) -> RequestHeader {
        switch name.count {
        case 2:
            return Self.named(name, "te") ? .drop : .keep
        case 4:
            return Self.named(name, "host") ? .host : .keep
        case 6:
            return Self.named(name, "expect") ? .drop : .keep
        case 7:
            return Self.named(name, "trailer") || Self.named(name, "upgrade") ? .drop : .keep
        case 9:
            return Self.named(name, "forwarded") || Self.named(name, "x-real-ip") ? .drop : .keep
        case 11:
            return Self.named(name, "traceparent") ? .traceparent : .keep
        case 10:
            if Self.named(name, "connection") { return .connection }
            return Self.named(name, "keep-alive") ? .drop : .keep
        case 12:
            return Self.named(name, "x-request-id") ? .drop : .keep
        case 13:
            if Self.named(name, "authorization") || Self.named(name, "x-http-method") { return .drop }
            return Self.prefixed(name)
        case 15:
            return Self.named(name, "x-forwarded-for") ? .drop : Self.prefixed(name)
        case 16:
            if Self.named(name, "proxy-connection") || Self.named(name, "x-forwarded-host") {
                return .drop
            }
            return Self.prefixed(name)
        case 17:
            if Self.named(name, "transfer-encoding") || Self.named(name, "x-forwarded-proto")
                || Self.named(name, "x-method-override")
            {
                return .drop
            }
            return Self.prefixed(name)
        case 19:
            return Self.named(name, "proxy-authorization") ? .drop : Self.prefixed(name)
        case 22:
            return Self.named(name, "x-http-method-override") ? .drop : Self.prefixed(name)
        default:
            return name.count > 13 ? Self.prefixed(name) : .keep
        }
    }

    @inline(__always)
    private static func prefixed(_ name: UnsafeRawBufferPointer) -> RequestHeader {
        if HeaderName.hasPrefixReadingUnderscoreAsDash(name, "x-portcullis-")
            || HeaderName.hasPrefixReadingUnderscoreAsDash(name, "x-ms-client-principal")
        {
            return .drop
        }
        return .keep
    }

    /// What the gateway adds to every upstream request.
    struct Forwarding {
        var authority: String
        var proto: String
        var forwardedFor: String
        var requestID: String
        var chunked: Bool
        var clientID: String
        var clientName: String
        /// Nil: the client's valid `traceparent` goes on as sent. Else the client's is dropped
        /// and `00-<trace id>-<parent id>-01` sent: the trace id is the request id.
        var newParentID: UInt64?
        /// `upstream.auth`: the whole header line (`Name: value\r\n`), sent as it is.
        var credentialLine: [UInt8]? = nil
        /// The lowercased name of a configured fixed header: client-sent copies are dropped.
        var credentialHeaderName: String? = nil
        /// `upstream.drop_headers_with_underscores`: no client field whose name holds `_` goes on.
        var dropsUnderscoredNames = false
    }

    /// Writes the upstream request head: request line, the client's fields minus those
    /// dropped above, then the gateway's own. Field lines are copied as the parser normalized
    /// them, never re-decoded; the head's size is counted first so that it is written into
    /// memory reserved once.
    static func writeUpstreamHead(
        method: HTTPMethod,
        uri: String,
        fields: RequestFields,
        _ forwarding: Forwarding,
        into out: inout ByteBuffer
    ) {
        fields.withLines { p, lines in
            Self.writeUpstreamHead(method: method, uri: uri, p, lines, forwarding, into: &out)
        }
    }

    private static func writeUpstreamHead(
        method: HTTPMethod,
        uri: String,
        _ p: UnsafeRawBufferPointer,
        _ lines: [RequestFields.Field],
        _ forwarding: Forwarding,
        into out: inout ByteBuffer
    ) {
        @inline(__always) func name(_ field: RequestFields.Field) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: p[Int(field.start)..<Int(field.nameEnd)])
        }
        var named: [[UInt8]] = []
        for field in lines where field.nameEnd - field.start == 10 && HeaderName.equals(name(field), "connection") {
            Self.addNamed(byConnection: UnsafeRawBufferPointer(rebasing: p[field.valueStart..<field.valueEnd]), to: &named)
        }
        let ownHeader = forwarding.credentialHeaderName.map { Array($0.utf8) }
        // Bit i: the client's field i is forwarded (the first 64; any later ones are judged
        // again when written).
        var forwarded: UInt64 = 0
        var originalHost: Range<Int>?
        let methodName = method.rawValue
        var size = methodName.utf8.count + 1 + uri.utf8.count + Self.requestLineEnd.utf8CodeUnitCount
        for (index, field) in lines.enumerated() {
            switch Self.disposition(name(field), forwarding, named: named, own: ownHeader) {
            case .write:
                if index < 64 { forwarded |= 1 << UInt64(index) }
                size += Int(field.end - field.start)
            case .host:
                originalHost = field.valueStart..<field.valueEnd
            case .skip:
                break
            }
        }
        size += Self.fieldSize("Host", forwarding.authority)
        size += forwarding.credentialLine?.count ?? 0
        if forwarding.chunked { size += Self.chunkedLine.utf8CodeUnitCount }
        size += Self.fieldSize("X-Forwarded-For", forwarding.forwardedFor)
        size += Self.fieldSize("X-Forwarded-Proto", forwarding.proto)
        if let originalHost { size += Self.forwardedHostStart.utf8CodeUnitCount + originalHost.count + 2 }
        size += Self.fieldSize("X-Request-Id", forwarding.requestID)
        if forwarding.newParentID != nil {
            size += Self.traceparentStart.utf8CodeUnitCount + forwarding.requestID.utf8.count + 1 + 16
                + Self.traceparentEnd.utf8CodeUnitCount
        }
        size += Self.fieldSize("X-Portcullis-Client-Id", forwarding.clientID)
        size += Self.fieldSize("X-Portcullis-Client-Name", forwarding.clientName)
        size += 2

        out.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { memory in
            var head = ReservedBytesWriter(memory)
            head.write(methodName)
            head.write(byte: UInt8(ascii: " "))
            head.write(uri)
            head.write(Self.requestLineEnd)
            // Runs of forwarded lines are adjacent in `p`: one copy per run.
            var run = 0..<0
            for (index, field) in lines.enumerated() {
                let write: Bool
                if index < 64 {
                    write = forwarded & (1 << UInt64(index)) != 0
                } else if case .write = Self.disposition(name(field), forwarding, named: named, own: ownHeader) {
                    write = true
                } else {
                    write = false
                }
                guard write else { continue }
                if run.upperBound == Int(field.start) {
                    run = run.lowerBound..<Int(field.end)
                } else {
                    head.write(UnsafeRawBufferPointer(rebasing: p[run]))
                    run = Int(field.start)..<Int(field.end)
                }
            }
            head.write(UnsafeRawBufferPointer(rebasing: p[run]))
            Self.writeField("Host", forwarding.authority, into: &head)
            if let line = forwarding.credentialLine { head.write(line) }
            if forwarding.chunked { head.write(Self.chunkedLine) }
            Self.writeField("X-Forwarded-For", forwarding.forwardedFor, into: &head)
            Self.writeField("X-Forwarded-Proto", forwarding.proto, into: &head)
            if let originalHost {
                head.write(Self.forwardedHostStart)
                head.write(UnsafeRawBufferPointer(rebasing: p[originalHost]))
                head.write("\r\n" as StaticString)
            }
            Self.writeField("X-Request-Id", forwarding.requestID, into: &head)
            if let parent = forwarding.newParentID {
                head.write(Self.traceparentStart)
                head.write(forwarding.requestID)
                head.write(byte: UInt8(ascii: "-"))
                Self.writeHex(parent, into: &head)
                head.write(Self.traceparentEnd)
            }
            Self.writeField("X-Portcullis-Client-Id", forwarding.clientID, into: &head)
            Self.writeField("X-Portcullis-Client-Name", forwarding.clientName, into: &head)
            head.write("\r\n" as StaticString)
            return head.count
        }
    }

    private static let requestLineEnd: StaticString = " HTTP/1.1\r\n"
    private static let chunkedLine: StaticString = "Transfer-Encoding: chunked\r\n"
    private static let forwardedHostStart: StaticString = "X-Forwarded-Host: "
    private static let traceparentStart: StaticString = "traceparent: 00-"
    private static let traceparentEnd: StaticString = "-01\r\n"
    private static let closeLine: StaticString = "Connection: close\r\n"

    private enum Disposition {
        case write
        /// Not forwarded: replaced by the upstream's authority, sent on as `X-Forwarded-Host`.
        case host
        case skip
    }

    /// What becomes of one of the client's fields on the way upstream.
    @inline(__always)
    private static func disposition(
        _ name: UnsafeRawBufferPointer,
        _ forwarding: Forwarding,
        named: [[UInt8]],
        own: [UInt8]?
    ) -> Disposition {
        switch Self.classifyRequest(name) {
        case .keep:
            if !named.isEmpty && Self.contains(named, name) { return .skip }
            if let own, HeaderName.equalsReadingUnderscoreAsDash(name, lowercased: own) { return .skip }
            if forwarding.dropsUnderscoredNames && HeaderName.containsUnderscore(name) { return .skip }
            return .write
        case .host:
            return .host
        case .traceparent:
            return forwarding.newParentID == nil ? .write : .skip
        case .drop, .connection:
            return .skip
        }
    }

    /// `name: value\r\n`
    @inline(__always)
    private static func fieldSize(_ name: StaticString, _ value: String) -> Int {
        name.utf8CodeUnitCount + value.utf8.count + 4
    }

    /// Framing and the gateway's own headers are never removed by a `Connection` token.
    private static let protectedFromConnection: Set<String> = ["host", "content-length", "transfer-encoding", "x-request-id"]

    private static func writeHex(_ value: UInt64, into out: inout ReservedBytesWriter) {
        let digits: StaticString = "0123456789abcdef"
        for i in 0..<16 {
            out.write(byte: digits.utf8Start[Int((value >> UInt64(60 - 4 * i)) & 0xF)])
        }
    }

    @inline(__always)
    private static func writeField(_ name: String, _ value: String, into out: inout ByteBuffer) {
        out.writeString(name)
        out.writeStaticString(": ")
        out.writeString(value)
        out.writeStaticString("\r\n")
    }

    @inline(__always)
    private static func writeField(_ name: StaticString, _ value: String, into out: inout ReservedBytesWriter) {
        out.write(name)
        out.write(": " as StaticString)
        out.write(value)
        out.write("\r\n" as StaticString)
    }

    /// Writes the client's response head from the upstream's: the status line with the
    /// client's HTTP version, every header line copied as received except the hop-by-hop ones
    /// (the body is re-framed) and those named in `Connection`; then `X-Request-Id`, and the
    /// framing and `Connection` headers of this hop.
    static func writeDownstreamHead(
        _ head: UpstreamResponseHead,
        http10: Bool,
        requestID: String,
        chunked: Bool,
        close: Bool,
        encoding: ContentCoding? = nil,
        extraLines: String? = nil,
        into out: inout ByteBuffer
    ) {
        let named = head.connectionNamesHeaders ? Self.connectionNamed(head) : []
        if encoding == nil {
            // The head is copied line by line minus some: at most its own size, plus ours.
            var size = head.bytes.readableBytes + Self.fieldSize("X-Request-Id", requestID) + (extraLines?.utf8.count ?? 0)
            if chunked { size += Self.chunkedLine.utf8CodeUnitCount }
            if close { size += Self.closeLine.utf8CodeUnitCount }
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { memory in
                var writer = ReservedBytesWriter(memory)
                head.bytes.withUnsafeReadableBytes { p in
                    writer.write(http10 ? "HTTP/1.0 " as StaticString : "HTTP/1.1 ")
                    var index = 9
                    var lineEnd = Self.lineEnd(p, from: index)
                    writer.write(UnsafeRawBufferPointer(rebasing: p[index..<lineEnd]))
                    index = lineEnd
                    while p[index] != 0x0D {
                        lineEnd = Self.lineEnd(p, from: index)
                        var colon = index
                        while p[colon] != UInt8(ascii: ":") { colon += 1 }
                        let name = UnsafeRawBufferPointer(rebasing: p[index..<colon])
                        if !Self.isHopByHopResponseHeader(name) && (named.isEmpty || !Self.contains(named, name)) {
                            writer.write(UnsafeRawBufferPointer(rebasing: p[index..<lineEnd]))
                        }
                        index = lineEnd
                    }
                }
                Self.writeField("X-Request-Id", requestID, into: &writer)
                if let extraLines {
                    var lines = extraLines
                    lines.withUTF8 { writer.write(UnsafeRawBufferPointer($0)) }
                }
                if chunked { writer.write(Self.chunkedLine) }
                if close { writer.write(Self.closeLine) }
                writer.write("\r\n" as StaticString)
                return writer.count
            }
            return
        }
        head.bytes.withUnsafeReadableBytes { p in
            out.writeStaticString(http10 ? "HTTP/1.0 " : "HTTP/1.1 ")
            var index = 9
            var lineEnd = Self.lineEnd(p, from: index)
            out.writeBytes(UnsafeRawBufferPointer(rebasing: p[index..<lineEnd]))
            index = lineEnd
            while p[index] != 0x0D {
                lineEnd = Self.lineEnd(p, from: index)
                var colon = index
                while p[colon] != UInt8(ascii: ":") { colon += 1 }
                let name = UnsafeRawBufferPointer(rebasing: p[index..<colon])
                if !Self.isHopByHopResponseHeader(name) && (named.isEmpty || !Self.contains(named, name)) {
                    Self.writeForCompressedBody(p, name: name, from: index, to: lineEnd, into: &out)
                }
                index = lineEnd
            }
        }
        Self.writeField("X-Request-Id", requestID, into: &out)
        if let extraLines { out.writeString(extraLines) }
        // A second `Vary` line extends the upstream's list (RFC 9110 5.3).
        if let encoding { out.writeStaticString(encoding.headerLine) }
        if chunked { out.writeStaticString("Transfer-Encoding: chunked\r\n") }
        if close { out.writeStaticString("Connection: close\r\n") }
        out.writeStaticString("\r\n")
    }

    /// A header line of a response the gateway compresses: `Content-Length` is dropped (the
    /// body is re-framed), a strong `ETag` becomes weak (RFC 9110 8.8.1: the bytes differ from
    /// the upstream's), the rest is copied.
    private static func writeForCompressedBody(
        _ p: UnsafeRawBufferPointer,
        name: UnsafeRawBufferPointer,
        from index: Int,
        to lineEnd: Int,
        into out: inout ByteBuffer
    ) {
        if HeaderName.equals(name, "content-length") { return }
        if HeaderName.equals(name, "etag") {
            var value = index + name.count + 1
            while p[value] == 0x20 || p[value] == 0x09 { value += 1 }
            if p[value] == UInt8(ascii: "\"") {
                out.writeStaticString("ETag: W/")
                out.writeBytes(UnsafeRawBufferPointer(rebasing: p[value..<lineEnd]))
                return
            }
        }
        out.writeBytes(UnsafeRawBufferPointer(rebasing: p[index..<lineEnd]))
    }

    /// Offset just past the CRLF that ends the line starting at `from` (the head is validated).
    @inline(__always)
    private static func lineEnd(_ p: UnsafeRawBufferPointer, from: Int) -> Int {
        var index = from
        while p[index] != 0x0A { index += 1 }
        return index + 1
    }

    /// Lowercased names listed in the response's `Connection` headers, minus protected ones.
    private static func connectionNamed(_ head: UpstreamResponseHead) -> [[UInt8]] {
        var names: [[UInt8]] = []
        head.bytes.withUnsafeReadableBytes { p in
            var index = Self.lineEnd(p, from: 0)
            while p[index] != 0x0D {
                let lineEnd = Self.lineEnd(p, from: index)
                var colon = index
                while p[colon] != UInt8(ascii: ":") { colon += 1 }
                if HeaderName.equals(UnsafeRawBufferPointer(rebasing: p[index..<colon]), "connection") {
                    Self.addNamed(byConnection: UnsafeRawBufferPointer(rebasing: p[(colon + 1)..<(lineEnd - 2)]), to: &names)
                }
                index = lineEnd
            }
        }
        return names
    }

    /// Adds the header names a `Connection` value lists (lowercased), minus the protected ones.
    private static func addNamed(byConnection value: UnsafeRawBufferPointer, to names: inout [[UInt8]]) {
        let text = String(decoding: value, as: UTF8.self)
        for token in HeaderName.connectionTokens(text) where !Self.protectedFromConnection.contains(token) {
            names.append(Array(token.utf8))
        }
    }

    private static func contains(_ names: [[UInt8]], _ name: UnsafeRawBufferPointer) -> Bool {
        names.contains { HeaderName.equals(name, lowercased: $0) }
    }

    /// Response headers that never reach the client as the upstream sent them.
    @inline(__always)
    private static func isHopByHopResponseHeader(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 2: return HeaderName.equals(name, "te")
        case 7: return HeaderName.equals(name, "trailer") || HeaderName.equals(name, "upgrade")
        case 10: return HeaderName.equals(name, "keep-alive") || HeaderName.equals(name, "connection")
        case 12: return HeaderName.equals(name, "x-request-id")
        case 16: return HeaderName.equals(name, "proxy-connection")
        case 17: return HeaderName.equals(name, "transfer-encoding")
        case 18: return HeaderName.equals(name, "proxy-authenticate")
        default: return false
        }
    }
}
