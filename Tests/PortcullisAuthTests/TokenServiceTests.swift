import Foundation
import Logging
import PortcullisAuth
import PortcullisPolicy
import Testing

@Suite("Built-in issuer: token endpoint logic")
struct TokenServiceTests {
    static let secret = "s3cret-of-the-psa-sync-client-0123456789ab"
    static let now: Int64 = 1_800_000_000
    static let address = IPAddress(parsing: "192.0.2.10")!

    static func service(
        maxFailedAuth: Int = 3,
        maxFailedAuthPerAddress: Int = 3,
        enabled: Bool = true,
        lifetime: Int64? = nil,
        allowedIPs: CIDRSet? = nil,
        others: [TokenService.Client] = [],
        state: IssuerState? = nil,
        secrets: [LiveSecret]? = nil
    ) throws -> TokenService {
        let issuer = BuiltinIssuer(
            name: "local",
            issuer: "urn:portcullis:local",
            signer: JWSSigner.generate(.es256, keyID: "k1")!,
            defaultLifetime: 900,
            maximumLifetime: 3600,
            leeway: 5
        )
        return TokenService(
            issuer: issuer,
            clients: [
                .init(
                    id: "psa-sync",
                    enabled: enabled,
                    secrets: secrets ?? [LiveSecret(secretSHA256: ClientSecret.sha256Hex(Self.secret), notAfter: nil, retired: false)],
                    tokenLifetime: lifetime,
                    allowedIPs: allowedIPs
                )
            ] + others,
            limiter: FailedAuthLimiter(),
            maxFailedAuth: maxFailedAuth,
            maxFailedAuthPerAddress: maxFailedAuthPerAddress,
            failureWindow: 300,
            state: try state ?? IssuerState(path: nil, now: Self.now),
            logger: Logger(label: "test")
        )
    }

    static func request(_ form: String, authorization: String? = nil, contentType: String? = "application/x-www-form-urlencoded") -> TokenService.Request {
        TokenService.Request(contentType: contentType, authorization: authorization, body: Array(form.utf8), address: Self.address)
    }

    static func post(_ id: String = "psa-sync", _ secret: String = Self.secret) -> TokenService.Request {
        Self.request("grant_type=client_credentials&client_id=\(id)&client_secret=\(secret)")
    }

