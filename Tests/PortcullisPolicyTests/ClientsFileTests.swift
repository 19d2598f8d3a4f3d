import Foundation
import Testing

@testable import PortcullisPolicy

/// `ClientsFile.apply`: each mutation rewrites only the `clients:` block of the one file that
/// holds it, validates the whole configuration first, and serialises concurrent editors.
@Suite struct ClientsFileTests {
    static let hash1 = String(repeating: "1a", count: 32)
    static let hash2 = String(repeating: "2b", count: 32)
    static let now = Date(timeIntervalSince1970: 1_796_378_400)  // 2026-12-04T10:00:00Z

    static let gateway = """
        # The gateway.
        listen:
          - address: "127.0.0.1:8080"
        upstream:
          url: "http://127.0.0.1:8091"
        issuers:
          - name: local
            builtin: true
            signing_key_file: signing.pem
          - name: entra
            issuer: "https://sts.windows.net/TENANT/"
            audiences: ["api://APPID"]
            jwks_url: "https://login.microsoftonline.com/TENANT/discovery/v2.0/keys"
            algorithms: [RS256]

        """

    static let roles = """
        roles:
          helpdesk:
            allow:
              - { methods: [GET], paths: ["/api/List*"] }
          readonly:
            allow:
              - { methods: [GET, HEAD], paths: ["/api/Get*"] }

        """

    /// The clients file: text before and after the block that must survive every edit.
    static let clientsHead = "# Clients of the gateway.\n# Managed by portcullis client.\n\n"
    static let clientsTail = "\n# How the gateway logs.\nlogging:\n  access_log: \"-\"   # stdout\n"
    static let clientsBlock = """
        clients:
          # The PSA integration.
          - id: psa-sync
            name: "PSA ticket sync"
            issuer: local
            roles: [helpdesk]
            allowed_ips: ["203.0.113.0/24"]
            secret_sha256: "\(ClientsFileTests.hash1)"
            token_lifetime: 900s
          - id: dashboard
            issuer: entra
            roles: [readonly]
            enabled: false

        """

    /// A fresh config directory: gateway.yaml, roles.yaml, clients.yaml, signing.pem.
    static func makeDirectory(clients: String? = clientsHead + clientsBlock + clientsTail) throws -> String {
        let path = NSTemporaryDirectory() + "portcullis-clients-file-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Self.gateway.write(toFile: path + "/gateway.yaml", atomically: false, encoding: .utf8)
        try Self.roles.write(toFile: path + "/roles.yaml", atomically: false, encoding: .utf8)
        try "-----BEGIN PRIVATE KEY-----\n".write(toFile: path + "/signing.pem", atomically: false, encoding: .utf8)
        if let clients { try clients.write(toFile: path + "/clients.yaml", atomically: false, encoding: .utf8) }
        return path
    }

    static func read(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }

    static func clients(_ directory: String) throws -> [ClientConfig] {
        try ConfigLoader.load(directory: directory).clients
    }

