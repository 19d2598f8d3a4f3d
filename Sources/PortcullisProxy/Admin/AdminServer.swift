import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import PortcullisPolicy

/// The admin listener (`admin.address`): `/metrics`, `/healthz` and `/readyz` over plain
/// HTTP/1.1 on NIOHTTP1's standard server pipeline, on an event loop of its own so that no
/// admin request (a console's live view, a mutation) runs on the proxy's loops.
/// `/metrics`, `/healthz` and `/readyz` need no authentication (bind the listener where only
/// operators and scrapers reach it); the admin API needs the admin token, the console (`/ui/`)
/// a session opened with it.
final class AdminServer: Sendable {
    /// What the routes read, supplied by the gateway.
    struct Endpoints: Sendable {
        /// The `/metrics` body; may complete on any loop.
        var metricsText: @Sendable (EventLoop) -> EventLoopFuture<String>
        /// Config loaded, listeners open, not draining.
        var isReady: @Sendable () -> Bool
        /// The admin API (`/api/v1/...`); nil answers 404 there.
        var api: AdminAPI?
        /// Recent access-log lines and counts for the console's live views; nil for none.
        var recent: RecentRequests? = nil
    }

    /// An admin connection with nothing to say for this long is closed.
    static let idleTimeout = TimeAmount.seconds(60)

    private let channel: Channel
    /// Open admin connections, closed with the listener (a scraper may keep one alive).
    private let connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>
    /// The admin listener's own event loop.
    private let group: MultiThreadedEventLoopGroup

    var localAddress: SocketAddress? { self.channel.localAddress }

    private init(channel: Channel, connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>, group: MultiThreadedEventLoopGroup) {
        self.channel = channel
        self.connections = connections
        self.group = group
    }

    /// Binds the listener on a loop of its own (`proxyGroup`, the proxy's loops, is not used:
    /// the admin listener's work stays off them).
    static func start(
        address: HostPort,
        group proxyGroup: EventLoopGroup,
        endpoints: Endpoints,
        tls: NIOSSLContext? = nil,
        logger: Logger
    ) async throws -> AdminServer {
        let connections = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
        let console = endpoints.api.map { Console(api: $0, recent: endpoints.recent) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bound: Channel
        do {
            bound = try await Self.bind(address: address, group: group, endpoints: endpoints, console: console, tls: tls, connections: connections)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        logger.info("admin listening", metadata: ["address": "\(bound.localAddress.map { "\($0)" } ?? "?")", "tls": "\(tls != nil)"])
        return AdminServer(channel: bound, connections: connections, group: group)
    }

    private static func bind(
        address: HostPort,
        group: EventLoopGroup,
        endpoints: Endpoints,
        console: Console?,
        tls: NIOSSLContext?,
        connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>
    ) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                connections.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in
                    _ = connections.withLockedValue { $0.removeValue(forKey: id) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls { try sync.addHandler(NIOSSLServerHandler(context: tls)) }
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    try sync.addHandler(ConsoleRequestHandler(console: console))
                    try sync.addHandler(AdminRequestHandler(endpoints: endpoints))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }

    /// Stops accepting and closes every admin connection.
    func close() async {
        try? await self.channel.close()
        let open = self.connections.withLockedValue { Array($0.values) }
        for connection in open {
            try? await connection.close()
        }
        try? await self.group.shutdownGracefully()
    }
}
