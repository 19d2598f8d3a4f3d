import Crypto
import Foundation
import PortcullisAuth
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Three gateway processes sharing one throwaway PostgreSQL: a change made through one replica
/// is enforced by the others within about a second; with PostgreSQL stopped they keep serving
/// the clients they know and refuse admin writes with 503; restarted, writes work again.
@Suite(
    "PostgreSQL store end to end",
    .serialized,
    .enabled(if: PostgresCluster.isAvailable, "\(PostgresCluster.skipMessage)")
)
struct PostgresStoreEndToEndTests {
    typealias System = BuiltinIssuerEndToEndTests.System

    /// Starts `count` gateways on one backend, one signing key and `cluster`.
    static func replicas(_ count: Int, cluster: PostgresCluster) throws -> [System] {
        let key = P256.Signing.PrivateKey().pemRepresentation
        let backend = try PortcullisProcess.demoBackend()
        var systems: [System] = []
        for _ in 0..<count {
            let gateway = try PortcullisProcess.serve(
                configYAML: """
                    listen:
                      - address: "127.0.0.1:0"
                    upstream:
                      url: "http://127.0.0.1:\(backend.port())"
                    \(StoreEndToEndTests.config(store: "store: { postgres: { url_file: pg-url } }"))
                    """,
                extraFiles: ["signing.pem": key, "admin-token": StoreEndToEndTests.adminToken + "\n", "pg-url": cluster.url + "\n"]
            )
            systems.append(try StoreEndToEndTests.system(GatewayUnderTest(backend: backend, gateway: gateway)))
        }
        return systems
    }

    /// Seconds until `path` answers `status` for `token` on `system` (polled every 10 ms), or nil
    /// past `timeout`.
    static func secondsUntil(_ status: Int, _ system: System, token: String, timeout: Double = 60) -> Double? {
        let start = Date()
        let deadline = Deadline(seconds: timeout)
        repeat {
            if system.call("/demo/echo", token: token).status == status { return Date().timeIntervalSince(start) }
            usleep(10_000)
        } while deadline.remainingMilliseconds > 0
        return nil
    }

    /// Creates client `id` (role reader) through `system`'s admin API, retrying for up to 30 s
    /// while the store comes back.
    static func createOnceWritable(_ system: System, id: String) -> HTTPTestResponse {
        let deadline = Deadline(seconds: 30)
        let json = #"{"id": "\#(id)", "roles": ["reader"]}"#
        var response = system.api("POST", "/api/v1/clients", json: json)
        while response.status != 201 && deadline.remainingMilliseconds > 0 {
            usleep(100_000)
            response = system.api("POST", "/api/v1/clients", json: json)
        }
        return response
    }

    static func tokenID(_ token: String) throws -> String {
        let parts = token.split(separator: ".")
        let payload = try #require(parts.count == 3 ? Base64URL.decode(parts[1].utf8) : nil)
        let claims = try #require(try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any])
        return try #require(claims["jti"] as? String)
    }

