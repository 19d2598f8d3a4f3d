import Foundation

/// `store:`: where the run-time state lives (the client registry, run-time overrides of
/// declared clients, revocations, usage times). The config directory stays read-only.
public enum StoreConfig: Sendable, Equatable {
    /// `store: { path: DIR }`: the embedded store, one replica, a writable directory.
    case directory(path: String)
    /// `store: { postgres: { url_file: FILE, tls: { ca_file: FILE } } }`: several replicas.
    case postgres(PostgresStoreConfig)
}

public struct PostgresStoreConfig: Sendable, Equatable {
    /// Holds `postgres://user:password@host:port/database`, resolved.
    public var urlFile: String
    /// `tls:` present: TLS required; nil allows plain TCP to loopback addresses only.
    public var tls: TLS?
    /// `store.limits_sync`: how often each replica exchanges its limit counters with the
    /// others through PostgreSQL (default 1s).
    public var limitsSync: ConfigDuration = Self.defaultLimitsSync

    public static let defaultLimitsSync = ConfigDuration(parsing: "1s")!

    public struct TLS: Sendable, Equatable {
        /// The CA that signs the server's certificate; nil trusts the system store.
        public var caFile: String?
        public init(caFile: String?) { self.caFile = caFile }
    }

    public init(urlFile: String, tls: TLS?) {
        self.urlFile = urlFile
        self.tls = tls
    }
}

extension ConfigLoader {
    static func store(_ node: ConfigNode, _ errors: inout [ConfigError]) -> StoreConfig? {
        guard let entries = node.mapping(&errors) else { return nil }
        node.checkKeys(entries, known: ["path", "postgres", "limits_sync"], &errors)
        let path = entries.first { $0.key == "path" }?.value
        let postgres = entries.first { $0.key == "postgres" }?.value
        var limitsSync = PostgresStoreConfig.defaultLimitsSync
        if let syncNode = entries.first(where: { $0.key == "limits_sync" })?.value {
            guard path == nil else {
                errors.append(syncNode.error("limits_sync applies to the PostgreSQL store only (one replica needs no exchange)"))
                return nil
            }
            guard let duration = syncNode.duration(&errors) else { return nil }
            guard duration.nanoseconds >= 100_000_000, duration.nanoseconds <= 60_000_000_000 else {
                errors.append(syncNode.error("expected a duration from 100ms to 60s"))
                return nil
            }
            limitsSync = duration
        }
        switch (path, postgres) {
        case (let path?, nil):
            guard let text = path.string(&errors) else { return nil }
            guard !text.isEmpty else {
                errors.append(path.error("expected a writable directory"))
                return nil
            }
            return .directory(path: Self.resolve(text, relativeTo: path.file))
        case (nil, let postgres?):
            guard let entries = postgres.mapping(&errors) else { return nil }
            postgres.checkKeys(entries, known: ["url_file", "tls"], &errors)
            guard let urlNode = entries.first(where: { $0.key == "url_file" })?.value else {
                errors.append(postgres.error("missing url_file (a file holding postgres://user:password@host:port/database)"))
                return nil
            }
            guard let url = urlNode.string(&errors), !url.isEmpty else { return nil }
            var tls: PostgresStoreConfig.TLS?
            if let tlsNode = entries.first(where: { $0.key == "tls" })?.value {
                guard let tlsEntries = tlsNode.mapping(&errors) else { return nil }
                tlsNode.checkKeys(tlsEntries, known: ["ca_file"], &errors)
                var ca: String?
                if let caNode = tlsEntries.first(where: { $0.key == "ca_file" })?.value, let text = caNode.string(&errors) {
                    ca = Self.resolve(text, relativeTo: caNode.file)
                }
                tls = .init(caFile: ca)
            }
            var settings = PostgresStoreConfig(urlFile: Self.resolve(url, relativeTo: urlNode.file), tls: tls)
            settings.limitsSync = limitsSync
            return .postgres(settings)
        case (_?, _?):
            errors.append(node.error("set path or postgres, not both"))
            return nil
        case (nil, nil):
            errors.append(node.error("expected path: DIR (embedded) or postgres: {url_file: FILE}"))
            return nil
        }
    }
}
