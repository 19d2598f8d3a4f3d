import Testing

@testable import PortcullisPolicy

@Suite struct ConfigLoaderTests {
    static let minimal = """
        listen:
          - address: "127.0.0.1:8080"
        upstream:
          url: "http://127.0.0.1:8091"
        """

    static func load(_ sources: [(String, String)]) throws(ConfigErrors) -> GatewayConfig {
        try ConfigLoader.load(sources: sources.map { (file: $0.0, text: $0.1) }, directory: "/etc/portcullis")
    }

    static func load(_ text: String, file: String = "gateway.yaml") throws(ConfigErrors) -> GatewayConfig {
        try Self.load([(file, text)])
    }

    /// The errors of a configuration that must fail; records an issue when it loads.
    static func errors(
        _ sources: [(String, String)],
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) -> [ConfigError] {
        do throws(ConfigErrors) {
            _ = try Self.load(sources)
            Issue.record("configuration loaded but was expected to fail", sourceLocation: sourceLocation)
            return []
        } catch {
            return error.errors
        }
    }

    static func errors(
        _ text: String,
        file: String = "gateway.yaml",
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) -> [ConfigError] {
        Self.errors([(file, text)], sourceLocation: sourceLocation)
    }

    /// The only error of a configuration, with the key path it must name.
    static func onlyError(
        _ text: String,
        key: String,
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) throws -> ConfigError {
        let errors = Self.errors(text, sourceLocation: sourceLocation)
        #expect(errors.count == 1, "\(errors)", sourceLocation: sourceLocation)
        let error = try #require(errors.first, sourceLocation: sourceLocation)
        #expect(error.key == key, "\(error)", sourceLocation: sourceLocation)
        return error
    }

    // MARK: - Valid configurations

    @Test func minimalConfigLoads() throws {
        let config = try Self.load(Self.minimal)
        #expect(config.directory == "/etc/portcullis")
        #expect(config.listeners.count == 1)
        #expect(config.listeners[0].address == HostPort(host: "127.0.0.1", port: 8080))
        #expect(config.listeners[0].tls == nil)
        #expect(config.listeners[0].location == PortcullisPolicy.SourceLocation(file: "gateway.yaml", line: 2, column: 14))
        #expect(config.upstream.scheme == .http)
        #expect(config.upstream.host == "127.0.0.1")
        #expect(config.upstream.port == 8091)
        #expect(config.upstream.authority == "127.0.0.1:8091")
    }

    @Test func defaultsApplyWhenSectionsAreMissing() throws {
        let config = try Self.load(Self.minimal)
        #expect(config.upstream.timeout == .minutes(10))
        #expect(config.upstream.connectTimeout == .seconds(5))
        #expect(config.upstream.keepaliveTimeout == .seconds(30))
        #expect(config.upstream.maxIdleConnections == 128)
        #expect(config.upstream.receiveBuffer == 262_144)
        #expect(config.upstream.profile == .generic)
        #expect(config.upstream.caFile == nil)
        #expect(config.upstream.authLocation == nil)
        #expect(config.trustedProxies.isEmpty)
        #expect(config.logging.accessLog == nil)
        #expect(config.logging.perClientDirectory == nil)
        #expect(config.logging.level == "info")
        #expect(config.limits.clientHeaderTimeout == .seconds(30))
        #expect(config.limits.idleTimeout == .seconds(60))
        #expect(config.limits.maxConnections == 10_000)
        #expect(config.limits.maxHeaderBytes == 65_536)
        #expect(config.limits.maxInspectBody == 1_048_576)
        #expect(config.limits.drainTimeout == .seconds(30))
    }