    @Test func aRotationWithGraceAndTheAuditTrailAreSharedByTwoReplicas() throws {
        let cluster = try PostgresCluster()
        let systems = try Self.replicas(2, cluster: cluster)
        defer { for system in systems { _ = system.under.gateway.terminate() } }
        let (a, b) = (systems[0], systems[1])
        let created = a.api("POST", "/api/v1/clients", json: #"{"id": "shared", "roles": ["reader"]}"#)
        #expect(created.status == 201, "\(created)")
        let oldSecret = try #require(created.json?["client_secret"] as? String)
        let oldToken = try #require(StoreEndToEndTests.token(b, "shared", oldSecret), "\(b.under.gateway.output)")

        let createdAt = ClientLifecycleEndToEndTests.currentSecretCreated("shared", b)
        usleep(1_100_000)  // secret times are whole seconds
        let rotated = a.api("POST", "/api/v1/clients/shared/client-credentials", json: #"{"grace": "4s"}"#)
        #expect(rotated.status == 200, "\(rotated)")
        let newSecret = try #require(rotated.json?["client_secret"] as? String)
        // The other replica applies the rotation, and then gives tokens for the new secret.
        #expect(ClientLifecycleEndToEndTests.waitForNewSecret("shared", b, replacing: createdAt), "\(b.under.gateway.output)")
        let newToken = try #require(StoreEndToEndTests.token(b, "shared", newSecret), "\(b.under.gateway.output)")
        #expect(b.call("/demo/echo", token: newToken).status == 200)
        // Then the old token is refused on both, the new one still passes.
        #expect(Self.secondsUntil(401, b, token: oldToken, timeout: 40) != nil, "\(b.under.gateway.output)")
        #expect(Self.secondsUntil(401, a, token: oldToken, timeout: 40) != nil)
        #expect(b.call("/demo/echo", token: newToken).status == 200)

        let audit = b.api("GET", "/api/v1/audit?client=shared")
        let events = try #require(audit.json?["events"] as? [[String: Any]], "\(audit)")
        #expect(events.map { $0["action"] as? String } == ["client.add", "client.rotate"], "\(events)")
        #expect(events.allSatisfy { $0["actor"] as? String == "admin" })
    }

    @Test func aDatabaseThatHangsMakesAdminWritesAnswer503AndRequestsGoOn() throws {
        let cluster = try PostgresCluster()
        let systems = try Self.replicas(1, cluster: cluster)
        let a = systems[0]
        defer { _ = a.under.gateway.terminate() }
        let created = a.api("POST", "/api/v1/clients", json: #"{"id": "known", "roles": ["reader"]}"#)
        #expect(created.status == 201, "\(created)")
        let secret = try #require(created.json?["client_secret"] as? String)
        let token = try #require(StoreEndToEndTests.token(a, "known", secret), "\(a.under.gateway.output)")

        try cluster.pause()
        defer { try? cluster.resume() }
        // The request path never waits for the store.
        #expect(a.call("/demo/echo", token: token).status == 200)
        // An admin write gives up at the store's 10 s deadline instead of hanging.
        let start = Date()
        var write = HTTPTestResponse.failed("not sent")
        let writer = Thread {
            write = RawHTTPClient.request(
                "POST", "/api/v1/clients", port: a.admin,
                headers: [("Authorization", "Bearer \(BuiltinIssuerEndToEndTests.adminToken)"), ("Content-Type", "application/json")],
                body: Array(#"{"id": "during-hang", "roles": ["reader"]}"#.utf8), authorize: false, timeout: 120
            )
        }
        writer.start()
        while writer.isExecuting || !writer.isFinished {
            if Date().timeIntervalSince(start) > 130 { break }
            usleep(50_000)
        }
        let waited = Date().timeIntervalSince(start)
        #expect(write.status == 503, "\(write)")
        #expect(waited >= 9 && waited < 100, "answered after \(waited) s")
        #expect(a.call("/demo/echo", token: token).status == 200)
        try cluster.resume()
        // Back: writes work again.
        let after = Self.createOnceWritable(a, id: "after-hang")
        #expect(after.status == 201, "\(after)\n\(a.under.gateway.output.suffix(3000))")
        if after.status != 201 { try? a.under.gateway.output.write(toFile: "/tmp/gw-crash.txt", atomically: true, encoding: .utf8) }
    }

    @Test func threeReplicasShareClientsRevocationsAndSurviveTheDatabaseGoingAway() throws {
        let cluster = try PostgresCluster()
        let systems = try Self.replicas(3, cluster: cluster)
        defer { for system in systems { _ = system.under.gateway.terminate() } }
        let (a, b, c) = (systems[0], systems[1], systems[2])
        for system in systems {
            let ready = RawHTTPClient.request("GET", "/readyz", port: system.admin)
            #expect(ready.status == 200, "\(ready) \(system.under.gateway.output)")
        }

        // Created through A, a token from B, served by C.
        let created = a.api("POST", "/api/v1/clients", json: #"{"id": "shared", "roles": ["reader"]}"#)
        #expect(created.status == 201, "\(created) \(a.under.gateway.output)")
        let secret = try #require(created.json?["client_secret"] as? String)
        let token = try #require(StoreEndToEndTests.token(b, "shared", secret), "\(b.under.gateway.output)")
        let served = Self.secondsUntil(200, c, token: token)
        #expect(served != nil, "\(c.under.gateway.output)")

        // Disabled through C: refused by A and B.
        let disabled = c.api("POST", "/api/v1/clients/shared/disable")
        #expect(disabled.status == 200, "\(disabled)")
        let refusedByA = Self.secondsUntil(401, a, token: token)
        let refusedByB = Self.secondsUntil(401, b, token: token)
        #expect(refusedByA != nil && refusedByB != nil, "\(a.under.gateway.output)")
        print("store propagation: disable through C refused by A after \(refusedByA ?? -1) s, by B after \(refusedByB ?? -1) s")

        // A token revoked through A: refused by B.
        #expect(a.api("POST", "/api/v1/clients/shared/enable").status == 200)
        let second = try #require(StoreEndToEndTests.token(a, "shared", secret))
        #expect(Self.secondsUntil(200, b, token: second) != nil, "\(b.under.gateway.output)")
        let revoked = a.api("POST", "/api/v1/tokens/\(try Self.tokenID(second))/revoke")
        #expect(revoked.status == 200, "\(revoked)")
        let revokedOnB = Self.secondsUntil(401, b, token: second)
        #expect(revokedOnB != nil)
        print("store propagation: revocation through A refused by B after \(revokedOnB ?? -1) s")
        let third = try #require(StoreEndToEndTests.token(b, "shared", secret))
        for system in systems { #expect(Self.secondsUntil(200, system, token: third) != nil) }

        // PostgreSQL stopped: known clients keep being served by all three; writes answer 503.
        try cluster.stop()
        var failures = 0
        for _ in 0..<20 {
            for system in systems where system.call("/demo/echo", token: third).status != 200 { failures += 1 }
        }
        #expect(failures == 0)
        let refusedWrite = a.api("POST", "/api/v1/clients", json: #"{"id": "while-down", "roles": ["reader"]}"#)
        #expect(refusedWrite.status == 503, "\(refusedWrite)")
        let refusedDisable = b.api("POST", "/api/v1/clients/shared/disable")
        #expect(refusedDisable.status == 503, "\(refusedDisable)")
        #expect(b.call("/demo/echo", token: third).status == 200)
        #expect(Self.waitForMetric("portcullis_store_up 0", a), "\(a.under.gateway.output)")
        // A token issued and revoked by the client through B meanwhile: the revocation waits in
        // B's buffer and reaches A once PostgreSQL is back.
        let fourth = try #require(b.tokenByPost("shared", secret).json?["access_token"] as? String)
        let revokedByClient = System.post(
            "/oauth/revoke",
            form: "token=\(fourth)&client_id=shared&client_secret=\(System.encode(secret))",
            port: b.port
        )
        #expect(revokedByClient.status == 200, "\(revokedByClient)")
        #expect(a.call("/demo/echo", token: fourth).status == 200)

        // Restarted: writes work again and reach every replica.
        try cluster.start()
        let afterRestart = Self.createOnceWritable(a, id: "after-restart")
        #expect(afterRestart.status == 201, "\(afterRestart) \(a.under.gateway.output)")
        let newSecret = try #require(afterRestart.json?["client_secret"] as? String)
        let newToken = try #require(StoreEndToEndTests.token(c, "after-restart", newSecret, timeout: 60), "\(c.under.gateway.output)")
        #expect(Self.secondsUntil(200, b, token: newToken) != nil)
        #expect(Self.secondsUntil(401, a, token: fourth) != nil, "the buffered revocation was lost: B: \(b.under.gateway.output)\nA: \(a.under.gateway.output)")
        #expect(Self.waitForMetric("portcullis_store_up 1", a))

        // Failed authentications add up across replicas: 3 on A and 2 on B (max_failed_auth 5)
        // lock the client out on C, right secret and all. Last: 127.0.0.1 is locked out too.
        for _ in 0..<3 { #expect(a.tokenByPost("after-restart", "wrong").status == 401) }
        for _ in 0..<2 { _ = b.tokenByPost("after-restart", "wrong") }
        let lockout = Deadline(seconds: 60)
        var onC = c.tokenByPost("after-restart", newSecret)
        while onC.status != 429 && lockout.remainingMilliseconds > 0 {
            usleep(50_000)
            onC = c.tokenByPost("after-restart", newSecret)
        }
        #expect(onC.status == 429, "\(onC) \(c.under.gateway.output)")
    }

    /// Polls `/metrics` of `system` until a line equals `line`.
    static func waitForMetric(_ line: String, _ system: System, timeout: Double = 60) -> Bool {
        let deadline = Deadline(seconds: timeout)
        repeat {
            let text = String(decoding: RawHTTPClient.request("GET", "/metrics", port: system.admin).body, as: UTF8.self)
            if text.split(separator: "\n").contains(where: { $0 == line }) { return true }
            usleep(50_000)
        } while deadline.remainingMilliseconds > 0
        return false
    }
}
