import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import PortcullisAuth
import PortcullisPolicy
import PortcullisProxy
import PortcullisStore
import ServiceLifecycle
import UnixSignals

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway on the policy directory DIR.",
        discussion: "SIGHUP reloads the configuration (a bad one keeps the running one); SIGTERM drains and exits."
    )

    @Option(name: .long, help: "The policy directory: every *.yaml file in it is read.")
    var config: String

    @OptionGroup var runtime: RuntimeOptions

    func run() async throws {
        let config = try loadOrExit(self.config)
        let logger = makeLogger(level: config.logging.level)
        try await runGateway(config: config, runtime: self.runtime, logger: logger)
    }
}

/// Options shared by `serve` and `demo`.
struct RuntimeOptions: ParsableArguments {
    @Option(name: .long, help: "Event-loop threads (default: PORTCULLIS_THREADS, else one per core).")
    var threads: Int?

    @Option(name: .long, help: "Write the bound listener URLs to this file (one per line) once ready.")
    var readyFile: String?

    var threadCount: Int {
        if let threads = self.threads, threads > 0 { return threads }
        if let env = ProcessInfo.processInfo.environment["PORTCULLIS_THREADS"], let n = Int(env), n > 0 { return n }
        return System.coreCount
    }
}

func loadOrExit(_ directory: String) throws -> GatewayConfig {
    do {
        return try ConfigLoader.load(directory: directory)
    } catch {
        FileHandle.standardError.write(Data("portcullis: the configuration in \(directory) is not valid:\n\(error)\n".utf8))
        throw ExitCode(1)
    }
}

func makeLogger(level: String) -> Logger {
    var logger = Logger(label: "portcullis") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = Logger.Level(rawValue: level) ?? .info
    return logger
}

/// Starts the gateway, serves until SIGTERM or SIGINT, drains, and returns.
func runGateway(
    config: GatewayConfig,
    runtime: RuntimeOptions,
    logger: Logger,
    extraReadyLines: [String] = [],
    onReady: (@Sendable (GatewayServer) -> Void)? = nil
) async throws {
    if config.issuers.isEmpty {
        logger.warning("no issuers are configured: every request will be refused with 401")
    }
    if config.roles.isEmpty {
        logger.warning("no roles are configured: every authenticated request will be refused with 403")
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: runtime.threadCount)
    do {
        try await serveUntilStopped(
            config: config,
            group: group,
            runtime: runtime,
            logger: logger,
            extraReadyLines: extraReadyLines,
            onReady: onReady
        )
    } catch {
        try? await group.shutdownGracefully()
        throw error
    }
    // The server and its helpers are gone by now: nothing of theirs runs on a stopped loop.
    try await group.shutdownGracefully()
    logger.info("stopped")
}