    @Test func everySectionIsRead() throws {
        let config = try Self.load(
            """
            listen:
              - address: "0.0.0.0:8080"
              - address: "[::]:8443"
            trusted_proxies: ["10.0.0.0/8", "2001:db8::/48", "192.0.2.7"]
            upstream:
              url: "https://cipp-xyz.azurewebsites.net/"
              profile: cipp
              timeout: 2m
              connect_timeout: 750ms
              keepalive_timeout: 10s
              max_idle_connections: 4
              ca_file: certs/ca.pem
            logging:
              access_log: logs/access.log
              per_client_dir: /var/log/portcullis/clients
              level: debug
            limits:
              client_header_timeout: 5s
              idle_timeout: 1h
              max_connections: 50
              max_header_bytes: 2048
              max_inspect_body: 0
              drain_timeout: 0s
            """,
            file: "/etc/portcullis/gateway.yaml"
        )
        #expect(config.listeners.map(\.address) == [HostPort(host: "0.0.0.0", port: 8080), HostPort(host: "::", port: 8443)])
        #expect(config.trustedProxies.count == 3)
        #expect(config.trustedProxies.contains(IPAddress(parsing: "10.200.0.1")!))
        #expect(config.trustedProxies.contains(IPAddress(parsing: "192.0.2.7")!))
        #expect(!config.trustedProxies.contains(IPAddress(parsing: "192.0.2.8")!))
        #expect(config.upstream.scheme == .https)
        #expect(config.upstream.host == "cipp-xyz.azurewebsites.net")
        #expect(config.upstream.port == 443)
        #expect(config.upstream.authority == "cipp-xyz.azurewebsites.net")
        #expect(config.upstream.profile == .cipp)
        #expect(config.upstream.timeout == .minutes(2))
        #expect(config.upstream.connectTimeout == .milliseconds(750))
        #expect(config.upstream.keepaliveTimeout == .seconds(10))
        #expect(config.upstream.maxIdleConnections == 4)
        #expect(config.upstream.caFile == "/etc/portcullis/certs/ca.pem")
        #expect(config.logging.accessLog == "/etc/portcullis/logs/access.log")
        #expect(config.logging.perClientDirectory == "/var/log/portcullis/clients")
        #expect(config.logging.level == "debug")
        #expect(config.limits.clientHeaderTimeout == .seconds(5))
        #expect(config.limits.idleTimeout == .hours(1))
        #expect(config.limits.maxConnections == 50)
        #expect(config.limits.maxHeaderBytes == 2048)
        #expect(config.limits.maxInspectBody == 0)
        #expect(config.limits.drainTimeout == .zero)
    }

    @Test func accessLogDashMeansStdoutAndOffMeansNone() throws {
        let stdout = try Self.load(Self.minimal + "\nlogging:\n  access_log: \"-\"\n")
        #expect(stdout.logging.accessLog == "-")
        let off = try Self.load(Self.minimal + "\nlogging:\n  access_log: off\n")
        #expect(off.logging.accessLog == nil)
    }

    /// Scalars are read as the loader's own types, not by YAML tag resolution: booleans in the
    /// YAML 1.1 spellings (unquoted), anything else refused with what was expected.
    @Test(arguments: [
        ("true", true), ("True", true), ("TRUE", true), ("yes", true), ("Yes", true), ("on", true), ("ON", true),
        ("false", false), ("False", false), ("no", false), ("NO", false), ("off", false), ("Off", false),
    ])
    func booleansTakeTheYAML11Spellings(_ spelling: String, _ expected: Bool) throws {
        let config = try Self.load(Self.minimal + "\n" + Self.entra + "\nclients:\n  - id: script\n    issuer: entra\n    enabled: \(spelling)\n")
        #expect(config.clients.map(\.enabled) == [expected])
    }

    @Test(arguments: ["\"true\"", "'no'", "tRue", "1", "y", "\"\""])
    func quotedOrOtherBooleansAreRefused(_ spelling: String) throws {
        let error = try Self.onlyError(
            Self.minimal + "\n" + Self.entra + "\nclients:\n  - id: script\n    issuer: entra\n    enabled: \(spelling)\n",
            key: "clients[0].enabled"
        )
        #expect(error.message.contains("expected true or false"), "\(error)")
    }

    @Test(arguments: ["off", "Off", "no", "false", "\"off\"", "~", "null"])
    func accessLogOffInItsSpellings(_ spelling: String) throws {
        let config = try Self.load(Self.minimal + "\nlogging:\n  access_log: \(spelling)\n")
        #expect(config.logging.accessLog == nil)
    }

    @Test func numbersAndDatesStayTextWhereTextIsExpected() throws {
        let config = try Self.load(Self.minimal + "\n" + Self.entra + "\nclients:\n  - id: 2026-12-07\n    name: 0x10\n    issuer: entra\n")
        #expect(config.clients.map(\.id) == ["2026-12-07"])
        #expect(config.clients.map(\.name) == ["0x10"])
    }

    @Test func topLevelKeysMergeAcrossFiles() throws {
        let config = try Self.load([
            ("a.yaml", "listen:\n  - address: \"127.0.0.1:8080\"\n"),
            ("b.yaml", "upstream:\n  url: \"http://backend.internal:9000\"\n"),
            ("c.yaml", ""),
            ("d.yaml", "# only a comment\n"),
        ])
        #expect(config.listeners.count == 1)
        #expect(config.upstream.host == "backend.internal")
        #expect(config.upstream.port == 9000)
    }

    @Test func adminIssuersRolesAndClientsLoadTogether() throws {
        let config = try Self.load(
            Self.minimal + """

                admin:
                  address: "127.0.0.1:9090"
                  token_file: admin-token
                issuers:
                  - name: local
                    builtin: true
                    signing_key_file: "\(BuiltinIssuerConfigTests.directory)/signing.pem"
                roles:
                  readonly:
                    allow:
                      - { methods: [GET], paths: ["/api/List*"] }
                clients:
                  - id: psa-sync
                    issuer: local
                    roles: [readonly]
                    secret_sha256: "\(BuiltinIssuerConfigTests.hash)"
                """
        )
        #expect(config.admin.address == HostPort(host: "127.0.0.1", port: 9090))
        #expect(config.issuers.map(\.name) == ["local"])
        #expect(config.issuers.first?.builtin == true)
        #expect(config.clients.map(\.id) == ["psa-sync"])
    }

