import Foundation
import Atomics
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import PortcullisAuth
import PortcullisPolicy
import PortcullisStore

/// The gateway: its listeners, the per-loop contexts (upstream pools), the admin listener,
/// metrics and graceful stop.
public final class GatewayServer: Sendable {
    public let boundAddresses: [SocketAddress]
    /// `http` or `https`, one per bound address.
    public let boundSchemes: [String]
    /// Where `/metrics`, `/healthz` and `/readyz` are served; nil without `admin.address`.
    public var adminAddress: SocketAddress? { self.admin?.localAddress }
    public let metrics: GatewayMetrics
    private let group: EventLoopGroup
    private let channels: [Channel]
    private let admin: AdminServer?
    private let contexts: [ObjectIdentifier: NIOLoopBound<LoopContext>]
    private let openConnections: ManagedAtomic<Int>
    private let draining: ManagedAtomic<Bool>
    private let builtin: BuiltinIssuerRuntime?
    /// Each client's limit counters, kept across reloads.
    private let limiters: LimiterRegistry
    private let adminAPI: AdminAPI?
    private let logger: Logger
    /// One per `listen[].tls` listener; a reload swaps the contexts in place.
    private let tlsSlots: [DownstreamTLS.Slot]
    /// Every client's last-used second, kept across snapshots.
    public let usage: ClientUsageTable
    /// The store's health; nil without `store:`.
    public let storeStatus: StoreStatus?
    /// The exchange of limit counters across replicas (PostgreSQL store).
    public let limitSync: LimitSyncStatus

    private init(
        group: EventLoopGroup,
        channels: [Channel],
        schemes: [String],
        tlsSlots: [DownstreamTLS.Slot],
        admin: AdminServer?,
        contexts: [ObjectIdentifier: NIOLoopBound<LoopContext>],
        openConnections: ManagedAtomic<Int>,
        draining: ManagedAtomic<Bool>,
        metrics: GatewayMetrics,
        builtin: BuiltinIssuerRuntime?,
        limiters: LimiterRegistry,
        adminAPI: AdminAPI?,
        usage: ClientUsageTable,
        storeStatus: StoreStatus?,
        limitSync: LimitSyncStatus,
        logger: Logger
    ) {
        self.limitSync = limitSync
        self.usage = usage
        self.storeStatus = storeStatus
        self.builtin = builtin
        self.limiters = limiters
        self.adminAPI = adminAPI
        self.group = group
        self.channels = channels
        self.boundAddresses = channels.compactMap(\.localAddress)
        self.boundSchemes = schemes
        self.tlsSlots = tlsSlots
        self.admin = admin
        self.contexts = contexts
        self.openConnections = openConnections
        self.draining = draining
        self.metrics = metrics
        self.logger = logger
    }

