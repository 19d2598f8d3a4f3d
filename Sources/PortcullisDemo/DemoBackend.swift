import NIOCore
import NIOHTTP1
import NIOPosix

/// A CIPP-like HTTP/1.1 backend for demos and tests: `portcullis demo-backend` runs it, and the
/// end-to-end tests put it behind the proxy.
///
/// It answers like CIPP's Azure Function App (paths match without regard to case; JSON bodies):
/// - `GET /api/ListLogs`, `GET /api/ListTenants` (contoso, fabrikam, northwind `.onmicrosoft.com`)
/// - `GET /api/ListUsers?tenantFilter=T`, `GET /api/ListMailboxes?tenantFilter=T`
///   (400 without `tenantFilter`, 404 for an unknown tenant)
/// - `POST /api/ExecResetPass`, `POST /api/ExecResetMFA` with `{"tenantFilter":...,"ID":"user@..."}`
///   answering `{"Results":"Successfully reset ..."}`
/// - `POST /api/$batch` with `{"requests":[{"id","method","url","query"}]}` answering `{"responses":[...]}`
/// - any other `/api/*`: 404 JSON
///
/// Endpoints under `/demo/` exist for tests and demos of the proxy's edge cases:
/// - `/demo/echo[/...]` (any method): `{"method","uri","version","headers":[[name,value]...],"body_bytes"}`
/// - `/demo/slow?ms=N` answers after N ms (default 2000); `/demo/slowbody?ms=N` sends the head and
///   the first part of the body at once, the rest after N ms
/// - `/demo/stream?bytes=N` sends N pattern bytes (byte i is `i % 251`) in 64 KiB chunks, only as
///   fast as the client reads; `&chunked=1` uses chunked framing, `&eof=1` neither header and
///   `Connection: close`
/// - `POST /demo/upload` streams the body through and answers `{"bytes":N,"fnv1a":"hex"}`
/// - `/demo/close` answers with `Connection: close` and closes; `/demo/reset` closes abruptly
///   (RST) without answering; `/demo/hang` never answers
/// - `/demo/stats` `{"connections_accepted","connections_open","requests"}`; `/demo/stats/reset`
///   zeroes the accepted and request counts
///
/// Every answer carries `Content-Length` unless noted and keeps the connection alive.
public final class DemoBackend: Sendable {
    private let serverChannel: any Channel
    private let tracker: DemoConnectionTracker

    /// The address the listener is bound to.
    public let localAddress: SocketAddress

    /// The bound port, useful after binding port 0.
    public var port: Int {
        self.localAddress.port ?? 0
    }

    /// Counters across all connections since start (or since the last `/demo/stats/reset`).
    public var stats: DemoBackendStats {
        self.tracker.stats
    }

    /// Completes when the listener has closed.
    public var closeFuture: EventLoopFuture<Void> {
        self.serverChannel.closeFuture
    }

    private init(serverChannel: any Channel, tracker: DemoConnectionTracker) {
        self.serverChannel = serverChannel
        self.tracker = tracker
        self.localAddress = serverChannel.localAddress!
    }

    /// Binds `host:port` (port 0 picks a free one) and starts answering.
    public static func start(host: String, port: Int, group: any EventLoopGroup) async throws -> DemoBackend {
        try await self.startFuture(host: host, port: port, group: group).get()
    }

    /// `start(host:port:group:)` for callers outside async code.
    public static func startFuture(
        host: String,
        port: Int,
        group: any EventLoopGroup
    ) -> EventLoopFuture<DemoBackend> {
        let tracker = DemoConnectionTracker()
        var encoderConfiguration = HTTPResponseEncoder.Configuration()
        // The handler frames every response itself; that is what lets /demo/stream?eof=1 send neither header.
        encoderConfiguration.automaticallySetFramingHeaders = false

        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                guard tracker.connectionOpened(channel) else {
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in
                    tracker.connectionClosed(channel)
                }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.configureHTTPServerPipeline(
                        withPipeliningAssistance: true,
                        withServerUpgrade: nil,
                        withErrorHandling: true,
                        withOutboundHeaderValidation: true,
                        withEncoderConfiguration: encoderConfiguration
                    )
                    try pipeline.addHandler(DemoBackendHandler(tracker: tracker))
                }
            }
            .bind(host: host, port: port)
            .map { DemoBackend(serverChannel: $0, tracker: tracker) }
    }

    /// Stops listening and closes every open connection.
    public func close() async throws {
        do {
            try await self.serverChannel.close()
        } catch ChannelError.alreadyClosed {
            // Closing twice is fine.
        }
        for channel in self.tracker.closeAll() {
            try? await channel.close()
        }
    }
}
