import Crypto
import Foundation
import PortcullisAuth
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A client's life on a real gateway with the embedded store: rotation with a grace that a
/// script works through, secret expiry, an update that keeps the secret, and the audit trail
/// that names who did each of these.
@Suite("Client lifecycle end to end", .serialized)
struct ClientLifecycleEndToEndTests {
    typealias System = BuiltinIssuerEndToEndTests.System
    static let adminToken = BuiltinIssuerEndToEndTests.adminToken
    static let aliceToken = "alice-admin-token-0123456789abcdef"

    /// A gateway with the embedded store, the admin token file (named `admin`) and a named
    /// token `ops-alice`.
    static func start(issuerExtra: String = "") throws -> System {
        let under = try GatewayUnderTest.start(
            """
            admin:
              address: "127.0.0.1:0"
              token_file: admin-token
              tokens:
                - { name: "ops-alice", token_sha256: "\(ClientSecret.sha256Hex(Self.aliceToken))" }
            store: { path: state }
            issuers:
              - name: local
                builtin: true
                signing_key_file: signing.pem
            \(issuerExtra)
            roles:
              reader:
                allow:
                  - { methods: [GET], paths: ["/demo/**"] }
              writer:
                allow:
                  - { methods: [GET, POST], paths: ["/demo/**"] }
            """,
            extraFiles: ["signing.pem": P256.Signing.PrivateKey().pemRepresentation, "admin-token": Self.adminToken + "\n"]
        )
        return try StoreEndToEndTests.system(under)
    }

    static func cli(_ arguments: [String], _ system: System) throws -> ClientCommandEndToEndTests.Output {
        let directory = try #require(system.under.gateway.configDirectory)
        return try ClientCommandEndToEndTests.run(arguments + ["--config", directory.path])
    }

    static func addClient(_ id: String, _ system: System, extra: [String] = []) throws -> String {
        let added = try Self.cli(["client", "add", id, "--issuer", "local", "--role", "reader"] + extra, system)
        #expect(added.status == 0, "\(added)")
        return try ClientCommandEndToEndTests.secret(added)
    }

    /// Waits (up to 20 s) until `system` serves `id` with a current secret made at another time
    /// than `created`: a rotation made elsewhere has been applied.
    static func waitForNewSecret(_ id: String, _ system: System, replacing created: String?) -> Bool {
        let deadline = Deadline(seconds: 20)
        repeat {
            let secrets = system.api("GET", "/api/v1/clients/\(id)").json?["secrets"] as? [[String: Any]]
            if let current = secrets?.first, current["created"] as? String != created { return true }
            usleep(100_000)
        } while deadline.remainingMilliseconds > 0
        return false
    }

    static func currentSecretCreated(_ id: String, _ system: System) -> String? {
        (system.api("GET", "/api/v1/clients/\(id)").json?["secrets"] as? [[String: Any]])?.first?["created"] as? String
    }

