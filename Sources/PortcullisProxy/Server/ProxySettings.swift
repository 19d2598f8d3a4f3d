import NIOCore
import PortcullisAuth
import PortcullisPolicy

/// The settings of one configuration load that the request path reads: an immutable snapshot,
/// a class so that each exchange takes it with one retain.
final class ProxySettings: Sendable {
    let upstream: UpstreamTarget
    /// The timeouts (`upstream.timeout`, `upstream.queue.timeout`, `limits.client_header_timeout`,
    /// `idle_timeout`, `client_body_timeout` and the interval of its check, `send_timeout`),
    /// `limits.max_inspect_body` (the most body bytes read to decide a request) and
    /// `compression:` (nil when off): the connection state machine's share of these settings.
    let connection: ConnectionStateMachine.Config
    /// Nil when none are configured (the usual case): the request path then reads no set,
    /// which it would copy (seven references) to read.
    let trustedProxies: CIDRSet?
    let authenticator: TokenAuthenticator
    let tokenCacheSize: Int
    /// Roles and clients compiled for decisions.
    let policy: AccessPolicy
    /// `profile: cipp`: endpoint names, tenants and `$batch` are checked; nil otherwise.
    let cipp: CIPPSettings?
    /// `path_firewall:`: path forms refused before the rules.
    let pathFirewall: PathFirewall
    /// `upstream.drop_headers_with_underscores`.
    let dropsUnderscoredHeaderNames: Bool
    /// `limits.max_header_count`, for connections accepted under these settings.
    let maxHeaderCount: Int
    /// For the access log's `rule`, by index into `policy.rules`: `role file:line key`.
    let ruleNames: [String]
    /// The built-in issuer's `/oauth/token`, `/oauth/revoke` and `/.well-known/jwks.json`;
    /// nil without one (those paths are then proxied like any other).
    let tokenService: TokenService?
    /// `upstream.auth`: read per request (lock-free); nil sends no credential.
    let upstreamCredential: UpstreamCredential?
    /// The credential's header name when client-sent copies must be dropped (a fixed header;
    /// `Authorization` is dropped anyway).
    let credentialHeaderName: String?
    /// Each client's limits and counters by policy index; nil where no limit applies.
    let clientLimits: [ClientLimitSlot?]
    /// Some client has a limit (most configurations have none: one check per request).
    let hasClientLimits: Bool
    /// `upstream.max_concurrent` and its queue; nil for no cap.
    let maxConcurrent: Int?
    let backendQueueSize: Int

    init(
        _ config: GatewayConfig,
        issuerKeys: [String: any IssuerKeyProvider] = [:],
        builtin: BuiltinIssuerRuntime? = nil,
        upstreamCredential: UpstreamCredential? = nil,
        limiters: LimiterRegistry = LimiterRegistry(),
        usage: ClientUsageTable? = nil
    ) throws {
        if config.upstream.auth != nil && upstreamCredential?.config != config.upstream.auth {
            throw GatewayError(.missingCredential, reason: "upstream.auth is configured but its credential was not obtained")
        }
        self.upstreamCredential = config.upstream.auth == nil ? nil : upstreamCredential
        let headerName = upstreamCredential?.headerName
        self.credentialHeaderName = headerName == "authorization" ? nil : headerName
        self.upstream = try UpstreamTarget(config.upstream)
        self.connection = ConnectionStateMachine.Config(
            clientHeaderTimeout: .nanoseconds(config.limits.clientHeaderTimeout.nanoseconds),
            idleTimeout: .nanoseconds(config.limits.idleTimeout.nanoseconds),
            exchangeTimeout: .nanoseconds(config.upstream.timeout.nanoseconds),
            clientBodyTimeout: .nanoseconds(config.limits.clientBodyTimeout.nanoseconds),
            // A gap is noticed between client_body_timeout and 1.25 times it.
            bodyCheckInterval: .nanoseconds(max(config.limits.clientBodyTimeout.nanoseconds / 4, 1)),
            sendTimeout: .nanoseconds(config.limits.sendTimeout.nanoseconds),
            backendQueueTimeout: .nanoseconds(config.upstream.queueTimeout.nanoseconds),
            maxInspectBody: config.limits.maxInspectBody,
            compression: CompressionSettings(config.compression)
        )
        self.trustedProxies = config.trustedProxies.isEmpty ? nil : config.trustedProxies
        self.tokenService = try TokenAuthenticator.compileBuiltin(config, runtime: builtin)
        self.authenticator = try TokenAuthenticator.compile(config, keys: issuerKeys, builtin: self.tokenService, usage: usage)
        self.tokenCacheSize = config.limits.tokenCacheSize
        self.policy = config.policy
        self.cipp = config.upstream.profile == .cipp ? CIPPSettings(config) : nil
        self.pathFirewall = config.pathFirewall
        self.dropsUnderscoredHeaderNames = config.upstream.dropHeadersWithUnderscores
        self.maxHeaderCount = config.limits.maxHeaderCount
        self.clientLimits = ClientLimitSlot.compile(config, registry: limiters)
        self.hasClientLimits = self.clientLimits.contains { $0 != nil }
        self.maxConcurrent = config.upstream.maxConcurrent
        self.backendQueueSize = config.upstream.queueSize
        self.ruleNames = config.policy.rules.map { rule in
            [rule.roleName, rule.location.map { "\($0)" }, rule.key].compactMap { $0 }.joined(separator: " ")
        }
    }
}
