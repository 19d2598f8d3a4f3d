import Crypto
import Foundation
import PortcullisAuth
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `portcullis client add|rotate|enable|disable|remove|list` run as the built binary on a config
/// directory: secrets are printed once and stored hashed, bad changes exit 1 with file:line, and a
/// writer killed mid-change leaves the old, valid file.
@Suite("Client command")
struct ClientCommandEndToEndTests {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// A config directory with a built-in issuer (`local`, fresh P-256 key), two roles and no
    /// clients yet.
    static func makeConfig() throws -> String {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("portcullis-client-e2e-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
        listen:
          - address: "127.0.0.1:0"
        upstream:
          url: "http://127.0.0.1:9"
        issuers:
          - name: local
            builtin: true
            signing_key_file: signing.pem
        roles:
          helpdesk:
            allow:
              - { methods: [GET], paths: ["/api/List*"] }
          readonly:
            allow:
              - { methods: [GET], paths: ["/api/Get*"] }

        """.write(toFile: directory + "/portcullis.yaml", atomically: true, encoding: .utf8)
        try P256.Signing.PrivateKey().pemRepresentation.write(toFile: directory + "/signing.pem", atomically: true, encoding: .utf8)
        return directory
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Output {
        let process = try Self.start(arguments, environment: environment)
        let out = process.stdout.fileHandleForReading.readDataToEndOfFile()
        let err = process.stderr.fileHandleForReading.readDataToEndOfFile()
        process.process.waitUntilExit()
        return Output(status: process.process.terminationStatus, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
    }

    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> (process: Process, stdout: Pipe, stderr: Pipe) {
        let process = Process()
        process.executableURL = try PortcullisProcess.executableURL()
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        return (process, stdout, stderr)
    }

    /// `client_secret: ...` of an add or rotate.
    static func secret(_ output: Output) throws -> String {
        let line = try #require(output.stdout.split(separator: "\n").first { $0.hasPrefix("client_secret: ") }, "\(output)")
        return String(line.dropFirst("client_secret: ".count))
    }

    static func clientsFile(_ directory: String) throws -> String {
        try String(contentsOfFile: directory + "/clients.yaml", encoding: .utf8)
    }

    @Test func addPrintsTheSecretOnceAndStoresOnlyItsHash() throws {
        let directory = try Self.makeConfig()
        let added = try Self.run([
            "client", "add", "psa-sync", "--config", directory, "--issuer", "local", "--role", "helpdesk", "--role", "readonly",
            "--name", "PSA ticket sync", "--allowed-ip", "203.0.113.0/24", "--allowed-ip", "2001:db8::/48", "--token-lifetime", "10m",
        ])
        #expect(added.status == 0, "\(added)")
        let secret = try Self.secret(added)
        #expect(added.stdout == "client_id: psa-sync\nclient_secret: \(secret)\n")
        #expect(secret.count == 43 && secret.utf8.allSatisfy { $0 == 0x2D || $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }, "\(secret)")
        #expect(added.stderr.contains("shown only this once"), "\(added.stderr)")
        #expect(added.stderr.contains("within about 1s"), "\(added.stderr)")

        let file = try Self.clientsFile(directory)
        #expect(file.contains("secret_sha256: \"\(ClientSecret.sha256Hex(secret))\""), "\(file)")
        #expect(!file.contains(secret))

        let check = try Self.run(["check", directory])
        #expect(check.status == 0, "\(check)")

        let table = try Self.run(["client", "list", "--config", directory])
        #expect(table.status == 0, "\(table)")
        #expect(!table.stdout.contains(secret) && !table.stdout.contains(ClientSecret.sha256Hex(secret)), "\(table.stdout)")
        let row = try #require(table.stdout.split(separator: "\n").first { $0.hasPrefix("psa-sync ") }, "\(table.stdout)")
        for cell in ["PSA ticket sync", "yes", "local", "helpdesk,readonly", "203.0.113.0/24,2001:db8::/48", "10m", "never"] {
            #expect(row.contains(cell), "\(row)")
        }

        let listed = try Self.run(["client", "list", "--config", directory, "--json"])
        #expect(listed.status == 0, "\(listed)")
        #expect(!listed.stdout.contains(secret))
        let clients = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]], "\(listed.stdout)")
        let client = try #require(clients.first)
        #expect(clients.count == 1)
        #expect(client["id"] as? String == "psa-sync")
        #expect(client["name"] as? String == "PSA ticket sync")
        #expect(client["enabled"] as? Bool == true)
        #expect(client["issuer"] as? String == "local")
        #expect(client["roles"] as? [String] == ["helpdesk", "readonly"])
        #expect(client["allowed_ips"] as? [String] == ["203.0.113.0/24", "2001:db8::/48"])
        #expect(client["token_lifetime"] as? String == "10m")
        #expect((client["last_modified"] as? String)?.count == 20)
        #expect(client["last_redeemed"] is NSNull)
        #expect(client["secret_sha256"] == nil)
    }

    @Test func rotateDisableEnableAndRemove() throws {
        let directory = try Self.makeConfig()
        let added = try Self.run(["client", "add", "psa-sync", "--config", directory, "--issuer", "local", "--role", "helpdesk"])
        let first = try Self.secret(added)

        let rotated = try Self.run(["client", "rotate", "psa-sync", "--config", directory])
        #expect(rotated.status == 0, "\(rotated)")
        let second = try Self.secret(rotated)
        #expect(second != first)
        let file = try Self.clientsFile(directory)
        #expect(file.contains(ClientSecret.sha256Hex(second)) && !file.contains(ClientSecret.sha256Hex(first)), "\(file)")

        let disabled = try Self.run(["client", "disable", "psa-sync", "--config", directory])
        #expect(disabled.status == 0 && disabled.stdout == "disabled: psa-sync\n", "\(disabled)")
        #expect(try Self.clientsFile(directory).contains("enabled: false"))
        let enabled = try Self.run(["client", "enable", "psa-sync", "--config", directory])
        #expect(enabled.status == 0 && enabled.stdout == "enabled: psa-sync\n", "\(enabled)")
        #expect(try Self.clientsFile(directory).contains("enabled: true"))

        let removed = try Self.run(["client", "remove", "psa-sync", "--config", directory])
        #expect(removed.status == 0, "\(removed)")
        #expect(try Self.run(["client", "list", "--config", directory]).stdout == "no clients\n")
        #expect(try Self.run(["check", directory]).status == 0)

        let again = try Self.run(["client", "remove", "psa-sync", "--config", directory])
        #expect(again.status == 1, "\(again)")
        #expect(again.stderr.contains("no client 'psa-sync'"), "\(again.stderr)")
    }

    @Test func aChangeTheConfigWouldRefuseExitsOneWithFileAndLine() throws {
        let directory = try Self.makeConfig()
        let output = try Self.run(["client", "add", "psa-sync", "--config", directory, "--issuer", "local", "--role", "superuser"])
        #expect(output.status == 1, "\(output)")
        #expect(output.stdout.isEmpty, "a refused add must not print a secret: \(output.stdout)")
        #expect(output.stderr.contains("\(directory)/clients.yaml:"), "\(output.stderr)")
        #expect(output.stderr.contains("unknown role 'superuser'"), "\(output.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/clients.yaml"))

        let unknownIssuer = try Self.run(["client", "add", "x", "--config", directory, "--issuer", "nope", "--role", "helpdesk"])
        #expect(unknownIssuer.status == 1 && unknownIssuer.stderr.contains("unknown issuer 'nope'"), "\(unknownIssuer)")
        let unknownClient = try Self.run(["client", "rotate", "nobody", "--config", directory])
        #expect(unknownClient.status == 1 && unknownClient.stdout.isEmpty, "\(unknownClient)")
    }

    @Test func lastRedeemedComesFromTheIssuersStateFile() throws {
        let directory = try Self.makeConfig()
        _ = try Self.run(["client", "add", "psa-sync", "--config", directory, "--issuer", "local", "--role", "helpdesk"])
        _ = try Self.run(["client", "add", "idle", "--config", directory, "--issuer", "local", "--role", "helpdesk", "--disabled"])
        try #"{"last_redeemed":{"psa-sync":"2026-12-04T11:00:00Z"},"revoked":{"abc":4102444800}}"#
            .write(toFile: directory + "/local-state.json", atomically: true, encoding: .utf8)
        let listed = try Self.run(["client", "list", "--config", directory, "--json"])
        let clients = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]], "\(listed)")
        #expect(clients.map { $0["id"] as? String } == ["psa-sync", "idle"])
        #expect(clients[0]["last_redeemed"] as? String == "2026-12-04T11:00:00Z")
        #expect(clients[1]["last_redeemed"] is NSNull)
        #expect(clients[1]["enabled"] as? Bool == false)
        #expect(clients[1]["token_lifetime"] as? String == "15m")  // the issuer's default
        let table = try Self.run(["client", "list", "--config", directory]).stdout
        #expect(table.contains("2026-12-04T11:00:00Z") && table.contains("never"), "\(table)")
    }

    @Test func killDuringAMutationLeavesTheOldFileAndReleasesTheLock() throws {
        let directory = try Self.makeConfig()
        let first = try Self.run(["client", "add", "psa-sync", "--config", directory, "--issuer", "local", "--role", "helpdesk"])
        #expect(first.status == 0, "\(first)")
        let before = try Self.clientsFile(directory)

        let writer = try Self.start(
            ["client", "add", "second", "--config", directory, "--issuer", "local", "--role", "readonly"],
            environment: ["PORTCULLIS_TEST_CLIENTS_WRITE_PAUSE_MS": "3000"]
        )
        let temporary = directory + "/.clients.yaml.tmp-\(writer.process.processIdentifier)"
        let deadline = Date().addingTimeInterval(15)
        while !FileManager.default.fileExists(atPath: temporary), Date() < deadline, writer.process.isRunning {
            usleep(20_000)
        }
        #expect(FileManager.default.fileExists(atPath: temporary), "the writer never reached its pause")
        // The new file is written and synced, not yet renamed: kill -9 now.
        kill(writer.process.processIdentifier, SIGKILL)
        writer.process.waitUntilExit()
        #expect(writer.process.terminationReason == .uncaughtSignal)
        let printed = String(decoding: writer.stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(printed.isEmpty, "a killed add must not have shown a secret it never stored: \(printed)")

        let check = try Self.run(["check", directory])
        #expect(check.status == 0, "\(check)")
        #expect(try Self.clientsFile(directory) == before)

        // The kernel dropped the killed writer's flock: the next change goes through.
        let retried = try Self.run(["client", "add", "second", "--config", directory, "--issuer", "local", "--role", "readonly"])
        #expect(retried.status == 0, "\(retried)")
        let ids = try Self.run(["client", "list", "--config", directory, "--json"]).stdout
        let clients = try #require(try JSONSerialization.jsonObject(with: Data(ids.utf8)) as? [[String: Any]], "\(ids)")
        #expect(clients.map { $0["id"] as? String } == ["psa-sync", "second"])
        #expect(!FileManager.default.fileExists(atPath: temporary), "the stale temporary file is cleaned up")
        #expect(try Self.run(["check", directory]).status == 0)
    }
}
