import NIOCore
import NIOHTTP1

/// What an upstream connection reports to the exchange that leases it. Both live on one loop.
protocol UpstreamExchange: AnyObject {
    var downstreamIsWritable: Bool { get }
    func upstreamRead(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged()
    /// The connection closed or failed while leased; `error` is nil for a plain close.
    func upstreamClosed(_ connection: UpstreamConnection, error: Error?)
}

/// The last handler of an upstream connection's pipeline: forwards response parts to the
/// exchange that leases it and holds back `read()` while the client cannot take more.
final class UpstreamConnection: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private unowned let pool: UpstreamPool
    private var context: ChannelHandlerContext!
    /// The exchange using the connection; nil while idle in the pool.
    private weak var exchange: UpstreamExchange?
    /// False once the connection saw an error, a partial exchange, an EOF-framed body or
    /// `Connection: close`: it is closed instead of pooled.
    private(set) var isReusable = true
    private var isActive = false
    private var readPending = false
    var idleSince: NIODeadline = .now()

    init(pool: UpstreamPool) {
        self.pool = pool
    }

    var isUsable: Bool { self.isActive && self.isReusable }
    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.isActive = context.channel.isActive
    }

    func channelActive(context: ChannelHandlerContext) {
        self.isActive = true
        context.fireChannelActive()
    }

    func lease(to exchange: UpstreamExchange) {
        self.exchange = exchange
    }

    /// Ends the lease; the caller decides whether the connection goes back to the pool.
    func detach() {
        self.exchange = nil
        if self.readPending {
            self.readPending = false
            self.context.read()
        }
    }

    func markNotReusable() {
        self.isReusable = false
    }

    func write(_ part: HTTPClientRequestPart) {
        self.context.write(self.wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        self.context.flush()
    }

    func close() {
        self.isReusable = false
        self.exchange = nil
        if self.isActive {
            self.context.close(promise: nil)
        }
    }

    func resumeReading() {
        if self.readPending {
            self.readPending = false
            self.context.read()
        }
    }

    // MARK: - Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange = self.exchange else {
            // An idle connection has nothing to say; bytes now would desynchronise the next exchange.
            self.close()
            return
        }
        exchange.upstreamRead(self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.exchange?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.exchange?.upstreamWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.isActive = false
        self.isReusable = false
        if let exchange = self.exchange {
            self.exchange = nil
            exchange.upstreamClosed(self, error: nil)
        } else {
            self.pool.connectionClosed(self)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.isReusable = false
        if let exchange = self.exchange {
            self.exchange = nil
            exchange.upstreamClosed(self, error: error)
        }
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if let exchange = self.exchange, !exchange.downstreamIsWritable {
            self.readPending = true
        } else {
            context.read()
        }
    }
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}
