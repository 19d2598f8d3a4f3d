import Crypto
import Foundation
import PortcullisAuth
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The token endpoint's guards and what a refused token leaves behind, on a real gateway:
/// lockouts per client (not per office), the admin's unlock, `allowed_ips` at the token
/// endpoint, and a refused token logged under its client with its `jti`.
@Suite("Token endpoint guards end to end", .serialized)
struct TokenEndpointGuardsEndToEndTests {
    typealias Issuer = BuiltinIssuerEndToEndTests
    static let rmmSecret = ClientSecret.generate()

    static let rmm = """
          - id: "rmm"
            issuer: "local"
            roles: ["reader"]
            secret_sha256: "\(ClientSecret.sha256Hex(Self.rmmSecret))"
          - id: "fenced"
            issuer: "local"
            roles: ["reader"]
            allowed_ips: ["10.0.0.0/8"]
            secret_sha256: "\(ClientSecret.sha256Hex(Self.rmmSecret))"
        """

    static let logging = """
        logging:
          access_log: access.log
        """

    @Test func oneClientsLockoutLeavesAnotherAtTheSameAddressWorkingUntilAnAdminUnlocksIt() throws {
        let system = try Issuer.start(maxFailedAuth: 3, extraClients: Self.rmm)
        for _ in 0..<3 { #expect(system.tokenByPost("psa-sync", "guess").status == 401) }
        #expect(system.tokenByPost("psa-sync", Issuer.firstSecret).status == 429, "psa-sync is locked out")
        // Same address (127.0.0.1), another client: unaffected.
        _ = try Issuer.accessToken(system.tokenByPost("rmm", Self.rmmSecret))

        let listed = system.api("GET", "/api/v1/lockouts")
        #expect(listed.status == 200, "\(listed)")
        let keys = (listed.json?["lockouts"] as? [[String: Any]])?.compactMap { $0["key"] as? String }
        #expect(keys == ["id:psa-sync"], "\(listed.bodyString)")
        #expect(system.api("POST", "/api/v1/clients/nobody/unlock").status == 404)
        let unlocked = system.api("POST", "/api/v1/clients/psa-sync/unlock")
        #expect(unlocked.status == 200, "\(unlocked)")
        #expect(unlocked.json?["had_failures"] as? Bool == true)
        _ = try Issuer.accessToken(system.tokenByPost("psa-sync", Issuer.firstSecret))
        #expect(system.api("DELETE", "/api/v1/lockouts/bogus").status == 400)
        // The unlock is in the audit trail under the admin token's name.
        let audit = system.api("GET", "/api/v1/audit?action=lockout.clear")
        #expect(audit.status == 200, "\(audit)")
        let events = audit.json?["events"] as? [[String: Any]] ?? []
        #expect(events.count == 1, "\(audit.bodyString)")
        #expect(events.first?["client_id"] as? String == "psa-sync")
        #expect(events.first?["actor"] as? String == "admin", "\(audit.bodyString)")
    }

    @Test func aTokenRequestFromOutsideTheClientsAllowedIPsIsRefused() throws {
        let system = try Issuer.start(extraClients: Self.rmm)
        let refused = system.tokenByPost("fenced", Self.rmmSecret)
        #expect(refused.status == 403, "\(refused)")
        #expect(refused.json?["error"] as? String == "unauthorized_client")
        #expect(refused.json?["access_token"] == nil)
        // The right secret from the wrong place is not a guess: no lockout builds up.
        for _ in 0..<6 { #expect(system.tokenByPost("fenced", Self.rmmSecret).status == 403) }
    }

    @Test func aRotatedClientsRefusedTokenIsLoggedAndCountedUnderItsClientWithItsJTI() throws {
        let system = try Issuer.start(extraConfig: Self.logging)
        let old = try Issuer.accessToken(system.tokenByPost("psa-sync", Issuer.firstSecret))
        let jti = try #require(Issuer.claims(old)?["jti"] as? String)
        #expect(system.call("/demo/echo", token: old).status == 200)
        #expect(system.api("POST", "/api/v1/clients/psa-sync/client-credentials").status == 200)
        let refused = system.waitFor(401, "/demo/echo", token: old)
        #expect(refused.status == 401)

        let directory = try #require(system.under.gateway.configDirectory)
        // The token's issue, the allowed call, then the refusal: wait for all three.
        let lines = AccessLogEndToEndTests.lines(directory.appendingPathComponent("access.log"), atLeast: 3)
        let rotated = lines.filter { $0["reason"] as? String == "credential_rotated" }
        #expect(!rotated.isEmpty, "\(lines)")
        for line in rotated {
            #expect(line["client_id"] as? String == "psa-sync")
            #expect(line["jti"] as? String == jti)
        }
        #expect(lines.first { $0["reason"] as? String == "allowed" }?["jti"] as? String == jti, "allowed lines carry the jti too")

        let metrics = try AdminEndpointsEndToEndTests.scrape(port: system.admin)
        let counted = metrics.samples.filter {
            $0.name == "portcullis_requests_total" && $0.labels["reason"] == "credential_rotated"
        }
        #expect(counted.map { $0.labels["client"] } == ["psa-sync"])
    }

    // MARK: - private_key_jwt

    static func assertion(_ signer: JWSSigner, client: String, jti: String = UUID().uuidString) throws -> String {
        let now = Int64(Date().timeIntervalSince1970)
        return try signer.sign(
            claimsJSON: #"{"iss":"\#(client)","sub":"\#(client)","aud":"urn:portcullis:local","exp":\#(now + 60),"iat":\#(now),"jti":"\#(jti)"}"#
        )
    }

    static func tokenByAssertion(_ system: Issuer.System, _ assertion: String, clientID: String? = nil) -> HTTPTestResponse {
        let type = Issuer.System.encode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        let id = clientID.map { "&client_id=\($0)" } ?? ""
        return Issuer.System.post(
            "/oauth/token",
            form: "grant_type=client_credentials&client_assertion_type=\(type)&client_assertion=\(assertion)\(id)",
            port: system.port
        )
    }

    @Test func aKeyClientGetsATokenWithASignedAssertionAndAReplayOrAForeignSignatureIsRefused() throws {
        let signer = JWSSigner(p256: P256.Signing.PrivateKey(), keyID: "build-agent-1")
        let system = try Issuer.start(
            extraClients: """
                  - id: "cert-sync"
                    issuer: "local"
                    roles: ["reader"]
                    public_key: '\(signer.publicJWK)'
                """
        )
        let assertion = try Self.assertion(signer, client: "cert-sync")
        let token = try Issuer.accessToken(Self.tokenByAssertion(system, assertion))
        #expect(system.call("/demo/echo", token: token).status == 200)
        let replay = Self.tokenByAssertion(system, assertion)
        #expect(replay.status == 401, "\(replay)")
        #expect(replay.json?["error"] as? String == "invalid_client")
        let stranger = JWSSigner(p256: P256.Signing.PrivateKey(), keyID: "build-agent-1")
        #expect(Self.tokenByAssertion(system, try Self.assertion(stranger, client: "cert-sync")).status == 401)
        #expect(system.tokenByPost("cert-sync", "no-secret-exists").status == 401, "a key client has no secret to guess")
        _ = try Issuer.accessToken(Self.tokenByAssertion(system, try Self.assertion(signer, client: "cert-sync"), clientID: "cert-sync"))

        // Through the admin API: registering a PEM key gives no secret.
        let laptop = P256.Signing.PrivateKey()
        let body = try JSONSerialization.data(withJSONObject: ["id": "laptop", "roles": ["reader"], "public_key": laptop.publicKey.pemRepresentation])
        let created = system.api("POST", "/api/v1/clients", json: String(decoding: body, as: UTF8.self))
        #expect(created.status == 201, "\(created)")
        #expect(created.json?["client_secret"] == nil)
        let laptopSigner = JWSSigner(p256: laptop, keyID: "laptop")
        _ = try Issuer.accessToken(Self.tokenByAssertion(system, try Self.assertion(laptopSigner, client: "laptop")))
        let bad = system.api("POST", "/api/v1/clients", json: #"{"id": "bad", "roles": ["reader"], "public_key": "not a key"}"#)
        #expect(bad.status == 400, "\(bad)")
    }
}
