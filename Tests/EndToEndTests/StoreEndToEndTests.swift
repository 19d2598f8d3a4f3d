import Crypto
import Foundation
import PortcullisAuth
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The embedded store (`store: {path: state}`) with a real gateway: clients created through the
/// admin API or the CLI land in the store, never in the config directory, survive a restart,
/// and an emergency disable works while an unrelated part of the config is broken.
@Suite("Embedded store end to end", .serialized)
struct StoreEndToEndTests {
    static let adminToken = BuiltinIssuerEndToEndTests.adminToken
    static let declaredSecret = ClientSecret.generate()

    static func config(store: String) -> String {
        """
        admin:
          address: "127.0.0.1:0"
          token_file: admin-token
        \(store)
        issuers:
          - name: local
            builtin: true
            signing_key_file: signing.pem
        roles:
          reader:
            allow:
              - { methods: [GET], paths: ["/demo/**"] }
        clients:
          - id: "declared"
            issuer: "local"
            roles: ["reader"]
            secret_sha256: "\(ClientSecret.sha256Hex(Self.declaredSecret))"
        """
    }

    static func start() throws -> BuiltinIssuerEndToEndTests.System {
        let under = try GatewayUnderTest.start(
            Self.config(store: "store: { path: state }"),
            extraFiles: ["signing.pem": P256.Signing.PrivateKey().pemRepresentation, "admin-token": Self.adminToken + "\n"]
        )
        return try Self.system(under)
    }

