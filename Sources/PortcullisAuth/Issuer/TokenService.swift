import NIOConcurrencyHelpers
import Logging
import PortcullisPolicy

/// The built-in issuer's endpoints, without I/O: `POST /oauth/token` (RFC 6749 §4.4,
/// client_credentials) and `POST /oauth/revoke` (RFC 7009). The proxy reads the form body and
/// writes what ``TokenEndpointResult`` says. Compiled per config load; the rate limiter and
/// the issuer state it holds outlive reloads.
public final class TokenService: Sendable {
    /// A client of the built-in issuer as the token endpoint needs it.
    public struct Client: Sendable {
        public let id: String
        public let enabled: Bool
        /// The current secret first, then the retired ones still in their grace; empty for a
        /// key client.
        public let secrets: [LiveSecret]
        /// A `private_key_jwt` client's registered public key, and the `cv` of its tokens.
        public let key: (key: ClientKey, credentialVersion: String)?
        /// Seconds; nil takes the issuer's default.
        public let tokenLifetime: Int64?
        /// The addresses it may ask for tokens from, as for its requests; nil means any.
        public let allowedIPs: CIDRSet?

        public init(id: String, enabled: Bool, secretSHA256: String, tokenLifetime: Int64?, allowedIPs: CIDRSet? = nil) {
            self.init(
                id: id,
                enabled: enabled,
                secrets: [LiveSecret(secretSHA256: secretSHA256, notAfter: nil, retired: false)],
                tokenLifetime: tokenLifetime,
                allowedIPs: allowedIPs
            )
        }

        public init(id: String, enabled: Bool, secrets: [LiveSecret], tokenLifetime: Int64?, allowedIPs: CIDRSet? = nil) {
            self.id = id
            self.enabled = enabled
            self.secrets = secrets
            self.key = nil
            self.tokenLifetime = tokenLifetime
            self.allowedIPs = allowedIPs
        }

        /// A `private_key_jwt` client; `keyText` is the key as registered (its hash is the `cv`).
        public init(id: String, enabled: Bool, key: ClientKey, keyText: String, tokenLifetime: Int64?, allowedIPs: CIDRSet? = nil) {
            self.id = id
            self.enabled = enabled
            self.secrets = []
            self.key = (key, ClientKey.credentialVersion(keyText))
            self.tokenLifetime = tokenLifetime
            self.allowedIPs = allowedIPs
        }

        /// The first secret that `presented` hashes to. Every secret is compared, in constant
        /// time each, so the time taken does not say which one matched.
        func matching(_ presented: String) -> LiveSecret? {
            var found: LiveSecret?
            for secret in self.secrets where ClientSecret.matches(presented, sha256Hex: secret.secretSHA256) && found == nil {
                found = secret
            }
            return found
        }
    }

    public let issuer: BuiltinIssuer
    private let clients: [String: Client]
    public let limiter: FailedAuthLimiter
    public let maxFailedAuth: Int
    public let maxFailedAuthPerAddress: Int
    public let failureWindow: Int64
    public let state: IssuerState
    private let assertions: ClientAssertionVerifier
    private let revocations: RevocationObserver?
    private let logger: Logger

    public init(
        issuer: BuiltinIssuer,
        clients: [Client],
        limiter: FailedAuthLimiter,
        maxFailedAuth: Int,
        maxFailedAuthPerAddress: Int,
        failureWindow: Int64,
        state: IssuerState,
        assertions: ClientAssertionVerifier = ClientAssertionVerifier(),
        revocations: RevocationObserver? = nil,
        logger: Logger
    ) {
        self.assertions = assertions
        self.revocations = revocations
        self.maxFailedAuthPerAddress = maxFailedAuthPerAddress
        self.issuer = issuer
        var byID: [String: Client] = [:]
        for client in clients { byID[client.id] = client }
        self.clients = byID
        self.limiter = limiter
        self.maxFailedAuth = maxFailedAuth
        self.failureWindow = failureWindow
        self.state = state
        self.logger = logger
    }

    /// A token endpoint request as read off the connection.
    public struct Request {
        public var contentType: String?
        /// The `Authorization` header, if one was sent.
        public var authorization: String?
        public var body: [UInt8]
        public var address: IPAddress