    // MARK: - Issuers and clients

    static let entra = """
        issuers:
          - name: entra
            issuer: "https://sts.windows.net/TENANT/"
            audiences: ["api://APPID"]
            jwks_url: "https://login.microsoftonline.com/TENANT/discovery/v2.0/keys"
            algorithms: [RS256]
            client_claim: appid
            leeway: 30s
        """

    @Test func anIssuerAndItsClientsLoad() throws {
        let config = try Self.load(
            Self.minimal + "\n" + Self.entra + """

                clients:
                  - id: "6cabf059-21c9-44d6-bbde-02898f7430dd"
                    name: "Reporting dashboard"
                    issuer: entra
                  - id: old-script
                    issuer: entra
                    enabled: false
                """
        )
        let issuer = try #require(config.issuers.first)
        #expect(issuer.name == "entra")
        #expect(issuer.issuer == "https://sts.windows.net/TENANT/")
        #expect(issuer.audiences == ["api://APPID"])
        #expect(issuer.keySource == .url("https://login.microsoftonline.com/TENANT/discovery/v2.0/keys"))
        #expect(issuer.algorithms == ["RS256"])
        #expect(issuer.clientClaim == "appid")
        #expect(issuer.leeway == .seconds(30))
        #expect(config.clients.map(\.id) == ["6cabf059-21c9-44d6-bbde-02898f7430dd", "old-script"])
        #expect(config.clients.map(\.name) == ["Reporting dashboard", "old-script"])
        #expect(config.clients.map(\.enabled) == [true, false])
    }

    @Test(arguments: [
        ("algorithms: [RS256]", "algorithms: [none]", "'none' is not an algorithm"),
        ("algorithms: [RS256]", "algorithms: [HS256]", "HS256 needs a secret shared"),
        ("algorithms: [RS256]", "algorithms: [RS257]", "unknown algorithm 'RS257'"),
        ("algorithms: [RS256]", "algorithms: []", "expected at least one algorithm"),
        (
            "jwks_url: \"https://login.microsoftonline.com/TENANT/discovery/v2.0/keys\"",
            "jwks_url: \"http://idp.example.com/keys\"", "plain http is allowed only for loopback"
        ),
        (
            "jwks_url: \"https://login.microsoftonline.com/TENANT/discovery/v2.0/keys\"",
            "jwks_url: \"http://localhost:80@evil.example/jwks\"", "must not carry user info"
        ),
        ("audiences: [\"api://APPID\"]", "audiences: []", "expected at least one audience"),
        ("leeway: 30s", "leeway: 1h", "leeway above 10m"),
        ("client_claim: appid", "client_claim: appid\n    jwks_file: keys.json", "give only one of jwks_url"),
    ])
    func badIssuerIsAnErrorOnItsLine(original: String, replacement: String, message: String) throws {
        let text = Self.minimal + "\n" + Self.entra.replacingOccurrences(of: original, with: replacement)
        let errors = Self.errors(text)
        #expect(errors.contains { $0.message.contains(message) && $0.location?.line ?? 0 >= 6 }, "\(errors)")
    }

    @Test func loopbackKeyURLsMayBePlainHTTP() throws {
        for url in ["http://127.0.0.1:8200/keys", "http://localhost:9000/jwks", "http://[::1]:80/k"] {
            let text = Self.minimal + "\n" + Self.entra.replacingOccurrences(
                of: "https://login.microsoftonline.com/TENANT/discovery/v2.0/keys",
                with: url
            )
            #expect(try Self.load(text).issuers.first?.keySource == .url(url))
        }
    }

    @Test func missingIssuerFieldsAreEachReported() {
        let errors = Self.errors(Self.minimal + "\nissuers:\n  - name: bare\n")
        let messages = errors.map(\.message).joined(separator: "\n")
        for expected in ["missing issuer", "missing audiences", "missing algorithms", "missing keys"] {
            #expect(messages.contains(expected), "\(messages)")
        }
    }

    @Test func clientOfAnUnknownIssuerIsAnError() {
        let errors = Self.errors(
            Self.minimal + "\n" + Self.entra + """

                clients:
                  - id: a
                    issuer: entra
                  - id: b
                    issuer: entar
                  - id: a
                    issuer: entra
                """
        )
        #expect(errors.contains { $0.message.contains("unknown issuer 'entar'") && $0.location?.line == 17 }, "\(errors)")
        #expect(errors.contains { $0.message.contains("client id 'a' is used twice") }, "\(errors)")
    }

    @Test func clientNameMustNotCarryControlCharacters() {
        let errors = Self.errors(Self.minimal + "\n" + Self.entra + "\nclients:\n  - id: a\n    issuer: entra\n    name: \"a\\nb\"\n")
        #expect(errors.contains { $0.message.contains("control characters") }, "\(errors)")
    }

