import Foundation
import Logging
import NIOCore
import NIOSSL
import PortcullisPolicy
import PostgresNIO

/// The shared store for several replicas (`store: { postgres: { url_file, tls } }`).
///
/// One connection runs the commands (serialised: they are rare, and one at a time keeps each
/// change's check and write in one transaction under an advisory lock); a second one LISTENs on
/// `portcullis_registry`, which every change NOTIFYs, so every replica reloads within a
/// second. The listener yields on every (re)connect too: a replica that missed notifications
/// while cut off resyncs in full. The schema is created and migrated by ``prepare()``
/// (versioned in `portcullis_schema`), and again lazily after the store comes back.
public final class PostgresStore: ClientStore {
    public static let channel = "portcullis_registry"
    /// `pg_advisory_xact_lock` key serialising changes and migrations across replicas.
    static let lockKey: Int64 = 0x706F_7274_6375_6C

    /// Statements of each schema version, in order; the schema's version is how many ran.
    static let migrations: [[String]] = [
        [
            "CREATE TABLE portcullis_clients (id text PRIMARY KEY, body text NOT NULL)",
            "CREATE TABLE portcullis_overrides (id text PRIMARY KEY, body text NOT NULL)",
            "CREATE TABLE portcullis_revocations (token_id text PRIMARY KEY, expires_at bigint NOT NULL)",
            "CREATE TABLE portcullis_usage (client_id text PRIMARY KEY, last_used bigint, last_redeemed bigint)",
        ],
        [
            "CREATE TABLE portcullis_failed_auth (key text PRIMARY KEY, window_start bigint NOT NULL, failures bigint NOT NULL, window_seconds bigint NOT NULL)"
        ],
        [
            "CREATE TABLE portcullis_failed_auth_unlocks (key text PRIMARY KEY, unlocked_at bigint NOT NULL)"
        ],
        // Client limits across replicas (LimitCounterStore).
        [
            """
            CREATE TABLE portcullis_limit_counts (client_id text NOT NULL, kind text NOT NULL, window_start bigint NOT NULL, \
            replica_id text NOT NULL, count bigint NOT NULL, updated_at bigint NOT NULL, \
            PRIMARY KEY (client_id, kind, window_start, replica_id))
            """,
            "CREATE TABLE portcullis_replicas (replica_id text PRIMARY KEY, seen_at bigint NOT NULL)",
        ],
        // The audit trail.
        [
            "CREATE TABLE portcullis_audit (seq bigserial PRIMARY KEY, ts bigint NOT NULL, client_id text, actor text NOT NULL, action text NOT NULL, body text NOT NULL)",
            "CREATE INDEX portcullis_audit_client ON portcullis_audit (client_id, seq)",
        ],
    ]

    public let description: String
    private let configuration: PostgresConnection.Configuration
    private let session: Session
    private let logger: Logger
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let listener: Task<Void, Never>?

