import NIOCore
import NIOEmbedded
import Testing

@testable import PortcullisProxy

/// glibc's size of a heap block (`malloc.h`, which the Glibc module does not bring in).
@_silgen_name("malloc_usable_size") private func mallocUsableSize(_ pointer: UnsafeMutableRawPointer) -> Int

/// A connection's handler is freed once its channel has closed: a handler that outlived its
/// channel would keep its memory for the life of the process, connection after connection.
@Suite struct HandlerLifetimeTests {
    @Test func clientHandlerOfAConnectionThatSentNothingIsFreedWhenItCloses() throws {
        weak var handler: ClientConnectionHandler?
        try {
            let harness = try ClientConnectionHandlerTests.Harness()
            handler = try harness.channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self)
            try harness.channel.close().wait()
            try harness.finish()
        }()
        #expect(handler == nil, "the handler outlived its channel")
    }

    @Test func clientHandlerIsFreedWhenItsConnectionClosesAfterARequest() throws {
        weak var handler: ClientConnectionHandler?
        try {
            let harness = try ClientConnectionHandlerTests.Harness()
            handler = try harness.channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self)
            try harness.send("GET /api/ListUsers HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
            #expect(try harness.response().statusLine == "HTTP/1.1 401 Unauthorized")
            try harness.channel.close().wait()
            try harness.finish()
        }()
        #expect(handler == nil, "the handler outlived its channel")
    }

    /// The upstream connection holds the exchange that leases it strongly: these three hold
    /// the handler to being freed while the upstream's channel lives on (leased, failed, or
    /// back in the pool), so a lease is never what keeps a handler alive.
    @Test(arguments: [false, true])
    func clientHandlerThatLeavesMidExchangeIsFreed(upstreamFailedFirst: Bool) throws {
        let upstreams = FakeUpstreams()
        weak var handler: ClientConnectionHandler?
        try {
            let harness = try ClientConnectionHandlerTests.Harness.withClient(connector: upstreams)
            handler = try harness.channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self)
            try harness.send(ExchangeLifecycleTests.get("/slow", try harness.token()))
            #expect(try upstreams.received(0).hasPrefix("GET /slow HTTP/1.1\r\n"))
            if upstreamFailedFirst {
                upstreams.close(0)
                #expect(try harness.response().statusLine == "HTTP/1.1 502 Bad Gateway")
            }
            try harness.channel.close().wait()
            try harness.finish()
        }()
        #expect(upstreams.channels.count == 1)
        #expect(handler == nil, "the upstream connection (failed first: \(upstreamFailedFirst)) kept the handler alive")
    }

    @Test func clientHandlerIsFreedWhileItsUpstreamConnectionWaitsInThePool() throws {
        let upstreams = FakeUpstreams()
        weak var handler: ClientConnectionHandler?
        let harness = try ClientConnectionHandlerTests.Harness.withClient(connector: upstreams)
        try {
            let channel = EmbeddedChannel(loop: harness.channel.embeddedEventLoop)
            try channel.connect(to: SocketAddress(ipAddress: "203.0.113.10", port: 40_001)).wait()
            try GatewayServer.addClientHandlers(to: channel.pipeline.syncOperations, loop: harness.loop, peer: channel.remoteAddress, maxHeadBytes: 8192)
            handler = try channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self)
            try channel.writeInbound(ByteBuffer(string: ExchangeLifecycleTests.get("/fast", try harness.token())))
            _ = try upstreams.received(0)
            try upstreams.answer(0, ExchangeLifecycleTests.ok)
            channel.embeddedEventLoop.run()
            var written = ByteBuffer()
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written.writeImmutableBuffer(buffer) }
            #expect(String(buffer: written).hasPrefix("HTTP/1.1 200 OK\r\n"))
            try channel.close().wait()
            _ = try channel.finish(acceptAlreadyClosed: true)
        }()
        #expect(harness.loop.pool.idleConnections == 1, "the upstream connection went back to the pool")
        #expect(handler == nil, "the pooled upstream connection kept the handler alive")
        try harness.finish()
    }

    /// What one idle keep-alive connection costs the gateway beyond NIO's channel: its handler,
    /// which holds the connection's state machine and request path inline. Things every
    /// connection of a loop shares (the allocator, the loop, the settings) are not copied in.
    @Test func anIdleConnectionsHandlerStaysSmall() throws {
        let harness = try ClientConnectionHandlerTests.Harness()
        try harness.send("GET /api/ListUsers HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        #expect(try harness.response().statusLine == "HTTP/1.1 401 Unauthorized")
        let handler = try harness.channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self)
        let bytes = mallocUsableSize(Unmanaged.passUnretained(handler).toOpaque())
        #expect(bytes > 0 && bytes <= 640, "the handler takes \(bytes) bytes of the heap")
        try harness.finish()
    }

    @Test func upstreamConnectionIsFreedWhenItsChannelCloses() throws {
        let harness = try ClientConnectionHandlerTests.Harness()
        weak var connection: UpstreamConnection?
        try {
            let channel = EmbeddedChannel(loop: harness.channel.embeddedEventLoop)
            let handler = UpstreamConnection(pool: harness.loop.pool)
            connection = handler
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try channel.close().wait()
            _ = try channel.finish(acceptAlreadyClosed: true)
        }()
        #expect(connection == nil, "the upstream connection's handler outlived its channel")
        try harness.finish()
    }
}