    @Test func demoPolicyDirectoryLoads() throws {
        // Tests/PortcullisPolicyTests/ConfigLoaderTests.swift -> the repository root.
        var root = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        root.removeLast(3)
        let directory = root.joined(separator: "/") + "/policies/demo"
        let config: GatewayConfig
        do throws(ConfigErrors) {
            config = try ConfigLoader.load(directory: directory)
        } catch {
            Issue.record("policies/demo failed to load:\n\(error)")
            return
        }
        #expect(config.directory == directory)
        #expect(!config.listeners.isEmpty)
        #expect(config.upstream.scheme == .http)
        #expect(config.upstream.profile == .cipp)
    }

    @Test func missingDirectoryIsOneError() {
        do throws(ConfigErrors) {
            _ = try ConfigLoader.load(directory: "/nonexistent/portcullis-config")
            Issue.record("loaded a directory that does not exist")
        } catch {
            #expect(error.errors.count == 1)
            #expect(error.description.contains("/nonexistent/portcullis-config"))
        }
    }

    // MARK: - Every error says where, which key and what was expected

    @Test func misspelledTopLevelKeySuggestsTheRightOne() throws {
        let errors = Self.errors(
            """
            listen:
              - address: "127.0.0.1:8080"
            upstrem:
              url: "http://127.0.0.1:8091"
            """
        )
        let unknown = try #require(errors.first { $0.key == "upstrem" }, "\(errors)")
        #expect(unknown.location?.file == "gateway.yaml")
        #expect(unknown.location?.line == 3)
        #expect(unknown.location?.column == 1)
        #expect(unknown.message.contains("did you mean 'upstream'?"))
        #expect(unknown.message.contains("expected one of"))
        #expect(unknown.description.hasPrefix("gateway.yaml:3:1: upstrem: unknown key"))
        // The section under its wrong name does not count as the upstream.
        #expect(errors.contains { $0.key == "upstream" && $0.message.contains("missing") })
    }

    @Test func misspelledNestedKeySuggestsTheRightOne() throws {
        let error = try Self.onlyError(
            """
            listen:
              - address: "127.0.0.1:8080"
            upstream:
              url: "http://127.0.0.1:8091"
              conect_timeout: 5s
            """,
            key: "upstream.conect_timeout"
        )
        #expect(error.location == PortcullisPolicy.SourceLocation(file: "gateway.yaml", line: 5, column: 3))
        #expect(error.message.contains("did you mean 'connect_timeout'?"))
    }

    @Test func unrelatedUnknownKeyGetsNoSuggestion() throws {
        let error = try Self.onlyError(Self.minimal + "\nlimits:\n  frobnicate: 3\n", key: "limits.frobnicate")
        #expect(!error.message.contains("did you mean"))
        #expect(error.message.contains("client_header_timeout"))
        #expect(error.location?.line == 6)
    }

    @Test(arguments: ["10", "10 minutes", "1.5s", "-5s", "05s", "10w", "\"\""])
    func badDurationNamesKeyLineAndExpectedForm(value: String) throws {
        let error = try Self.onlyError(
            """
            listen:
              - address: "127.0.0.1:8080"
            upstream:
              url: "http://127.0.0.1:8091"
              timeout: \(value)
            """,
            key: "upstream.timeout"
        )
        #expect(error.location?.file == "gateway.yaml")
        #expect(error.location?.line == 5)
        #expect(error.message.contains("500ms, 30s, 10m or 1h"))
    }

    @Test func zeroTimeoutsAreRefused() throws {
        let errors = Self.errors(
            """
            listen:
              - address: "127.0.0.1:8080"
            upstream:
              url: "http://127.0.0.1:8091"
              timeout: 0s
              connect_timeout: 0ms
            limits:
              client_header_timeout: 0s
            """
        )
        #expect(errors.map(\.key) == ["upstream.timeout", "upstream.connect_timeout", "limits.client_header_timeout"])
        #expect(errors.allSatisfy { $0.message == "must be more than 0" })
        #expect(errors.map { $0.location?.line } == [5, 6, 8])
    }

    @Test func slowClientTimeoutsDefaultTo60sAndParseAsDurations() throws {
        let defaults = try Self.load(Self.minimal)
        #expect(defaults.limits.clientBodyTimeout == .seconds(60))
        #expect(defaults.limits.sendTimeout == .seconds(60))
        let config = try Self.load(Self.minimal + "\nlimits:\n  client_body_timeout: 1500ms\n  send_timeout: 2m\n")
        #expect(config.limits.clientBodyTimeout == .milliseconds(1500))
        #expect(config.limits.sendTimeout == .minutes(2))
    }

