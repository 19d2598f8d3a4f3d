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