    /// Binds every listener of `config` on `group`, one event loop per core, then the admin
    /// listener when `admin.address` is set.
    public static func start(
        config: GatewayConfig,
        issuerKeys: [String: any IssuerKeyProvider] = [:],
        accessLog: AccessLogWriter? = nil,
        upstreamCredential: UpstreamCredential? = nil,
        storeStatus: StoreStatus? = nil,
        group: EventLoopGroup,
        logger: Logger
    ) async throws -> GatewayServer {
        let tlsSlots = try config.listeners.map { listener in
            try listener.tls.map { DownstreamTLS.Slot(address: listener.address, context: try DownstreamTLS.makeContext($0)) }
        }
        let builtin = try BuiltinIssuerRuntime.make(config, logger: logger)
        // With PostgreSQL, replicas share the limits: the counters are exchanged (runLimitSync).
        var sharedLimits = false
        if case .postgres? = config.store { sharedLimits = true }
        let limiters = LimiterRegistry(shared: sharedLimits)
        let limitSync = LimitSyncStatus()
        let usage = ClientUsageTable()
        let settings = try ProxySettings(
            config, issuerKeys: issuerKeys, builtin: builtin, upstreamCredential: upstreamCredential, limiters: limiters, usage: usage)
        var contexts: [ObjectIdentifier: NIOLoopBound<LoopContext>] = [:]
        for loop in group.makeIterator() {
            contexts[ObjectIdentifier(loop)] = try await loop.submit {
                NIOLoopBound(LoopContext(eventLoop: loop, settings: settings, accessLog: accessLog), eventLoop: loop)
            }.get()
        }
        // One gate for the whole gateway, whether or not max_concurrent is set now (a reload may set it).
        let gate = BackendGate(
            loops: contexts.values.map { context in
                BackendGate.Loop(eventLoop: context.eventLoop) { context.value.admitBackendWaiters() }
            }
        )
        for (context, side) in zip(contexts.values, gate.loopsForSetup) {
            try await context.eventLoop.submit {
                context.value.backendGate = gate
                context.value.backendGateLoop = side
            }.get()
        }
        let openConnections = ManagedAtomic(0)
        let maxConnections = config.limits.maxConnections
        let maxHeadBytes = config.limits.maxHeaderBytes
        let clientSendBuffer = SocketOptionValue(config.limits.clientSendBuffer)
        let frozenContexts = contexts

        var channels: [Channel] = []
        do {
            for (listener, tls) in zip(config.listeners, tlsSlots) {
                var bootstrap = ServerBootstrap(group: group)
                    .serverChannelOption(.backlog, value: 1024)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                    .childChannelOption(.recvAllocator, value: Self.clientReceiveBuffers)
                if clientSendBuffer > 0 {
                    // Bounds what a slow reader holds in the kernel (Limits.defaultClientSendBuffer);
                    // the channel stops being writable at the bound, which holds the upstream read.
                    bootstrap = bootstrap.childChannelOption(.socketOption(.so_sndbuf), value: clientSendBuffer)
                }
                bootstrap = bootstrap
                    .childChannelInitializer { channel in
                        let open = openConnections.wrappingIncrementThenLoad(ordering: .relaxed)
                        channel.closeFuture.whenComplete { _ in
                            openConnections.wrappingDecrement(ordering: .relaxed)
                        }
                        guard open <= maxConnections else {
                            // A 503 over TLS would first cost a handshake: a TLS listener just closes.
                            if tls != nil { return channel.close() }
                            return Self.refuseOverCapacity(channel)
                        }
                        return channel.eventLoop.makeCompletedFuture {
                            guard let loop = frozenContexts[ObjectIdentifier(channel.eventLoop)] else {
                                throw GatewayError(.internalError, reason: "event loop without a context")
                            }
                            let sync = channel.pipeline.syncOperations
                            if let tls {
                                // The context as of this accept; the connection keeps it through reloads.
                                try sync.addHandler(NIOSSLServerHandler(context: tls.context))
                            }
                            try Self.addClientHandlers(
                                to: sync,
                                loop: loop.value,
                                peer: channel.remoteAddress,
                                isTLS: tls != nil,
                                maxHeadBytes: maxHeadBytes
                            )
                        }
                    }
                let channel = try await bootstrap.bind(host: listener.address.host, port: listener.address.port).get()
                channels.append(channel)
                logger.info(
                    "listening",
                    metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")", "tls": "\(tls != nil)"]
                )
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw GatewayError(.cannotListen, reason: "cannot listen: \(error)")
        }

        let metrics = GatewayMetrics(accessLog: accessLog, store: storeStatus)
        metrics.configApplied(issuerKeys: issuerKeys, secretExpiries: config.secretExpiries())
        let draining = ManagedAtomic(false)
        var admin: AdminServer?
        var adminAPI: AdminAPI?
        if let address = config.admin.address {
            do {
                adminAPI = try AdminAPI(config: config, state: builtin?.state, limiter: builtin?.limiter)
                if let api = adminAPI, let builtin {
                    let logger = builtin.logger
                    builtin.revocations.set { client, token, address in api.auditRevocation(client, token, address, logger: logger) }
                }
            } catch {
                for channel in channels { try? await channel.close() }
                throw error
            }
            let endpoints = AdminServer.Endpoints(
                metricsText: { loop in
                    Self.metricsText(contexts: frozenContexts, metrics: metrics, openConnections: openConnections, limitSync: limitSync, on: loop)
                },
                // A replica that has never loaded the registry would refuse clients it should serve.
                isReady: { !draining.load(ordering: .relaxed) && (storeStatus?.hasLoaded ?? true) },
                api: adminAPI,
                recent: accessLog?.recent
            )
            let adminTLS: NIOSSLContext?
            do {
                adminTLS = try config.admin.tls.map(DownstreamTLS.makeContext)
            } catch {
                for channel in channels { try? await channel.close() }
                throw error
            }
            do {
                admin = try await AdminServer.start(address: address, group: group, endpoints: endpoints, tls: adminTLS, logger: logger)
            } catch {
                for channel in channels { try? await channel.close() }
                let place = config.admin.location.map { "\($0): " } ?? ""
                throw GatewayError(.cannotListen, reason: "\(place)admin.address: cannot listen on \(address): \(error)")
            }
        }
        return GatewayServer(
            group: group,
            channels: channels,
            schemes: tlsSlots.map { $0 == nil ? "http" : "https" },
            tlsSlots: tlsSlots.compactMap { $0 },
            admin: admin,
            contexts: contexts,
            openConnections: openConnections,
            draining: draining,
            metrics: metrics,
            builtin: builtin,
            limiters: limiters,
            adminAPI: adminAPI,
            usage: usage,
            storeStatus: storeStatus,
            limitSync: limitSync,
            logger: logger
        )
    }

