import Foundation
import Testing

@testable import PortcullisPolicy

/// The built-in issuer's keys (`builtin: true`) and its clients' credential keys, each bad value
/// reported at its file:line with its key path.
@Suite struct BuiltinIssuerConfigTests {
    static let hash = String(repeating: "ab", count: 32)

    /// A directory holding `signing.pem` (the loader only checks that it can be read).
    static let directory: String = {
        let path = NSTemporaryDirectory() + "portcullis-builtin-config-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path + "/signing.pem", contents: Data("-----BEGIN PRIVATE KEY-----\n".utf8))
        return path
    }()

    static var file: String { Self.directory + "/gateway.yaml" }

    static let head = """
        listen:
          - address: "127.0.0.1:8080"
        upstream:
          url: "http://127.0.0.1:8091"
        roles:
          helpdesk:
            allow:
              - { methods: [GET], paths: ["/api/List*"] }

        """

    static let local = """
        issuers:
          - name: local
            builtin: true
            signing_key_file: signing.pem

        """

    static let entra = """
          - name: entra
            issuer: "https://sts.windows.net/TENANT/"
            audiences: ["api://APPID"]
            jwks_url: "https://login.microsoftonline.com/TENANT/discovery/v2.0/keys"
            algorithms: [RS256]

        """

    static func load(_ text: String) throws(ConfigErrors) -> GatewayConfig {
        try ConfigLoader.load(sources: [(file: Self.file, text: text)], directory: Self.directory)
    }

