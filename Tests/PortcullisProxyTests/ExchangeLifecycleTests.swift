import NIOCore
import NIOEmbedded
import Testing

@testable import PortcullisProxy

/// Upstream connections in memory: each connect gives an `EmbeddedChannel` on the client's
/// loop, with the real `UpstreamConnection` in it, for the test to answer or close.
final class FakeUpstreams: UpstreamConnector {
    private(set) var channels: [EmbeddedChannel] = []
    /// Connects fail (connection refused) while set.
    var refuse = false

    struct Refused: Error {}

    func connect(to target: UpstreamTarget, pool: UpstreamPool) -> EventLoopFuture<Channel> {
        let loop = pool.eventLoop as! EmbeddedEventLoop
        if self.refuse { return loop.makeFailedFuture(Refused()) }
        let channel = EmbeddedChannel(loop: loop)
        do {
            try channel.pipeline.syncOperations.addHandler(UpstreamConnection(pool: pool))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8091)).wait()
        } catch {
            return loop.makeFailedFuture(error)
        }
        self.channels.append(channel)
        return loop.makeSucceededFuture(channel)
    }

    /// What the upstream connection `index` has been sent so far.
    func received(_ index: Int) throws -> String {
        let channel = self.channels[index]
        channel.embeddedEventLoop.run()
        var all = ByteBuffer()
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            all.writeImmutableBuffer(buffer)
        }
        return String(buffer: all)
    }

    func answer(_ index: Int, _ text: String) throws {
        try self.channels[index].writeInbound(ByteBuffer(string: text))
    }

    func close(_ index: Int) {
        self.channels[index].pipeline.fireChannelInactive()
    }
}

/// An exchange from the request head to the end of the response, through the connection
/// handler and an in-memory upstream: pipelining, retry, upstream failures, the timeouts, drain.
/// No sockets and no sleeps: time is the embedded loop's.
@Suite struct ExchangeLifecycleTests {
    typealias Harness = ClientConnectionHandlerTests.Harness

    static let ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    static func get(_ path: String, _ token: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer \(token)\r\n\r\n"
    }