    static func system(_ under: GatewayUnderTest) throws -> BuiltinIssuerEndToEndTests.System {
        let url = try #require(under.gateway.url(label: "admin"))
        return BuiltinIssuerEndToEndTests.System(under: under, admin: try #require(PortcullisProcess.port(of: url)))
    }

    /// A token for `id`, once the gateway lists the client (polled on the admin API, at most
    /// `timeout` seconds: polling the token endpoint would count failures toward the lockout).
    static func token(_ system: BuiltinIssuerEndToEndTests.System, _ id: String, _ secret: String, timeout: Double = 10) -> String? {
        let deadline = Deadline(seconds: timeout)
        while system.api("GET", "/api/v1/clients/\(id)").status != 200 {
            guard deadline.remainingMilliseconds > 0 else { return nil }
            usleep(10_000)
        }
        // The admin API reads the store; the token endpoint, the registry compiled from it a
        // moment later. A few tries, spaced, stay under the client's lockout (5 failures).
        for attempt in 0..<3 {
            let response = system.tokenByPost(id, secret)
            if response.status == 200 { return response.json?["access_token"] as? String }
            guard attempt < 2, deadline.remainingMilliseconds > 0 else { break }
            usleep(1_000_000)
        }
        return nil
    }

    static func files(_ directory: URL?) -> [String] {
        guard let directory else { return [] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
    }

    @Test func aClientCreatedThroughTheAdminAPISurvivesARestart() throws {
        let system = try Self.start()
        let created = system.api("POST", "/api/v1/clients", json: #"{"id": "dashboard", "roles": ["reader"]}"#)
        #expect(created.status == 201, "\(created)")
        let secret = try #require(created.json?["client_secret"] as? String, "\(created)")
        let token = try #require(Self.token(system, "dashboard", secret), "\(system.under.gateway.output)")
        #expect(system.call("/demo/echo", token: token).status == 200)
        // The config directory is not written: the client is in the store.
        let configDirectory = try #require(system.under.gateway.configDirectory)
        #expect(!Self.files(configDirectory).contains("clients.yaml"), "\(Self.files(configDirectory))")
        #expect(Self.files(configDirectory.appendingPathComponent("state")).contains("registry.json"))

        #expect(system.under.gateway.terminate() == 0, "\(system.under.gateway.output)")
        let restarted = try PortcullisProcess(
            arguments: ["serve", "--config", configDirectory.path],
            environment: ["PORTCULLIS_THREADS": "2"],
            configDirectory: configDirectory
        )
        defer { _ = restarted.terminate() }
        let again = try Self.system(GatewayUnderTest(backend: system.under.backend, gateway: restarted))
        let fresh = try #require(Self.token(again, "dashboard", secret, timeout: 5), "\(restarted.output)")
        #expect(again.call("/demo/echo", token: fresh).status == 200)
        let listed = again.api("GET", "/api/v1/clients/dashboard")
        #expect(listed.status == 200, "\(listed)")
        // Used just now, so last_used is set (written to the store about once a second).
        #expect(listed.json?["last_used"] is String, "\(listed)")
    }

    @Test func theCLIWritesTheStoreAndTheRunningGatewayAppliesIt() throws {
        let system = try Self.start()
        defer { _ = system.under.gateway.terminate() }
        let configDirectory = try #require(system.under.gateway.configDirectory)
        let added = try ClientCommandEndToEndTests.run([
            "client", "add", "cli-made", "--config", configDirectory.path, "--issuer", "local", "--role", "reader",
        ])
        #expect(added.status == 0, "\(added)")
        #expect(added.stderr.contains("the store"), "\(added.stderr)")
        let secret = try ClientCommandEndToEndTests.secret(added)
        #expect(!Self.files(configDirectory).contains("clients.yaml"))
        let token = try #require(Self.token(system, "cli-made", secret), "\(system.under.gateway.output)")
        #expect(system.call("/demo/echo", token: token).status == 200)

        let disabled = try ClientCommandEndToEndTests.run(["client", "disable", "cli-made", "--config", configDirectory.path])
        #expect(disabled.status == 0, "\(disabled)")
        #expect(system.waitFor(401, "/demo/echo", token: token, timeout: 10).status == 401)

        let listed = try ClientCommandEndToEndTests.run(["client", "list", "--config", configDirectory.path, "--json"])
        #expect(listed.status == 0, "\(listed)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(rows.map { $0["id"] as? String } == ["declared", "cli-made"])
        #expect(rows.last?["enabled"] as? Bool == false)
    }

    @Test func theCLIUnlocksALockedOutClientThroughTheStore() throws {
        let system = try Self.start()
        defer { _ = system.under.gateway.terminate() }
        let configDirectory = try #require(system.under.gateway.configDirectory)
        // Default max_failed_auth is 5.
        for _ in 0..<5 { #expect(system.tokenByPost("declared", "guess").status == 401) }
        #expect(system.tokenByPost("declared", Self.declaredSecret).status == 429)
        let unlocked = try ClientCommandEndToEndTests.run(["client", "unlock", "declared", "--config", configDirectory.path])
        #expect(unlocked.status == 0, "\(unlocked)")
        #expect(unlocked.stdout.contains("id:declared"))
        // Applied by the running gateway on its next registry load (about a second).
        let deadline = Deadline(seconds: 15)
        var response = system.tokenByPost("declared", Self.declaredSecret)
        while response.status == 429 && deadline.remainingMilliseconds > 0 {
            usleep(200_000)
            response = system.tokenByPost("declared", Self.declaredSecret)
        }
        #expect(response.status == 200, "\(response)")
    }

    @Test func anEmergencyDisableWorksWithAnUnrelatedErrorInTheConfig() throws {
        let system = try Self.start()
        defer { _ = system.under.gateway.terminate() }
        let configDirectory = try #require(system.under.gateway.configDirectory)
        let token = try #require(Self.token(system, "declared", Self.declaredSecret), "\(system.under.gateway.output)")
        #expect(system.call("/demo/echo", token: token).status == 200)

        // A typo in an unrelated file: the whole configuration no longer validates.
        try "limits:\n  idle_timout: 30s\n".write(to: configDirectory.appendingPathComponent("limits.yaml"), atomically: true, encoding: .utf8)
        let check = try ClientCommandEndToEndTests.run(["check", configDirectory.path])
        #expect(check.status == 1, "\(check)")

        let disabled = try ClientCommandEndToEndTests.run(["client", "disable", "declared", "--config", configDirectory.path])
        #expect(disabled.status == 0, "\(disabled)")
        #expect(system.waitFor(401, "/demo/echo", token: token, timeout: 10).status == 401, "\(system.under.gateway.output)")
        // The declared client's YAML is untouched: the override lives in the store.
        let yaml = try String(contentsOf: configDirectory.appendingPathComponent("portcullis.yaml"), encoding: .utf8)
        #expect(!yaml.contains("enabled: false"))
    }
}
