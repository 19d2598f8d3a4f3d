/// The gateway's whole configuration after loading and validation: an immutable snapshot.
public struct GatewayConfig: Sendable {
    public var directory: String
    public var listeners: [ListenerConfig]
    /// `admin:`: the listener for `/metrics`, `/healthz` and `/readyz`.
    public var admin: AdminConfig
    public var upstream: UpstreamConfig
    public var trustedProxies: CIDRSet
    public var logging: LoggingConfig
    public var limits: Limits
    /// `path_firewall:`: path forms refused before the rules (all of them unless opted out).
    public var pathFirewall: PathFirewall = PathFirewall()
    /// `compression:`: gzip/deflate of upstream responses for clients that accept it.
    public var compression: CompressionConfig = CompressionConfig()
    /// `store:`: where clients and run-time state are written; nil keeps clients in the
    /// config directory's `clients:` (edited in place) and issuer state in its `state_file`.
    public var store: StoreConfig?
    public var issuers: [IssuerConfig]
    public var clients: [ClientConfig]
    /// `roles:`, in file order.
    public var roles: [RoleConfig]
    /// `catalog:`, when configured.
    public var catalog: PermissionCatalog?
    /// Roles, catalogue and clients compiled for the request path. Built by `init` from the
    /// values passed to it: after changing `roles`, `catalog`, `clients` or the profile, build a
    /// new one (`AccessPolicy(roles:catalog:clients:caseInsensitivePaths:)`).
    public var policy: AccessPolicy
    /// `tenant_directory:` (CIPP profile): where tenant ids and domains are resolved.
    public var tenantDirectory: TenantDirectoryConfig?
    /// `client_limits:`: the limits of every client unless its roles or its own entry say
    /// otherwise (the most specific wins).
    public var clientLimits: ClientLimits?
    /// What loaded but deserves the operator's eye (printed by `check`, logged on load).
    public var warnings: [ConfigError] = []

    public init(
        directory: String,
        listeners: [ListenerConfig],
        admin: AdminConfig = AdminConfig(),
        upstream: UpstreamConfig,
        trustedProxies: CIDRSet = .empty,
        logging: LoggingConfig = LoggingConfig(),
        limits: Limits = Limits(),
        issuers: [IssuerConfig] = [],
        clients: [ClientConfig] = [],
        roles: [RoleConfig] = [],
        catalog: PermissionCatalog? = nil
    ) {
        self.directory = directory
        self.listeners = listeners
        self.admin = admin
        self.upstream = upstream
        self.trustedProxies = trustedProxies
        self.logging = logging
        self.limits = limits
        self.issuers = issuers
        self.clients = clients
        self.roles = roles
        self.catalog = catalog
        self.policy = AccessPolicy(
            roles: roles,
            catalog: catalog,
            clients: clients,
            caseInsensitivePaths: upstream.pathsAreCaseInsensitive,
            permissionsCoverEveryMethod: upstream.profile == .cipp
        )
    }
}

/// A host and port as written in `listen[].address` (`0.0.0.0:8080`, `[::]:8443`).
public struct HostPort: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `[v6]:port`; a bare IPv6 address without brackets is ambiguous.
    public init?(parsing text: String) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), case .v6 = IPAddress(parsing: host) else { return nil }
            guard let port = HostPort.port(rest.dropFirst()) else { return nil }
            self.init(host: host, port: port)
        } else {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, let port = HostPort.port(parts[1]) else { return nil }
            self.init(host: String(parts[0]), port: port)
        }
    }

    private static func port(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let port = Int(text), port <= 65535, text == "0" || !text.hasPrefix("0")
        else { return nil }
        return port
    }

    public var description: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }
}

public struct ListenerConfig: Sendable {
    public var address: HostPort
    /// `tls:`: this listener speaks HTTPS only.
    public var tls: ListenerTLSConfig?
    public var location: SourceLocation?

    public init(address: HostPort, tls: ListenerTLSConfig? = nil, location: SourceLocation? = nil) {
        self.address = address
        self.tls = tls
        self.location = location
    }
}

/// The `admin:` section. With no `address` there is no admin listener.
public struct AdminConfig: Sendable {
    /// Where `/metrics`, `/healthz` and `/readyz` are served (same syntax as `listen[].address`).
    public var address: HostPort?
    /// The admin API's bearer token file (resolved against the config file's directory); kept
    /// for the admin API, which the three endpoints above do not need.
    public var tokenFile: String?
    /// Named admin tokens (`admin.tokens`); the audit trail records the name of the one used.
    /// `token_file` alone is one token named `admin`.
    public var tokens: [AdminTokenConfig] = []
    /// `admin.tls`: HTTPS on the admin listener (the console's cookie is then `Secure`).
    public var tls: ListenerTLSConfig?
    /// Where `address` was written.
    public var location: SourceLocation?

    public init(address: HostPort? = nil, tokenFile: String? = nil, location: SourceLocation? = nil) {
        self.address = address
        self.tokenFile = tokenFile
        self.location = location
    }
}

