/// One `issuers:` entry: whose tokens are believed, and how they are checked (DESIGN.md).
public struct IssuerConfig: Sendable {
    /// Where the issuer's public keys come from.
    public enum KeySource: Sendable, Equatable {
        /// A JWK Set file, read at load (and at every reload).
        case file(String)
        /// A JWK Set URL, fetched at start and refreshed in the background.
        case url(String)
        /// `issuer` + `/.well-known/openid-configuration`, whose `jwks_uri` is then fetched.
        case discovery
    }

    /// The name clients refer to (`clients[].issuer`).
    public var name: String
    /// The exact `iss` of its tokens.
    public var issuer: String
    /// A token's `aud` must contain one of these.
    public var audiences: [String]
    /// Nil for the built-in issuer (`builtin: true`).
    public var keySource: KeySource?
    /// Pinned JWS algorithm names (`RS256`, `ES256`, ...); the token header never chooses.
    public var algorithms: [String]
    /// The claim that names the client: `appid`, `azp`, `client_id`, `sub`, ...
    public var clientClaim: String
    public var leeway: ConfigDuration
    /// How often a `jwks_url` (or discovered) key set is fetched again.
    public var jwksRefresh: ConfigDuration
    public var builtin: Bool
    /// The built-in issuer's settings (`builtin: true`); nil for an outside issuer.
    public var builtinSettings: BuiltinIssuerSettings?
    public var location: SourceLocation?

    public init(
        name: String,
        issuer: String,
        audiences: [String],
        keySource: KeySource?,
        algorithms: [String],
        clientClaim: String = "sub",
        leeway: ConfigDuration = .seconds(60),
        jwksRefresh: ConfigDuration = .minutes(10),
        builtin: Bool = false,
        builtinSettings: BuiltinIssuerSettings? = nil,
        location: SourceLocation? = nil
    ) {
        self.name = name
        self.issuer = issuer
        self.audiences = audiences
        self.keySource = keySource
        self.algorithms = algorithms
        self.clientClaim = clientClaim
        self.leeway = leeway
        self.jwksRefresh = jwksRefresh
        self.builtin = builtin
        self.builtinSettings = builtinSettings
        self.location = location
    }

    /// Algorithm names an outside issuer may pin. HMAC (`HS*`) needs a secret shared with the
    /// IdP, and `none` is no algorithm: neither is accepted.
    public static let supportedAlgorithms = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    ]
}

/// The built-in issuer (`issuers[]` with `builtin: true`): Portcullis's own `POST /oauth/token`.
public struct BuiltinIssuerSettings: Sendable, Equatable {
    /// PEM file of the signing key (Ed25519 or P-256, PKCS#8 or SEC1), resolved against the
    /// config file's directory.
    public var signingKeyFile: String
    /// A client's token lifetime when it sets none (`token_lifetime`, default 15m).
    public var tokenLifetime: ConfigDuration
    /// No client's `token_lifetime` may exceed this (`max_token_lifetime`, default 1h).
    public var maxTokenLifetime: ConfigDuration
    /// Failed client authentications allowed per client id within `failure_window` before its
    /// further attempts get 429 (`max_failed_auth`, default 5).
    public var maxFailedAuth: Int
    /// The same per source address (`max_failed_auth_per_address`, default 50): higher, since
    /// an office's clients share one NAT address.
    public var maxFailedAuthPerAddress: Int
    /// `failure_window`, default 5m: also how long a locked-out id or address waits.
    public var failureWindow: ConfigDuration
    /// Where `last_redeemed` times and revoked token ids are kept across restarts
    /// (`state_file`, default `<name>-state.json` beside the config file), resolved.
    public var stateFile: String
    /// How long a client secret is accepted after it is made, when the client sets no
    /// `secret_lifetime` (`secret_lifetime`); nil: secrets do not expire.
    public var secretLifetime: ConfigDuration?

    public init(
        signingKeyFile: String,
        tokenLifetime: ConfigDuration = .minutes(15),
        maxTokenLifetime: ConfigDuration = .hours(1),
        maxFailedAuth: Int = 5,
        maxFailedAuthPerAddress: Int = 50,
        failureWindow: ConfigDuration = .minutes(5),
        stateFile: String
    ) {
        self.signingKeyFile = signingKeyFile
        self.tokenLifetime = tokenLifetime
        self.maxTokenLifetime = maxTokenLifetime
        self.maxFailedAuth = maxFailedAuth
        self.maxFailedAuthPerAddress = maxFailedAuthPerAddress
        self.failureWindow = failureWindow
        self.stateFile = stateFile
    }
}

/// One `clients:` entry.
public struct ClientConfig: Sendable {
    public var id: String
    public var name: String
    public var enabled: Bool
    /// The `issuers[].name` whose tokens may name this client.
    public var issuer: String
    /// Role names (each one of `roles:`); privileges add up, deny wins. Empty: every request is
    /// denied.
    public var roles: [String]
    /// The addresses it may call from; nil (the key absent) means any, an empty set none.
    public var allowedIPs: CIDRSet?
    /// The `allowed_ips` entries as written, for the clients file, `client list` and the admin API.
    public var allowedIPsText: [String]?
    /// Built-in issuer clients: lowercase hex SHA-256 of the secret (never the secret).
    public var secretSHA256: String?
    /// Built-in issuer clients that authenticate with `private_key_jwt` instead of a secret:
    /// their public key (PEM or JWK text), from `public_key` or `public_key_file`.
    public var publicKey: String?
    /// `public_key_file` as written, kept when `portcullis client` rewrites the clients file.
    public var publicKeyFile: String?
    /// Built-in issuer clients: their tokens' lifetime; nil takes the issuer's `token_lifetime`.
    public var tokenLifetime: ConfigDuration?
    /// When `portcullis client` or the admin API last changed this entry (RFC 3339, UTC).
    public var lastModified: String?
    /// Built-in issuer clients: when the current secret was made (`secret_created`, RFC 3339
    /// UTC); nil for a secret of unknown age, which does not expire.
    public var secretCreated: String?
    /// Built-in issuer clients: how long a secret is accepted (`secret_lifetime`); nil takes
    /// the issuer's.
    public var secretLifetime: ConfigDuration?
    /// Built-in issuer clients: secrets replaced with a grace, still accepted until theirs ends.
    public var retiredSecrets: [RetiredSecret] = []
    /// `limits:` of this client, over its roles' and `client_limits` (the most specific wins).
    public var limits: ClientLimits?
    public var location: SourceLocation?

    public init(
        id: String,
        name: String,
        enabled: Bool = true,
        issuer: String,
        roles: [String] = [],
        allowedIPs: CIDRSet? = nil,
        allowedIPsText: [String]? = nil,
        secretSHA256: String? = nil,
        tokenLifetime: ConfigDuration? = nil,
        lastModified: String? = nil,
        location: SourceLocation? = nil
    ) {
        self.id = id
        self.name = name
        self.enabled = enabled
        self.issuer = issuer
        self.roles = roles
        self.allowedIPs = allowedIPs
        self.allowedIPsText = allowedIPsText
        self.secretSHA256 = secretSHA256
        self.tokenLifetime = tokenLifetime
        self.lastModified = lastModified
        self.location = location
    }

    /// Whether a request from `address` may proceed (IPv4-mapped addresses match as IPv4).
    public func allowsAddress(_ address: IPAddress) -> Bool {
        self.allowedIPs?.contains(address) ?? true
    }
}