        public init(contentType: String?, authorization: String?, body: [UInt8], address: IPAddress) {
            self.contentType = contentType
            self.authorization = authorization
            self.body = body
            self.address = address
        }
    }

    /// `POST /oauth/token`.
    public func token(_ request: Request, now: Int64) -> TokenEndpointResult {
        let form: [String: String]
        switch Self.readForm(request) {
        case .success(let parsed): form = parsed
        case .failure(let refusal): return refusal
        }
        guard let grant = form["grant_type"], !grant.isEmpty else {
            return .refusal(400, "invalid_request", "grant_type is required", reason: "invalid_request")
        }
        guard grant == "client_credentials" else {
            return .refusal(400, "unsupported_grant_type", "only grant_type=client_credentials is supported", reason: "unsupported_grant_type")
        }
        let client: Client
        let credential: Credential.Verified
        switch self.authenticateClient(request, form: form, now: now) {
        case .success(let authenticated): (client, credential) = authenticated
        case .failure(let refusal): return refusal
        }
        // A token never outlives the secret it was issued under.
        var lifetime = client.tokenLifetime ?? self.issuer.defaultLifetime
        if let end = credential.notAfter { lifetime = max(1, min(lifetime, end - now)) }
        let issued = self.issuer.issue(
            clientID: client.id,
            credentialVersion: credential.credentialVersion,
            lifetime: lifetime,
            now: now
        )
        self.state.redeemed(clientID: client.id, at: now)
        var body = "{\"access_token\":\"\(issued.token)\",\"token_type\":\"Bearer\",\"expires_in\":\(issued.expiresIn)}"
        body += "\n"
        return TokenEndpointResult(status: 200, error: nil, description: "", body: body, reason: "token_issued", clientID: client.id)
    }

    /// `POST /oauth/revoke` (RFC 7009): the client revokes one of its own tokens. A token that
    /// is invalid, expired or unknown is answered 200 as well, as §2.2 says.
    public func revoke(_ request: Request, now: Int64) -> TokenEndpointResult {
        let form: [String: String]
        switch Self.readForm(request) {
        case .success(let parsed): form = parsed
        case .failure(let refusal): return refusal
        }
        guard let token = form["token"], !token.isEmpty else {
            return .refusal(400, "invalid_request", "token is required", reason: "invalid_request")
        }
        if let hint = form["token_type_hint"], hint != "access_token" {
            return .refusal(400, "unsupported_token_type", "only access tokens are issued here", reason: "unsupported_token_type")
        }
        let client: Client
        switch self.authenticateClient(request, form: form, now: now) {
        case .success(let authenticated): client = authenticated.client
        case .failure(let refusal): return refusal
        }
        let trusted = self.issuer.trustedIssuer
        guard let verified = try? trusted.verifier.verify(token.utf8, keys: trusted.keys.current),
            let claims = try? JWTClaims(payload: verified.payload),
            (try? trusted.claims.validate(claims, now: now)) != nil,
            let tokenID = claims.jwtID, let expiresAt = claims.expiresAt
        else {
            return .revoked(clientID: client.id)
        }
        guard claims.string(named: BuiltinIssuer.clientClaim) == client.id else {
            return .refusal(400, "unauthorized_client", "the token was not issued to this client", reason: "unauthorized_client", clientID: client.id)
        }
        self.state.revoke(tokenID, until: expiresAt + self.issuer.leeway, now: now)
        self.revocations?.revoked(clientID: client.id, tokenID: tokenID, address: request.address)
        self.logger.info("token revoked", metadata: ["client_id": "\(client.id)", "jti": "\(tokenID)"])
        return .revoked(clientID: client.id)
    }

    // MARK: - Client authentication

    /// What a request authenticates with.
    private enum Credential {
        case secret(String)
        /// `private_key_jwt`: a JWT signed with the client's registered key.
        case assertion(String)

        /// A credential that authenticated: the `cv` of the tokens issued under it, and its end.
        struct Verified {
            var credentialVersion: String
            var notAfter: Int64?
        }
    }