    @Test(arguments: ["client_body_timeout", "send_timeout"])
    func badSlowClientTimeoutNamesFileLineAndKey(key: String) throws {
        let error = try Self.onlyError(Self.minimal + "\nlimits:\n  \(key): 10\n", key: "limits.\(key)")
        #expect(error.location?.file == "gateway.yaml")
        #expect(error.location?.line == 6)
        #expect(error.message.contains("500ms, 30s, 10m or 1h"))
        let zero = try Self.onlyError(Self.minimal + "\nlimits:\n  \(key): 0s\n", key: "limits.\(key)")
        #expect(zero.message == "must be more than 0")
        #expect(zero.location?.line == 6)
    }

    @Test func upstreamReceiveBufferIsBytesAndZeroMeansAutotuning() throws {
        let upstream = "listen:\n  - address: \"127.0.0.1:8080\"\nupstream:\n  url: \"http://127.0.0.1:8091\"\n"
        #expect(try Self.load(upstream + "  receive_buffer: 65536\n").upstream.receiveBuffer == 65_536)
        #expect(try Self.load(upstream + "  receive_buffer: 0\n").upstream.receiveBuffer == 0)
        let negative = try Self.onlyError(upstream + "  receive_buffer: -1\n", key: "upstream.receive_buffer")
        #expect(negative.location?.file == "gateway.yaml")
        #expect(negative.location?.line == 5)
        #expect(negative.message.contains("0...1073741824"), "\(negative)")
        let words = try Self.onlyError(upstream + "  receive_buffer: 256k\n", key: "upstream.receive_buffer")
        #expect(words.location?.line == 5)
        #expect(words.message.contains("expected a whole number"), "\(words)")
    }

    @Test func clientSendBufferIsBytesAndZeroMeansAutotuning() throws {
        #expect(try Self.load(Self.minimal).limits.clientSendBuffer == 131_072)
        #expect(try Self.load(Self.minimal + "\nlimits:\n  client_send_buffer: 65536\n").limits.clientSendBuffer == 65_536)
        #expect(try Self.load(Self.minimal + "\nlimits:\n  client_send_buffer: 0\n").limits.clientSendBuffer == 0)
        let negative = try Self.onlyError(Self.minimal + "\nlimits:\n  client_send_buffer: -1\n", key: "limits.client_send_buffer")
        #expect(negative.location?.file == "gateway.yaml")
        #expect(negative.location?.line == 6)
        #expect(negative.message.contains("0...1073741824"), "\(negative)")
    }

    @Test func nestedErrorsNameTheirKeyPath() {
        let errors = Self.errors(
            """
            listen:
              - address: "127.0.0.1:8080"
            upstream:
              url: "http://127.0.0.1:8091"
              profile: azure
              max_idle_connections: lots
            logging:
              level: verbose
            limits:
              max_header_bytes: 100
            """
        )
        #expect(errors.map(\.key) == ["upstream.profile", "upstream.max_idle_connections", "logging.level", "limits.max_header_bytes"])
        #expect(errors.map { $0.location?.line } == [5, 6, 8, 10])
        #expect(errors[0].message.contains("expected cipp or generic"))
        #expect(errors[1].message.contains("expected a whole number"))
        #expect(errors[2].message.contains("expected one of"))
        #expect(errors[3].message.contains("out of range; expected 1024...1048576"))
    }

    @Test func wrongShapesSayWhatWasExpected() {
        let errors = Self.errors(
            """
            listen: "127.0.0.1:8080"
            upstream:
              - url: "http://127.0.0.1:8091"
            trusted_proxies: "10.0.0.0/8"
            """
        )
        #expect(errors.count == 3, "\(errors)")
        #expect(errors.contains { $0.key == "listen" && $0.message.contains("expected a list") && $0.location?.line == 1 })
        #expect(errors.contains { $0.key == "upstream" && $0.message.contains("expected a mapping") && $0.location?.line == 3 })
        #expect(errors.contains { $0.key == "trusted_proxies" && $0.message.contains("expected a list") && $0.location?.line == 4 })
    }

    @Test func requiredSectionsMissing() {
        let errors = Self.errors("logging:\n  level: info\n")
        #expect(errors.map(\.key).sorted() == ["listen", "upstream"])
        #expect(errors.allSatisfy { $0.message.hasPrefix("missing") })
    }

    @Test func caFileNeedsHTTPS() throws {
        let error = try Self.onlyError(
            """
            listen:
              - address: "127.0.0.1:8080"
            upstream:
              url: "http://127.0.0.1:8091"
              ca_file: ca.pem
            """,
            key: "upstream.ca_file"
        )
        #expect(error.message.contains("https://"))
        #expect(error.location?.line == 5)
    }

    // MARK: - Upstream URL