    /// Reads `url_file`; plain TCP only to a loopback address, else `tls:` is required.
    public init(_ settings: PostgresStoreConfig, listen: Bool, logger: Logger) throws(StoreError) {
        guard let data = FileManager.default.contents(atPath: settings.urlFile) else {
            throw StoreError(.io, reason: "store.postgres.url_file: cannot read \(settings.urlFile)")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let url = try Self.parseURL(text, file: settings.urlFile)
        let tls: PostgresConnection.Configuration.TLS
        if let tlsSettings = settings.tls {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let ca = tlsSettings.caFile { configuration.trustRoots = .file(ca) }
            do {
                tls = .require(try NIOSSLContext(configuration: configuration))
            } catch {
                throw StoreError(.io, reason: "store.postgres.tls: \(error)")
            }
        } else {
            guard Self.isLoopback(url.host) else {
                throw StoreError(
                    .io,
                    reason: "store.postgres: \(url.host) is not a loopback address; set tls: (with ca_file) to reach PostgreSQL over the network"
                )
            }
            tls = .disable
        }
        var configuration = PostgresConnection.Configuration(
            host: url.host,
            port: url.port,
            username: url.user,
            password: url.password,
            database: url.database,
            tls: tls
        )
        configuration.options.connectTimeout = .seconds(2)
        self.configuration = configuration
        self.description = "postgres \(url.user)@\(url.host):\(url.port)/\(url.database ?? url.user)"
        self.logger = logger
        self.session = Session(configuration: configuration, logger: logger)
        (self.stream, self.continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        if listen {
            let continuation = self.continuation
            self.listener = Task { await Self.listen(configuration: configuration, continuation: continuation, logger: logger) }
        } else {
            self.listener = nil
        }
    }

    // MARK: - ClientStore

    public func prepare() async throws(StoreError) {
        try await self.session.run { connection, logger in try await Self.migrate(connection, logger: logger) }
    }

    public func load() async throws(StoreError) -> Registry {
        try await self.session.run { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                try await Self.read(connection, logger: logger)
            }
        }
    }

    public func update(_ decide: @Sendable (Registry) throws(StoreError) -> (StoreChange, AuditEvent?)) async throws(StoreError) -> StoreChange {
        let decided = DecideBox()
        do throws(StoreError) {
            return try await self.session.run { connection, logger in
                try await connection.withTransaction(logger: logger) { connection in
                    try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: logger)
                    let registry = try await Self.read(connection, logger: logger)
                    let change: StoreChange
                    let event: AuditEvent?
                    do throws(StoreError) {
                        (change, event) = try decide(registry)
                    } catch {
                        decided.error = error
                        throw error
                    }
                    try await Self.write(change, connection, logger: logger)
                    if let event { try await Self.insert(event, connection, logger: logger) }
                    try await connection.query("NOTIFY portcullis_registry", logger: logger)
                    return change
                }
            }
        } catch {
            // The check's own refusal, not the store's failure.
            if let refusal = decided.error { throw refusal }
            throw error
        }
    }