private func serveUntilStopped(
    config: GatewayConfig,
    group: MultiThreadedEventLoopGroup,
    runtime: RuntimeOptions,
    logger: Logger,
    extraReadyLines: [String],
    onReady: (@Sendable (GatewayServer) -> Void)?
) async throws {
    // Issuer key sets: files read now, URLs fetched off the event loops (first fetch awaited,
    // bounded, so a gateway started with its IdP reachable accepts tokens from the start).
    let keyManager = IssuerKeyManager(logger: logger, eventLoopGroup: group)
    // upstream.auth: a header value file read now, a token asked for now (first try awaited).
    let credentials = UpstreamCredentialManager(logger: logger, eventLoopGroup: group)
    let server: GatewayServer
    let accessLog: AccessLogWriter?
    // store: the registry is loaded before the listeners open when the store answers; when it
    // does not, the gateway starts on the declared clients, not ready, and keeps trying.
    let replica: StoreReplica?
    let registry = RegistryHolder(declared: config)
    if let storeConfig = config.store {
        do {
            let store = try openStore(storeConfig, watch: true, logger: logger)
            do {
                try await store.prepare()
            } catch where error.code == .unavailable {
                // PostgreSQL down at start: the schema is made on the first connection.
                logger.error("store: \(store.description) cannot be reached; starting not ready", metadata: ["error": "\(error)"])
            } catch {
                await store.close()
                throw error
            }
            replica = StoreReplica(store: store, logger: logger)
        } catch {
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        do {
            registry.setRegistry(try await replica!.load())
            logger.info("store: registry loaded", metadata: ["store": "\(replica!.store.description)"])
        } catch {
            logger.error("store: cannot load the registry; serving declared clients only, not ready until it loads", metadata: ["error": "\(error)"])
        }
    } else {
        replica = nil
    }
    do {
        // The access log's files are opened now: a path that cannot be written stops the start.
        // With an admin listener the writer also runs without files: it feeds the console's
        // recent lines and counts.
        if config.logging.accessLog != nil || config.logging.perClientDirectory != nil || config.admin.address != nil {
            accessLog = try AccessLogWriter(
                .init(path: config.logging.accessLog, perClientDirectory: config.logging.perClientDirectory),
                logger: logger,
                recent: config.admin.address != nil ? RecentRequests() : nil
            )
        } else {
            accessLog = nil
        }
        let keys = try keyManager.keys(for: config.issuers)
        let credential = try credentials.credential(for: config.upstream.auth)
        await keyManager.waitForInitialFetch(timeout: .seconds(10))
        await credentials.waitForFirstAttempt(of: credential, timeout: .seconds(10))
        server = try await GatewayServer.start(
            config: registry.effective(config, logger: logger),
            issuerKeys: keys,
            accessLog: accessLog,
            upstreamCredential: credential,
            storeStatus: replica?.status,
            group: group,
            logger: logger
        )
    } catch {
        logger.critical("\(error)")
        await keyManager.shutdown()
        await credentials.shutdown()
        await replica?.store.close()
        throw ExitCode(1)
    }
    for warning in config.warnings { logger.warning("\(warning)") }
    let tenants = TenantDirectoryFetcher(logger: logger, eventLoopGroup: group) { [server] in server.publishTenantDirectory($0) }
    tenants.configure(config.tenantDirectorySource, credential: try? credentials.credential(for: config.upstream.auth))
    // After the drain every loop has handed over its last lines: write them all, then return.
    defer { accessLog?.shutdown() }
    let readyLines =
        extraReadyLines + zip(server.boundSchemes, server.boundAddresses).map { "\($0)://\(urlHost($1))" }
        + (server.adminAddress.map { ["admin \(config.admin.tls == nil ? "http" : "https")://\(urlHost($0))"] } ?? [])
    let service = GatewayService(
        server: server,
        keyManager: keyManager,
        credentials: credentials,
        tenants: tenants,
        accessLog: accessLog,
        replica: replica,
        registry: registry,
        directory: config.directory,
        drainTimeout: config.limits.drainTimeout,
        logger: logger,
        ready: {
            // Announced only once every signal is trapped: a SIGHUP or SIGTERM sent right after
            // readiness must not find the default action (terminate) still in place.
            if let readyFile = runtime.readyFile {
                try writeAtomically(readyLines.joined(separator: "\n") + "\n", to: readyFile)
            }
            onReady?(server)
        }
    )
    server.setAdminReloader { try await service.reloadOrThrow() }
    if let replica {
        if let loaded = registry.registry { service.mergeRunTimeState(loaded) }
        server.setAdminStore(service.adminStoreHooks(replica))
    }
    let group_ = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: [.init(service: service)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    do {
        try await group_.run()
    } catch {
        await tenants.shutdown()
        await keyManager.shutdown()
        await credentials.shutdown()
        await replica?.store.close()
        throw error
    }
    await tenants.shutdown()
    await keyManager.shutdown()
    await credentials.shutdown()
    await replica?.store.close()
}

/// Waits for the graceful-shutdown signal, handling SIGHUP reloads meanwhile, then drains.
struct GatewayService: Service {
    let server: GatewayServer
    let keyManager: IssuerKeyManager
    let credentials: UpstreamCredentialManager
    let tenants: TenantDirectoryFetcher
    let accessLog: AccessLogWriter?
    /// `store:`; nil keeps clients in the config directory.
    let replica: StoreReplica?
    let registry: RegistryHolder
    let directory: String
    let drainTimeout: ConfigDuration
    let logger: Logger
    let ready: @Sendable () throws -> Void
    /// SIGHUP, the file poll and the admin API reload one at a time, in the order asked, so an
    /// older read of the directory never lands after a newer one.
    let reloads = ReloadQueue()
    /// When a client secret ends (its grace or its lifetime), the snapshot is compiled again.
    let secrets = SecretExpiryWatch()

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        let reopens = await UnixSignalsSequence(trapping: .sigusr1)
        // ServiceGroup traps SIGTERM and SIGINT before it runs its services.
        try self.ready()
        // Structured, so nothing outlives run() holding the server.
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await _ in hangups {
                    await self.reload()
                }
            }
            // SIGUSR1: reopen the access-log files (logrotate renames them first).
            tasks.addTask {
                for await _ in reopens {
                    self.accessLog?.reopen()
                }
            }
            // The built-in issuer's revocations and redemptions reach its state file within a
            // second, written here, off the event loops.
            tasks.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    self.server.persistIssuerState()
                }
            }
            // A secret whose grace or lifetime ended: its tokens are refused from the next
            // snapshot, compiled here within about a second; near expiries are warned about.
            tasks.addTask {
                self.secrets.configApplied(self.registry.effective(self.registry.declared, logger: self.logger), now: Self.now)
                while !Task.isCancelled {
                    self.secrets.warn(now: Self.now, logger: self.logger)
                    if self.secrets.boundaryPassed(now: Self.now) {
                        self.logger.info("a client secret ended (grace or lifetime); compiling the clients again")
                        try? await self.reloads.run { try await self.apply(self.registry.declared) }
                    }
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
            // The store: every registry loaded (a change announced, a reconnect, the periodic
            // resync) is applied; usage is written about once a second.
            if let replica = self.replica {
                tasks.addTask {
                    await replica.run(
                        apply: { await self.applyRegistry($0) },
                        collect: {
                            let outbox = self.server.issuerState?.takeOutbox()
                            let failures = self.server.failedAuthLimiter?.takeOutbox() ?? [:]
                            return UsageBatch(
                                lastUsed: self.server.usage.takeChanges(),
                                lastRedeemed: outbox?.redeemed ?? [:],
                                revocations: outbox?.revocations ?? [:],
                                failedAuth: failures.mapValues { FailureCount(start: $0.start, failures: $0.failures, window: $0.window) },
                                unlocks: self.server.failedAuthLimiter?.takeUnlocks() ?? [:]
                            )
                        }
                    )
                }
            }
            // Client limits across replicas: counters exchanged through PostgreSQL.
            if let replica = self.replica, let store = replica.store as? any LimitCounterStore,
                case .postgres(let settings)? = self.registry.declared.store
            {
                tasks.addTask {
                    await self.server.runLimitSync(store: store, interval: .nanoseconds(settings.limitsSync.nanoseconds))
                }
            }
            // A change to a *.yaml file of the directory reloads too (polled: no inotify needed,
            // and an editor's write-then-rename is seen as one change).
            tasks.addTask {
                var last = Self.fingerprint(self.directory)
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    let now = Self.fingerprint(self.directory)
                    if now != last {
                        last = now
                        self.logger.info("configuration files changed; reloading")
                        await self.reload()
                    }
                }
            }
            try? await gracefulShutdown()
            tasks.cancelAll()
        }
        self.logger.info("draining", metadata: ["timeout": "\(self.drainTimeout)"])
        await self.server.drain(timeout: .nanoseconds(self.drainTimeout.nanoseconds))
        self.server.persistIssuerState()
    }

    /// Names, sizes, modification times and inodes of the directory's *.yaml files, through
    /// symlinks: a Kubernetes ConfigMap volume changes only the target of `..data`, so the
    /// files the links lead to are what is compared.
    static func fingerprint(_ directory: String) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { name in
            var info = stat()
            guard stat((directory as NSString).appendingPathComponent(name), &info) == 0 else { return "\(name) -" }
            return "\(name) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) \(info.st_ino)"
        }
    }

    private func reload() async {
        try? await self.reloadOrThrow()
    }

    static var now: Int64 { Int64(Date().timeIntervalSince1970) }

    /// Loads the directory and applies it; a failure keeps the running configuration, is
    /// logged, and is thrown to the caller (the admin API answers with it).
    func reloadOrThrow() async throws {
        try await self.reloads.run { try await self.reloadNow() }
    }

    /// A registry loaded from the store: revocations and redemptions are merged at once; a
    /// change of clients or overrides is compiled into a new snapshot for every loop.
    func applyRegistry(_ loaded: Registry) async {
        self.mergeRunTimeState(loaded)
        guard self.registry.setRegistry(loaded) else { return }
        try? await self.reloads.run {
            do {
                try await self.apply(self.registry.declared)
                self.logger.info("store: client registry applied", metadata: ["clients": "\(loaded.clients.count)", "overrides": "\(loaded.overrides.count)"])
            } catch {
                self.logger.error("store: the registry could not be applied; keeping the running one:\n\(error)")
            }
        }
    }

    func mergeRunTimeState(_ loaded: Registry) {
        let now = Int64(Date().timeIntervalSince1970)
        self.server.issuerState?.merge(revocations: loaded.revocations, lastRedeemed: loaded.lastRedeemed, now: now)
        self.server.failedAuthLimiter?.merge(
            loaded.failedAuth.mapValues { FailedAuthLimiter.Count(start: $0.start, failures: $0.failures, window: $0.window) },
            unlocks: loaded.unlocks,
            now: now
        )
    }

    /// The admin API's writes: to the store, then the registry as it is now, applied before
    /// the answer.
    func adminStoreHooks(_ replica: StoreReplica) -> AdminStoreHooks {
        AdminStoreHooks(
            mutate: { mutation, actor throws(StoreError) in
                let context = RegistryContext(self.registry.declared)
                _ = try await replica.store.apply(ClientMutationRequest(mutation, context: context, actor: actor))
                await self.applyRegistry(try await replica.load())
            },
            audit: AuditTrail(store: replica.store),
            revoke: { tokenID, until throws(StoreError) in
                try await replica.store.record(UsageBatch(revocations: [tokenID: until]))
            },
            lastUsed: {
                var times = self.registry.registry?.lastUsed ?? [:]
                times.merge(self.server.usage.snapshot(), uniquingKeysWith: max)
                return times
            },
            lastRedeemed: {
                var times = self.registry.registry?.lastRedeemed ?? [:]
                times.merge(self.server.issuerState?.lastRedeemed ?? [:], uniquingKeysWith: max)
                return times
            }
        )
    }

    private func reloadNow() async throws {
        do {
            let config = try ConfigLoader.load(directory: self.directory)
            try await self.apply(config)
            for warning in config.warnings { self.logger.warning("\(warning)") }
            self.server.metrics.recordReload(succeeded: true)
            self.logger.info("configuration reloaded", metadata: ["directory": "\(self.directory)"])
        } catch {
            self.server.metrics.recordReload(succeeded: false)
            self.logger.error("reload failed; keeping the running configuration:\n\(error)")
            throw error
        }
    }

    /// Applies a declared configuration, with the store's clients when there is a store; it
    /// becomes the declared one only once every loop has it.
    private func apply(_ declared: GatewayConfig) async throws {
        // Unchanged URL issuers keep their fetched keys; a bad jwks_file fails the reload.
        let keys = try self.keyManager.keys(for: declared.issuers)
        // An unchanged upstream.auth keeps its credential (and token); a changed one is
        // obtained before it replaces the running one, which stops once it is applied.
        let credential = try self.credentials.credential(for: declared.upstream.auth)
        await self.credentials.waitForFirstAttempt(of: credential, timeout: .seconds(10))
        let effective = self.registry.effective(declared, logger: self.logger)
        let now = Self.now
        try await self.server.apply(effective, issuerKeys: keys, upstreamCredential: credential)
        self.secrets.configApplied(effective, now: now)
        self.registry.setDeclared(declared)
        self.credentials.commit(credential)
        self.tenants.configure(declared.tenantDirectorySource, credential: credential)
    }
}