    /// Collects every loop's request metrics on its own loop, merges them, and renders the
    /// whole exposition on `loop`.
    private static func metricsText(
        contexts: [ObjectIdentifier: NIOLoopBound<LoopContext>],
        metrics: GatewayMetrics,
        openConnections: ManagedAtomic<Int>,
        limitSync: LimitSyncStatus,
        on loop: EventLoop
    ) -> EventLoopFuture<String> {
        let snapshots = contexts.values.map { context in
            context.eventLoop.submit { context.value.metricsSnapshot() }
        }
        // The limit counters are shared by every loop: any loop's settings name them.
        let slots: EventLoopFuture<[ClientLimitSlot]> =
            contexts.values.first.map { context in
                context.eventLoop.submit { context.value.settings.clientLimits.compactMap { $0 } }
            } ?? loop.makeSucceededFuture([])
        return EventLoopFuture.whenAllSucceed(snapshots, on: loop).and(slots).map { snapshots, slots in
            var merged = LoopMetrics.Snapshot()
            for snapshot in snapshots {
                merged.merge(snapshot)
            }
            var limits = PrometheusTextWriter()
            ClientLimitSlot.renderGauges(
                slots,
                nowNanos: NIODeadline.now().uptimeNanoseconds,
                nowSeconds: Int64(Date().timeIntervalSince1970),
                into: &limits
            )
            limitSync.render(into: &limits)
            return metrics.render(merged, clientConnections: openConnections.load(ordering: .relaxed)) + limits.text
        }
    }

    /// The `/metrics` text now.
    public func metricsText() async throws -> String {
        try await Self.metricsText(
            contexts: self.contexts,
            metrics: self.metrics,
            openConnections: self.openConnections,
            limitSync: self.limitSync,
            on: self.group.any()
        ).get()
    }

    /// The limited clients of the running snapshot (every loop shares their counters).
    func currentLimitSlots() async -> [ClientLimitSlot] {
        guard let context = self.contexts.values.first else { return [] }
        return (try? await context.eventLoop.submit { context.value.settings.clientLimits.compactMap { $0 } }.get()) ?? []
    }

    /// Exchanges the limit counters with the other replicas through `store` every `interval`,
    /// until cancelled (`store.limits_sync`; PostgreSQL only).
    public func runLimitSync(store: any LimitCounterStore, interval: Duration) async {
        let synchronizer = LimitSynchronizer(store: store, interval: interval, status: self.limitSync, logger: self.logger)
        await synchronizer.run { await self.currentLimitSlots() }
    }

    /// Listeners open and not draining (`/readyz`).
    public var isReady: Bool { !self.draining.load(ordering: .relaxed) && (self.storeStatus?.hasLoaded ?? true) }

    /// The built-in issuer's revocations and redemptions; nil without one.
    public var issuerState: IssuerState? { self.builtin?.state }

    /// The built-in issuer's failed-authentication counters; nil without one.
    public var failedAuthLimiter: FailedAuthLimiter? { self.builtin?.limiter }