    public func record(_ batch: UsageBatch) async throws(StoreError) {
        guard !batch.isEmpty else { return }
        try await self.session.run { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                try await Self.upsertLatest(batch.lastUsed, into: "portcullis_usage", key: "client_id", column: "last_used", connection, logger)
                try await Self.upsertLatest(batch.lastRedeemed, into: "portcullis_usage", key: "client_id", column: "last_redeemed", connection, logger)
                try await Self.upsertLatest(batch.revocations, into: "portcullis_revocations", key: "token_id", column: "expires_at", connection, logger)
                if !batch.failedAuth.isEmpty {
                    let keys = Array(batch.failedAuth.keys)
                    let starts = keys.map { batch.failedAuth[$0]!.start }
                    let failures = keys.map { Int64(batch.failedAuth[$0]!.failures) }
                    let windows = keys.map { batch.failedAuth[$0]!.window }
                    // The same window (started before the stored one ends) adds up; a later one starts afresh.
                    try await connection.query(
                        """
                        INSERT INTO portcullis_failed_auth (key, window_start, failures, window_seconds)
                        SELECT * FROM unnest(\(keys)::text[], \(starts)::bigint[], \(failures)::bigint[], \(windows)::bigint[])
                        ON CONFLICT (key) DO UPDATE SET
                          failures = CASE WHEN EXCLUDED.window_start < portcullis_failed_auth.window_start + portcullis_failed_auth.window_seconds
                            THEN portcullis_failed_auth.failures + EXCLUDED.failures ELSE EXCLUDED.failures END,
                          window_start = CASE WHEN EXCLUDED.window_start < portcullis_failed_auth.window_start + portcullis_failed_auth.window_seconds
                            THEN portcullis_failed_auth.window_start ELSE EXCLUDED.window_start END
                        """,
                        logger: logger
                    )
                }
                if !batch.unlocks.isEmpty {
                    let keys = Array(batch.unlocks.keys)
                    try await Self.upsertLatest(batch.unlocks, into: "portcullis_failed_auth_unlocks", key: "key", column: "unlocked_at", connection, logger)
                    try await connection.query(
                        """
                        DELETE FROM portcullis_failed_auth f USING portcullis_failed_auth_unlocks u
                        WHERE f.key = u.key AND f.window_start <= u.unlocked_at AND f.key = ANY(\(keys)::text[])
                        """,
                        logger: logger
                    )
                }
                if !batch.revocations.isEmpty || !batch.failedAuth.isEmpty || !batch.unlocks.isEmpty {
                    try await connection.query("NOTIFY portcullis_registry", logger: logger)
                }
            }
        }
    }

    /// `values` (key -> seconds) into `table`, where a later time wins over the stored one.
    private static func upsertLatest(
        _ values: [String: Int64],
        into table: String,
        key: String,
        column: String,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws {
        guard !values.isEmpty else { return }
        let keys = Array(values.keys)
        let times = keys.map { values[$0]! }
        try await connection.query(
            """
            INSERT INTO \(unescaped: table) (\(unescaped: key), \(unescaped: column))
            SELECT * FROM unnest(\(keys)::text[], \(times)::bigint[])
            ON CONFLICT (\(unescaped: key)) DO UPDATE SET \(unescaped: column) = GREATEST(\(unescaped: table).\(unescaped: column), EXCLUDED.\(unescaped: column))
            """,
            logger: logger
        )
    }

    public func appendAudit(_ event: AuditEvent) async throws(StoreError) {
        try await self.session.run { connection, logger in try await Self.insert(event, connection, logger: logger) }
    }

    public func audit(_ filter: AuditFilter) async throws(StoreError) -> [AuditEvent] {
        try await self.session.run { connection, logger in
            let since = filter.since ?? 0
            let limit = Int64(filter.limit)
            var events: [AuditEvent] = []
            let decoder = JSONDecoder()
            let rows = try await connection.query(
                """
                SELECT body FROM (
                  SELECT seq, body FROM portcullis_audit
                  WHERE ts >= \(since) AND (\(filter.clientID)::text IS NULL OR client_id = \(filter.clientID))
                    AND (\(filter.actor)::text IS NULL OR actor = \(filter.actor))
                  ORDER BY seq DESC
                ) AS recent ORDER BY seq
                """,
                logger: logger
            )
            for try await body in rows.decode(String.self) {
                guard let event = try? decoder.decode(AuditEvent.self, from: Data(body.utf8)), filter.matches(event) else { continue }
                events.append(event)
            }
            return Array(events.suffix(Int(limit)))
        }
    }

    static func insert(_ event: AuditEvent, _ connection: PostgresConnection, logger: Logger) async throws {
        let body = String(decoding: AuditLogFile.line(event).dropLast(), as: UTF8.self)
        let ts = UTCTime.seconds(event.ts) ?? Int64(Date().timeIntervalSince1970)
        try await connection.query(
            "INSERT INTO portcullis_audit (ts, client_id, actor, action, body) VALUES (\(ts), \(event.clientID), \(event.actor), \(event.action), \(body))",
            logger: logger
        )
    }

    public func replaceAll(with registry: Registry) async throws(StoreError) {
        try await self.session.run { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: logger)
                for table in ["portcullis_clients", "portcullis_overrides", "portcullis_revocations", "portcullis_usage"] {
                    try await connection.query(PostgresQuery(unsafeSQL: "DELETE FROM \(table)"), logger: logger)
                }
                for client in registry.clients.values { try await Self.write(.put(client), connection, logger: logger) }
                for (id, override) in registry.overrides { try await Self.write(.override(id: id, override), connection, logger: logger) }
                for (id, until) in registry.revocations { try await Self.write(.revoke(tokenID: id, until: until), connection, logger: logger) }
                for id in Set(registry.lastUsed.keys).union(registry.lastRedeemed.keys) {
                    let used = registry.lastUsed[id]
                    let redeemed = registry.lastRedeemed[id]
                    try await connection.query(
                        "INSERT INTO portcullis_usage (client_id, last_used, last_redeemed) VALUES (\(id), \(used), \(redeemed))",
                        logger: logger
                    )
                }
                try await connection.query("NOTIFY portcullis_registry", logger: logger)
            }
        }
    }

    public func changes() -> AsyncStream<Void> { self.stream }

    public func close() async {
        self.listener?.cancel()
        await self.listener?.value
        self.continuation.finish()
        await self.session.close()
    }

    // MARK: - SQL

    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: logger)
            try await connection.query("CREATE TABLE IF NOT EXISTS portcullis_schema (version integer NOT NULL)", logger: logger)
            var version: Int32?
            for try await (value) in try await connection.query("SELECT version FROM portcullis_schema", logger: logger).decode(Int32.self) {
                version = value
            }
            if version == nil {
                try await connection.query("INSERT INTO portcullis_schema (version) VALUES (0)", logger: logger)
            }
            let current = Int(version ?? 0)
            guard current <= Self.migrations.count else {
                throw StoreError(.io, reason: "the PostgreSQL schema is at version \(current), newer than this Portcullis knows (\(Self.migrations.count)); upgrade it")
            }
            for statements in Self.migrations.dropFirst(current) {
                for statement in statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
            }
            if current < Self.migrations.count {
                let target = Int32(Self.migrations.count)
                try await connection.query("UPDATE portcullis_schema SET version = \(target)", logger: logger)
                logger.info("store: PostgreSQL schema migrated", metadata: ["from": "\(current)", "to": "\(target)"])
            }
        }
    }

    static func read(_ connection: PostgresConnection, logger: Logger) async throws -> Registry {
        var registry = Registry()
        let decoder = JSONDecoder()
        for try await (id, body) in try await connection.query("SELECT id, body FROM portcullis_clients", logger: logger).decode((String, String).self) {
            registry.clients[id] = try decoder.decode(StoredClient.self, from: Data(body.utf8))
        }
        for try await (id, body) in try await connection.query("SELECT id, body FROM portcullis_overrides", logger: logger).decode((String, String).self) {
            registry.overrides[id] = try decoder.decode(ClientOverride.self, from: Data(body.utf8))
        }
        let now = Int64(Date().timeIntervalSince1970)
        for try await (id, until) in try await connection.query(
            "SELECT token_id, expires_at FROM portcullis_revocations WHERE expires_at > \(now)",
            logger: logger
        ).decode((String, Int64).self) {
            registry.revocations[id] = until
        }
        for try await (id, used, redeemed) in try await connection.query(
            "SELECT client_id, last_used, last_redeemed FROM portcullis_usage",
            logger: logger
        ).decode((String, Int64?, Int64?).self) {
            if let used { registry.lastUsed[id] = used }
            if let redeemed { registry.lastRedeemed[id] = redeemed }
        }
        for try await (key, start, failures, window) in try await connection.query(
            "SELECT key, window_start, failures, window_seconds FROM portcullis_failed_auth WHERE window_start + window_seconds > \(now)",
            logger: logger
        ).decode((String, Int64, Int64, Int64).self) {
            registry.failedAuth[key] = FailureCount(start: start, failures: Int(failures), window: window)
        }
        for try await (key, at) in try await connection.query(
            "SELECT key, unlocked_at FROM portcullis_failed_auth_unlocks WHERE unlocked_at > \(now - Registry.unlockMemory)",
            logger: logger
        ).decode((String, Int64).self) {
            registry.unlocks[key] = at
        }
        return registry
    }

    static func write(_ change: StoreChange, _ connection: PostgresConnection, logger: Logger) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        switch change {
        case .put(let client):
            let body = String(decoding: try encoder.encode(client), as: UTF8.self)
            try await connection.query(
                "INSERT INTO portcullis_clients (id, body) VALUES (\(client.id), \(body)) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                logger: logger
            )
        case .override(let id, let override):
            let body = String(decoding: try encoder.encode(override), as: UTF8.self)
            try await connection.query(
                "INSERT INTO portcullis_overrides (id, body) VALUES (\(id), \(body)) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                logger: logger
            )
        case .remove(let id):
            try await connection.query("DELETE FROM portcullis_clients WHERE id = \(id)", logger: logger)
            try await connection.query("DELETE FROM portcullis_overrides WHERE id = \(id)", logger: logger)
        case .revoke(let id, let until):
            try await connection.query(
                """
                INSERT INTO portcullis_revocations (token_id, expires_at) VALUES (\(id), \(until))
                ON CONFLICT (token_id) DO UPDATE SET expires_at = GREATEST(portcullis_revocations.expires_at, EXCLUDED.expires_at)
                """,
                logger: logger
            )
        }
        let now = Int64(Date().timeIntervalSince1970)
        try await connection.query("DELETE FROM portcullis_revocations WHERE expires_at <= \(now)", logger: logger)
        try await connection.query("DELETE FROM portcullis_failed_auth WHERE window_start + window_seconds <= \(now)", logger: logger)
        try await connection.query("DELETE FROM portcullis_failed_auth_unlocks WHERE unlocked_at <= \(now - Registry.unlockMemory)", logger: logger)
    }

    // MARK: - LISTEN

    private static func listen(
        configuration: PostgresConnection.Configuration,
        continuation: AsyncStream<Void>.Continuation,
        logger: Logger
    ) async {
        var connectionID = 1_000
        var wasUp = true
        while !Task.isCancelled {
            connectionID += 1
            var connection: PostgresConnection?
            do {
                let open = try await PostgresConnection.connect(configuration: configuration, id: connectionID, logger: logger)
                connection = open
                try await open.listen(on: Self.channel) { notifications in
                    // (Re)connected and listening: whatever was missed meanwhile is read in full.
                    if !wasUp { logger.info("store: PostgreSQL reachable again; resyncing") }
                    wasUp = true
                    continuation.yield()
                    for try await _ in notifications {
                        continuation.yield()
                    }
                }
            } catch {
                if wasUp && !Task.isCancelled {
                    logger.warning("store: PostgreSQL listener lost; deciding on the last registry", metadata: ["error": "\(String(reflecting: error))"])
                    // The replica notices the failure on its next load.
                    continuation.yield()
                }
                wasUp = false
            }
            try? await connection?.close()
            if Task.isCancelled { break }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    // MARK: - The URL

    struct ParsedURL: Equatable {
        var user: String
        var password: String?
        var host: String
        var port: Int
        var database: String?
    }

    static func parseURL(_ text: String, file: String) throws(StoreError) -> ParsedURL {
        guard let components = URLComponents(string: text), components.scheme == "postgres" || components.scheme == "postgresql",
            let rawHost = components.host, !rawHost.isEmpty, let user = components.user, !user.isEmpty
        else {
            throw StoreError(.io, reason: "store.postgres.url_file: \(file) does not hold a postgres://user:password@host:port/database URL")
        }
        var host = rawHost
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        return ParsedURL(
            user: components.percentEncodedUser?.removingPercentEncoding ?? user,
            password: components.percentEncodedPassword?.removingPercentEncoding,
            host: host,
            port: components.port ?? 5432,
            database: path.isEmpty ? nil : path
        )
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || (host.hasPrefix("127.") && host.split(separator: ".").count == 4)
    }
}

extension PostgresStore: LimitCounterStore {
    /// One transaction: this replica's heartbeat and counts upserted, rows no window needs any
    /// more deleted, the others' rows of the current windows read.
    public func exchangeLimitCounts(
        replica: String,
        counts: [LimitCount],
        day: Int64,
        month: Int64,
        now: Int64,
        aliveSeconds: Int64
    ) async throws(StoreError) -> LimitExchange {
        try await self.session.run { connection, logger in
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query(
                    """
                    INSERT INTO portcullis_replicas (replica_id, seen_at) VALUES (\(replica), \(now))
                    ON CONFLICT (replica_id) DO UPDATE SET seen_at = EXCLUDED.seen_at
                    """,
                    logger: logger
                )
                if !counts.isEmpty {
                    let ids = counts.map(\.clientID)
                    let kinds = counts.map(\.kind.rawValue)
                    let windows = counts.map(\.window)
                    let values = counts.map(\.count)
                    try await connection.query(
                        """
                        INSERT INTO portcullis_limit_counts (client_id, kind, window_start, replica_id, count, updated_at)
                        SELECT c, k, w, \(replica), n, \(now) FROM unnest(\(ids)::text[], \(kinds)::text[], \(windows)::bigint[], \(values)::bigint[]) AS t(c, k, w, n)
                        ON CONFLICT (client_id, kind, window_start, replica_id) DO UPDATE SET count = EXCLUDED.count, updated_at = EXCLUDED.updated_at
                        """,
                        logger: logger
                    )
                }
                // A rate total of a replica gone for an hour, a quota window over for 32 days, a replica gone for a day.
                let rateHorizon = now - 3_600
                let quotaHorizon = now - 32 * 86_400
                try await connection.query(
                    """
                    DELETE FROM portcullis_limit_counts
                    WHERE (kind = 'rate' AND updated_at < \(rateHorizon)) OR updated_at < \(quotaHorizon)
                    """,
                    logger: logger
                )
                let replicaHorizon = now - 86_400
                try await connection.query("DELETE FROM portcullis_replicas WHERE seen_at < \(replicaHorizon)", logger: logger)
                var others: [String: [LimitCount]] = [:]
                for try await (client, kind, window, other, count) in try await connection.query(
                    """
                    SELECT client_id, kind, window_start, replica_id, count FROM portcullis_limit_counts
                    WHERE replica_id <> \(replica)
                      AND (kind = 'rate' OR (kind = 'day' AND window_start = \(day)) OR (kind = 'month' AND window_start = \(month)))
                    """,
                    logger: logger
                ).decode((String, String, Int64, String, Int64).self) {
                    guard let kind = LimitCount.Kind(rawValue: kind) else { continue }
                    others[other, default: []].append(LimitCount(clientID: client, kind: kind, window: window, count: count))
                }
                let aliveSince = now - aliveSeconds
                var alive: Int64 = 0
                for try await (count) in try await connection.query(
                    "SELECT count(*) FROM portcullis_replicas WHERE seen_at >= \(aliveSince) AND replica_id <> \(replica)",
                    logger: logger
                ).decode(Int64.self) {
                    alive = count
                }
                return LimitExchange(others: others, replicas: Int(alive) + 1)
            }
        }
    }
}