/// Runs operations one after another, in the order they were asked for.
actor ReloadQueue {
    private var last: Task<Void, Never>?

    func run(_ operation: @escaping @Sendable () async throws -> Void) async throws {
        let previous = self.last
        let task = Task<Void, Error> {
            await previous?.value
            try await operation()
        }
        self.last = Task { _ = try? await task.value }
        try await task.value
    }
}

func urlHost(_ address: SocketAddress) -> String {
    let ip = address.ipAddress ?? "?"
    let port = address.port ?? 0
    return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
}

func writeAtomically(_ text: String, to path: String) throws {
    let temporary = path + ".tmp"
    try text.write(toFile: temporary, atomically: false, encoding: .utf8)
    guard rename(temporary, path) == 0 else { throw GatewayError(.io, reason: "cannot write \(path)") }
}

extension GatewayConfig {
    /// What `tenant_directory: {upstream:}` fetches; nil for a file or none.
    var tenantDirectorySource: TenantDirectoryFetcher.Source? {
        guard case .upstream(let path, let refresh)? = self.tenantDirectory else { return nil }
        let url = "\(self.upstream.scheme.rawValue)://\(self.upstream.authority)\(path)"
        return TenantDirectoryFetcher.Source(url: url, caFile: self.upstream.caFile, refresh: .nanoseconds(refresh.nanoseconds))
    }
}
