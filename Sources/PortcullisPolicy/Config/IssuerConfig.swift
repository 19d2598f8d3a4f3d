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
    /// Nil for the built-in issuer (`builtin: true`, issue 6).
    public var keySource: KeySource?
    /// Pinned JWS algorithm names (`RS256`, `ES256`, ...); the token header never chooses.
    public var algorithms: [String]
    /// The claim that names the client: `appid`, `azp`, `client_id`, `sub`, ...
    public var clientClaim: String
    public var leeway: ConfigDuration
    /// How often a `jwks_url` (or discovered) key set is fetched again.
    public var jwksRefresh: ConfigDuration
    public var builtin: Bool
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
        self.location = location
    }

    /// Algorithm names an outside issuer may pin. HMAC (`HS*`) needs a secret shared with the
    /// IdP, and `none` is no algorithm: neither is accepted.
    public static let supportedAlgorithms = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    ]
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
    public var location: SourceLocation?

    public init(
        id: String,
        name: String,
        enabled: Bool = true,
        issuer: String,
        roles: [String] = [],
        allowedIPs: CIDRSet? = nil,
        location: SourceLocation? = nil
    ) {
        self.id = id
        self.name = name
        self.enabled = enabled
        self.issuer = issuer
        self.roles = roles
        self.allowedIPs = allowedIPs
        self.location = location
    }

    /// Whether a request from `address` may proceed (IPv4-mapped addresses match as IPv4).
    public func allowsAddress(_ address: IPAddress) -> Bool {
        self.allowedIPs?.contains(address) ?? true
    }
}