    @Test(arguments: [
        "http://backend/api",
        "https://backend:8443/api/",
        "ftp://backend",
        "backend:8080",
        "http://",
        "https://:8443",
        "http://user@backend",
        "http://backend?x=1",
        "http://backend:0",
        "http://backend:65536",
        "http://[::1",
        "http://::1",
    ])
    func badUpstreamURLNamesKeyAndExpectedForm(url: String) throws {
        let error = try Self.onlyError(
            """
            listen:
              - address: "127.0.0.1:8080"
            upstream:
              url: "\(url)"
              timeout: 1m
            """,
            key: "upstream.url"
        )
        #expect(error.location?.file == "gateway.yaml")
        #expect(error.location?.line == 4)
        #expect(error.message.contains("'\(url)'"))
        #expect(error.message.contains("expected http://host[:port] or https://host[:port] with no path"))
    }

    @Test func missingUpstreamURL() throws {
        let error = try Self.onlyError(
            """
            listen:
              - address: "127.0.0.1:8080"
            upstream:
              profile: cipp
            """,
            key: "upstream"
        )
        #expect(error.message.contains("missing url"))
    }

    @Test(arguments: [
        ("http://backend", UpstreamConfig.Scheme.http, "backend", 80),
        ("https://backend", .https, "backend", 443),
        ("https://backend/", .https, "backend", 443),
        ("http://backend:8080", .http, "backend", 8080),
        ("http://backend:8080/", .http, "backend", 8080),
        ("https://cipp-xyz.azurewebsites.net", .https, "cipp-xyz.azurewebsites.net", 443),
        ("http://127.0.0.1:8091", .http, "127.0.0.1", 8091),
        ("http://[::1]", .http, "::1", 80),
        ("https://[2001:db8::1]:8443", .https, "2001:db8::1", 8443),
        ("http://backend:65535", .http, "backend", 65535),
    ])
    func upstreamURLParses(text: String, scheme: UpstreamConfig.Scheme, host: String, port: Int) throws {
        let parsed = try #require(UpstreamConfig.parseURL(text))
        #expect(parsed.0 == scheme)
        #expect(parsed.1 == host)
        #expect(parsed.2 == port)
    }

    @Test(arguments: [
        "", "backend", "backend:80", "ftp://backend", "HTTP://backend", "http:/backend", "http://",
        "http:///", "http://backend/api", "http://backend//", "http://backend?q", "http://backend#f",
        "http://u:p@backend", "http://backend:", "http://backend:0", "http://backend:65536", "http://backend:080",
        "http://backend:8o", "http://:80", "http://::1", "http://[::1", "http://[::1]x", "http://[::1]:",
        "http://[fe80::1%25eth0]", "http://[backend]",
    ])
    func upstreamURLRejects(text: String) {
        #expect(UpstreamConfig.parseURL(text) == nil)
    }

    @Test(arguments: [
        (UpstreamConfig(scheme: .http, host: "backend", port: 80), "backend"),
        (UpstreamConfig(scheme: .http, host: "backend", port: 443), "backend:443"),
        (UpstreamConfig(scheme: .https, host: "backend", port: 443), "backend"),
        (UpstreamConfig(scheme: .https, host: "backend", port: 80), "backend:80"),
        (UpstreamConfig(scheme: .http, host: "::1", port: 80), "[::1]"),
        (UpstreamConfig(scheme: .https, host: "2001:db8::1", port: 8443), "[2001:db8::1]:8443"),
    ])
    func authorityOmitsTheDefaultPortAndBracketsIPv6(upstream: UpstreamConfig, authority: String) {
        #expect(upstream.authority == authority)
    }

    // MARK: - Listen addresses

    @Test(arguments: ["1.2.3.4", "::1:80", "[::1]", "example.com:80", "1.2.3.4:99999", "127.1:80", ":8080"])
    func badListenAddressNamesKeyAndExpectedForm(address: String) throws {
        let error = try Self.onlyError(
            """
            upstream:
              url: "http://127.0.0.1:8091"
            listen:
              - address: "127.0.0.1:8080"
              - address: "\(address)"
            """,
            key: "listen[1].address"
        )
        #expect(error.location == PortcullisPolicy.SourceLocation(file: "gateway.yaml", line: 5, column: 14))
        #expect(error.message.contains("'\(address)'"))
        #expect(error.message.contains("expected IP:port"))
    }

    @Test func listenerWithoutAddress() throws {
        let error = try Self.onlyError(
            """
            upstream:
              url: "http://127.0.0.1:8091"
            listen:
              - tls: { certificate: tls.crt, key: tls.key }
            """,
            key: "listen[0]"
        )
        #expect(error.message.contains("missing address"))
        #expect(error.location?.line == 4)
    }

    @Test func emptyListenIsAnError() throws {
        let error = try Self.onlyError("upstream:\n  url: \"http://127.0.0.1:8091\"\nlisten: []\n", key: "listen")
        #expect(error.message.contains("at least one listener"))
    }