/// Carries the check's refusal out of the transaction closure.
private final class DecideBox: @unchecked Sendable {
    var error: StoreError?
}

/// The command connection: opened on first use, again after it broke.
private actor Session {
    private let configuration: PostgresConnection.Configuration
    private let logger: Logger
    private var connection: PostgresConnection?
    private var nextID = 1
    private var prepared = false

    init(configuration: PostgresConnection.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs `body` on the connection; a failure to connect or a connection lost is
    /// ``StoreError/Code/unavailable``.
    func run<Result: Sendable>(_ body: (PostgresConnection, Logger) async throws -> Result) async throws(StoreError) -> Result {
        let connection: PostgresConnection
        do {
            connection = try await self.open()
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.unavailable, reason: "PostgreSQL cannot be reached: \(Self.describe(error))")
        }
        // A database that accepts the connection and then never answers must not hold an admin
        // write or a usage flush forever: past the deadline the connection is closed, which
        // ends the query in flight.
        let watchdog = Task { [connection] () -> Bool in
            do { try await Task.sleep(for: Self.queryDeadline) } catch { return false }
            try? await connection.close()
            return true
        }
        defer { watchdog.cancel() }
        do {
            return try await body(connection, self.logger)
        } catch let error as StoreError {
            throw error
        } catch {
            watchdog.cancel()
            if await watchdog.value || connection.isClosed || Self.isConnectionLoss(error) {
                // Another operation may have opened a new connection meanwhile: keep that one.
                if self.connection === connection { self.connection = nil }
                try? await connection.close()
                throw StoreError(
                    .unavailable,
                    reason: "the connection to PostgreSQL was lost or gave no answer within \(Self.queryDeadline): \(Self.describe(error))"
                )
            }
            throw StoreError(.io, reason: "PostgreSQL: \(Self.describe(error))")
        }
    }

    /// The connection went away under the query (another operation's deadline closed it, or
    /// the server did): the store is unavailable, not refusing the write.
    static func isConnectionLoss(_ error: any Error) -> Bool {
        if let transaction = error as? PostgresTransactionError {
            return [transaction.beginError, transaction.closureError, transaction.commitError].contains { $0.map(Self.isConnectionLoss) ?? false }
        }
        guard let error = error as? PSQLError else { return false }
        return [.clientClosedConnection, .serverClosedConnection, .connectionError, .uncleanShutdown].contains(error.code)
    }

    /// The longest one store operation may take.
    static let queryDeadline = Duration.seconds(10)

    private func open() async throws -> PostgresConnection {
        if let connection = self.connection, !connection.isClosed { return connection }
        if let stale = self.connection {
            self.connection = nil
            try? await stale.close()
        }
        self.nextID += 1
        let connection = try await PostgresConnection.connect(configuration: self.configuration, id: self.nextID, logger: self.logger)
        // The actor is re-entered while connecting: another operation may have connected first.
        // Every connection dropped is closed first (PostgresNIO asserts it).
        if let raced = self.connection {
            if !raced.isClosed {
                try? await connection.close()
                return raced
            }
            self.connection = nil
            try? await raced.close()
        }
        self.connection = connection
        // Created here too, so a store that came back empty (a new cluster) is usable.
        if !self.prepared {
            try await PostgresStore.migrate(connection, logger: self.logger)
            self.prepared = true
        }
        return connection
    }

    func close() async {
        if let connection = self.connection {
            self.connection = nil
            try? await connection.close()
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        return "\(error)"
    }
}
