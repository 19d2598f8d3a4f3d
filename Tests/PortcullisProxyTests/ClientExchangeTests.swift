import NIOCore
import NIOHTTP1
import PortcullisAuth
import PortcullisPolicy
import Testing

@testable import PortcullisProxy

/// What a timeout does to an exchange, by where its request and response are.
@Suite struct ClientExchangeTests {
    static func exchange(request: ClientExchange.RequestPhase, response: ClientExchange.ResponsePhase) -> ClientExchange {
        var exchange = ClientExchange()
        exchange.request = request
        exchange.response = response
        return exchange
    }

    static func answer(_ expiry: ClientExchange.Expiry) -> (status: UInt, close: Bool, reason: AccessLogReason)? {
        guard case .answer(let response, let close, let reason) = expiry else { return nil }
        return (response.status.code, close, reason)
    }

    static func cut(_ expiry: ClientExchange.Expiry) -> AccessLogReason? {
        guard case .cut(let reason) = expiry else { return nil }
        return reason
    }

    @Test func theExchangeTimeoutBeforeTheResponseHeadIs504() throws {
        let whole = try #require(Self.answer(Self.exchange(request: .complete, response: .waiting).exchangeExpiry))
        #expect(whole.status == 504)
        #expect(!whole.close, "the request was read whole: the connection can go on")
        #expect(whole.reason == .upstreamTimeout)
        let partial = try #require(Self.answer(Self.exchange(request: .streamingBody, response: .waiting).exchangeExpiry))
        #expect(partial.status == 504)
        #expect(partial.close, "the rest of the body would have to be read: close")
    }

    @Test func theExchangeTimeoutAfterTheResponseHeadCutsTheConnection() {
        #expect(Self.cut(Self.exchange(request: .complete, response: .streaming).exchangeExpiry) == .upstreamTimeout)
    }

    @Test func theExchangeTimeoutWithTheResponseOutButTheRequestStillComingBlamesTheClient() {
        #expect(Self.cut(Self.exchange(request: .streamingBody, response: .complete).exchangeExpiry) == .clientTimeout)
        guard case .nothing = Self.exchange(request: .idle, response: .complete).exchangeExpiry else {
            Issue.record("an exchange that is over has nothing to time out")
            return
        }
    }

    @Test func theExchangeTimeoutWhileReadingTheBodyTheGatewayNeedsIs408() throws {
        let settings = try ClientConnectionHandlerTests.Harness.withClient().loop.settings
        var exchange = Self.exchange(request: .streamingBody, response: .waiting)
        exchange.localRequest = LocalRequest(
            route: .token,
            service: try #require(settings.tokenService),
            request: TokenService.Request(contentType: nil, authorization: nil, body: [], address: .v4(0)),
            body: ByteBuffer()
        )
        let answer = try #require(Self.answer(exchange.exchangeExpiry))
        #expect(answer.status == 408)
        #expect(answer.close)
        #expect(answer.reason == .clientTimeout)
    }

    @Test func theBodyTimeoutIs408BeforeTheResponseAndACutAfter() throws {
        let before = try #require(Self.answer(Self.exchange(request: .streamingBody, response: .waiting).bodyExpiry))
        #expect(before.status == 408)
        #expect(before.close)
        #expect(before.reason == .clientTimeout)
        #expect(Self.cut(Self.exchange(request: .streamingBody, response: .streaming).bodyExpiry) == .clientTimeout)
    }

    /// A GET sent whole on a connection from the pool, its response not begun.
    static func pooledGET() -> ClientExchange {
        var exchange = Self.exchange(request: .complete, response: .waiting)
        exchange.isIdempotent = true
        exchange.leasedReusedConnection = true
        return exchange
    }