    /// Everything in the directory except clients.yaml and the lock file, byte for byte.
    static func otherFiles(_ directory: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory)
        where name != "clients.yaml" && name != ClientsFile.lockFileName {
            files[name] = FileManager.default.contents(atPath: directory + "/" + name)
        }
        return files
    }

    /// Expects the clients file to keep its head and tail and returns the block between.
    static func block(_ directory: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> String {
        let text = try Self.read(directory + "/clients.yaml")
        #expect(text.hasPrefix(Self.clientsHead), "\(text)", sourceLocation: sourceLocation)
        #expect(text.hasSuffix(Self.clientsTail), "\(text)", sourceLocation: sourceLocation)
        return String(text.dropFirst(Self.clientsHead.count).dropLast(Self.clientsTail.count))
    }

    // MARK: - Mutations

    @Test func addAppendsAValidatedEntryAndKeepsEverythingElse() throws {
        let directory = try Self.makeDirectory()
        let others = try Self.otherFiles(directory)
        let draft = ClientDraft(
            id: "backup-job",
            name: "Nightly \"backup\" \\ job",
            issuer: "local",
            roles: ["readonly", "helpdesk"],
            allowedIPs: ["198.51.100.7", "2001:db8::/48"],
            tokenLifetime: "5m",
            secretSHA256: Self.hash2
        )
        let client = try #require(try ClientsFile.apply(.add(draft), directory: directory, now: Self.now))
        #expect(client.id == "backup-job")
        #expect(client.name == "Nightly \"backup\" \\ job")
        #expect(client.lastModified == "2026-12-04T10:00:00Z")
        #expect(client.secretSHA256 == Self.hash2)
        #expect(client.tokenLifetime == .minutes(5))
        #expect(client.location?.file == directory + "/clients.yaml")

        let block = try Self.block(directory)
        #expect(
            block == """
                clients:
                  - id: "psa-sync"
                    name: "PSA ticket sync"
                    enabled: true
                    issuer: "local"
                    roles: ["helpdesk"]
                    allowed_ips: ["203.0.113.0/24"]
                    secret_sha256: "\(Self.hash1)"
                    token_lifetime: "15m"
                  - id: "dashboard"
                    name: "dashboard"
                    enabled: false
                    issuer: "entra"
                    roles: ["readonly"]
                  - id: "backup-job"
                    name: "Nightly \\"backup\\" \\\\ job"
                    enabled: true
                    issuer: "local"
                    roles: ["readonly", "helpdesk"]
                    allowed_ips: ["198.51.100.7", "2001:db8::/48"]
                    secret_sha256: "\(Self.hash2)"
                    secret_created: "2026-12-04T10:00:00Z"
                    token_lifetime: "5m"
                    last_modified: "2026-12-04T10:00:00Z"

                """,
            "\(block)"
        )
        #expect(try Self.otherFiles(directory) == others)
        let loaded = try Self.clients(directory)
        #expect(loaded.map(\.id) == ["psa-sync", "dashboard", "backup-job"])
        #expect(loaded[0].tokenLifetime == .minutes(15))
        #expect(loaded[0].allowedIPsText == ["203.0.113.0/24"])
        #expect(loaded[1].enabled == false)
    }

    @Test func rotateReplacesOnlyTheHashAndStampsTheEntry() throws {
        let directory = try Self.makeDirectory()
        let others = try Self.otherFiles(directory)
        let client = try #require(try ClientsFile.apply(.rotate(id: "psa-sync", secretSHA256: Self.hash2, grace: nil), directory: directory, now: Self.now))
        #expect(client.secretSHA256 == Self.hash2)
        #expect(client.lastModified == "2026-12-04T10:00:00Z")
        let loaded = try Self.clients(directory)
        #expect(loaded.map(\.id) == ["psa-sync", "dashboard"])
        #expect(loaded[0].secretSHA256 == Self.hash2)
        #expect(loaded[0].roles == ["helpdesk"])
        #expect(loaded[1].lastModified == nil)
        _ = try Self.block(directory)
        #expect(try Self.otherFiles(directory) == others)
    }

    @Test func rotateWithGraceKeepsTheOldHashUntilTheGraceEnds() throws {
        let directory = try Self.makeDirectory()
        let grace = ConfigDuration.hours(1)
        let client = try #require(
            try ClientsFile.apply(.rotate(id: "psa-sync", secretSHA256: Self.hash2, grace: grace), directory: directory, now: Self.now)
        )
        #expect(client.secretSHA256 == Self.hash2)
        #expect(client.secretCreated == "2026-12-04T10:00:00Z")
        #expect(client.retiredSecrets == [RetiredSecret(secretSHA256: Self.hash1, created: nil, until: "2026-12-04T11:00:00Z")])
        let live = client.liveSecrets(issuer: nil)
        #expect(live.map(\.secretSHA256) == [Self.hash2, Self.hash1])
        #expect(live.map(\.notAfter) == [nil, UTCTime.seconds("2026-12-04T11:00:00Z")])

        // Another rotation without a grace ends every older secret at once.
        let hash3 = String(repeating: "c", count: 64)
        let again = try #require(try ClientsFile.apply(.rotate(id: "psa-sync", secretSHA256: hash3, grace: nil), directory: directory, now: Self.now))
        #expect(again.retiredSecrets.isEmpty)
        #expect(try Self.clients(directory)[0].retiredSecrets.isEmpty)
    }

    @Test func updateChangesTheFieldsAndKeepsTheSecret() throws {
        let directory = try Self.makeDirectory()
        let update = ClientUpdate(name: "Renamed", roles: ["readonly"], allowedIPs: .some(nil), secretLifetime: .some("90d"))
        let client = try #require(try ClientsFile.apply(.update(id: "psa-sync", update), directory: directory, now: Self.now))
        #expect(client.name == "Renamed")
        #expect(client.roles == ["readonly"])
        #expect(client.allowedIPs == nil)
        #expect(client.secretSHA256 == Self.hash1)
        #expect(client.secretLifetime == .days(90))
        #expect(client.tokenLifetime == .minutes(15))
    }

    @Test func aSecretExpiresItsLifetimeAfterItWasMade() throws {
        var client = ClientConfig(id: "a", name: "a", issuer: "local", secretSHA256: Self.hash1)
        #expect(client.secretExpiry(issuer: nil) == nil)
        client.secretCreated = "2026-12-04T10:00:00Z"
        #expect(client.secretExpiry(issuer: nil) == nil)
        var settings = BuiltinIssuerSettings(signingKeyFile: "k", stateFile: "s")
        settings.secretLifetime = .days(90)
        #expect(client.secretExpiry(issuer: settings) == UTCTime.seconds("2027-03-04T10:00:00Z"))
        client.secretLifetime = .hours(1)
        #expect(client.secretExpiry(issuer: settings) == UTCTime.seconds("2026-12-04T11:00:00Z"))
    }

    @Test func aClientsOwnLimitsSurviveAnEdit() throws {
        let block = Self.clientsBlock.replacingOccurrences(
            of: "    token_lifetime: 900s\n",
            with: "    token_lifetime: 900s\n    limits: { rate: 10/s, burst: 20, quota: 10000/d, concurrency: 4 }\n"
        )
        let directory = try Self.makeDirectory(clients: Self.clientsHead + block + Self.clientsTail)
        let expected = ClientLimits(rate: RateSpec(count: 10, period: .second), burst: 20, quota: QuotaSpec(count: 10_000, window: .day), concurrency: 4)
        #expect(try Self.clients(directory)[0].limits == expected)
        _ = try ClientsFile.apply(.rotate(id: "psa-sync", secretSHA256: Self.hash2, grace: nil), directory: directory, now: Self.now)
        let loaded = try Self.clients(directory)
        #expect(loaded[0].limits == expected)
        #expect(loaded[1].limits == nil)
    }

    @Test func disableThenEnable() throws {
        let directory = try Self.makeDirectory()
        let disabled = try #require(try ClientsFile.apply(.setEnabled(id: "psa-sync", enabled: false), directory: directory, now: Self.now))
        #expect(disabled.enabled == false)
        #expect(try Self.clients(directory)[0].enabled == false)
        let later = Self.now.addingTimeInterval(61.9)
        let enabled = try #require(try ClientsFile.apply(.setEnabled(id: "psa-sync", enabled: true), directory: directory, now: later))
        #expect(enabled.enabled)
        #expect(enabled.lastModified == "2026-12-04T10:01:01Z")
        #expect(try Self.clients(directory).map(\.enabled) == [true, false])
        _ = try Self.block(directory)
    }

    @Test func removeDropsTheEntryAndTheLastOneLeavesAnEmptyList() throws {
        let directory = try Self.makeDirectory()
        #expect(try ClientsFile.apply(.remove(id: "psa-sync"), directory: directory, now: Self.now) == nil)
        #expect(try Self.clients(directory).map(\.id) == ["dashboard"])
        _ = try ClientsFile.apply(.remove(id: "dashboard"), directory: directory, now: Self.now)
        #expect(try Self.clients(directory).isEmpty)
        #expect(try Self.block(directory) == "clients: []\n")
    }

    @Test func unknownAndDuplicateIdsAreRefusedAndNothingIsWritten() throws {
        let directory = try Self.makeDirectory()
        let before = try Self.read(directory + "/clients.yaml")
        for mutation in [ClientMutation.rotate(id: "nobody", secretSHA256: Self.hash2, grace: nil), .setEnabled(id: "nobody", enabled: false), .remove(id: "nobody")] {
            let error = #expect(throws: ClientsFileError.self) { try ClientsFile.apply(mutation, directory: directory) }
            guard let failure = error, failure.code == .unknownClient, failure.clientID == "nobody" else {
                Issue.record("expected unknownClient, got \(String(describing: error))")
                continue
            }
            #expect("\(failure)" == "no client 'nobody' in the configuration")
        }
        let duplicate = ClientDraft(id: "psa-sync", issuer: "local", roles: ["helpdesk"], secretSHA256: Self.hash2)
        let error = #expect(throws: ClientsFileError.self) { try ClientsFile.apply(.add(duplicate), directory: directory) }
        guard let failure = error, failure.code == .duplicateClient, failure.clientID == "psa-sync" else {
            Issue.record("expected duplicateClient, got \(String(describing: error))")
            return
        }
        #expect(try Self.read(directory + "/clients.yaml") == before)
    }

    @Test func mutationThatWouldNotValidateLeavesTheFileUntouched() throws {
        let directory = try Self.makeDirectory()
        let before = try Self.read(directory + "/clients.yaml")
        let drafts = [
            ClientDraft(id: "x", issuer: "local", roles: ["superuser"], secretSHA256: Self.hash2),  // unknown role
            ClientDraft(id: "x", issuer: "local", roles: ["helpdesk"]),  // no secret for the built-in issuer
            ClientDraft(id: "x", issuer: "entra", roles: ["helpdesk"], secretSHA256: Self.hash2),  // secret for an outside one
            ClientDraft(id: "x", issuer: "local", roles: ["helpdesk"], allowedIPs: ["10.0.0.1/8"], secretSHA256: Self.hash2),
            ClientDraft(id: "x", issuer: "local", roles: ["helpdesk"], tokenLifetime: "2h", secretSHA256: Self.hash2),
            ClientDraft(id: "has space", issuer: "local", roles: ["helpdesk"], secretSHA256: Self.hash2),
        ]
        for draft in drafts {
            let error = #expect(throws: ClientsFileError.self) { try ClientsFile.apply(.add(draft), directory: directory) }
            guard let failure = error, failure.code == .invalid, let first = failure.configErrors.first else {
                Issue.record("expected invalid, got \(String(describing: error))")
                continue
            }
            // The errors point into the would-be clients file, at the new entry.
            #expect(first.location?.file == directory + "/clients.yaml", "\(failure.configErrors)")
            #expect(first.key.hasPrefix("clients[2]"), "\(failure.configErrors)")
        }
        let error = #expect(throws: ClientsFileError.self) { try ClientsFile.apply(.add(drafts[0]), directory: directory) }
        #expect(error.map { "\($0)" }?.contains("unknown role 'superuser'") == true, "\(String(describing: error))")
        #expect(try Self.read(directory + "/clients.yaml") == before)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    @Test func invalidConfigurationIsReportedNotEdited() throws {
        let directory = try Self.makeDirectory()
        try (Self.roles + "  broken: 42\n").write(toFile: directory + "/roles.yaml", atomically: false, encoding: .utf8)
        let before = try Self.read(directory + "/clients.yaml")
        let error = #expect(throws: ClientsFileError.self) {
            try ClientsFile.apply(.setEnabled(id: "psa-sync", enabled: false), directory: directory)
        }
        guard let errors = error?.configErrors, error?.code == .invalid else {
            Issue.record("expected invalid, got \(String(describing: error))")
            return
        }
        #expect(errors.contains { $0.location?.file == directory + "/roles.yaml" }, "\(errors)")
        #expect(try Self.read(directory + "/clients.yaml") == before)
    }

    // MARK: - Which file, and how it is written

    @Test func withoutAnyClientsKeyClientsYamlIsCreated() throws {
        let directory = try Self.makeDirectory(clients: nil)
        chmod(directory + "/gateway.yaml", 0o640)
        let others = try Self.otherFiles(directory)
        let draft = ClientDraft(id: "psa-sync", issuer: "local", roles: ["helpdesk"], secretSHA256: Self.hash1)
        let client = try #require(try ClientsFile.apply(.add(draft), directory: directory, now: Self.now))
        #expect(client.location?.file == directory + "/clients.yaml")
        let text = try Self.read(directory + "/clients.yaml")
        #expect(text.hasPrefix("#"), "\(text)")
        #expect(text.hasSuffix("clients:\n  - id: \"psa-sync\"\n    name: \"psa-sync\"\n    enabled: true\n    issuer: \"local\"\n    roles: [\"helpdesk\"]\n    secret_sha256: \"\(Self.hash1)\"\n    secret_created: \"2026-12-04T10:00:00Z\"\n    last_modified: \"2026-12-04T10:00:00Z\"\n"), "\(text)")
        var info = stat()
        #expect(stat(directory + "/clients.yaml", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o640)  // like the other config files
        #expect(try Self.otherFiles(directory) == others)
        #expect(try Self.clients(directory).map(\.id) == ["psa-sync"])
    }

    @Test func clientsKeyInAnotherFileIsEditedThere() throws {
        let directory = try Self.makeDirectory(clients: nil)
        let roles = Self.roles + "clients:\n  - { id: dashboard, issuer: entra, roles: [readonly] }\nlogging:\n  access_log: \"-\"\n"
        try roles.write(toFile: directory + "/roles.yaml", atomically: false, encoding: .utf8)
        let gateway = try Self.read(directory + "/gateway.yaml")
        _ = try ClientsFile.apply(.remove(id: "dashboard"), directory: directory)
        #expect(try Self.read(directory + "/roles.yaml") == Self.roles + "clients: []\nlogging:\n  access_log: \"-\"\n")
        #expect(try Self.read(directory + "/gateway.yaml") == gateway)
        #expect(!FileManager.default.fileExists(atPath: directory + "/clients.yaml"))
    }

    @Test func fileModeIsKeptAndStaleTemporaryFilesAreIgnoredThenRemoved() throws {
        let directory = try Self.makeDirectory()
        chmod(directory + "/clients.yaml", 0o600)
        // A writer killed between writing its temporary file and the rename.
        let stale = directory + "/.clients.yaml.tmp-99999"
        try "clients: [not valid".write(toFile: stale, atomically: false, encoding: .utf8)
        #expect(try Self.clients(directory).count == 2)
        _ = try ClientsFile.apply(.setEnabled(id: "dashboard", enabled: true), directory: directory)
        var info = stat()
        #expect(stat(directory + "/clients.yaml", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(!FileManager.default.fileExists(atPath: stale))
    }

    @Test func concurrentAppliesAreSerialised() throws {
        let directory = try Self.makeDirectory()
        let count = 12
        final class Failures: @unchecked Sendable {
            let lock = NSLock()
            var messages: [String] = []
        }
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: count) { index in
            do {
                let draft = ClientDraft(id: "worker-\(index)", issuer: "local", roles: ["helpdesk"], secretSHA256: Self.hash2)
                _ = try ClientsFile.apply(.add(draft), directory: directory)
            } catch {
                failures.lock.withLock { failures.messages.append("\(error)") }
            }
        }
        #expect(failures.messages.isEmpty, "\(failures.messages)")
        let ids = Set(try Self.clients(directory).map(\.id))
        #expect(ids == Set(["psa-sync", "dashboard"] + (0..<count).map { "worker-\($0)" }))
        _ = try Self.block(directory)
    }

    // MARK: - Pieces

    @Test func quotedStringsAreJSONAndSafeYAML() {
        #expect(ClientsFile.quoted("plain") == "\"plain\"")
        #expect(ClientsFile.quoted("a\"b\\c") == "\"a\\\"b\\\\c\"")
        #expect(ClientsFile.quoted("tab\tnl\n\u{1}") == "\"tab\\tnl\\n\\u0001\"")
        #expect(ClientsFile.quoted("Zürich \u{2028}\u{85}") == "\"Zürich \\u2028\\u0085\"")
    }

    @Test func timestampIsRFC3339UTCSeconds() {
        #expect(ClientsFile.timestamp(Self.now) == "2026-12-04T10:00:00Z")
        #expect(ClientsFile.timestamp(Date(timeIntervalSince1970: 0.999)) == "1970-01-01T00:00:00Z")
        #expect(ConfigLoader.isRFC3339UTCSeconds(ClientsFile.timestamp(Date())))
    }
}
