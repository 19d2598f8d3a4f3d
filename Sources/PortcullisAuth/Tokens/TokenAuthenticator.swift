import PortcullisPolicy
/// Where an issuer's verification keys come from at request time: read synchronously on an
/// event loop, so implementations return a snapshot without blocking (``IssuerKeys``).
public protocol IssuerKeyProvider: Sendable {
    var current: JWKSet { get }
    /// A token named a `kid` the current set lacks: the provider may fetch early. Must not block.
    func unknownKeyID(_ keyID: String)
}

/// A key set that never changes (a `jwks_file` between reloads, tests).
public struct FixedKeys: IssuerKeyProvider {
    public let current: JWKSet
    public init(_ keys: JWKSet) { self.current = keys }
    public func unknownKeyID(_ keyID: String) {}
}

/// An issuer whose tokens are believed, compiled from its config.
public struct TrustedIssuer: Sendable {
    public let name: String
    public let verifier: JWSVerifier
    public let claims: ClaimsPolicy
    /// The claim naming the client (`appid`, `azp`, `client_id`, `sub`).
    public let clientClaim: String
    /// `clientClaim`, ready for the lookup in every token's claims.
    let clientClaimName: JSONObject.Name
    public let keys: any IssuerKeyProvider
    /// Portcullis's own issuer: its tokens must carry `jti` and `cv` (``BuiltinIssuer``).
    public let builtin: Bool

    public init(
        name: String,
        verifier: JWSVerifier,
        claims: ClaimsPolicy,
        clientClaim: String,
        keys: any IssuerKeyProvider,
        builtin: Bool = false
    ) {
        self.name = name
        self.verifier = verifier
        self.claims = claims
        self.clientClaim = clientClaim
        self.clientClaimName = JSONObject.Name(clientClaim)
        self.keys = keys
        self.builtin = builtin
    }
}

/// What a verified token says: who issued it, which client it names, until when it holds.
public struct VerifiedIdentity: Sendable, Equatable {
    public let issuer: String
    public let clientID: String
    /// Seconds since the epoch after which the token is no longer accepted (`exp` + leeway).
    public let validUntil: Int64
    /// Built-in issuer tokens only. One reference, not two optional strings: an identity is
    /// copied out of the token cache on every request (measured: two `String?` fields cost
    /// about 700 instructions per request in copies).
    public let builtinClaims: BuiltinClaims?

    public var tokenID: String? { self.builtinClaims?.tokenID }
    public var credentialVersion: String? { self.builtinClaims?.credentialVersion }

    public init(issuer: String, clientID: String, validUntil: Int64, tokenID: String? = nil, credentialVersion: String? = nil) {
        self.issuer = issuer
        self.clientID = clientID
        self.validUntil = validUntil
        if let tokenID, let credentialVersion {
            self.builtinClaims = BuiltinClaims(tokenID: tokenID, credentialVersion: credentialVersion)
        } else {
            self.builtinClaims = nil
        }
    }

    /// `jti` (revocation) and `cv` (the credential the token was issued under).
    public final class BuiltinClaims: Sendable, Equatable {
        public let tokenID: String
        public let credentialVersion: String

        init(tokenID: String, credentialVersion: String) {
            self.tokenID = tokenID
            self.credentialVersion = credentialVersion
        }

        public static func == (lhs: BuiltinClaims, rhs: BuiltinClaims) -> Bool {
            lhs.tokenID == rhs.tokenID && lhs.credentialVersion == rhs.credentialVersion
        }
    }
}

/// Why a request is not authenticated. `reason` is a stable code for the access log.
public struct AuthFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public let description: String
    /// False only when there was no credential at all (RFC 6750: no `error` attribute then).
    public let hadToken: Bool
    /// The configured client a token with a good signature names, though it is refused
    /// (expired, disabled, rotated, revoked): the access log and metrics name it.
    public internal(set) var clientID: String?
    /// That token's `jti`, if it has one.
    public internal(set) var tokenID: String?

    init(_ reason: String, _ description: String, hadToken: Bool = true) {
        self.reason = reason
        self.description = description
        self.hadToken = hadToken
    }

    func naming(_ clientID: String?, tokenID: String?) -> AuthFailure {
        var named = self
        named.clientID = clientID
        named.tokenID = tokenID
        return named
    }

    public static let missingToken = AuthFailure("missing_token", "no bearer token", hadToken: false)
    public static let malformedCredential = AuthFailure("malformed_token", "the Authorization header is not a bearer token")

    public static func == (lhs: AuthFailure, rhs: AuthFailure) -> Bool { lhs.reason == rhs.reason }
}

/// Bearer-token authentication of DESIGN.md's request path: token -> signature + claims ->
/// client record. Immutable, built once per config load and shared by every event loop; the
/// per-loop ``VerifiedTokenCache`` sits in front of ``verify(_:now:)``.
public final class TokenAuthenticator: Sendable {
    private let issuersByIss: [String: TrustedIssuer]
    /// With one issuer the token is verified without parsing its claims first.
    private let onlyIssuer: TrustedIssuer?
    private let clients: [String: ClientRecord]
    /// The built-in issuer's revocations, read for each of its tokens (cached ones too).
    private let issuerState: IssuerState?

    public init(issuers: [(iss: String, issuer: TrustedIssuer)], clients: [ClientRecord], issuerState: IssuerState? = nil) {
        self.issuerState = issuerState
        var byIss: [String: TrustedIssuer] = [:]
        for (iss, issuer) in issuers { byIss[iss] = issuer }
        self.issuersByIss = byIss
        self.onlyIssuer = byIss.count == 1 ? byIss.first?.value : nil
        var byID: [String: ClientRecord] = [:]
        for client in clients { byID[client.id] = client }
        self.clients = byID
    }