    /// `client_secret_basic`, `client_secret_post` or `private_key_jwt`, exactly one. A secret
    /// is compared in constant time against each stored SHA-256 (the current one and those in
    /// their grace), an unknown client's against a hash no secret has, so both take the same
    /// time. Failures count toward the lockout.
    private func authenticateClient(
        _ request: Request,
        form: [String: String],
        now: Int64
    ) -> Result<(client: Client, credential: Credential.Verified), TokenEndpointResult> {
        let presented: (id: String, credential: Credential)
        switch Self.presentedCredential(request, form: form) {
        case .success(let found): presented = found
        case .failure(let refusal): return .failure(refusal)
        }
        let keys = FailedAuthLimiter.keys(
            clientID: presented.id,
            address: request.address,
            perClient: self.maxFailedAuth,
            perAddress: self.maxFailedAuthPerAddress
        )
        if let wait = self.limiter.retryAfter(keys, window: self.failureWindow, now: now) {
            var refusal = TokenEndpointResult.refusal(
                429,
                "too_many_requests",
                "too many failed client authentications; try again later",
                reason: "auth_rate_limited"
            )
            refusal.retryAfter = wait
            refusal.clientID = self.clients[presented.id]?.id
            return .failure(refusal)
        }
        let client = self.clients[presented.id]
        var failure = TokenEndpointResult.invalidClient("client authentication failed")
        var why: String
        switch presented.credential {
        case .secret(let presentedSecret):
            let secret = client?.matching(presentedSecret)
            if client == nil { _ = ClientSecret.matches(presentedSecret, sha256Hex: ClientSecret.unknownClientHash) }
            why = client == nil ? "unknown client" : (secret != nil ? "client disabled" : "wrong secret")
            if let client, let secret, client.enabled {
                if let end = secret.notAfter, end <= now {
                    // The right secret, past its end: said plainly, and not a failure toward the lockout.
                    let what = secret.retired ? "the grace of this replaced client secret ended" : "the client secret expired"
                    self.logger.warning(
                        "client authentication refused: secret expired",
                        metadata: ["client_id": "\(client.id)", "src_ip": "\(request.address)", "at": "\(IssuerState.formatTimestamp(end))"]
                    )
                    var refusal = TokenEndpointResult.invalidClient("\(what) at \(IssuerState.formatTimestamp(end)); ask the gateway's operator for a new one")
                    refusal.reason = "secret_expired"
                    refusal.clientID = client.id
                    return .failure(refusal)
                }
                let verified = Credential.Verified(
                    credentialVersion: ClientSecret.credentialVersion(sha256Hex: secret.secretSHA256),
                    notAfter: secret.notAfter
                )
                return self.admit(client, verified, request)
            }
        case .assertion(let assertion):
            why = client == nil ? "unknown client" : "client disabled"
            if let client, let key = client.key, client.enabled {
                let checked = self.assertions.verify(
                    assertion,
                    clientID: client.id,
                    key: key.key,
                    audiences: [self.issuer.issuer],
                    leeway: self.issuer.leeway,
                    now: now
                )
                switch checked {
                case .success: return self.admit(client, Credential.Verified(credentialVersion: key.credentialVersion, notAfter: nil), request)
                case .failure(let refusal):
                    why = refusal.reason
                    failure = .refusal(401, "invalid_client", refusal.description, reason: refusal.reason)
                }
            } else if client != nil && client?.key == nil {
                why = "no key registered"
            }
        }
        let lockedOut = self.limiter.recordFailure(keys, window: self.failureWindow, now: now)
        // The id is logged only if it is configured (an attacker's ids are not worth a log
        // line each); the secret never is.
        self.logger.warning(
            "client authentication failed",
            metadata: [
                "client_id": "\(client?.id ?? "-")", "src_ip": "\(request.address)", "why": "\(why)",
                "locked_out": "\(lockedOut)",
            ]
        )
        failure.clientID = client?.id
        return .failure(failure)
    }

