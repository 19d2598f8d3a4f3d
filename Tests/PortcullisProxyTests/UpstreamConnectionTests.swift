import NIOCore
import NIOEmbedded
import Testing

@testable import PortcullisProxy

/// `UpstreamConnection` on an `EmbeddedChannel`, leased to a recording exchange: what it tells
/// the exchange, and whether a request it carried may be sent again.
@Suite struct UpstreamConnectionTests {
    final class Exchange: UpstreamExchange {
        var events: [String] = []
        var downstreamIsWritable: Bool { true }
        func upstreamResponseHead(_ head: UpstreamResponseHead) { self.events.append("head \(head.status)") }
        func upstreamResponseBody(_ buffer: ByteBuffer) { self.events.append("body") }
        func upstreamResponseEnd() { self.events.append("end") }
        func upstreamReadComplete() {}
        func upstreamWritabilityChanged() {}
        func upstreamClosed(_ connection: UpstreamConnection, error: Error?) {
            self.events.append(error == nil ? "closed" : "failed")
        }
    }

    struct Leased {
        let channel: EmbeddedChannel
        let connection: UpstreamConnection
        let exchange = Exchange()
        let pool: UpstreamPool

        init() throws {
            let settings = try ClientConnectionHandlerTests.Harness().loop.settings
            let channel = EmbeddedChannel()
            self.pool = UpstreamPool(eventLoop: channel.embeddedEventLoop, target: settings.upstream)
            self.connection = UpstreamConnection(pool: self.pool)
            try channel.pipeline.syncOperations.addHandler(self.connection)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
            self.channel = channel
            self.connection.lease(to: self.exchange)
            self.connection.writeHead(ByteBuffer(string: "GET /x HTTP/1.1\r\nHost: b\r\n\r\n"), isHEAD: false)
            self.connection.flush()
        }
    }

    @Test func aConnectionClosedBeforeAnyByteCameBackMayCarryTheRequestAgain() throws {
        let leased = try Leased()
        #expect(!leased.connection.hasReceivedResponseBytes)
        try leased.channel.close().wait()
        #expect(leased.exchange.events == ["closed"])
        #expect(!leased.connection.hasReceivedResponseBytes)
    }

    @Test func aSwitchingProtocolsAnswerFailsTheExchangeAfterItsBytesCameBack() throws {
        let leased = try Leased()
        try leased.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
        #expect(leased.exchange.events == ["failed"])
        #expect(leased.connection.hasReceivedResponseBytes)
        #expect(!leased.connection.isUsable)
    }

    @Test func anInterimResponseThenACloseIsAResponseStarted() throws {
        let leased = try Leased()
        try leased.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n"))
        #expect(leased.exchange.events.isEmpty)
        #expect(leased.connection.hasReceivedResponseBytes)
        try leased.channel.close().wait()
        #expect(leased.exchange.events == ["closed"])
        #expect(leased.connection.hasReceivedResponseBytes)
    }

    @Test func theNextRequestOnTheConnectionStartsAfresh() throws {
        let leased = try Leased()
        try leased.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        #expect(leased.exchange.events == ["head 200", "body", "end"])
        #expect(leased.connection.hasReceivedResponseBytes)
        leased.connection.writeHead(ByteBuffer(string: "GET /y HTTP/1.1\r\nHost: b\r\n\r\n"), isHEAD: false)
        #expect(!leased.connection.hasReceivedResponseBytes)
    }
}