    static func listed(_ id: String, _ system: System) throws -> [String: Any] {
        let listed = try Self.cli(["client", "list", "--json"], system)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]], "\(listed)")
        return try #require(rows.first { $0["id"] as? String == id })
    }

    // MARK: - Rotation

    @Test func aScriptKeepsWorkingThroughARotationWithGraceAndItsOldTokenIsRefusedRightAfter() throws {
        let system = try Self.start()
        defer { _ = system.under.gateway.terminate() }
        let oldSecret = try Self.addClient("psa-sync", system)
        let oldToken = try #require(StoreEndToEndTests.token(system, "psa-sync", oldSecret), "\(system.under.gateway.output)")
        #expect(system.call("/demo/echo", token: oldToken).status == 200)

        let grace = 6.0
        let rotatedAt = Date()
        let rotated = try Self.cli(["client", "rotate", "psa-sync", "--grace", "6s"], system)
        #expect(rotated.status == 0, "\(rotated)")
        let newSecret = try ClientCommandEndToEndTests.secret(rotated)
        #expect(newSecret != oldSecret)

        // Both secrets are listed, by their times only.
        let row = try Self.listed("psa-sync", system)
        let secrets = try #require(row["secrets"] as? [[String: Any]], "\(row)")
        #expect(secrets.map { $0["state"] as? String } == ["current", "grace"], "\(row)")
        #expect(secrets.allSatisfy { $0["created"] is String })
        #expect(secrets[1]["expires"] is String, "\(row)")
        #expect(!"\(row)".contains(ClientSecret.sha256Hex(oldSecret)))

        // The script: the old token and the old secret keep working until the grace ends.
        var refusedAt: Date?
        let deadline = Date().addingTimeInterval(grace * 10)
        while Date() < deadline {
            if system.call("/demo/echo", token: oldToken).status == 401 {
                refusedAt = Date()
                break
            }
            usleep(100_000)
        }
        let refused = try #require(refusedAt, "the old token was never refused: \(system.under.gateway.output)")
        // `until` is written in whole seconds, so the grace may end up to a second early.
        #expect(refused.timeIntervalSince(rotatedAt) >= grace - 1, "refused after \(refused.timeIntervalSince(rotatedAt))s")
        // Right after it: the old token and the old secret are refused, the new secret works.
        #expect(system.call("/demo/echo", token: oldToken).status == 401)
        let oldSecretNow = system.tokenByPost("psa-sync", oldSecret)
        #expect(oldSecretNow.status == 401, "\(oldSecretNow)")
        #expect(oldSecretNow.json?["error"] as? String == "invalid_client")
        let newToken = try #require(StoreEndToEndTests.token(system, "psa-sync", newSecret), "\(system.under.gateway.output)")
        #expect(system.call("/demo/echo", token: newToken).status == 200)
    }

    @Test func theOldSecretAndItsTokensWorkDuringTheGrace() throws {
        let system = try Self.start()
        defer { _ = system.under.gateway.terminate() }
        let oldSecret = try Self.addClient("dashboard", system)
        let oldToken = try #require(StoreEndToEndTests.token(system, "dashboard", oldSecret), "\(system.under.gateway.output)")
        let rotated = system.api("POST", "/api/v1/clients/dashboard/client-credentials", json: #"{"grace": "1h"}"#)
        #expect(rotated.status == 200, "\(rotated)")
        let newSecret = try #require(rotated.json?["client_secret"] as? String)
        #expect((rotated.json?["secrets"] as? [[String: Any]])?.count == 2, "\(rotated)")
        // Applied before the answer: both secrets get tokens, the old token still passes.
        #expect(system.call("/demo/echo", token: oldToken).status == 200)
        #expect(system.tokenByPost("dashboard", oldSecret).status == 200)
        #expect(system.tokenByPost("dashboard", newSecret).status == 200)

        // A rotation without a grace ends every older secret at once, the one in its grace too.
        let again = system.api("POST", "/api/v1/clients/dashboard/client-credentials")
        #expect(again.status == 200, "\(again)")
        #expect(system.call("/demo/echo", token: oldToken).status == 401)
        #expect(system.tokenByPost("dashboard", oldSecret).status == 401)
        #expect(system.tokenByPost("dashboard", newSecret).status == 401)
    }

    @Test func aGraceRotationOfAClientDeclaredInTheClientsFileEndsOnTime() throws {
        // No store: the admin API rewrites the YAML, and the gateway compiles again when the grace ends.
        let system = try BuiltinIssuerEndToEndTests.start()
        defer { _ = system.under.gateway.terminate() }
        let oldSecret = BuiltinIssuerEndToEndTests.firstSecret
        let oldToken = try #require(system.tokenByPost("psa-sync", oldSecret).json?["access_token"] as? String)
        let rotatedAt = Date()
        let rotated = system.api("POST", "/api/v1/clients/psa-sync/client-credentials", json: #"{"grace": "3s"}"#)
        #expect(rotated.status == 200, "\(rotated)")
        let newSecret = try #require(rotated.json?["client_secret"] as? String)
        #expect(system.tokenByPost("psa-sync", newSecret).status == 200)
        #expect(system.call("/demo/echo", token: oldToken).status == 200)
        let yaml = try String(contentsOf: try #require(system.under.gateway.configDirectory).appendingPathComponent("portcullis.yaml"), encoding: .utf8)
        #expect(yaml.contains("retired_secrets:"), "\(yaml)")
        #expect(system.waitFor(401, "/demo/echo", token: oldToken, timeout: 30).status == 401)
        #expect(Date().timeIntervalSince(rotatedAt) >= 2)
        #expect(system.tokenByPost("psa-sync", oldSecret).status == 401)
    }

    // MARK: - Expiry

    @Test func anExpiredSecretIsRefusedWithAClearErrorAfterAWarning() throws {
        let system = try Self.start()
        defer { _ = system.under.gateway.terminate() }
        let lifetime = 8.0
        let addedAt = Date()
        let secret = try Self.addClient("short-lived", system, extra: ["--secret-lifetime", "8s"])
        let token = try #require(StoreEndToEndTests.token(system, "short-lived", secret), "\(system.under.gateway.output)")
        #expect(system.call("/demo/echo", token: token).status == 200)
        let metrics = RawHTTPClient.request("GET", "/metrics", port: system.admin)
        #expect(metrics.bodyString.contains("portcullis_client_secret_expiry_seconds{client=\"short-lived\"}"), "\(metrics.bodyString)")

        // Warned ahead of the expiry (a quarter of the lifetime before it).
        let warned = Deadline(seconds: lifetime * 10)
        while !system.under.gateway.output.contains("client secret expires soon") && warned.remainingMilliseconds > 0 { usleep(100_000) }
        #expect(system.under.gateway.output.contains("client secret expires soon"), "\(system.under.gateway.output)")

        var refused = system.tokenByPost("short-lived", secret)
        let deadline = Date().addingTimeInterval(lifetime * 10)
        while refused.status == 200 && Date() < deadline {
            usleep(200_000)
            refused = system.tokenByPost("short-lived", secret)
        }
        #expect(Date().timeIntervalSince(addedAt) >= lifetime - 1)
        #expect(refused.status == 401, "\(refused)")
        #expect(refused.json?["error"] as? String == "invalid_client")
        let description = refused.json?["error_description"] as? String ?? ""
        #expect(description.contains("client secret expired at"), "\(refused)")
        // Its token ended with it.
        #expect(system.waitFor(401, "/demo/echo", token: token, timeout: 10).status == 401)
        // A rotation gives it a working secret again.
        let created = Self.currentSecretCreated("short-lived", system)
        usleep(1_100_000)  // secret times are whole seconds
        let rotated = try Self.cli(["client", "rotate", "short-lived"], system)
        let fresh = try ClientCommandEndToEndTests.secret(rotated)
        #expect(Self.waitForNewSecret("short-lived", system, replacing: created))
        #expect(system.tokenByPost("short-lived", fresh).status == 200)
    }

    // MARK: - Update

    @Test func anUpdateChangesRolesAndNameAndKeepsTheSecret() throws {
        let system = try Self.start()
        defer { _ = system.under.gateway.terminate() }
        let secret = try Self.addClient("reporting", system)
        let token = try #require(StoreEndToEndTests.token(system, "reporting", secret), "\(system.under.gateway.output)")
        let post = { RawHTTPClient.request("POST", "/demo/echo", port: system.port, headers: [("Authorization", "Bearer \(token)")], body: Array("x".utf8), authorize: false) }
        #expect(post().status == 403)

        let patched = system.api("PATCH", "/api/v1/clients/reporting", json: #"{"name": "Monthly reporting", "roles": ["writer"]}"#)
        #expect(patched.status == 200, "\(patched)")
        #expect(patched.json?["name"] as? String == "Monthly reporting")
        #expect(patched.json?["roles"] as? [String] == ["writer"])
        // The same token (same secret) now has the new role.
        #expect(post().status == 200)
        #expect(system.tokenByPost("reporting", secret).status == 200)

        let updated = try Self.cli(["client", "update", "reporting", "--allowed-ip", "127.0.0.1/32"], system)
        #expect(updated.status == 0, "\(updated)")
        let row = try Self.listed("reporting", system)
        #expect(row["allowed_ips"] as? [String] == ["127.0.0.1/32"], "\(row)")
        #expect(system.tokenByPost("reporting", secret).status == 200)

        // A bad update names the problem and changes nothing.
        let bad = system.api("PATCH", "/api/v1/clients/reporting", json: #"{"roles": ["no-such-role"]}"#)
        #expect(bad.status == 400, "\(bad)")
        #expect(bad.json?["error"] as? String == "invalid_request")
        let unknown = system.api("PATCH", "/api/v1/clients/nobody", json: #"{"name": "x"}"#)
        #expect(unknown.status == 404, "\(unknown)")
        #expect(unknown.json?["error"] as? String == "not_found")
        let duplicate = system.api("POST", "/api/v1/clients", json: #"{"id": "reporting", "roles": ["reader"]}"#)
        #expect(duplicate.status == 409, "\(duplicate)")
        #expect(duplicate.json?["error"] as? String == "conflict")
    }

    // MARK: - Audit

    @Test func everyMutatingCallAndCommandLeavesAnAuditRecordNamingItsActor() throws {
        let system = try Self.start()
        defer { _ = system.under.gateway.terminate() }
        let directory = try #require(system.under.gateway.configDirectory)
        let alice = { (method: String, path: String, json: String?) in system.api(method, path, json: json, token: Self.aliceToken) }

        let created = alice("POST", "/api/v1/clients", #"{"id": "audited", "roles": ["reader"]}"#)
        #expect(created.status == 201, "\(created)")
        let secret = try #require(created.json?["client_secret"] as? String)
        #expect(alice("PATCH", "/api/v1/clients/audited", #"{"roles": ["writer"]}"#).status == 200)
        let rotated = alice("POST", "/api/v1/clients/audited/client-credentials", #"{"grace": "1h"}"#)
        #expect(rotated.status == 200)
        let newSecret = try #require(rotated.json?["client_secret"] as? String)
        #expect(alice("POST", "/api/v1/clients/audited/disable", nil).status == 200)
        #expect(system.api("POST", "/api/v1/clients/audited/enable").status == 200)
        #expect(alice("POST", "/api/v1/tokens/some-token-id/revoke", nil).status == 200)
        #expect(try Self.cli(["client", "disable", "audited"], system).status == 0)
        #expect(alice("DELETE", "/api/v1/clients/audited", nil).status == 204)

        let read = system.api("GET", "/api/v1/audit?client=audited")
        #expect(read.status == 200, "\(read)")
        let events = try #require(read.json?["events"] as? [[String: Any]], "\(read)")
        #expect(
            events.map { $0["action"] as? String } == [
                "client.add", "client.update", "client.rotate", "client.disable", "client.enable", "client.disable", "client.remove",
            ],
            "\(events)"
        )
        let user = String(cString: getpwuid(geteuid())!.pointee.pw_name)
        #expect(events.map { $0["actor"] as? String } == ["ops-alice", "ops-alice", "ops-alice", "ops-alice", "admin", user, "ops-alice"], "\(events)")
        #expect(events.first?["source"] as? String == "127.0.0.1")
        let update = try #require(events[1]["changes"] as? [String: [String: Any]])
        #expect(update["roles"]?["before"] as? [String] == ["reader"])
        #expect(update["roles"]?["after"] as? [String] == ["writer"])
        let rotation = try #require(events[2]["changes"] as? [String: [String: Any]], "\(events[2])")
        #expect(rotation["secret"]?["after"] as? String == "new secret; the previous one accepted for 1h more", "\(rotation)")
        #expect((rotation["secrets_in_grace"]?["after"] as? [String])?.count == 1, "\(rotation)")

        let revocations = system.api("GET", "/api/v1/audit?action=token.revoke&actor=ops-alice")
        let revoked = try #require(revocations.json?["events"] as? [[String: Any]], "\(revocations)")
        #expect(revoked.map { $0["token_id"] as? String } == ["some-token-id"])

        // The CLI reads the same trail; the store keeps it as JSON lines; no secret is in it.
        let cli = try Self.cli(["audit", "--client", "audited", "--json"], system)
        #expect(cli.status == 0, "\(cli)")
        #expect(cli.stdout.split(separator: "\n").count == 7, "\(cli)")
        let file = try String(contentsOf: directory.appendingPathComponent("state/audit.jsonl"), encoding: .utf8)
        #expect(file.split(separator: "\n").count == 8)
        for value in [secret, newSecret, ClientSecret.sha256Hex(secret), ClientSecret.sha256Hex(newSecret)] {
            #expect(!file.contains(value))
        }
        let since = try Self.cli(["audit", "--since", "1h", "--action", "client."], system)
        #expect(since.stdout.contains("client.rotate"), "\(since)")
        let none = system.api("GET", "/api/v1/audit?client=audited&since=2999-01-01T00:00:00Z")
        #expect((none.json?["events"] as? [Any])?.isEmpty == true, "\(none)")
        #expect(system.api("GET", "/api/v1/audit?since=yesterday").status == 400)
    }

    // MARK: - Stale clients

    @Test func listUnusedSinceFindsTheClientsThatHaveNotCalled() throws {
        let system = try Self.start()
        defer { _ = system.under.gateway.terminate() }
        let secret = try Self.addClient("active", system)
        _ = try Self.addClient("stale", system)
        let token = try #require(StoreEndToEndTests.token(system, "active", secret))
        #expect(system.call("/demo/echo", token: token).status == 200)
        // last_used reaches the store about once a second.
        let deadline = Deadline(seconds: 20)
        var unused: [String] = []
        repeat {
            usleep(200_000)
            let listed = try Self.cli(["client", "list", "--unused-since", "30d", "--json"], system)
            let rows = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]] ?? []
            unused = rows.compactMap { $0["id"] as? String }
        } while unused.contains("active") && deadline.remainingMilliseconds > 0
        #expect(unused == ["stale"])
        let bad = try Self.cli(["client", "list", "--unused-since", "a month"], system)
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("--unused-since"), "\(bad)")
    }
}

/// The smaller parts of the command line: the version, `check --json`, errors a person can read.
@Suite("Command line niceties")
struct CommandLineNicetiesTests {
    @Test func versionIsPrinted() throws {
        let output = try ClientCommandEndToEndTests.run(["--version"])
        #expect(output.status == 0)
        #expect(output.stdout.hasPrefix("portcullis "), "\(output)")
    }

    @Test func checkGivenAFileSaysSoInWords() throws {
        let directory = try ClientCommandEndToEndTests.makeConfig()
        let output = try ClientCommandEndToEndTests.run(["check", directory + "/portcullis.yaml"])
        #expect(output.status == 1)
        #expect(output.stderr.contains("is a file; expected the directory"), "\(output)")
        #expect(!output.stderr.contains("NSCocoaErrorDomain"))
        let missing = try ClientCommandEndToEndTests.run(["check", directory + "/nowhere"])
        #expect(missing.stderr.contains("does not exist"), "\(missing)")
    }

    @Test func checkJSONGivesErrorsWithTheirPlaces() throws {
        let directory = try ClientCommandEndToEndTests.makeConfig()
        let good = try ClientCommandEndToEndTests.run(["check", directory, "--json"])
        #expect(good.status == 0, "\(good)")
        let ok = try #require(try JSONSerialization.jsonObject(with: Data(good.stdout.utf8)) as? [String: Any])
        #expect(ok["ok"] as? Bool == true)
        try "limits:\n  idle_timout: 30s\n".write(toFile: directory + "/limits.yaml", atomically: true, encoding: .utf8)
        let bad = try ClientCommandEndToEndTests.run(["check", directory, "--json"])
        #expect(bad.status == 1)
        let failed = try #require(try JSONSerialization.jsonObject(with: Data(bad.stdout.utf8)) as? [String: Any], "\(bad)")
        #expect(failed["ok"] as? Bool == false)
        let errors = try #require(failed["errors"] as? [[String: Any]])
        #expect(errors.first?["file"] as? String == directory + "/limits.yaml", "\(errors)")
        #expect(errors.first?["line"] as? Int == 2, "\(errors)")
    }

    @Test func anUpdateInTheClientsFileKeepsTheSecret() throws {
        let directory = try ClientCommandEndToEndTests.makeConfig()
        let added = try ClientCommandEndToEndTests.run(["client", "add", "psa", "--config", directory, "--issuer", "local", "--role", "helpdesk"])
        let secret = try ClientCommandEndToEndTests.secret(added)
        let updated = try ClientCommandEndToEndTests.run(["client", "update", "psa", "--config", directory, "--role", "readonly", "--name", "PSA"])
        #expect(updated.status == 0, "\(updated)")
        let file = try ClientCommandEndToEndTests.clientsFile(directory)
        #expect(file.contains(ClientSecret.sha256Hex(secret)), "\(file)")
        #expect(file.contains("roles: [\"readonly\"]"), "\(file)")
        // Without a store the trail is the directory's audit.jsonl.
        let audit = try ClientCommandEndToEndTests.run(["audit", "--config", directory, "--json"])
        let actions = audit.stdout.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["action"] as? String
        }
        #expect(actions == ["client.add", "client.update"], "\(audit)")
    }
}
