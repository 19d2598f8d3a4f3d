import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The upstream connections of one event loop: an exchange and its upstream connection share
/// the loop, so the pool needs no lock. Idle connections are reused last-in first-out and
/// closed after `keepalive_timeout` or beyond `max_idle_connections`.
final class UpstreamPool {
    enum Lease {
        case ready(UpstreamConnection)
        case connecting(EventLoopFuture<UpstreamConnection>)
    }

    let eventLoop: EventLoop
    private(set) var target: UpstreamTarget
    private let connector: any UpstreamConnector
    private var idle: [UpstreamConnection] = []
    private var sweeper: RepeatedTask?
    /// Connections open now, idle or leased (for the metrics).
    private(set) var openConnections = 0
    /// Connections waiting in the pool for an exchange.
    var idleConnections: Int { self.idle.count }

    init(eventLoop: EventLoop, target: UpstreamTarget, connector: any UpstreamConnector = SocketConnector()) {
        self.eventLoop = eventLoop
        self.target = target
        self.connector = connector
    }

    /// An idle connection when one is alive, else a new one. `fresh` skips the idle ones
    /// (used to retry a request that a reused connection dropped).
    func acquire(fresh: Bool = false) -> Lease {
        if !fresh {
            while let connection = self.idle.popLast() {
                if connection.isUsable {
                    return .ready(connection)
                }
            }
        }
        return .connecting(self.connect())
    }

    func release(_ connection: UpstreamConnection) {
        self.eventLoop.assertInEventLoop()
        guard connection.isUsable, self.idle.count < self.target.maxIdleConnections,
            self.target.keepaliveTimeout > .zero
        else {
            connection.close()
            return
        }
        connection.idleSince = self.eventLoop.now
        self.idle.append(connection)
        if self.sweeper == nil { self.startSweeper() }
    }

    /// An idle connection closed by the upstream leaves the pool.
    func connectionClosed(_ connection: UpstreamConnection) {
        if let index = self.idle.firstIndex(where: { $0 === connection }) {
            self.idle.remove(at: index)
        }
    }

    func closeAll() {
        let idle = self.idle
        self.idle.removeAll()
        for connection in idle { connection.close() }
        self.sweeper?.cancel()
        self.sweeper = nil
    }

    func update(target: UpstreamTarget) {
        self.target = target
        self.closeAll()
    }

    private func startSweeper() {
        let quarter = TimeAmount.nanoseconds(self.target.keepaliveTimeout.nanoseconds / 4)
        let interval = max(min(quarter, .seconds(1)), .milliseconds(50))
        let pool = NIOLoopBound(self, eventLoop: self.eventLoop)
        self.sweeper = self.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { task in
            pool.value.sweep(task)
        }
    }

    private func sweep(_ task: RepeatedTask) {
        let cutoff = self.eventLoop.now - self.target.keepaliveTimeout
        // Closing calls back into `connectionClosed`: take them out of `idle` first.
        let expired = self.idle.filter { $0.idleSince <= cutoff }
        self.idle.removeAll { $0.idleSince <= cutoff }
        for connection in expired { connection.close() }
        if self.idle.isEmpty {
            task.cancel()
            self.sweeper = nil
        }
    }

    private func connect() -> EventLoopFuture<UpstreamConnection> {
        let pool = NIOLoopBound(self, eventLoop: self.eventLoop)
        return self.connector.connect(to: self.target, pool: self).flatMapThrowing { channel in
            pool.value.openConnections += 1
            channel.closeFuture.whenComplete { _ in pool.value.openConnections -= 1 }
            return try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
        }
    }
}

@available(*, unavailable)
extension UpstreamPool: Sendable {}

/// How the pool opens a connection: one call per new connection, never per request.
protocol UpstreamConnector {
    /// A connected channel whose pipeline ends in an `UpstreamConnection` of `pool`.
    func connect(to target: UpstreamTarget, pool: UpstreamPool) -> EventLoopFuture<Channel>
}

/// A TCP connection (TLS on it when the target says so).
struct SocketConnector: UpstreamConnector {
    func connect(to target: UpstreamTarget, pool: UpstreamPool) -> EventLoopFuture<Channel> {
        let loopBoundPool = NIOLoopBound(pool, eventLoop: pool.eventLoop)
        var bootstrap = ClientBootstrap(group: pool.eventLoop)
            .connectTimeout(target.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        if target.receiveBuffer > 0 {
            // Set before connect, so the window scale is negotiated for this size.
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(target.receiveBuffer))
        }
        return bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls = target.tls {
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: target.serverHostname))
                    }
                    try sync.addHandler(UpstreamConnection(pool: loopBoundPool.value))
                }
            }
            .connect(host: target.host, port: target.port)
    }
}