    /// The credential was right: an address outside the client's list is a policy refusal, not
    /// a guess, so it does not count toward the lockout.
    private func admit(
        _ client: Client,
        _ credential: Credential.Verified,
        _ request: Request
    ) -> Result<(client: Client, credential: Credential.Verified), TokenEndpointResult> {
        guard let allowed = client.allowedIPs, !allowed.contains(request.address) else { return .success((client, credential)) }
        self.logger.warning(
            "token request from outside the client's allowed_ips",
            metadata: ["client_id": "\(client.id)", "src_ip": "\(request.address)"]
        )
        return .failure(
            .refusal(403, "unauthorized_client", "this client may not ask for tokens from this address", reason: "ip_not_allowed", clientID: client.id)
        )
    }

    /// The client id and the one credential a request presents.
    private static func presentedCredential(_ request: Request, form: [String: String]) -> Result<(id: String, credential: Credential), TokenEndpointResult> {
        let ambiguous = TokenEndpointResult.refusal(400, "invalid_request", "use one client authentication method, not two", reason: "invalid_request")
        if let type = form["client_assertion_type"] {
            guard request.authorization == nil, form["client_secret"] == nil else { return .failure(ambiguous) }
            guard type == ClientAssertionVerifier.assertionType else {
                return .failure(.refusal(400, "invalid_request", "client_assertion_type must be \(ClientAssertionVerifier.assertionType)", reason: "invalid_request"))
            }
            guard let assertion = form["client_assertion"], !assertion.isEmpty else {
                return .failure(.refusal(400, "invalid_request", "client_assertion is required with client_assertion_type", reason: "invalid_request"))
            }
            // RFC 7521 §4.2: client_id is optional; the assertion's sub names the client.
            guard let id = form["client_id"] ?? Self.unverifiedSubject(assertion), !id.isEmpty else {
                return .failure(.invalidClient("the client assertion names no client"))
            }
            return .success((id, .assertion(assertion)))
        }
        if form["client_assertion"] != nil {
            return .failure(.refusal(400, "invalid_request", "client_assertion needs client_assertion_type", reason: "invalid_request"))
        }
        if let authorization = request.authorization {
            guard let basic = Self.basicCredentials(authorization) else {
                return .failure(.invalidClient("the Authorization header is not HTTP Basic client authentication"))
            }
            if form["client_secret"] != nil { return .failure(ambiguous) }
            if let bodyID = form["client_id"], bodyID != basic.id {
                return .failure(.refusal(400, "invalid_request", "client_id differs from the Basic credentials", reason: "invalid_request"))
            }
            guard !basic.id.isEmpty else { return .failure(.invalidClient("client authentication is required")) }
            return .success((basic.id, .secret(basic.secret)))
        }
        guard let id = form["client_id"], let secret = form["client_secret"], !id.isEmpty else {
            return .failure(.invalidClient("client authentication is required (client_secret_basic, client_secret_post or private_key_jwt)"))
        }
        return .success((id, .secret(secret)))
    }

    /// `sub` of an assertion not verified yet: only to find whose key verifies it.
    private static func unverifiedSubject(_ assertion: String) -> String? {
        let parts = assertion.utf8.split(separator: UInt8(ascii: "."), maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64URL.decode(parts[1]),
            case .object(let members)? = try? JSONValue.parse(payload)
        else { return nil }
        return members["sub"]?.stringValue
    }

    /// `Basic base64(id:secret)` with both halves form-urlencoded (RFC 6749 §2.3.1).
    public static func basicCredentials(_ authorization: String) -> (id: String, secret: String)? {
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let decoded = StandardBase64.decode(parts[1].trimmingASCIIWhitespace()),
            let colon = decoded.firstIndex(of: UInt8(ascii: ":")),
            let id = FormBody.decodeComponent(decoded[..<colon]),
            let secret = FormBody.decodeComponent(decoded[(colon + 1)...])
        else { return nil }
        return (id, secret)
    }

    private static func readForm(_ request: Request) -> Result<[String: String], TokenEndpointResult> {
        let mediaType = request.contentType?.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingASCIIWhitespace().lowercased()
        }
        guard mediaType == "application/x-www-form-urlencoded" else {
            return .failure(
                .refusal(400, "invalid_request", "the body must be application/x-www-form-urlencoded", reason: "invalid_request")
            )
        }
        guard let form = FormBody.parse(request.body) else {
            return .failure(
                .refusal(400, "invalid_request", "the form body is malformed or repeats a parameter", reason: "invalid_request")
            )
        }
        return .success(form)
    }
}