/// One `admin.tokens` entry: a name and the token's SHA-256 or a file holding the token.
public struct AdminTokenConfig: Sendable, Equatable {
    public var name: String
    /// Lowercase hex SHA-256 of the token.
    public var tokenSHA256: String?
    /// A file holding the token (resolved), read at each (re)load.
    public var tokenFile: String?

    public init(name: String, tokenSHA256: String? = nil, tokenFile: String? = nil) {
        self.name = name
        self.tokenSHA256 = tokenSHA256
        self.tokenFile = tokenFile
    }
}

public struct UpstreamConfig: Sendable {
    public enum Scheme: String, Sendable {
        case http
        case https
    }

    public var scheme: Scheme
    public var host: String
    public var port: Int
    /// One whole exchange, from the request head to the end of the response. CIPP's limit.
    public var timeout: ConfigDuration
    public var connectTimeout: ConfigDuration
    /// PEM bundle of the CAs to trust instead of the system bundle (https only).
    public var caFile: String?
    /// What the gateway knows of the backend (`upstream.profile`).
    public var profile: UpstreamProfile
    /// `case_insensitive_paths`: the backend routes paths ASCII case-insensitively (ASP.NET,
    /// IIS, Azure Functions), so rules must match that way too.
    public var caseInsensitivePaths: Bool = false
    /// Rules match ASCII case-insensitively: `case_insensitive_paths`, or the CIPP profile
    /// (its endpoint names are case-insensitive), which cannot turn it off.
    public var pathsAreCaseInsensitive: Bool { self.caseInsensitivePaths || self.profile == .cipp }
    /// `drop_headers_with_underscores`: no client header whose name holds `_` is forwarded
    /// (nginx's default). Off, only names that read as a header the gateway sets or removes
    /// once `_` is read as `-` are dropped.
    public var dropHeadersWithUnderscores: Bool = false
    /// `max_concurrent`: exchanges in flight to the backend from this gateway, all clients
    /// together; nil for no cap.
    public var maxConcurrent: Int?
    /// `queue.size`: exchanges that may wait for a slot beyond `maxConcurrent` (503 beyond).
    public var queueSize: Int = 256
    /// `queue.timeout`: the longest an exchange waits for a slot (then 503).
    public var queueTimeout: ConfigDuration = .seconds(5)
    /// Pooled idle upstream connections are closed after this long (keep below the backend's).
    public var keepaliveTimeout: ConfigDuration
    /// Idle upstream connections kept per event loop.
    public var maxIdleConnections: Int
    /// SO_RCVBUF of upstream sockets in bytes; 0 leaves it to kernel autotuning.
    public var receiveBuffer: Int
    /// Where `auth:` was written.
    public var authLocation: SourceLocation?
    /// `auth:`: the credential presented upstream; nil sends none.
    public var auth: UpstreamAuthConfig?

    public init(
        scheme: Scheme,
        host: String,
        port: Int,
        timeout: ConfigDuration = .minutes(10),
        connectTimeout: ConfigDuration = .seconds(5),
        caFile: String? = nil,
        profile: UpstreamProfile = .generic,
        keepaliveTimeout: ConfigDuration = .seconds(30),
        maxIdleConnections: Int = 128,
        receiveBuffer: Int = Self.defaultReceiveBuffer,
        authLocation: SourceLocation? = nil
    ) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.caFile = caFile
        self.profile = profile
        self.keepaliveTimeout = keepaliveTimeout
        self.maxIdleConnections = maxIdleConnections
        self.receiveBuffer = receiveBuffer
        self.authLocation = authLocation
    }

    /// The gateway stops reading upstream while its client is slow, so the upstream socket's
    /// receive buffer is what a stalled exchange holds in the kernel. Autotuned, each grows to
    /// megabytes and a thousand slow readers fill the host's tcp_mem; 256 KiB still covers a
    /// backend on the same network at full speed.
    public static let defaultReceiveBuffer = 262_144

    /// What goes in the upstream request's `Host` header.
    public var authority: String {
        let defaultPort = self.scheme == .https ? 443 : 80
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return self.port == defaultPort ? host : "\(host):\(self.port)"
    }

    /// Parses `http://host[:port]` or `https://host[:port]`, with an optional trailing `/`.
    public static func parseURL(_ text: String) -> (Scheme, String, Int)? {
        let scheme: Scheme
        var rest: Substring
        if text.hasPrefix("http://") {
            scheme = .http
            rest = text.dropFirst(7)
        } else if text.hasPrefix("https://") {
            scheme = .https
            rest = text.dropFirst(8)
        } else {
            return nil
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@"), !rest.contains("?"), !rest.contains("#")
        else { return nil }
        let defaultPort = scheme == .https ? 443 : 80
        if rest.hasPrefix("[") {
            if let parsed = HostPort(parsing: String(rest)) { return (scheme, parsed.host, parsed.port) }
            guard rest.hasSuffix("]") else { return nil }
            let host = String(rest.dropFirst().dropLast())
            guard case .v6 = IPAddress(parsing: host) else { return nil }
            return (scheme, host, defaultPort)
        }
        if rest.contains(":") {
            guard let parsed = HostPort(parsing: String(rest)), parsed.port != 0, Self.isValidHost(parsed.host)
            else { return nil }
            return (scheme, parsed.host, parsed.port)
        }
        guard Self.isValidHost(String(rest)) else { return nil }
        return (scheme, String(rest), defaultPort)
    }

    /// A strict IPv4 address or a DNS name. A name made only of digits and dots (`127.1`,
    /// `010.1.1.1`, `0`) is refused: the resolver would guess an address from it.
    static func isValidHost(_ host: String) -> Bool {
        if IPAddress(parsing: host) != nil { return !host.contains(":") }
        guard !host.isEmpty, host.utf8.count <= 253 else { return false }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        if labels.last?.allSatisfy(\.isNumber) ?? true { return false }
        return labels.allSatisfy { label in
            guard !label.isEmpty, label.utf8.count <= 63, label.first != "-", label.last != "-" else { return false }
            return label.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D
            }
        }
    }
}