    static func claims(_ token: String) throws -> [String: Any] {
        let parts = token.split(separator: ".")
        let bytes = try #require(Base64URL.decode(parts[1].utf8))
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    // MARK: - Secret lifetimes

    @Test func anExpiredSecretIsRefusedSayingWhenItExpiredAndNotCountedAsAFailure() throws {
        let expired = LiveSecret(secretSHA256: ClientSecret.sha256Hex(Self.secret), notAfter: Self.now, retired: false)
        let service = try Self.service(maxFailedAuth: 1, secrets: [expired])
        for _ in 0..<3 {
            let result = service.token(Self.post(), now: Self.now)
            #expect(result.status == 401)
            #expect(result.error?.description == "invalid_client")
            #expect(result.description.contains("the client secret expired at"), "\(result.description)")
            #expect(result.reason == "secret_expired")
        }
    }

    @Test func aSecretInItsGraceGetsTokensThatEndWithTheGrace() throws {
        let old = "the-old-secret-of-the-psa-sync-client-0123456"
        let secrets = [
            LiveSecret(secretSHA256: ClientSecret.sha256Hex(Self.secret), notAfter: nil, retired: false),
            LiveSecret(secretSHA256: ClientSecret.sha256Hex(old), notAfter: Self.now + 60, retired: true),
        ]
        let service = try Self.service(secrets: secrets)
        let current = service.token(Self.post(), now: Self.now)
        #expect(current.status == 200)
        let graced = service.token(Self.post("psa-sync", old), now: Self.now)
        #expect(graced.status == 200)
        let body = try #require(graced.body)
        let token = try #require((try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["access_token"] as? String)
        let claims = try Self.claims(token)
        #expect(claims["exp"] as? Int64 == Self.now + 60, "a token never outlives its secret")
        #expect(claims["cv"] as? String == ClientSecret.credentialVersion(sha256Hex: ClientSecret.sha256Hex(old)))
        let ended = service.token(Self.post("psa-sync", old), now: Self.now + 60)
        #expect(ended.status == 401)
        #expect(ended.description.contains("grace"), "\(ended.description)")
    }

    // MARK: - Form bodies

    @Test func formBodiesDecodePlusAndPercentAndRefuseRepeats() {
        #expect(FormBody.parse(Array("a=1&b=x+y%21&c=".utf8)) == ["a": "1", "b": "x y!", "c": ""])
        #expect(FormBody.parse(Array("a=1&a=2".utf8)) == nil, "a repeated parameter is ambiguous")
        #expect(FormBody.parse(Array("a=%zz".utf8)) == nil)
        #expect(FormBody.parse(Array("a=%ff".utf8)) == nil, "not UTF-8")
        #expect(FormBody.parse(Array("=1".utf8)) == nil)
        #expect(FormBody.parse([]) == [:])
    }

    @Test func basicCredentialsAreFormDecodedHalves() {
        let encoded = Data("my%3Aid:p%40ss:word".utf8).base64EncodedString()
        let parsed = TokenService.basicCredentials("Basic \(encoded)")
        #expect(parsed?.id == "my:id")
        #expect(parsed?.secret == "p@ss:word", "only the first colon splits")
        #expect(TokenService.basicCredentials("Bearer abc") == nil)
        #expect(TokenService.basicCredentials("Basic !!!") == nil)
    }

    // MARK: - Tokens

    @Test func aTokenCarriesIssuerAudienceClientJTIAndCredentialVersion() throws {
        let service = try Self.service()
        let result = service.token(Self.post(), now: Self.now)
        #expect(result.status == 200)
        let body = try #require(result.body)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(json["token_type"] as? String == "Bearer")
        #expect(json["expires_in"] as? Int == 900)
        let claims = try Self.claims(try #require(json["access_token"] as? String))
        #expect(claims["iss"] as? String == "urn:portcullis:local")
        #expect(claims["aud"] as? String == "portcullis")
        #expect(claims["client_id"] as? String == "psa-sync")
        #expect(claims["exp"] as? Int == Int(Self.now) + 900)
        #expect((claims["jti"] as? String)?.isEmpty == false)
        #expect(claims["cv"] as? String == ClientSecret.credentialVersion(sha256Hex: ClientSecret.sha256Hex(Self.secret)))
        #expect(service.state.lastRedeemed["psa-sync"] == Self.now)
    }

    @Test func aClientLifetimeAboveTheMaximumIsCapped() throws {
        let result = try Self.service(lifetime: 7200).token(Self.post(), now: Self.now)
        #expect(result.body?.contains("\"expires_in\":3600") == true)
    }

    @Test func badRequestsGetTheirRFC6749Errors() throws {
        let service = try Self.service()
        #expect(service.token(Self.request("grant_type=client_credentials", contentType: "application/json"), now: Self.now).error?.description == "invalid_request")
        #expect(service.token(Self.request("client_id=psa-sync"), now: Self.now).error?.description == "invalid_request")
        let grant = service.token(Self.request("grant_type=authorization_code"), now: Self.now)
        #expect(grant.status == 400)
        #expect(grant.error?.description == "unsupported_grant_type")
        let basic = "Basic " + Data("psa-sync:\(Self.secret)".utf8).base64EncodedString()
        let both = service.token(Self.request("grant_type=client_credentials&client_secret=\(Self.secret)", authorization: basic), now: Self.now)
        #expect(both.status == 400, "two client authentication methods")
        #expect(service.token(Self.request("grant_type=client_credentials", authorization: basic), now: Self.now).status == 200)
    }

    @Test func wrongSecretUnknownClientAndDisabledClientLookAlike() throws {
        let service = try Self.service(maxFailedAuth: 100)
        let wrong = service.token(Self.post("psa-sync", "nope"), now: Self.now)
        let unknown = service.token(Self.post("ghost", "nope"), now: Self.now)
        let disabled = try Self.service(enabled: false).token(Self.post(), now: Self.now)
        for result in [wrong, unknown, disabled] {
            #expect(result.status == 401)
            #expect(result.error?.description == "invalid_client")
            #expect(result.challenge == "Basic realm=\"portcullis\"")
            #expect(result.description == wrong.description)
        }
        #expect(unknown.clientID == nil, "an id nobody configured is not logged as a client")
    }

    @Test func failuresLockOutTheClientIDAndTheAddress() throws {
        let service = try Self.service(maxFailedAuth: 3)
        for _ in 0..<3 { #expect(service.token(Self.post("psa-sync", "guess"), now: Self.now).status == 401) }
        let locked = service.token(Self.post(), now: Self.now + 1)
        #expect(locked.status == 429)
        #expect(locked.error?.description == "too_many_requests")
        #expect((locked.retryAfter ?? 0) > 0)
        // The address is locked as well: another id from it waits too.
        #expect(service.token(Self.post("ghost", "x"), now: Self.now + 1).status == 429)
        // After the window the right secret works again.
        #expect(service.token(Self.post(), now: Self.now + 301).status == 200)
    }

    @Test func oneClientsLockoutLeavesAnotherClientBehindTheSameAddressAlone() throws {
        let other = TokenService.Client(id: "rmm", enabled: true, secretSHA256: ClientSecret.sha256Hex("rmm-secret-0123456789abcdef"), tokenLifetime: nil)
        let service = try Self.service(maxFailedAuth: 3, maxFailedAuthPerAddress: 10, others: [other])
        for _ in 0..<3 { #expect(service.token(Self.post("psa-sync", "guess"), now: Self.now).status == 401) }
        #expect(service.token(Self.post(), now: Self.now + 1).status == 429, "psa-sync is locked out, even with its right secret")
        #expect(service.token(Self.post("rmm", "rmm-secret-0123456789abcdef"), now: Self.now + 1).status == 200, "rmm, same address, is not")
        // The address has its own, higher limit: 10 failures from it lock out every client.
        for index in 0..<7 { #expect(service.token(Self.post("ghost\(index)", "x"), now: Self.now + 2).status == 401) }
        #expect(service.token(Self.post("rmm", "rmm-secret-0123456789abcdef"), now: Self.now + 3).status == 429)
    }

    @Test func anUnlockClearsOneKeyAndIsSentToTheStore() throws {
        let service = try Self.service(maxFailedAuth: 3, maxFailedAuthPerAddress: 100)
        for _ in 0..<3 { _ = service.token(Self.post("psa-sync", "guess"), now: Self.now) }
        #expect(service.token(Self.post(), now: Self.now + 1).status == 429)
        let lockouts = service.limiter.lockouts(limits: { $0.hasPrefix("id:") ? 3 : 100 }, window: 300, now: Self.now + 1)
        #expect(lockouts.map(\.key) == ["id:psa-sync"])
        #expect(service.limiter.unlock("id:psa-sync", now: Self.now + 2))
        #expect(service.token(Self.post(), now: Self.now + 2).status == 200)
        #expect(!service.limiter.unlock("id:psa-sync", now: Self.now + 3), "nothing left to clear")
    }

    @Test func theTokenEndpointEnforcesTheClientsAllowedIPs() throws {
        let office = CIDRSet([CIDRPrefix(parsing: "198.51.100.0/24")!])
        let service = try Self.service(allowedIPs: office)
        let refused = service.token(Self.post(), now: Self.now)
        #expect(refused.status == 403)
        #expect(refused.error?.description == "unauthorized_client")
        #expect(refused.reason == "ip_not_allowed")
        #expect(refused.clientID == "psa-sync")
        #expect(refused.body == nil, "no token")
        var inside = Self.post()
        inside.address = IPAddress(parsing: "198.51.100.7")!
        #expect(service.token(inside, now: Self.now).status == 200)
        // A wrong secret from outside is a failed authentication, not an address refusal.
        #expect(service.token(Self.post("psa-sync", "guess"), now: Self.now).status == 401)
    }

    @Test func theLimiterBoundsItsKeysAndGroupsIPv6By64() {
        let a = FailedAuthLimiter.keys(clientID: "c", address: IPAddress(parsing: "2001:db8::1")!, perClient: 5, perAddress: 50)
        let b = FailedAuthLimiter.keys(clientID: "c", address: IPAddress(parsing: "2001:db8::ffff:1")!, perClient: 5, perAddress: 50)
        #expect(a == b, "one /64 is one source")
        #expect(a.map(\.limit) == [5, 50])
        let limiter = FailedAuthLimiter()
        for index in 0..<(FailedAuthLimiter.maximumKeys + 10) {
            _ = limiter.recordFailure([.init("id:\(index)", limit: 5)], window: 60, now: Self.now)
        }
        #expect(limiter.count <= FailedAuthLimiter.maximumKeys)
    }

    // MARK: - Revocation and state

    @Test func revocationNeedsTheOwningClientAndLastsUntilExpiry() throws {
        let service = try Self.service()
        let issued = service.token(Self.post(), now: Self.now)
        let token = try #require(try JSONSerialization.jsonObject(with: Data(issued.body!.utf8)) as? [String: Any])["access_token"] as! String
        let jti = try Self.claims(token)["jti"] as! String
        let revoked = service.revoke(Self.request("token=\(token)&client_id=psa-sync&client_secret=\(Self.secret)"), now: Self.now)
        #expect(revoked.status == 200)
        #expect(service.state.isRevoked(jti))
        // An invalid token is answered 200 (RFC 7009 §2.2) and changes nothing.
        #expect(service.revoke(Self.request("token=abc&client_id=psa-sync&client_secret=\(Self.secret)"), now: Self.now).status == 200)
        #expect(service.revoke(Self.request("token=abc&token_type_hint=refresh_token&client_id=psa-sync&client_secret=\(Self.secret)"), now: Self.now).status == 400)
        #expect(service.revoke(Self.request("client_id=psa-sync&client_secret=\(Self.secret)"), now: Self.now).status == 400)
    }

    @Test func stateSurvivesAWriteAndDropsExpiredRevocations() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("issuer-state-\(UUID()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let state = try IssuerState(path: path, now: Self.now)
        state.revoke("live", until: Self.now + 600, now: Self.now)
        state.revoke("dead", until: Self.now + 5, now: Self.now)
        state.redeemed(clientID: "psa-sync", at: Self.now)
        try state.saveIfChanged(now: Self.now)
        let again = try IssuerState(path: path, now: Self.now + 10)
        #expect(again.isRevoked("live"))
        #expect(!again.isRevoked("dead"))
        #expect(again.lastRedeemed == ["psa-sync": Self.now])
        try "not json".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: IssuerError.self) { try IssuerState(path: path, now: Self.now) }
    }

    @Test func rfc3339TimestampsRoundTrip() {
        #expect(IssuerState.formatTimestamp(0) == "1970-01-01T00:00:00Z")
        #expect(IssuerState.formatTimestamp(1_800_000_000) == "2027-01-15T08:00:00Z")
    }

    // MARK: - Secrets

    @Test func secretsAreLongURLSafeAndDistinct() {
        let secrets = (0..<100).map { _ in ClientSecret.generate() }
        #expect(Set(secrets).count == 100)
        for secret in secrets {
            #expect(secret.utf8.count == 43, "256 bits, base64url without padding")
            #expect(secret.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        }
        let hash = ClientSecret.sha256Hex("abc")
        #expect(hash == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(ClientSecret.matches("abc", sha256Hex: hash))
        #expect(!ClientSecret.matches("abd", sha256Hex: hash))
        #expect(!ClientSecret.matches("abc", sha256Hex: String(hash.dropLast())))
        #expect(ClientSecret.credentialVersion(sha256Hex: hash) != ClientSecret.credentialVersion(sha256Hex: ClientSecret.sha256Hex("abd")))
    }
}

@Suite struct FailedAuthLimiterSharingTests {
    @Test func failuresCountedElsewhereLockOutHereAndOwnFailuresWaitInTheOutbox() {
        let limiter = FailedAuthLimiter(feedsStore: true)
        let key = FailedAuthLimiter.Key("id:a", limit: 5)
        limiter.recordFailure([key], window: 60, now: 100)
        limiter.recordFailure([key], window: 60, now: 101)
        #expect(limiter.takeOutbox() == ["id:a": FailedAuthLimiter.Count(start: 100, failures: 2, window: 60)])
        #expect(limiter.takeOutbox().isEmpty)
        #expect(limiter.retryAfter([key], window: 60, now: 102) == nil)
        // The store says every replica together saw 5 in this window.
        limiter.merge(["id:a": FailedAuthLimiter.Count(start: 99, failures: 5, window: 60)], now: 102)
        #expect(limiter.retryAfter([key], window: 60, now: 102) == 57)
    }

    @Test func anUnlockMadeOnAnotherReplicaClearsTheWindowsThatStartedBeforeIt() {
        let limiter = FailedAuthLimiter(feedsStore: true)
        let key = FailedAuthLimiter.Key("id:a", limit: 2)
        limiter.merge(["id:a": FailedAuthLimiter.Count(start: 100, failures: 2, window: 60)], now: 101)
        #expect(limiter.retryAfter([key], window: 60, now: 101) != nil)
        // The store's failures for the key are gone and its unlock says when.
        limiter.merge([:], unlocks: ["id:a": 105], now: 106)
        #expect(limiter.retryAfter([key], window: 60, now: 106) == nil)
        // Failures after the unlock count afresh; a later merge of the same unlock keeps them.
        limiter.recordFailure([key], window: 60, now: 107)
        limiter.recordFailure([key], window: 60, now: 108)
        limiter.merge([:], unlocks: ["id:a": 105], now: 109)
        #expect(limiter.retryAfter([key], window: 60, now: 109) == 58)
        // An unlock made here waits for the store, and its pending failures are dropped.
        #expect(limiter.unlock("id:a", now: 110))
        #expect(limiter.takeUnlocks() == ["id:a": 110])
        #expect(limiter.takeOutbox().isEmpty)
    }
}
