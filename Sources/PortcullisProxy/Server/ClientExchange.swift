import NIOCore
import NIOHTTP1
import PortcullisPolicy

/// What a client connection knows of the exchange in flight (or of the last one, until the next
/// head): two progressions, the request's and the response's; it ends when both are complete.
/// A new head starts it afresh (`start`).
struct ClientExchange {
    enum RequestPhase {
        /// No exchange: waiting for the next request head.
        case idle
        case streamingBody
        case complete
    }

    enum ResponsePhase {
        case waiting
        case streaming
        case complete
    }

    var request: RequestPhase = .idle
    var response: ResponsePhase = .complete
    var requestID = ""
    var requestVersion: HTTPVersion = .http1_1
    /// The request head for the upstream, as bytes; kept until the response starts (a retry
    /// sends it again).
    var upstreamHead: ByteBuffer?
    var isHEAD = false
    var isIdempotent = false
    var requestHasBody = false
    var requestChunked = false
    /// The coding the client accepts (`Accept-Encoding`); used only when compression is on.
    var acceptEncoding: ContentCoding?
    /// The response body's deflate stream, when this response is compressed.
    var compressor: ResponseCompressor?
    var responseFraming: ResponseFraming = .asReceived
    /// The response head, held back until the first body bytes so that a small response leaves
    /// in one buffer (one write, one iovec); written at the latest on read-complete.
    var heldHead: ByteBuffer?
    /// A request whose decision needs its body: the body read so far (at most
    /// `max_inspect_body`), what to check, and the request as the policy saw it.
    var inspectedBody: ByteBuffer?
    var inspection: PendingInspection?
    /// A token or revocation request of the built-in issuer, its form body being read.
    var localRequest: LocalRequest?
    /// `RateLimit-Policy` and `RateLimit` for the response of a limited client.
    var rateLimitLines: String?
    var leasedReusedConnection = false
    var retried = false
    var closeAfterResponse = false

    init() {}

    /// A request head arrived: the exchange starts, nothing of the one before it is kept.
    mutating func start(_ head: ParsedRequestHead, requestID: String) {
        self.request = .streamingBody
        self.response = .waiting
        self.requestID = requestID
        self.requestVersion = head.version
        self.upstreamHead = nil
        self.isHEAD = head.method == .HEAD
        self.isIdempotent = Self.idempotent(head.method)
        self.requestHasBody = head.hasBody
        self.requestChunked = head.chunked
        self.acceptEncoding = head.acceptEncoding
        self.compressor = nil
        self.responseFraming = .asReceived
        self.heldHead = nil
        self.inspectedBody = nil
        self.inspection = nil
        self.localRequest = nil
        self.rateLimitLines = nil
        self.leasedReusedConnection = false
        self.retried = false
        self.closeAfterResponse = !head.keepAlive
    }

    /// Bytes that never made a request head: the exchange is its 400 (or 431).
    mutating func failedBeforeHead(requestID: String) {
        self.requestVersion = .http1_1
        self.request = .complete
        self.response = .waiting
        self.requestID = requestID
    }

    private static func idempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .PUT, .DELETE, .TRACE: return true
        default: return false
        }
    }
}

extension ClientExchange {
    /// What a timeout does to the exchange: an answer while no byte of the response is out,
    /// else the connection is cut (the only signal left mid-response).
    enum Expiry {
        case answer(ErrorResponse, close: Bool, reason: AccessLogReason)
        case cut(AccessLogReason)
        case nothing
    }

    /// `upstream.timeout` passed.
    var exchangeExpiry: Expiry {
        switch self.response {
        case .waiting where self.inspection != nil || self.localRequest != nil:
            // Still reading the body the decision needs: the client was slow, not the upstream.
            return .answer(.bodyTimeout, close: true, reason: .clientTimeout)
        case .waiting:
            return .answer(.gatewayTimeout, close: self.request != .complete, reason: .upstreamTimeout)
        case .streaming:
            return .cut(.upstreamTimeout)
        case .complete:
            return self.request != .idle ? .cut(.clientTimeout) : .nothing
        }
    }

    /// `client_body_timeout`: the body stopped arriving. The upstream connection holding the
    /// partial request is never pooled.
    var bodyExpiry: Expiry {
        switch self.response {
        case .waiting: return .answer(.bodyStalled, close: true, reason: .clientTimeout)
        case .streaming, .complete: return .cut(.clientTimeout)
        }
    }
}

extension ClientExchange {
    /// What the upstream connection closing mid-exchange does.
    enum UpstreamLoss {
        /// Send the request again, once, on a new connection.
        case retry
        /// 502 (no byte of the response is out; a held head is withdrawn first).
        case answer(close: Bool)
        /// Mid-body there is no way to signal an error but to cut the connection.
        case cut
        case nothing
    }

    /// `responseBytesCameBack`: the upstream sent a byte (a 1xx or `101` included) after the
    /// request head, so the backend has read the request: it is never sent again.
    func upstreamLoss(responseBytesCameBack: Bool) -> UpstreamLoss {
        switch self.response {
        case .waiting:
            // A pooled connection the upstream had already closed: retry once.
            if self.leasedReusedConnection && !self.retried && !self.requestHasBody && self.isIdempotent
                && self.request == .complete && !responseBytesCameBack
            {
                return .retry
            }
            return .answer(close: self.request != .complete)
        case .streaming:
            // A head still held to ride with the body has not reached the client.
            return self.heldHead != nil ? .answer(close: true) : .cut
        case .complete:
            return .nothing
        }
    }
}

extension ClientExchange {
    /// The coding to compress the response with: compression on, a body, a coding the client
    /// accepts, and a response the settings allow.
    func compressionCoding(for head: UpstreamResponseHead, _ compression: CompressionSettings?) -> ContentCoding? {
        guard let compression, head.mayHaveBody && !self.isHEAD, let coding = self.acceptEncoding, compression.allows(head) else {
            return nil
        }
        return coding
    }

    /// The upstream's response head arrived: the body's framing for the client, and whether the
    /// connection ends with this response. `compressed`: the gateway re-encodes the body.
    mutating func responseStarted(_ head: UpstreamResponseHead, compressed: Bool) {
        self.response = .streaming
        // No retry once the response has begun: the head is not needed again.
        self.upstreamHead = nil
        self.responseFraming = ResponseFraming(
            hasBody: head.mayHaveBody && !self.isHEAD,
            contentLength: head.contentLength,
            compressed: compressed,
            http10: self.requestVersion.minor == 0
        )
        // A body that ends with the connection, or a request body still arriving that would
        // have to be read and dropped.
        if self.responseFraming == .untilClose || self.request != .complete { self.closeAfterResponse = true }
    }
}

/// What a request whose decision needs its body is checked against once the body is read;
/// a reference, so that the many exchanges without one carry a pointer, not the request.
final class PendingInspection {
    let request: RequestPolicy.Request
    let check: RequestDecision.BodyCheck

    init(request: RequestPolicy.Request, check: RequestDecision.BodyCheck) {
        self.request = request
        self.check = check
    }
}

@available(*, unavailable)
extension PendingInspection: Sendable {}
