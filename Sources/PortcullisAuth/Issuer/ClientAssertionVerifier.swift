import NIOConcurrencyHelpers

/// `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9):
/// the client signs a short-lived JWT with its private key and sends it as `client_assertion`.
/// `iss` and `sub` are the client id, `aud` this issuer (its `issuer` value or its token
/// endpoint URL), `exp` at most ``maximumLifetime`` ahead, and `jti` is used once: a replay
/// within the assertion's lifetime is refused. Shared by every event loop and kept across
/// reloads (the replay memory must be); it sits on the token endpoint only, so a lock is fine.
public final class ClientAssertionVerifier: Sendable {
    public static let assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    /// An assertion may not live longer than this (seconds), so the replay memory stays small.
    public static let maximumLifetime: Int64 = 600
    /// Assertions remembered at most; past this, expired ones go first, then new ones are refused.
    public static let maximumRemembered = 100_000

    private let used = NIOLockedValueBox<[String: Int64]>([:])

    public init() {}

    public struct Refusal: Error, Equatable {
        public var description: String
        /// The access log's reason.
        public var reason: String
    }

    /// Checks `assertion` for `clientID` under `key`; `audiences` are what `aud` may name.
    public func verify(
        _ assertion: String,
        clientID: String,
        key: ClientKey,
        audiences: Set<String>,
        leeway: Int64,
        now: Int64
    ) -> Result<Void, Refusal> {
        var registered = key.key
        if registered.keyID == nil, let keyID = TokenAuthenticator.unverifiedKeyID(Substring(assertion)) {
            registered = registered.named(keyID)
        }
        let verifier = JWSVerifier(allowedAlgorithms: key.algorithms)
        let verified: VerifiedToken
        do {
            verified = try verifier.verify(assertion.utf8, keys: JWKSet(keys: [registered]))
        } catch {
            return .failure(Refusal(description: "the client assertion's signature does not verify under the client's key", reason: "assertion_invalid"))
        }
        guard let claims = try? JWTClaims(payload: verified.payload) else {
            return .failure(Refusal(description: "the client assertion's claims are malformed", reason: "assertion_invalid"))
        }
        guard claims.issuer == clientID, claims.subject == clientID else {
            return .failure(Refusal(description: "the client assertion's iss and sub must both be the client id", reason: "assertion_invalid"))
        }
        guard let audience = claims.audience, audience.contains(where: audiences.contains) else {
            return .failure(Refusal(description: "the client assertion's aud must name this issuer or its token endpoint", reason: "assertion_invalid"))
        }
        guard let expiresAt = claims.expiresAt, now < expiresAt + leeway else {
            return .failure(Refusal(description: "the client assertion has expired or has no exp", reason: "assertion_expired"))
        }
        guard expiresAt - now <= Self.maximumLifetime else {
            return .failure(Refusal(description: "the client assertion's exp is more than \(Self.maximumLifetime) s ahead", reason: "assertion_invalid"))
        }
        if let notBefore = claims.notBefore, now + leeway < notBefore {
            return .failure(Refusal(description: "the client assertion is not valid yet", reason: "assertion_invalid"))
        }
        guard let tokenID = claims.jwtID, !tokenID.isEmpty, tokenID.utf8.count <= 256 else {
            return .failure(Refusal(description: "the client assertion has no jti", reason: "assertion_invalid"))
        }
        enum Memory { case remembered, replayed, full }
        let memory = self.used.withLockedValue { used -> Memory in
            let key = clientID + "\u{0}" + tokenID
            if let until = used[key], until > now { return .replayed }
            if used.count >= Self.maximumRemembered {
                used = used.filter { $0.value > now }
                if used.count >= Self.maximumRemembered { return .full }
            }
            used[key] = expiresAt + leeway
            return .remembered
        }
        switch memory {
        case .remembered: break
        case .replayed: return .failure(Refusal(description: "the client assertion was used before", reason: "assertion_replayed"))
        case .full:
            // Not remembered, so a replay could not be told: refused until older assertions expire.
            return .failure(Refusal(description: "too many client assertions in flight; try again shortly", reason: "assertion_invalid"))
        }
        return .success(())
    }
}