    /// The 1-based line of the first line of `text` containing `fragment`.
    static func line(of fragment: String, in text: String) -> Int? {
        text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(fragment) }.map { $0 + 1 }
    }

    /// Expects exactly one error, at the line holding `at`, naming `key`, saying `message`.
    static func expectOneError(
        _ text: String,
        at fragment: String,
        key: String,
        message: String,
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) {
        do throws(ConfigErrors) {
            _ = try Self.load(text)
            Issue.record("configuration loaded but was expected to fail:\n\(text)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.errors.count == 1, "\(error)", sourceLocation: sourceLocation)
            guard let first = error.errors.first else { return }
            #expect(first.location?.file == Self.file, "\(first)", sourceLocation: sourceLocation)
            #expect(first.location?.line == Self.line(of: fragment, in: text), "\(first)", sourceLocation: sourceLocation)
            #expect(first.key == key, "\(first)", sourceLocation: sourceLocation)
            #expect(first.message.contains(message), "\(first)", sourceLocation: sourceLocation)
            // What an operator reads: file:line:col: key: message.
            #expect(first.description.hasPrefix("\(Self.file):\(first.location?.line ?? 0):"), "\(first)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - The issuer

    @Test func builtinIssuerTakesItsDefaults() throws {
        let config = try Self.load(Self.head + Self.local)
        let issuer = try #require(config.issuers.first)
        #expect(issuer.builtin)
        #expect(issuer.issuer == "urn:portcullis:local")
        #expect(issuer.leeway == .seconds(5))
        #expect(issuer.algorithms.isEmpty)
        #expect(issuer.audiences.isEmpty)
        #expect(issuer.keySource == nil)
        let settings = try #require(issuer.builtinSettings)
        #expect(settings.signingKeyFile == Self.directory + "/signing.pem")
        #expect(settings.tokenLifetime == .minutes(15))
        #expect(settings.maxTokenLifetime == .hours(1))
        #expect(settings.maxFailedAuth == 5)
        #expect(settings.failureWindow == .minutes(5))
        #expect(settings.stateFile == Self.directory + "/local-state.json")
    }

    @Test func builtinIssuerKeysAreRead() throws {
        let config = try Self.load(
            Self.head + Self.local + """
                    issuer: "https://gateway.example.com/"
                    token_lifetime: 30m
                    max_token_lifetime: 2h
                    max_failed_auth: 10
                    failure_window: 90s
                    state_file: /var/lib/portcullis/state.json
                    leeway: 2s

                """
        )
        let issuer = try #require(config.issuers.first)
        #expect(issuer.issuer == "https://gateway.example.com/")
        #expect(issuer.leeway == .seconds(2))
        #expect(
            issuer.builtinSettings
                == BuiltinIssuerSettings(
                    signingKeyFile: Self.directory + "/signing.pem",
                    tokenLifetime: .minutes(30),
                    maxTokenLifetime: .hours(2),
                    maxFailedAuth: 10,
                    failureWindow: .seconds(90),
                    stateFile: "/var/lib/portcullis/state.json"
                )
        )
    }

    @Test func relativeStateFileIsResolvedAgainstTheConfigFile() throws {
        let config = try Self.load(Self.head + Self.local + "    state_file: state/issuer.json\n")
        #expect(config.issuers.first?.builtinSettings?.stateFile == Self.directory + "/state/issuer.json")
    }

    @Test func missingSigningKeyFileIsReportedOnTheIssuer() {
        let text = Self.head + Self.local.replacingOccurrences(of: "    signing_key_file: signing.pem\n", with: "")
        Self.expectOneError(text, at: "- name: local", key: "issuers[0]", message: "missing signing_key_file")
    }

    @Test func clientsOfABuiltinIssuerWithABadKeyAreNotReportedAsNamingAnUnknownIssuer() {
        let text = Self.head + Self.local.replacingOccurrences(of: "signing.pem", with: "nowhere.pem")
            + "clients:\n  - id: psa-sync\n    issuer: local\n    roles: [helpdesk]\n    secret_sha256: \"\(Self.hash)\"\n"
        Self.expectOneError(text, at: "nowhere.pem", key: "issuers[0].signing_key_file", message: "cannot read the signing key file")
    }

    @Test(arguments: [
        ("signing_key_file: nowhere.pem", "signing_key_file", "cannot read the signing key file \(BuiltinIssuerConfigTests.directory)/nowhere.pem"),
        ("signing_key_file: \"\"", "signing_key_file", "expected the path of a PEM file"),
        ("token_lifetime: 2h", "token_lifetime", "longer than the default max_token_lifetime 1h"),
        ("token_lifetime: 1500ms", "token_lifetime", "not whole seconds"),
        ("token_lifetime: 0s", "token_lifetime", "out of range; expected 1s...24h"),
        ("token_lifetime: 15", "token_lifetime", "has no unit"),
        ("max_token_lifetime: 25h", "max_token_lifetime", "out of range; expected 1s...24h"),
        ("max_token_lifetime: 10m", "max_token_lifetime", "shorter than the default token_lifetime 15m"),
        ("max_failed_auth: 0", "max_failed_auth", "out of range; expected 1...1000000"),
        ("max_failed_auth: five", "max_failed_auth", "expected a whole number"),
        ("failure_window: 500ms", "failure_window", "out of range; expected 1s...24h"),
        ("state_file: \"\"", "state_file", "expected a file path"),
        ("issuer: \"\"", "issuer", "expected the iss of its tokens"),
        ("leeway: 11m", "leeway", "leeway above 10m"),
        ("jwks_url: \"https://idp.example.com/keys\"", "jwks_url", "does not apply to the built-in issuer"),
        ("jwks_file: keys.json", "jwks_file", "does not apply to the built-in issuer"),
        ("discovery: true", "discovery", "does not apply to the built-in issuer"),
        ("audiences: [x]", "audiences", "does not apply to the built-in issuer"),
        ("algorithms: [EdDSA]", "algorithms", "does not apply to the built-in issuer"),
        ("client_claim: sub", "client_claim", "does not apply to the built-in issuer"),
        ("jwks_refresh: 5m", "jwks_refresh", "does not apply to the built-in issuer"),
        ("tokens_lifetime: 5m", "tokens_lifetime", "unknown key (did you mean 'token_lifetime'?)"),
    ])
    func badBuiltinIssuerKeyIsAnErrorOnItsLine(line: String, key: String, message: String) {
        let local = line.hasPrefix("signing_key_file:") ? Self.local.replacingOccurrences(of: "    signing_key_file: signing.pem\n", with: "") : Self.local
        let text = Self.head + local + "    \(line)\n"
        Self.expectOneError(text, at: line, key: "issuers[0].\(key)", message: message)
    }

    @Test func tokenLifetimeUpToTheConfiguredMaximumIsAccepted() throws {
        let config = try Self.load(Self.head + Self.local + "    token_lifetime: 4h\n    max_token_lifetime: 4h\n")
        #expect(config.issuers.first?.builtinSettings?.tokenLifetime == .hours(4))
        Self.expectOneError(
            Self.head + Self.local + "    token_lifetime: 5h\n    max_token_lifetime: 4h\n",
            at: "token_lifetime: 5h",
            key: "issuers[0].token_lifetime",
            message: "longer than max_token_lifetime 4h"
        )
    }

    @Test(arguments: ["signing_key_file: signing.pem", "token_lifetime: 15m", "max_token_lifetime: 1h", "max_failed_auth: 5", "failure_window: 5m", "state_file: s.json"])
    func builtinOnlyKeyOnAnOutsideIssuerIsAnError(line: String) {
        let text = Self.head + "issuers:\n" + Self.entra + "    \(line)\n"
        let key = String(line.prefix { $0 != ":" })
        Self.expectOneError(text, at: line, key: "issuers[0].\(key)", message: "applies only to the built-in issuer (builtin: true)")
    }

    @Test func secondBuiltinIssuerIsAnError() {
        let text = Self.head + Self.local + "  - name: other\n    builtin: true\n    signing_key_file: signing.pem\n"
        Self.expectOneError(text, at: "- name: other", key: "issuers[1]", message: "only one built-in issuer (builtin: true) is allowed; 'local' is one already")
    }

    @Test func builtinIssuerSharingAnOutsideIssuersIssIsAnError() {
        let text = Self.head + Self.local + "    issuer: \"https://sts.windows.net/TENANT/\"\n" + Self.entra
        Self.expectOneError(text, at: "- name: entra", key: "issuers[1]", message: "issuer 'https://sts.windows.net/TENANT/' is configured twice (also 'local')")
    }

    // MARK: - Its clients

    static func clients(_ lines: String) -> String {
        Self.head + Self.local + Self.entra + "clients:\n" + lines
    }

    @Test func builtinClientCredentialsLoad() throws {
        let config = try Self.load(
            Self.clients(
                """
                  - id: psa-sync
                    name: "PSA ticket sync"
                    issuer: local
                    roles: [helpdesk]
                    allowed_ips: ["203.0.113.0/24", "2001:db8::/48", "198.51.100.7"]
                    secret_sha256: "\(Self.hash)"
                    token_lifetime: 10m
                    last_modified: "2026-12-04T10:00:00Z"
                  - id: script
                    issuer: local
                    roles: [helpdesk]
                    allowed_ips: []
                    secret_sha256: "\(Self.hash)"
                  - id: dashboard
                    issuer: entra
                    roles: [helpdesk]

                """
            )
        )
        #expect(config.clients.map(\.id) == ["psa-sync", "script", "dashboard"])
        let psa = config.clients[0]
        #expect(psa.secretSHA256 == Self.hash)
        #expect(psa.tokenLifetime == .minutes(10))
        #expect(psa.lastModified == "2026-12-04T10:00:00Z")
        #expect(psa.allowedIPsText == ["203.0.113.0/24", "2001:db8::/48", "198.51.100.7"])
        #expect(psa.allowsAddress(IPAddress(parsing: "203.0.113.9")!))
        #expect(config.clients[1].allowedIPsText == [])
        #expect(config.clients[1].tokenLifetime == nil)
        #expect(config.clients[1].lastModified == nil)
        #expect(config.clients[2].allowedIPsText == nil)
        #expect(config.clients[2].secretSHA256 == nil)
    }

    @Test func builtinClientWithoutSecretIsAnError() {
        let text = Self.clients("  - id: psa-sync\n    issuer: local\n    roles: [helpdesk]\n")
        Self.expectOneError(text, at: "- id: psa-sync", key: "clients[0]", message: "missing secret_sha256 or public_key: clients of the built-in issuer 'local' need a secret")
    }

    @Test(arguments: [
        ("secret_sha256: \"\(String(repeating: "AB", count: 32))\"", "secret_sha256", "64 lowercase hex digits"),
        ("secret_sha256: \"\(String(repeating: "a", count: 63))\"", "secret_sha256", "64 lowercase hex digits"),
        ("secret_sha256: \"\(String(repeating: "g", count: 64))\"", "secret_sha256", "64 lowercase hex digits"),
        ("token_lifetime: 2h", "token_lifetime", "out of range; expected 1s...1h"),
        ("token_lifetime: 0s", "token_lifetime", "out of range; expected 1s...1h"),
        ("token_lifetime: 90", "token_lifetime", "has no unit"),
        ("last_modified: \"2026-12-04 10:00:00Z\"", "last_modified", "expected RFC 3339 with seconds and Z"),
        ("last_modified: \"2026-13-04T10:00:00Z\"", "last_modified", "is not a UTC time"),
        ("last_modified: \"2026-02-30T10:00:00Z\"", "last_modified", "is not a UTC time"),
        ("last_modified: \"2026-12-04T10:00:00+00:00\"", "last_modified", "is not a UTC time"),
        ("last_modified: \"2026-12-04T10:00Z\"", "last_modified", "is not a UTC time"),
        ("allowed_ips: [\"10.0.0.1/8\"]", "allowed_ips[0]", "host bits"),
    ])
    func badBuiltinClientKeyIsAnErrorOnItsLine(line: String, key: String, message: String) {
        let text = Self.clients("  - id: psa-sync\n    issuer: local\n    roles: [helpdesk]\n    secret_sha256: \"\(Self.hash)\"\n    \(line)\n")
            .replacingOccurrences(of: "    secret_sha256: \"\(Self.hash)\"\n    secret_sha256", with: "    secret_sha256")
        Self.expectOneError(text, at: line, key: "clients[0].\(key)", message: message)
    }

    @Test(arguments: [
        ("secret_sha256: \"\(BuiltinIssuerConfigTests.hash)\"", "secret_sha256", "applies only to clients of the built-in issuer; 'entra'"),
        ("token_lifetime: 15m", "token_lifetime", "applies only to clients of the built-in issuer; 'entra'"),
    ])
    func builtinOnlyClientKeyOnAnOutsideIssuersClientIsAnError(line: String, key: String, message: String) {
        let text = Self.clients("  - id: dashboard\n    issuer: entra\n    roles: [helpdesk]\n    \(line)\n")
        Self.expectOneError(text, at: line, key: "clients[0].\(key)", message: message)
    }

    @Test func clientTokenLifetimeIsCappedByTheIssuersMaximum() throws {
        let text = Self.clients("  - id: psa-sync\n    issuer: local\n    roles: [helpdesk]\n    secret_sha256: \"\(Self.hash)\"\n    token_lifetime: 3h\n")
        Self.expectOneError(text, at: "token_lifetime: 3h", key: "clients[0].token_lifetime", message: "expected 1s...1h")
        let raised = text.replacingOccurrences(of: "signing_key_file: signing.pem\n", with: "signing_key_file: signing.pem\n    max_token_lifetime: 4h\n")
        #expect(try Self.load(raised).clients.first?.tokenLifetime == .hours(3))
    }

    @Test func lastModifiedIsAcceptedOnOutsideClientsToo() throws {
        let text = Self.clients("  - id: dashboard\n    issuer: entra\n    roles: [helpdesk]\n    last_modified: \"2024-02-29T23:59:60Z\"\n")
        #expect(try Self.load(text).clients.first?.lastModified == "2024-02-29T23:59:60Z")
    }

    @Test func duplicateIdsAndUnknownRolesStayErrors() {
        let text = Self.clients(
            "  - id: a\n    issuer: local\n    roles: [helpdesk]\n    secret_sha256: \"\(Self.hash)\"\n"
                + "  - id: a\n    issuer: local\n    roles: [helpdsk]\n    secret_sha256: \"\(Self.hash)\"\n"
        )
        do throws(ConfigErrors) {
            _ = try Self.load(text)
            Issue.record("loaded")
        } catch {
            #expect(error.errors.contains { $0.message.contains("client id 'a' is used twice") }, "\(error)")
            #expect(error.errors.contains { $0.message.contains("unknown role 'helpdsk'") && $0.key == "clients[1].roles[0]" }, "\(error)")
        }
    }

    @Test(arguments: [
        ("2026-12-04T10:00:00Z", true), ("2024-02-29T00:00:00Z", true), ("2023-02-29T00:00:00Z", false),
        ("1900-02-29T00:00:00Z", false), ("2000-02-29T00:00:00Z", true), ("2026-12-04T24:00:00Z", false),
        ("2026-12-04t10:00:00z", false), ("2026-12-04T10:00:00.5Z", false), ("", false), ("2026-12-00T10:00:00Z", false),
    ])
    func rfc3339Shape(text: String, valid: Bool) {
        #expect(ConfigLoader.isRFC3339UTCSeconds(text) == valid)
    }
}
