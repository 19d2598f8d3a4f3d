import NIOCore

/// What an upstream connection reports to the exchange that leases it. Both live on one loop.
protocol UpstreamExchange: AnyObject {
    var downstreamIsWritable: Bool { get }
    func upstreamResponseHead(_ head: UpstreamResponseHead)
    func upstreamResponseBody(_ buffer: ByteBuffer)
    func upstreamResponseEnd()
    func upstreamReadComplete()
    func upstreamWritabilityChanged()
    /// The connection closed or failed while leased; `error` is nil for a plain close.
    func upstreamClosed(_ connection: UpstreamConnection, error: Error?)
}

/// The only handler of an upstream connection's pipeline (after TLS, if any): writes request
/// bytes the exchange has framed, parses the response (`UpstreamResponseParser`) and hands its
/// parts to the exchange that leases it, holding back `read()` while the client cannot take more.
final class UpstreamConnection: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private unowned let pool: UpstreamPool
    private var context: ChannelHandlerContext!
    /// The exchange using the connection; nil while idle in the pool. Held strongly: the
    /// exchange lets go of it (`detach`, `close`) when it ends, and both let go when either
    /// channel goes away. A weak reference would give the exchange's handler a side table, and
    /// every retain and release of it would take the runtime's slow path.
    private var exchange: UpstreamExchange?
    private var parser = UpstreamResponseParser()
    /// False once the connection saw an error, a partial exchange, an EOF-framed body or
    /// `Connection: close`: it is closed instead of pooled.
    private(set) var isReusable = true
    private var isActive = false
    private var readPending = false
    /// A byte came back since the last request head was written: that request reached the
    /// backend's application (an interim 1xx or a `101` counts), so it is never sent again.
    private(set) var hasReceivedResponseBytes = false
    var idleSince: NIODeadline = .now()

    init(pool: UpstreamPool) {
        self.pool = pool
    }

    var isUsable: Bool { self.isActive && self.isReusable }
    var isWritable: Bool { self.context?.channel.isWritable ?? false }
    var allocator: ByteBufferAllocator { self.context.channel.allocator }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.isActive = context.channel.isActive
    }

    /// The context holds this handler and this handler holds the context: letting go of it
    /// here is what frees both once the channel has closed.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.exchange = nil
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
        if !self.parser.isIdle {
            self.isReusable = false
        }
        if self.readPending {
            self.readPending = false
            self.context?.read()
        }
    }

    /// Sends a request head; its response is parsed next.
    func writeHead(_ head: ByteBuffer, isHEAD: Bool) {
        self.parser.expectResponse(toHEAD: isHEAD)
        self.hasReceivedResponseBytes = false
        self.context.write(self.wrapOutboundOut(head), promise: nil)
    }

    func write(_ bytes: ByteBuffer) {
        self.context.write(self.wrapOutboundOut(bytes), promise: nil)
    }

    /// Flushes now; a flush waiting for the end of the tick is then not needed.
    func flush() {
        self.flushDeferred = false
        self.flushNow()
    }

    var flushDeferred = false

    func flushNow() {
        self.context?.flush()
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
            self.context?.read()
        }
    }

    // MARK: - Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        guard let exchange = self.exchange else {
            // An idle connection has nothing to say; bytes now would desynchronise the next exchange.
            self.close()
            return
        }
        if buffer.readableBytes > 0 { self.hasReceivedResponseBytes = true }
        do {
            while let event = try self.parser.next(&buffer) {
                switch event {
                case .head(let head):
                    // EOF-framed bodies end with the connection; `Connection: close` too.
                    if !head.isKeepAlive || self.parser.isReadingUntilClose { self.isReusable = false }
                    exchange.upstreamResponseHead(head)
                case .body(let part):
                    exchange.upstreamResponseBody(part)
                case .end:
                    // Bytes beyond the response: the upstream is out of step, never reuse it.
                    if buffer.readableBytes > 0 { self.isReusable = false }
                    exchange.upstreamResponseEnd()
                    if buffer.readableBytes > 0 { self.close() }
                    return
                }
                // The exchange may have let the connection go (client gone, timed out).
                guard self.exchange === exchange else { return }
            }
        } catch {
            self.fail(error)
        }
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
            // The end of an EOF-framed body is the connection's end.
            if case .some(.end) = try? self.parser.endOfInput() {
                exchange.upstreamResponseEnd()
                exchange.upstreamReadComplete()
            }
            if self.exchange === exchange {
                self.exchange = nil
                exchange.upstreamClosed(self, error: nil)
            }
        } else {
            self.pool.connectionClosed(self)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.fail(error)
    }

    private func fail(_ error: Error) {
        self.isReusable = false
        if let exchange = self.exchange {
            self.exchange = nil
            exchange.upstreamClosed(self, error: error)
        }
        if self.isActive { self.context.close(promise: nil) }
    }

    func read(context: ChannelHandlerContext) {
        if let exchange = self.exchange, !exchange.downstreamIsWritable {
            self.readPending = true
        } else {
            context.read()
        }
    }
}

extension UpstreamConnection: TickFlushing {}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}
