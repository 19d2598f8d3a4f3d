import NIOCore
import PortcullisAuth
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
}