    @Test func aPipelinedRequestWaitsForTheResponseBeforeIt() throws {
        let upstreams = FakeUpstreams()
        let harness = try Harness.withClient(connector: upstreams)
        let token = try harness.token()
        try harness.send(Self.get("/first", token) + Self.get("/second", token))
        #expect(upstreams.channels.count == 1)
        let first = try upstreams.received(0)
        #expect(first.hasPrefix("GET /first HTTP/1.1\r\n"))
        #expect(!first.contains("/second"), "the second request waits, unparsed")
        try upstreams.answer(0, Self.ok)
        #expect(try upstreams.received(0).hasPrefix("GET /second HTTP/1.1\r\n"), "then goes on the same connection")
        try upstreams.answer(0, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo")
        let written = try harness.written()
        let one = try ClientConnectionHandlerTests.RawResponse(written)
        #expect(one.body == "ok")
        let two = try ClientConnectionHandlerTests.RawResponse(one.rest)
        #expect(two.body == "two")
        #expect(upstreams.channels.count == 1)
        #expect(harness.reasons == ["allowed": 2])
        try harness.finish()
    }

    /// A harness whose upstream connection 0 has served one exchange and waits in the pool.
    static func pooledConnection() throws -> (Harness, FakeUpstreams, token: String) {
        let upstreams = FakeUpstreams()
        let harness = try Harness.withClient(connector: upstreams)
        let token = try harness.token()
        try harness.send(Self.get("/a", token))
        #expect(try upstreams.received(0).hasPrefix("GET /a "))
        try upstreams.answer(0, Self.ok)
        #expect(try harness.response().body == "ok")
        return (harness, upstreams, token)
    }

    @Test func anIdempotentRequestOnAStalePooledConnectionIsSentAgainOnANewOne() throws {
        let (harness, upstreams, token) = try Self.pooledConnection()
        try harness.send(Self.get("/b", token))
        #expect(try upstreams.received(0).hasPrefix("GET /b "), "the pooled connection is reused")
        // The upstream had closed it: no byte of a response came back.
        upstreams.close(0)
        #expect(upstreams.channels.count == 2, "retried once on a new connection")
        #expect(try upstreams.received(1).hasPrefix("GET /b "))
        try upstreams.answer(1, Self.ok)
        #expect(try harness.response().statusLine == "HTTP/1.1 200 OK")
        #expect(harness.reasons == ["allowed": 2])
        try harness.finish()
    }

    @Test func aRequestWithABodyIsNotSentAgainItIs502() throws {
        let (harness, upstreams, token) = try Self.pooledConnection()
        try harness.send("POST /b HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer \(token)\r\nContent-Length: 2\r\n\r\nhi")
        upstreams.close(0)
        #expect(upstreams.channels.count == 1, "never retried")
        #expect(try harness.response().statusLine.hasPrefix("HTTP/1.1 502"))
        #expect(harness.reasons == ["allowed": 1, "upstream_error": 1])
        try harness.finish()
    }

    @Test func anUpstreamFailingWhileTheHeadIsHeldGives502() throws {
        let upstreams = FakeUpstreams()
        let harness = try Harness.withClient(connector: upstreams)
        try harness.send(Self.get("/a", try harness.token()))
        // The head and a bad chunk size in one packet: the head was never written.
        try? upstreams.answer(0, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        let response = try harness.response()
        #expect(response.statusLine.hasPrefix("HTTP/1.1 502"))
        #expect(response.header("connection") == ["close"])
        #expect(harness.reasons == ["upstream_error": 1])
        try harness.finish()
    }

    @Test func noUpstreamConnectionIs502UpstreamUnavailable() throws {
        let upstreams = FakeUpstreams()
        upstreams.refuse = true
        let harness = try Harness.withClient(connector: upstreams)
        try harness.send(Self.get("/a", try harness.token()))
        #expect(try harness.response().statusLine.hasPrefix("HTTP/1.1 502"))
        #expect(harness.reasons == ["upstream_unavailable": 1])
        try harness.finish()
    }

    @Test func theExchangeTimeoutBeforeTheResponseHeadIs504() throws {
        let upstreams = FakeUpstreams()
        let harness = try Harness.withClient(upstreamExtra: "  timeout: 5s", connector: upstreams)
        try harness.send(Self.get("/a", try harness.token()))
        harness.waitPast(.seconds(4))
        #expect(try harness.written().isEmpty)
        harness.waitPast(.seconds(1))
        let response = try harness.response()
        #expect(response.statusLine.hasPrefix("HTTP/1.1 504"))
        #expect(response.header("connection").isEmpty, "a whole request: the connection stays")
        #expect(harness.reasons == ["upstream_timeout": 1])
        #expect(!upstreams.channels[0].isActive, "the upstream connection is closed, never pooled")
        try harness.finish()
    }

    @Test func theExchangeTimeoutAfterTheResponseHeadCutsTheConnection() throws {
        let upstreams = FakeUpstreams()
        let harness = try Harness.withClient(upstreamExtra: "  timeout: 5s", connector: upstreams)
        try harness.send(Self.get("/a", try harness.token()))
        try upstreams.answer(0, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
        #expect(try harness.written().hasPrefix("HTTP/1.1 200 OK\r\n"))
        harness.waitPast(.seconds(5))
        _ = try harness.written()
        #expect(!harness.channel.isActive, "mid-body, cutting is the only signal")
        #expect(harness.reasons == ["upstream_timeout": 1])
    }

    @Test func aBodyThatStopsArrivingIs408() throws {
        let upstreams = FakeUpstreams()
        let harness = try Harness.withClient(limits: "  client_body_timeout: 4s\n", connector: upstreams)
        let token = try harness.token()
        try harness.send("POST /a HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer \(token)\r\nContent-Length: 100\r\n\r\nsome")
        #expect(try upstreams.received(0).hasPrefix("POST /a "), "the body streams as it comes")
        harness.waitPast(.seconds(2))
        try harness.send("more")
        harness.waitPast(.seconds(3))
        #expect(try harness.written().isEmpty, "a gap shorter than the timeout")
        harness.waitPast(.seconds(3))
        let response = try harness.response()
        #expect(response.statusLine.hasPrefix("HTTP/1.1 408"))
        #expect(response.header("connection") == ["close"])
        #expect(harness.reasons == ["client_timeout": 1])
        #expect(!upstreams.channels[0].isActive, "the partial request's connection is closed")
    }

    @Test func aClientThatTakesNothingIsClosedAtTheSendTimeout() throws {
        let upstreams = FakeUpstreams()
        let harness = try Harness.withClient(limits: "  send_timeout: 3s\n", connector: upstreams)
        try harness.send(Self.get("/a", try harness.token()))
        try upstreams.answer(0, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
        harness.channel.isWritable = false
        harness.channel.pipeline.fireChannelWritabilityChanged()
        harness.waitPast(.seconds(2))
        #expect(harness.channel.isActive)
        harness.waitPast(.seconds(1))
        #expect(!harness.channel.isActive)
        #expect(harness.reasons == ["send_timeout": 1])
        #expect(!upstreams.channels[0].isActive)
    }

    @Test func aDrainClosesAnIdleConnectionNowAndABusyOneAfterItsResponse() throws {
        let upstreams = FakeUpstreams()
        let harness = try Harness.withClient(connector: upstreams)
        try harness.send(Self.get("/a", try harness.token()))
        _ = harness.loop.startDraining()
        #expect(harness.channel.isActive, "busy: the response comes first")
        try upstreams.answer(0, Self.ok)
        let response = try harness.response()
        #expect(response.body == "ok")
        #expect(response.header("connection") == ["close"])
        #expect(!harness.channel.isActive)
        #expect(harness.reasons == ["allowed": 1])

        let idle = try Harness.withClient(connector: FakeUpstreams())
        _ = idle.loop.startDraining()
        idle.channel.embeddedEventLoop.run()
        #expect(!idle.channel.isActive)
    }
}