    /// The client side of the request path: one handler, which parses requests itself
    /// (`RequestParser`) and writes responses as bytes.
    /// A client connection's receive buffer starts at 1 KiB, as nginx's
    /// `client_header_buffer_size`, and doubles after a read that fills it: NIO keeps the
    /// buffer for the connection's life, so an idle connection with a short head holds 1 KiB,
    /// not NIO's default 2 KiB.
    static let clientReceiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536)

    static func addClientHandlers(
        to sync: ChannelPipeline.SynchronousOperations,
        loop: LoopContext,
        peer: SocketAddress?,
        isTLS: Bool = false,
        maxHeadBytes: Int
    ) throws {
        try sync.addHandler(ClientConnectionHandler(loop: loop, peer: peer, isTLS: isTLS, maxHeadBytes: maxHeadBytes))
    }

    /// Over `max_connections`: a 503 with `Retry-After`, written below HTTP, then close.
    private static func refuseOverCapacity(_ channel: Channel) -> EventLoopFuture<Void> {
        let response = ErrorResponse(
            status: .serviceUnavailable,
            error: "unavailable",
            description: "too many open connections",
            extraHeaders: [("Retry-After", "1")]
        )
        var ids = RequestIDGenerator()
        let bytes = response.rawBytes(requestID: ids.make(), allocator: channel.allocator)
        channel.writeAndFlush(bytes).whenComplete { _ in channel.close(promise: nil) }
        return channel.eventLoop.makeSucceededVoidFuture()
    }

    public var openConnectionCount: Int { self.openConnections.load(ordering: .relaxed) }

    /// Applies a new configuration to every loop; requests in flight keep their snapshot.
    public func apply(
        _ config: GatewayConfig,
        issuerKeys: [String: any IssuerKeyProvider] = [:],
        upstreamCredential: UpstreamCredential? = nil
    ) async throws {
        if config.issuers.contains(where: \.builtin) && self.builtin == nil {
            throw GatewayError(.needsRestart, reason: "a built-in issuer added by reload needs a restart (its state file is opened at start)")
        }
        // Built first: a bad certificate or key fails the whole reload, old contexts included.
        let tlsContexts = try DownstreamTLS.reloadedContexts(config, slots: self.tlsSlots, logger: self.logger)
        let settings = try ProxySettings(
            config,
            issuerKeys: issuerKeys,
            builtin: self.builtin,
            upstreamCredential: upstreamCredential,
            limiters: self.limiters,
            usage: self.usage
        )
        let adminTokens = try self.adminAPI?.tokens(of: config)
        for context in self.contexts.values {
            try await context.eventLoop.submit { context.value.update(settings) }.get()
        }
        // After the loops: a client the API lists is one the loops serve.
        if let adminTokens { self.adminAPI?.update(config, tokens: adminTokens) }
        for (slot, context) in tlsContexts {
            slot.replace(with: context)
        }
        self.metrics.configApplied(issuerKeys: issuerKeys, secretExpiries: config.secretExpiries())
    }

    /// Hands a fetched tenant directory to every loop (`tenant_directory: {upstream:}`).
    public func publishTenantDirectory(_ directory: TenantDirectory) {
        for context in self.contexts.values {
            context.eventLoop.execute { context.value.fetchedTenantDirectory = directory }
        }
    }

    /// How the admin API's `POST /api/v1/reload` and its mutations reload: as SIGHUP does,
    /// but the caller hears why a reload failed.
    public func setAdminReloader(_ reload: @escaping @Sendable () async throws -> Void) {
        self.adminAPI?.setReloader(reload)
    }

    /// With `store:`, the admin API writes clients and revocations through these.
    public func setAdminStore(_ hooks: AdminStoreHooks) {
        self.adminAPI?.setStoreHooks(hooks)
    }

    /// Writes the built-in issuer's state file if it changed (revocations, last redemptions).
    /// Called off the event loops: every second, and after the drain.
    public func persistIssuerState() {
        guard let state = self.builtin?.state else { return }
        do {
            try state.saveIfChanged()
        } catch {
            self.logger.error("cannot write the issuer state file", metadata: ["error": "\(error)"])
        }
    }

    /// Graceful stop: stop accepting, let in-flight exchanges finish (at most `timeout`),
    /// close idle connections at once, then close whatever is left.
    public func drain(timeout: TimeAmount) async {
        self.draining.store(true, ordering: .relaxed)
        for channel in self.channels {
            try? await channel.close()
        }
        let loop = self.group.any()
        var each: [EventLoopFuture<Void>] = []
        for context in self.contexts.values {
            if let future = try? await context.eventLoop.submit({ context.value.startDraining() }).get() {
                each.append(future)
            }
        }
        let done = loop.makePromise(of: Void.self)
        EventLoopFuture.andAllSucceed(each, on: loop).cascade(to: done)
        let timer = loop.scheduleTask(in: timeout) {
            done.fail(GatewayError(.drainTimeout, reason: "drain timeout"))
        }
        do {
            try await done.futureResult.get()
            timer.cancel()
            self.logger.info("drained: all connections finished")
        } catch {
            self.logger.warning(
                "drain timeout reached; closing remaining connections",
                metadata: ["open": "\(self.openConnectionCount)"]
            )
        }
        for context in self.contexts.values {
            try? await context.eventLoop.submit {
                // Connections still open past the drain timeout are closed (each logs its
                // request as it goes), then every loop hands its last access-log lines over.
                context.value.closeAllConnections()
                context.value.pool.closeAll()
                context.value.handOverLines()
            }.get()
        }
        // Last, so that `/readyz` says "draining" for as long as the drain lasts.
        await self.admin?.close()
    }
}
