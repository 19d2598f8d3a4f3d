import NIOCore

/// Sits before the HTTP decoder and tells the connection handler when the first bytes of a
/// request head arrive, so an idle keep-alive connection (closed quietly after `idle_timeout`)
/// is told apart from a slow request head (408 after `client_header_timeout`).
final class InboundActivityHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Set by the connection handler when it is added; both leave the pipeline together when the
    /// channel closes, so an unowned reference is safe and spares a weak load per read.
    unowned(unsafe) var connection: ClientConnectionHandler?
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Writes bytes below the HTTP handlers (for answers to requests that were never decoded).
    func writeAndClose(_ bytes: ByteBuffer) {
        guard let context = self.context else { return }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(bytes)).whenComplete { _ in
            bound.value.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.connection?.bytesArrived()
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension InboundActivityHandler: Sendable {}