    @Test(arguments: [
        ("0.0.0.0:8080", "0.0.0.0", 8080),
        ("127.0.0.1:0", "127.0.0.1", 0),
        ("127.0.0.1:65535", "127.0.0.1", 65535),
        ("[::]:8443", "::", 8443),
        ("[::1]:80", "::1", 80),
        ("[2001:db8::1]:443", "2001:db8::1", 443),
        ("localhost:8080", "localhost", 8080),
    ])
    func hostPortParses(text: String, host: String, port: Int) throws {
        let parsed = try #require(HostPort(parsing: text))
        #expect(parsed == HostPort(host: host, port: port))
    }

    @Test(arguments: [
        "", "1.2.3.4", "1.2.3.4:", ":80", "::1:80", "::1", "[::1]", "[::1]:", "[::1]80", "[::1]:80x",
        "[::1]::80", "[::1", "[fe80::1%eth0]:80", "[example.com]:80", "1.2.3.4:65536", "1.2.3.4:080",
        "1.2.3.4:+80", "1.2.3.4:-1", "1.2.3.4:8 0", "1.2.3.4:123456", "a:b:c",
    ])
    func hostPortRejects(text: String) {
        #expect(HostPort(parsing: text) == nil)
    }

    @Test(arguments: [
        (HostPort(host: "0.0.0.0", port: 8080), "0.0.0.0:8080"),
        (HostPort(host: "::", port: 8443), "[::]:8443"),
        (HostPort(host: "localhost", port: 1), "localhost:1"),
    ])
    func hostPortPrintsBack(hostPort: HostPort, text: String) {
        #expect(hostPort.description == text)
        #expect(HostPort(parsing: text) == hostPort)
    }

    // MARK: - trusted_proxies

    @Test(arguments: [
        ("10.0.0.1/8", "host bits"),
        ("010.0.0.0/8", "leading zero"),
        ("fe80::1%eth0", "zone id"),
        ("127.1", "127.1"),
        ("10.0.0.0/33", "33"),
    ])
    func badTrustedProxyNamesItsLine(entry: String, words: String) throws {
        let error = try Self.onlyError(
            Self.minimal + """

                trusted_proxies:
                  - "192.0.2.0/24"
                  - "\(entry)"
                """,
            key: "trusted_proxies[1]"
        )
        #expect(error.location?.file == "gateway.yaml")
        #expect(error.location?.line == 7)
        #expect(error.message.contains(words), "\(error.message)")
        #expect(error.description.hasPrefix("gateway.yaml:7:5: trusted_proxies[1]: "))
    }

    @Test func everyBadTrustedProxyIsReported() {
        let errors = Self.errors(Self.minimal + "\ntrusted_proxies: [\"10.0.0.1/8\", \"10.0.0.0/8\", \"010.0.0.0/8\", \"fe80::1%eth0\"]\n")
        #expect(errors.map(\.key) == ["trusted_proxies[0]", "trusted_proxies[2]", "trusted_proxies[3]"])
    }

    // MARK: - Duplicates and several files

    @Test(arguments: [
        ("upstream:\n  url: \"http://127.0.0.1:8091\"\n  timeout: 1m\n  timeout: 2m\n", "timeout", 6),
        ("upstream:\n  url: \"http://127.0.0.1:8091\"\n  timeout: 1m\n  \"timeout\": 2m\n", "timeout", 6),
        ("upstream:\n  url: \"http://127.0.0.1:8091\"\nupstream:\n  url: \"http://127.0.0.1:8092\"\n", "upstream", 5),
    ])
    func duplicateKeyInOneFileIsAnError(text: String, key: String, line: Int) {
        let errors = Self.errors("listen:\n  - address: \"127.0.0.1:8080\"\n" + text)
        #expect(errors.count == 1, "\(errors)")
        let error = errors.first
        #expect(error?.key == key && error?.message == "duplicate key", "\(errors)")
        #expect(error?.location?.file == "gateway.yaml" && error?.location?.line == line, "\(errors)")
    }

    @Test func sameTopLevelKeyInTwoFilesNamesBoth() throws {
        let errors = Self.errors([
            ("a.yaml", Self.minimal),
            ("b.yaml", "# the upstream again\nupstream:\n  url: \"http://127.0.0.1:9999\"\n"),
        ])
        #expect(errors.count == 1, "\(errors)")
        let error = try #require(errors.first)
        #expect(error.key == "upstream")
        #expect(error.location == PortcullisPolicy.SourceLocation(file: "b.yaml", line: 2, column: 1))
        #expect(error.message.contains("more than one file"))
        #expect(error.message.contains("already set at a.yaml:"))
    }