    public var hasIssuers: Bool { !self.issuersByIss.isEmpty }

    /// Checks signature and claims. `now` is seconds since the epoch.
    public func verify(_ token: Substring, now: Int64) -> Result<VerifiedIdentity, AuthFailure> {
        var headers = JOSEHeaderMemo()
        return self.verify(token, now: now, headers: &headers)
    }

    /// As `verify(_:now:)`, with the caller's memo of the last JOSE header parsed (one per
    /// event loop, in `VerifiedTokenCache`).
    public func verify(_ token: Substring, now: Int64, headers: inout JOSEHeaderMemo) -> Result<VerifiedIdentity, AuthFailure> {
        let issuer: TrustedIssuer
        if let only = self.onlyIssuer {
            issuer = only
        } else {
            // The token's iss picks the issuer; nothing else of the unverified payload is used.
            guard let iss = Self.unverifiedIssuer(token), let found = self.issuersByIss[iss] else {
                return .failure(AuthFailure("unknown_issuer", "the token's issuer is not trusted"))
            }
            issuer = found
        }
        let keys = issuer.keys.current
        let verified: VerifiedToken
        do {
            verified = try issuer.verifier.verify(token.utf8, keys: keys, headers: &headers)
        } catch {
            if error.code == .unknownKeyID, let kid = Self.unverifiedKeyID(token) {
                issuer.keys.unknownKeyID(kid)
            }
            return .failure(AuthFailure(error.code.identifier, "the token's signature or header is not acceptable"))
        }
        let claims: JWTClaims
        do {
            claims = try JWTClaims(payload: verified.payload)
        } catch {
            return .failure(AuthFailure(error.code.identifier, Self.describe(error)))
        }
        do {
            try issuer.claims.validate(claims, now: now)
        } catch {
            // The signature is good: an expired or early token still says whose it is.
            let named = claims.string(named: issuer.clientClaimName).flatMap { id in
                self.clients[id].flatMap { $0.issuer == issuer.name ? id : nil }
            }
            return .failure(AuthFailure(error.code.identifier, Self.describe(error)).naming(named, tokenID: claims.jwtID))
        }
        guard let clientID = claims.string(named: issuer.clientClaimName), !clientID.isEmpty else {
            return .failure(AuthFailure("missing_claim", "the token has no \(issuer.clientClaim) claim"))
        }
        var tokenID: String?
        var credentialVersion: String?
        if issuer.builtin {
            guard let jti = claims.jwtID, let cv = claims.string(named: "cv") else {
                return .failure(AuthFailure("missing_claim", "the token lacks a required claim"))
            }
            tokenID = jti
            credentialVersion = cv
        }
        return .success(
            VerifiedIdentity(
                issuer: issuer.name,
                clientID: clientID,
                validUntil: claims.expiresAt! + issuer.claims.leeway,
                tokenID: tokenID,
                credentialVersion: credentialVersion
            )
        )
    }

    /// The client a verified identity names, if it is configured, enabled and of that issuer.
    public func client(for identity: VerifiedIdentity) -> Result<ClientRecord, AuthFailure> {
        guard let client = self.clients[identity.clientID], client.issuer == identity.issuer else {
            return .failure(AuthFailure("unknown_client", "the token names no client of its issuer"))
        }
        guard client.enabled else {
            return .failure(AuthFailure("client_disabled", "the client is disabled").naming(client.id, tokenID: identity.tokenID))
        }
        if let required = client.credentialVersion, identity.credentialVersion != required,
            client.graceCredentialVersions.isEmpty || !client.graceCredentialVersions.contains(identity.credentialVersion ?? "")
        {
            return .failure(
                AuthFailure("credential_rotated", "the token was issued under a secret that has been replaced")
                    .naming(client.id, tokenID: identity.tokenID)
            )
        }
        if let tokenID = identity.tokenID, let state = self.issuerState, state.isRevoked(tokenID) {
            return .failure(AuthFailure("token_revoked", "the token has been revoked").naming(client.id, tokenID: tokenID))
        }
        return .success(client)
    }

    private static func describe(_ error: ClaimsError) -> String {
        switch error.code {
        case .tokenExpired: return "the token has expired"
        case .tokenNotYetValid: return "the token is not valid yet"
        case .wrongIssuer: return "the token's issuer is not trusted"
        case .wrongAudience: return "the token is not meant for this API"
        case .missingClaim: return "the token lacks a required claim"
        default: return "the token's claims are not acceptable"
        }
    }

    /// `iss` of a token whose signature is not checked yet: only to choose the issuer.
    static func unverifiedIssuer(_ token: Substring) -> String? {
        let parts = token.utf8.split(separator: UInt8(ascii: "."), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]),
            case .object(let members)? = try? JSONValue.parse(payload)
        else { return nil }
        return members["iss"]?.stringValue
    }

    static func unverifiedKeyID(_ token: Substring) -> String? {
        guard let dot = token.utf8.firstIndex(of: UInt8(ascii: ".")),
            let header = Base64URL.decode(token.utf8[token.utf8.startIndex..<dot]),
            case .object(let members)? = try? JSONValue.parse(header)
        else { return nil }
        return members["kid"]?.stringValue
    }
}
extension IssuerKeys: IssuerKeyProvider {}
