import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import PortcullisPolicy

/// The admin listener (`admin.address`): `/metrics`, `/healthz` and `/readyz` over plain
/// HTTP/1.1 on NIOHTTP1's standard server pipeline, on the gateway's event loops but off the
/// request path. `/metrics`, `/healthz` and `/readyz` need no authentication (bind the listener
/// where only operators and scrapers reach it); the admin API needs the admin token.
final class AdminServer: Sendable {
    /// What the routes read, supplied by the gateway.
    struct Endpoints: Sendable {
        /// The `/metrics` body; may complete on any loop.
        var metricsText: @Sendable (EventLoop) -> EventLoopFuture<String>
        /// Config loaded, listeners open, not draining.
        var isReady: @Sendable () -> Bool
        /// The admin API (`/api/v1/...`); nil answers 404 there.
        var api: AdminAPI?
    }

    /// An admin connection with nothing to say for this long is closed.
    static let idleTimeout = TimeAmount.seconds(60)

    private let channel: Channel
    /// Open admin connections, closed with the listener (a scraper may keep one alive).
    private let connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>

    var localAddress: SocketAddress? { self.channel.localAddress }

    private init(channel: Channel, connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>) {
        self.channel = channel
        self.connections = connections
    }

    static func start(
        address: HostPort,
        group: EventLoopGroup,
        endpoints: Endpoints,
        logger: Logger
    ) async throws -> AdminServer {
        let connections = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
        let channel = try await ServerBootstrap(group: group)
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
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    try sync.addHandler(AdminRequestHandler(endpoints: endpoints))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
        logger.info("admin listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        return AdminServer(channel: channel, connections: connections)
    }

    /// Stops accepting and closes every admin connection.
    func close() async {
        try? await self.channel.close()
        let open = self.connections.withLockedValue { Array($0.values) }
        for connection in open {
            try? await connection.close()
        }
    }
}