public struct LoggingConfig: Sendable {
    /// Where the access log goes: a file path, `-` for stdout, nil when off.
    public var accessLog: String?
    public var perClientDirectory: String?
    /// Diagnostic log level (swift-log names: trace, debug, info, notice, warning, error, critical).
    public var level: String

    public init(accessLog: String? = nil, perClientDirectory: String? = nil, level: String = "info") {
        self.accessLog = accessLog
        self.perClientDirectory = perClientDirectory
        self.level = level
    }
}

/// The `limits:` section; the defaults are DESIGN.md's.
public struct Limits: Sendable {
    public var clientHeaderTimeout: ConfigDuration = .seconds(30)
    public var idleTimeout: ConfigDuration = .seconds(60)
    /// The longest gap between two reads of a request body (408, or a close once a response
    /// has started).
    public var clientBodyTimeout: ConfigDuration = .seconds(60)
    /// The longest a client may leave a response unread (its connection not writable) before
    /// it is closed.
    public var sendTimeout: ConfigDuration = .seconds(60)
    /// SO_SNDBUF of accepted client sockets in bytes; 0 leaves it to kernel autotuning.
    public var clientSendBuffer: Int = Limits.defaultClientSendBuffer
    public var maxConnections: Int = 10_000
    public var maxHeaderBytes: Int = 65_536
    /// Header fields in one request head (431 beyond).
    public var maxHeaderCount: Int = Limits.defaultMaxHeaderCount
    public var maxInspectBody: Int = 1_048_576
    public var drainTimeout: ConfigDuration = .seconds(30)
    /// Verified tokens remembered per event loop (0: verify every request).
    public var tokenCacheSize: Int = 4096
    /// The most items a CIPP `$batch` may hold (CIPP's own limit is 20).
    public var maxBatchItems: Int = 20

    /// A client that reads slowly fills its socket's send buffer, and autotuned that buffer
    /// grows to megabytes: a thousand slow readers then hold the host's whole tcp_mem and every
    /// other connection of the host slows down (measured in Benchmarks/RESULTS-hostile.md).
    /// 128 KiB (the kernel doubles it for its bookkeeping) bounds that and still fills a
    /// client's link at a few MB/s per connection over a 20 ms round trip.
    public static let defaultClientSendBuffer = 131_072

    public static let defaultMaxHeaderCount = 100

    public init() {}
}

/// The `compression:` section. Off by default.
public struct CompressionConfig: Sendable, Equatable {
    public var enabled: Bool = false
    /// Responses with a smaller `Content-Length` are sent as they are.
    public var minBytes: Int = 1024
    /// Lowercased media types (`type/subtype`, or `type/*`) that are compressed;
    /// `text/event-stream` never is.
    public var types: [String] = CompressionConfig.defaultTypes

    public static let defaultTypes = [
        "text/*", "application/json", "application/javascript", "application/xml", "image/svg+xml",
    ]

    public init(enabled: Bool = false, minBytes: Int = 1024, types: [String] = CompressionConfig.defaultTypes) {
        self.enabled = enabled
        self.minBytes = minBytes
        self.types = types
    }
}

/// `tenant_directory:` (CIPP profile): CIPP's tenant list, to know each tenant by its id and by
/// its default domain.
public enum TenantDirectoryConfig: Sendable {
    /// `file: tenants.json`: an export of CIPP's `ListTenants`, read at each load.
    case file(path: String, directory: TenantDirectory)
    /// `upstream: /api/ListTenants`: fetched from the backend with `upstream.auth`, every
    /// `refresh`, off the request path; the last good copy is kept.
    case upstream(path: String, refresh: ConfigDuration)
}

/// `upstream.profile`: what the gateway knows of how the backend reads requests.
public enum UpstreamProfile: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Any REST API: rules on method and path.
    case generic
    /// CIPP: endpoint names, tenants and `$batch` read as CIPP's own code reads them.
    case cipp

    public var description: String { self.rawValue }
}
