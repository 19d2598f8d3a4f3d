import NIOCore
import NIOHTTP1
import PortcullisAuth

/// The gateway's own responses: a JSON body `{"error","error_description","request_id"}` as
/// DESIGN.md's HTTP contract says, built by hand (no Foundation encoder on the request path).
struct ErrorResponse {
    var status: HTTPResponseStatus
    /// Stable machine-readable code, e.g. `bad_request`, `upstream_unavailable`.
    var error: StaticString
    var description: String
    var extraHeaders: [(String, String)] = []
    /// A body of its own instead of the error object: the built-in issuer's answers (a token,
    /// its key set).
    var rawBody: String? = nil

    static func badRequest(_ description: String) -> ErrorResponse {
        ErrorResponse(status: .badRequest, error: "bad_request", description: description)
    }

    /// 401 with RFC 6750's challenge: `error="invalid_token"` unless no credential was sent.
    static func unauthorized(_ failure: AuthFailure) -> ErrorResponse {
        if !failure.hadToken {
            return ErrorResponse(
                status: .unauthorized,
                error: "unauthorized",
                description: "a bearer token is required",
                extraHeaders: [("WWW-Authenticate", "Bearer realm=\"portcullis\"")]
            )
        }
        return ErrorResponse(
            status: .unauthorized,
            error: "invalid_token",
            description: failure.description,
            extraHeaders: [("WWW-Authenticate", "Bearer realm=\"portcullis\", error=\"invalid_token\"")]
        )
    }

    static let ipNotAllowed = ErrorResponse(
        status: .forbidden,
        error: "ip_not_allowed",
        description: "the client may not call from this address"
    )

    /// 403 for a request no role of the client allows (or a deny rule, or its tenant).
    static func insufficientScope(_ description: String) -> ErrorResponse {
        ErrorResponse(
            status: .forbidden,
            error: "insufficient_scope",
            description: description,
            extraHeaders: [("WWW-Authenticate", "Bearer realm=\"portcullis\", error=\"insufficient_scope\"")]
        )
    }

    static let bodyTooLarge = ErrorResponse(
        status: .payloadTooLarge,
        error: "request_body_too_large",
        description: "the request body is larger than the gateway reads to decide it"
    )

    static let headerTooLarge = ErrorResponse(
        status: .requestHeaderFieldsTooLarge,
        error: "request_header_too_large",
        description: "the request head exceeds the configured limit"
    )
    static let tooManyHeaderFields = ErrorResponse(
        status: .requestHeaderFieldsTooLarge,
        error: "request_header_too_large",
        description: "the request has more header fields than the configured limit"
    )
    static let requestTimeout = ErrorResponse(
        status: .requestTimeout,
        error: "request_timeout",
        description: "the request head did not arrive in time"
    )
    static let bodyTimeout = ErrorResponse(
        status: .requestTimeout,
        error: "request_timeout",
        description: "the request body did not arrive within the exchange timeout"
    )
    static let bodyStalled = ErrorResponse(
        status: .requestTimeout,
        error: "request_timeout",
        description: "the request body stopped arriving for longer than client_body_timeout"
    )
    static let badGateway = ErrorResponse(
        status: .badGateway,
        error: "upstream_unavailable",
        description: "the upstream could not be reached or failed"
    )
    static let upstreamCredentialUnavailable = ErrorResponse(
        status: .badGateway,
        error: "upstream_credential_unavailable",
        description: "the gateway has no valid credential for the upstream (see the gateway's log)"
    )
    static let gatewayTimeout = ErrorResponse(
        status: .gatewayTimeout,
        error: "upstream_timeout",
        description: "the upstream did not answer within the exchange timeout"
    )
    /// `upstream.max_concurrent` reached and its queue full, or the wait timed out.
    static func backendBusy(_ description: String) -> ErrorResponse {
        ErrorResponse(
            status: .serviceUnavailable,
            error: "backend_busy",
            description: description,
            extraHeaders: [("Retry-After", "1")]
        )
    }

    static let draining = ErrorResponse(
        status: .serviceUnavailable,
        error: "unavailable",
        description: "the gateway is shutting down",
        extraHeaders: [("Retry-After", "5")]
    )
    static func methodNotAllowed(allow: String) -> ErrorResponse {
        ErrorResponse(
            status: .methodNotAllowed,
            error: "method_not_allowed",
            description: "this endpoint accepts \(allow)",
            extraHeaders: [("Allow", allow)]
        )
    }

    static let expectationFailed = ErrorResponse(
        status: .expectationFailed,
        error: "expectation_failed",
        description: "only Expect: 100-continue is supported"
    )

    func body(requestID: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        if let rawBody = self.rawBody { return allocator.buffer(string: rawBody) }
        var buffer = allocator.buffer(capacity: 96 + self.description.utf8.count + requestID.utf8.count)
        buffer.writeStaticString("{\"error\":\"")
        buffer.writeStaticString(self.error)
        buffer.writeStaticString("\",\"error_description\":")
        buffer.writeJSONString(self.description)
        buffer.writeStaticString(",\"request_id\":")
        buffer.writeJSONString(requestID)
        buffer.writeStaticString("}\n")
        return buffer
    }

    /// The whole response as bytes: status line, headers, and the body unless the request was
    /// HEAD (`Content-Length` still says how long it would have been).
    func rawBytes(
        requestID: String,
        http10: Bool = false,
        close: Bool = true,
        omitBody: Bool = false,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let body = self.body(requestID: requestID, allocator: allocator)
        var buffer = allocator.buffer(capacity: 256 + body.readableBytes)
        buffer.writeStaticString(http10 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeString(String(self.status.code))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(self.status.reasonPhrase)
        buffer.writeStaticString("\r\nContent-Type: application/json\r\nContent-Length: ")
        buffer.writeString(String(body.readableBytes))
        buffer.writeStaticString("\r\nX-Request-Id: ")
        buffer.writeString(requestID)
        buffer.writeStaticString("\r\nCache-Control: no-store\r\n")
        for (name, value) in self.extraHeaders {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        if close { buffer.writeStaticString("Connection: close\r\n") }
        buffer.writeStaticString("\r\n")
        if !omitBody { buffer.writeImmutableBuffer(body) }
        return buffer
    }
}

extension ErrorResponse {
    /// An answer of the token or revocation endpoint (RFC 6749 §5.1/§5.2, RFC 7009 §2.2).
    init(_ result: TokenEndpointResult) {
        var headers: [(String, String)] = [("Pragma", "no-cache")]
        if let challenge = result.challenge { headers.append(("WWW-Authenticate", challenge)) }
        if let seconds = result.retryAfter { headers.append(("Retry-After", String(seconds))) }
        self.init(
            status: HTTPResponseStatus(statusCode: result.status),
            error: result.error ?? "",
            description: result.description,
            extraHeaders: headers,
            rawBody: result.error == nil ? (result.body ?? "") : nil
        )
    }
}

extension ByteBuffer {
    /// Writes a JSON string literal, escaping quotes, backslashes and control characters.
    mutating func writeJSONString(_ string: String) {
        self.writeInteger(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): self.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): self.writeStaticString("\\\\")
            case 0x0A: self.writeStaticString("\\n")
            case 0x0D: self.writeStaticString("\\r")
            case 0x09: self.writeStaticString("\\t")
            case 0x00..<0x20, 0x7F:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                self.writeStaticString("\\u00")
                self.writeInteger(hex[Int(byte >> 4)])
                self.writeInteger(hex[Int(byte & 0x0F)])
            default: self.writeInteger(byte)
            }
        }
        self.writeInteger(UInt8(ascii: "\""))
    }
}