    @Test func aStalePooledConnectionIsRetriedOnceForAnIdempotentBodilessRequest() {
        guard case .retry = Self.pooledGET().upstreamLoss(responseBytesCameBack: false) else {
            Issue.record("not retried")
            return
        }
        var retried = Self.pooledGET()
        retried.retried = true
        var post = Self.pooledGET()
        post.isIdempotent = false
        var withBody = Self.pooledGET()
        withBody.requestHasBody = true
        var fresh = Self.pooledGET()
        fresh.leasedReusedConnection = false
        for (exchange, bytesCameBack, why) in [
            (retried, false, "only once"),
            (post, false, "not idempotent"),
            (withBody, false, "a body is not sent twice"),
            (fresh, false, "a new connection was not stale"),
            (Self.pooledGET(), true, "a byte came back: the backend read the request"),
        ] {
            guard case .answer(let close) = exchange.upstreamLoss(responseBytesCameBack: bytesCameBack) else {
                Issue.record("retried: \(why)")
                continue
            }
            #expect(!close, "\(why): the request was read whole, the connection goes on")
        }
    }

    @Test func theUpstreamClosingWhileTheHeadIsHeldIs502ThenClose() {
        var held = Self.exchange(request: .complete, response: .streaming)
        held.heldHead = ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n")
        guard case .answer(close: true) = held.upstreamLoss(responseBytesCameBack: true) else {
            Issue.record("a response none of which reached the client is answered 502")
            return
        }
        guard case .cut = Self.exchange(request: .complete, response: .streaming).upstreamLoss(responseBytesCameBack: true) else {
            Issue.record("mid-body the connection is cut")
            return
        }
        guard case .nothing = Self.exchange(request: .complete, response: .complete).upstreamLoss(responseBytesCameBack: true) else {
            Issue.record("after the response, nothing")
            return
        }
    }

    static func responseHead(_ text: String, toHEAD: Bool = false) throws -> UpstreamResponseHead {
        var parser = UpstreamResponseParser()
        parser.expectResponse(toHEAD: toHEAD)
        var bytes = ByteBuffer(string: text)
        guard case .head(let head) = try parser.next(&bytes) else { throw CancellationError() }
        return head
    }

    static let chunked = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    static let sized = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2000\r\n\r\n"

    @Test func aResponseWithoutALengthIsReChunkedForHTTP11AndEndsTheConnectionForHTTP10() throws {
        var http11 = Self.exchange(request: .complete, response: .waiting)
        http11.responseStarted(try Self.responseHead(Self.chunked), compressed: false)
        #expect(http11.response == .streaming)
        #expect(http11.responseFraming == .chunked)
        #expect(!http11.closeAfterResponse)
        var http10 = Self.exchange(request: .complete, response: .waiting)
        http10.requestVersion = .http1_0
        http10.responseStarted(try Self.responseHead(Self.chunked), compressed: false)
        #expect(http10.responseFraming == .untilClose)
        #expect(http10.closeAfterResponse)
    }

    @Test func aResponseBeforeTheRequestBodyEndedClosesTheConnectionAfterIt() throws {
        var exchange = Self.exchange(request: .streamingBody, response: .waiting)
        exchange.responseStarted(try Self.responseHead(Self.sized), compressed: false)
        #expect(exchange.responseFraming == .asReceived)
        #expect(exchange.closeAfterResponse)
    }

    @Test func compressionNeedsABodyAnAcceptedCodingAndAnAllowedResponse() throws {
        let settings = CompressionSettings(CompressionConfig(enabled: true, minBytes: 0, types: ["text/*"]))
        var exchange = Self.exchange(request: .complete, response: .waiting)
        #expect(exchange.compressionCoding(for: try Self.responseHead(Self.sized), settings) == nil, "the client accepts none")
        exchange.acceptEncoding = .gzip
        #expect(exchange.compressionCoding(for: try Self.responseHead(Self.sized), settings) == .gzip)
        #expect(exchange.compressionCoding(for: try Self.responseHead(Self.sized), nil) == nil, "compression off")
        let json = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n"
        #expect(exchange.compressionCoding(for: try Self.responseHead(json), settings) == nil, "a type not listed")
        exchange.isHEAD = true
        #expect(exchange.compressionCoding(for: try Self.responseHead(Self.sized, toHEAD: true), settings) == nil, "no body")
        exchange.isHEAD = false
        exchange.responseStarted(try Self.responseHead(Self.sized), compressed: true)
        #expect(exchange.responseFraming == .chunked, "the length changes: re-chunked")
    }
}