    @Test func severalErrorsAreReportedAtOnceInFileOrder() {
        let errors = Self.errors([
            (
                "a.yaml",
                """
                listen:
                  - address: "1.2.3.4"
                upstream:
                  url: "http://127.0.0.1:8091/api"
                  conect_timeout: 5s
                  timeout: soon
                """
            ),
            (
                "b.yaml",
                """
                trusted_proxies: ["10.0.0.1/8"]
                limits:
                  max_connections: 0
                loging:
                  level: info
                """
            ),
        ])
        #expect(errors.count == 6, "\(errors)")
        #expect(
            errors.map(\.key) == [
                "listen[0].address", "upstream.url", "upstream.conect_timeout", "trusted_proxies[0]",
                "limits.max_connections", "loging",
            ]
        )
        #expect(errors.map { $0.location?.file ?? "" } == ["a.yaml", "a.yaml", "a.yaml", "b.yaml", "b.yaml", "b.yaml"])
        #expect(errors.map { $0.location?.line ?? 0 } == [2, 4, 5, 1, 3, 4])
        #expect(errors.last?.message.contains("did you mean 'logging'?") == true)
        let all = ConfigErrors(errors).description.split(separator: "\n")
        #expect(all.count == 6)
    }

    // MARK: - YAML syntax

    @Test func yamlSyntaxErrorHasItsLine() throws {
        let errors = Self.errors(
            [
                (
                    "broken.yaml",
                    """
                    listen:
                      - address: "127.0.0.1:8080"
                    upstream:
                      url: "http://127.0.0.1:8091
                      timeout: 1m
                    """
                )
            ]
        )
        let error = try #require(errors.first { $0.location?.file == "broken.yaml" })
        #expect(error.message.hasPrefix("invalid YAML"))
        #expect((4...6).contains(error.location?.line ?? 0), "\(error)")
    }

    @Test func yamlIndentationErrorHasItsLine() throws {
        let errors = Self.errors(
            [
                (
                    "broken.yaml",
                    """
                    listen:
                      - address: "127.0.0.1:8080"
                    upstream:
                      url: "http://127.0.0.1:8091"
                     timeout: 1m
                    """
                )
            ]
        )
        let error = try #require(errors.first { $0.location?.file == "broken.yaml" })
        #expect(error.message.hasPrefix("invalid YAML"))
        #expect(error.location?.line == 5, "\(error)")
    }

    @Test func topLevelMustBeAMapping() throws {
        let errors = Self.errors("- listen\n- upstream\n")
        #expect(errors.contains { $0.message.contains("expected a mapping") && $0.location?.line == 1 })
    }

    // MARK: - Admin listener

    @Test func adminSectionIsRead() throws {
        let config = try Self.load(
            Self.minimal + """

                admin:
                  address: "[::1]:9090"
                  token_file: secrets/admin-token
                """,
            file: "/etc/portcullis/gateway.yaml"
        )
        #expect(config.admin.address == HostPort(host: "::1", port: 9090))
        #expect(config.admin.tokenFile == "/etc/portcullis/secrets/admin-token")
        #expect(config.admin.location == PortcullisPolicy.SourceLocation(file: "/etc/portcullis/gateway.yaml", line: 6, column: 12))
    }

    @Test func noAdminSectionMeansNoAdminListener() throws {
        let config = try Self.load(Self.minimal)
        #expect(config.admin.address == nil)
        #expect(config.admin.tokenFile == nil)
    }

    @Test func adminMayTakeAnyFreePortLikeAListener() throws {
        let config = try Self.load(
            """
            listen:
              - address: "127.0.0.1:0"
            admin:
              address: "127.0.0.1:0"
            upstream:
              url: "http://127.0.0.1:8091"
            """
        )
        #expect(config.admin.address == HostPort(host: "127.0.0.1", port: 0))
    }

    @Test(arguments: ["9090", "localhost", "[::1]", "example.com:9090", "127.0.0.1:70000", "127.1:9090"])
    func badAdminAddressNamesFileLineAndKey(address: String) throws {
        let error = try Self.onlyError(
            Self.minimal + """

                admin:
                  address: "\(address)"
                """,
            key: "admin.address"
        )
        #expect(error.location == PortcullisPolicy.SourceLocation(file: "gateway.yaml", line: 6, column: 12))
        #expect(error.message.contains("'\(address)'"))
        #expect(error.message.contains("expected IP:port"))
        #expect(error.description.hasPrefix("gateway.yaml:6:12: admin.address:"), "\(error)")
    }

    @Test func unknownAdminKeyIsAnErrorWithItsLine() throws {
        let error = try Self.onlyError(
            Self.minimal + """

                admin:
                  address: "127.0.0.1:9090"
                  tokenfile: admin-token
                """,
            key: "admin.tokenfile"
        )
        #expect(error.location?.line == 7)
        #expect(error.message.contains("did you mean 'token_file'?"))
    }

    @Test func adminAddressMustDifferFromEveryListener() throws {
        let error = try Self.onlyError(
            Self.minimal + """

                admin:
                  address: "127.0.0.1:8080"
                """,
            key: "admin.address"
        )
        #expect(error.location?.line == 6)
        #expect(error.message.contains("also a listen address"))
    }

    @Test func adminMustBeAMapping() throws {
        let error = try Self.onlyError(Self.minimal + "\nadmin: \"127.0.0.1:9090\"\n", key: "admin")
        #expect(error.message.contains("expected a mapping"))
        #expect(error.location?.line == 5)
    }
}