/// What a token endpoint answers: a JSON body, or an RFC 6749 §5.2 error.
public struct TokenEndpointResult: Error, Sendable {
    public var status: Int
    /// The §5.2 `error` code; nil for a success.
    public var error: StaticString?
    public var description: String
    /// The success body (JSON), or nil.
    public var body: String?
    /// The access log's `reason`.
    public var reason: String
    /// A configured client the request authenticated as (or tried to): for the access log.
    public var clientID: String?
    /// Seconds, with 429.
    public var retryAfter: Int64?

    static func refusal(
        _ status: Int,
        _ error: StaticString,
        _ description: String,
        reason: String,
        clientID: String? = nil
    ) -> TokenEndpointResult {
        TokenEndpointResult(status: status, error: error, description: description, body: nil, reason: reason, clientID: clientID)
    }

    static func invalidClient(_ description: String) -> TokenEndpointResult {
        .refusal(401, "invalid_client", description, reason: "invalid_client")
    }

    static func revoked(clientID: String) -> TokenEndpointResult {
        TokenEndpointResult(status: 200, error: nil, description: "", body: "", reason: "token_revoked", clientID: clientID)
    }

    /// `WWW-Authenticate` for a 401 (RFC 6749 §5.2: the scheme the client may use).
    public var challenge: String? {
        self.status == 401 ? "Basic realm=\"portcullis\"" : nil
    }
}

/// `application/x-www-form-urlencoded` bodies (the token endpoints' only input).
public enum FormBody {
    /// Name -> value; nil for a malformed body or one that repeats a parameter (RFC 6749 §3.2
    /// forbids it, and two values would be ambiguous).
    public static func parse(_ body: [UInt8]) -> [String: String]? {
        var result: [String: String] = [:]
        for pair in body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let rawName = equals.map { pair[pair.startIndex..<$0] } ?? pair[...]
            let rawValue = equals.map { pair[($0 + 1)...] } ?? []
            guard let name = Self.decodeComponent(rawName), let value = Self.decodeComponent(rawValue), !name.isEmpty else {
                return nil
            }
            if result[name] != nil { return nil }
            result[name] = value
        }
        return result
    }

    /// Percent-decoding with `+` as space; nil for a bad escape or invalid UTF-8.
    public static func decodeComponent(_ bytes: ArraySlice<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "+"):
                out.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard index + 2 < bytes.endIndex,
                    let high = Self.hexValue(bytes[index + 1]), let low = Self.hexValue(bytes[index + 2])
                else { return nil }
                out.append(high << 4 | low)
                index += 2
            default:
                if byte < 0x20 || byte == 0x7F { return nil }
                out.append(byte)
            }
            index += 1
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Standard (padded) base64, as HTTP Basic uses it.
enum StandardBase64 {
    static func decode(_ text: some StringProtocol) -> [UInt8]? {
        var url = ""
        url.reserveCapacity(text.utf8.count)
        var padding = 0
        for character in text.utf8 {
            switch character {
            case UInt8(ascii: "+"): url.append("-")
            case UInt8(ascii: "/"): url.append("_")
            case UInt8(ascii: "="): padding += 1
            default:
                if padding > 0 { return nil }
                url.unicodeScalars.append(Unicode.Scalar(character))
            }
        }
        guard padding <= 2, (url.utf8.count + padding) % 4 == 0 else { return nil }
        return Base64URL.decode(url.utf8)
    }
}

/// Told of every token a client revokes at `POST /oauth/revoke`, for the audit trail; set once
/// the gateway knows where the trail is. Called on an event loop: the observer must not wait.
public final class RevocationObserver: Sendable {
    private let observe = NIOLockedValueBox<(@Sendable (_ clientID: String, _ tokenID: String, _ address: IPAddress) -> Void)?>(nil)

    public init() {}

    public func set(_ observe: @escaping @Sendable (_ clientID: String, _ tokenID: String, _ address: IPAddress) -> Void) {
        self.observe.withLockedValue { $0 = observe }
    }

    func revoked(clientID: String, tokenID: String, address: IPAddress) {
        self.observe.withLockedValue { $0 }?(clientID, tokenID, address)
    }
}
