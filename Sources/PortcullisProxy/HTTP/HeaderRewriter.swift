import NIOHTTP1

/// Header rewriting of DESIGN.md ("Headers sent upstream"), one pass over the headers.
///
/// Upstream requests lose hop-by-hop headers and those named in `Connection`, the caller's
/// `Authorization`, and every client-sent copy of the headers Portcullis sets itself
/// (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`, `X-Request-Id`, `X-Portcullis-*`) as well as
/// `x-ms-client-principal*`, which Azure's front end would otherwise be trusted to have set.
enum HeaderRewriter {
    private enum RequestHeader {
        case keep
        case drop
        case host
        case connection
    }

    @inline(__always)
    private static func classifyRequest(_ name: String) -> RequestHeader {
        switch name.utf8.count {
        case 2:
            return HeaderName.equals(name, "te") ? .drop : .keep
        case 4:
            return HeaderName.equals(name, "host") ? .host : .keep
        case 6:
            return HeaderName.equals(name, "expect") ? .drop : .keep
        case 7:
            return HeaderName.equals(name, "trailer") || HeaderName.equals(name, "upgrade") ? .drop : .keep
        case 9:
            return HeaderName.equals(name, "forwarded") || HeaderName.equals(name, "x-real-ip") ? .drop : .keep
        case 10:
            if HeaderName.equals(name, "connection") { return .connection }
            return HeaderName.equals(name, "keep-alive") ? .drop : .keep
        case 12:
            return HeaderName.equals(name, "x-request-id") ? .drop : .keep
        case 13:
            return HeaderName.equals(name, "authorization") ? .drop : Self.prefixed(name)
        case 15:
            return HeaderName.equals(name, "x-forwarded-for") ? .drop : Self.prefixed(name)
        case 16:
            if HeaderName.equals(name, "proxy-connection") || HeaderName.equals(name, "x-forwarded-host") {
                return .drop
            }
            return Self.prefixed(name)
        case 17:
            if HeaderName.equals(name, "transfer-encoding") || HeaderName.equals(name, "x-forwarded-proto") {
                return .drop
            }
            return Self.prefixed(name)
        case 19:
            return HeaderName.equals(name, "proxy-authorization") ? .drop : Self.prefixed(name)
        default:
            return name.utf8.count > 13 ? Self.prefixed(name) : .keep
        }
    }

    @inline(__always)
    private static func prefixed(_ name: String) -> RequestHeader {
        if HeaderName.hasPrefix(name, "x-portcullis-") || HeaderName.hasPrefix(name, "x-ms-client-principal") {
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
    }

    static func upstreamHeaders(_ headers: HTTPHeaders, _ forwarding: Forwarding) -> HTTPHeaders {
        // Usually nothing but Host needs to go: then edit the decoded headers in place.
        var hosts = 0
        var others = 0
        for (name, _) in headers {
            switch Self.classifyRequest(name) {
            case .keep: break
            case .host: hosts += 1
            case .drop, .connection: others += 1
            }
        }
        if others == 0 && hosts <= 1 {
            var out = headers
            var originalHost: String?
            if hosts == 1 {
                originalHost = out.first(name: "host")
                out.remove(name: "host")
            }
            Self.addForwarding(to: &out, forwarding, originalHost: originalHost)
            return out
        }
        return Self.rebuiltUpstreamHeaders(headers, forwarding)
    }

    private static func addForwarding(to out: inout HTTPHeaders, _ forwarding: Forwarding, originalHost: String?) {
        out.add(name: "Host", value: forwarding.authority)
        if forwarding.chunked { out.add(name: "Transfer-Encoding", value: "chunked") }
        out.add(name: "X-Forwarded-For", value: forwarding.forwardedFor)
        out.add(name: "X-Forwarded-Proto", value: forwarding.proto)
        if let originalHost { out.add(name: "X-Forwarded-Host", value: originalHost) }
        out.add(name: "X-Request-Id", value: forwarding.requestID)
    }

    private static func rebuiltUpstreamHeaders(_ headers: HTTPHeaders, _ forwarding: Forwarding) -> HTTPHeaders {
        var out = HTTPHeaders()
        out.reserveCapacity(headers.count + 6)
        var originalHost: String?
        var connectionTokens: [String] = []
        for (name, value) in headers {
            switch Self.classifyRequest(name) {
            case .keep: out.add(name: name, value: value)
            case .drop: break
            case .host: originalHost = value
            case .connection: connectionTokens += HeaderName.connectionTokens(value)
            }
        }
        if !connectionTokens.isEmpty {
            out = Self.removing(connectionTokens, from: out)
        }
        Self.addForwarding(to: &out, forwarding, originalHost: originalHost)
        return out
    }

    /// Response headers for the client: hop-by-hop headers removed (the encoder re-frames the
    /// body), `X-Request-Id` set, and `Connection: close` when the connection ends after it.
    static func downstreamHeaders(_ headers: HTTPHeaders, requestID: String, close: Bool) -> HTTPHeaders {
        if !headers.contains(where: { Self.isHopByHopResponseHeader($0.name) }) {
            var out = headers
            out.add(name: "X-Request-Id", value: requestID)
            if close { out.add(name: "Connection", value: "close") }
            return out
        }
        var out = HTTPHeaders()
        out.reserveCapacity(headers.count + 2)
        var connectionTokens: [String] = []
        for (name, value) in headers {
            if name.utf8.count == 10 && HeaderName.equals(name, "connection") {
                connectionTokens += HeaderName.connectionTokens(value)
            } else if !Self.isHopByHopResponseHeader(name) {
                out.add(name: name, value: value)
            }
        }
        if !connectionTokens.isEmpty {
            out = Self.removing(connectionTokens, from: out)
        }
        out.add(name: "X-Request-Id", value: requestID)
        if close { out.add(name: "Connection", value: "close") }
        return out
    }

    /// Response headers that never reach the client as the upstream sent them.
    @inline(__always)
    private static func isHopByHopResponseHeader(_ name: String) -> Bool {
        switch name.utf8.count {
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

    private static func removing(_ tokens: [String], from headers: HTTPHeaders) -> HTTPHeaders {
        // Framing and the gateway's own headers are never removed by a Connection token.
        let protected: Set<String> = ["host", "content-length", "transfer-encoding", "x-request-id"]
        let names = Set(tokens).subtracting(protected)
        guard !names.isEmpty else { return headers }
        var out = HTTPHeaders()
        out.reserveCapacity(headers.count)
        for (name, value) in headers where !names.contains(name.lowercased()) {
            out.add(name: name, value: value)
        }
        return out
    }
}
