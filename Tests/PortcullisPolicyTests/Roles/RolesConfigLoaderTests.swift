import Testing

@testable import PortcullisPolicy

@Suite struct RolesConfigLoaderTests {
    /// Listener, a CIPP upstream and an issuer; roles and clients are appended.
    static func base(profile: String = "cipp") -> String {
        """
        listen:
          - address: "127.0.0.1:8080"
        upstream:
          url: "http://127.0.0.1:8091"
          profile: \(profile)
        issuers:
          - { name: local, issuer: "https://idp.example.com/", audiences: ["api://gateway"],
              jwks_url: "https://idp.example.com/keys", algorithms: [RS256] }

        """
    }

    static func load(_ text: String, file: String = "gateway.yaml") throws(ConfigErrors) -> GatewayConfig {
        try ConfigLoader.load(sources: [(file: file, text: text)], directory: "/etc/portcullis")
    }

    static func errors(_ text: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [ConfigError] {
        ConfigLoaderTests.errors(text, sourceLocation: sourceLocation)
    }

    /// The 1-based line of the first line containing `marker`.
    static func line(of marker: String, in text: String) -> Int {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return (lines.firstIndex { $0.contains(marker) } ?? -1) + 1
    }

    // MARK: - What loads

    @Test func rolesAndClientRolesLoadWithTheirLocations() throws {
        let text = Self.base() + """
            roles:
              readonly:
                description: "List and Get endpoints only"
                allow:
                  - { methods: [get, Head], paths: ["/api/List*", "/api/Get*"] }
                deny:
                  - { paths: ["/api/ListOffboardTenants"] }
              helpdesk:
                allow:
                  - { methods: [POST], paths: ["/api/ExecResetPass"] }
                tenants: { allow: ["contoso.onmicrosoft.com"], block: [] }
            clients:
              - id: dashboard
                issuer: local
                roles: [readonly]
                allowed_ips: ["203.0.113.0/24", "2001:db8::/48", "198.51.100.7"]
              - id: psa
                issuer: local
                roles: [helpdesk, readonly]
            """
        let config = try Self.load(text)
        #expect(config.roles.map(\.name) == ["readonly", "helpdesk"])
        let readonly = config.roles[0]
        #expect(readonly.description == "List and Get endpoints only")
        #expect(readonly.allow.first?.methods == ["GET", "HEAD"])
        #expect(readonly.allow.first?.paths.map(\.text) == ["/api/List*", "/api/Get*"])
        #expect(readonly.deny.first?.methods == nil)
        #expect(config.roles[1].tenants == TenantRules(allow: ["contoso.onmicrosoft.com"], block: []))
        #expect(config.clients.map(\.roles) == [["readonly"], ["helpdesk", "readonly"]])

        let dashboard = config.clients[0]
        #expect(dashboard.allowedIPs?.count == 3)
        #expect(dashboard.allowsAddress(IPAddress(parsing: "203.0.113.77")!))
        #expect(dashboard.allowsAddress(IPAddress(parsing: "::ffff:198.51.100.7")!))
        #expect(dashboard.allowsAddress(IPAddress(parsing: "2001:db8:0:ffff::1")!))
        #expect(!dashboard.allowsAddress(IPAddress(parsing: "198.51.100.8")!))
        #expect(config.clients[1].allowedIPs == nil)
        #expect(config.clients[1].allowsAddress(IPAddress(parsing: "192.0.2.1")!))

        let decision = config.decide("dashboard", "GET", "/api/ListUsers")
        #expect(decision.isAllowed)
        let rule = try #require(config.rule(of: decision))
        #expect(rule.key == "roles.readonly.allow[0].paths[0]")
        #expect(rule.location?.line == Self.line(of: "/api/List*", in: text))
        #expect(rule.location?.file == "gateway.yaml")
        #expect(rule.description.contains("role readonly, allow GET,HEAD /api/List*"))

        let denied = config.decide("dashboard", "GET", "/api/ListOffboardTenants")
        #expect(denied.outcome == .denyRule)
        #expect(config.rule(of: denied)?.key == "roles.readonly.deny[0]")
        #expect(config.rule(of: denied)?.location?.line == Self.line(of: "ListOffboardTenants", in: text))
    }

    @Test func emptyAllowedIPsMeansNoAddress() throws {
        let config = try Self.load(
            Self.base() + """
                roles:
                  r:
                    allow: [{ paths: ["/**"] }]
                clients:
                  - id: nowhere
                    issuer: local
                    roles: [r]
                    allowed_ips: []
                  - id: anywhere
                    issuer: local
                    roles: [r]
                """
        )
        #expect(config.clients[0].allowedIPs?.isEmpty == true)
        #expect(!config.clients[0].allowsAddress(IPAddress(parsing: "127.0.0.1")!))
        #expect(!config.clients[0].allowsAddress(IPAddress(parsing: "::1")!))
        #expect(config.clients[1].allowsAddress(IPAddress(parsing: "::1")!))
    }

    @Test func aClientWithoutRolesLoadsAndMayCallNothing() throws {
        let config = try Self.load(Self.base() + "clients:\n  - id: bare\n    issuer: local\n")
        #expect(config.clients[0].roles.isEmpty)
        let decision = config.decide("bare", "GET", "/")
        #expect(decision.outcome == .noAllowRule)
        #expect("\(decision.reason)" == "role_denied")
    }

    // MARK: - Errors, each with its line and key

    @Test func unknownRoleIsAnErrorOnItsLine() {
        let text = Self.base() + """
            roles:
              readonly:
                allow: [{ methods: [GET], paths: ["/api/List*"] }]
            clients:
              - id: a
                issuer: local
                roles:
                  - readonly
                  - raedonly
              - id: b
                issuer: local
                roles: [admin]
            """
        let errors = Self.errors(text)
        #expect(errors.count == 2, "\(errors)")
        let typo = errors.first { $0.message.contains("unknown role 'raedonly'") }
        #expect(typo?.location?.line == Self.line(of: "- raedonly", in: text), "\(errors)")
        #expect(typo?.key == "clients[0].roles[1]")
        #expect(typo?.message.contains("did you mean 'readonly'") == true)
        let admin = errors.first { $0.message.contains("unknown role 'admin'") }
        #expect(admin?.location?.line == Self.line(of: "roles: [admin]", in: text), "\(errors)")
        #expect(admin?.key == "clients[1].roles[0]")
    }

    @Test func clientRolesWithoutARolesSectionAreUnknown() {
        let errors = Self.errors(Self.base() + "clients:\n  - id: a\n    issuer: local\n    roles: [readonly]\n")
        #expect(errors.count == 1)
        #expect(errors.first?.message.contains("no roles are configured") == true, "\(errors)")
    }

    @Test func anEmptyRoleListIsAnError() {
        let errors = Self.errors(
            Self.base() + "roles:\n  r:\n    allow: [{ paths: [\"/\"] }]\nclients:\n  - id: a\n    issuer: local\n    roles: []\n"
        )
        #expect(errors.map(\.key) == ["clients[0].roles"], "\(errors)")
    }

    @Test(arguments: [
        ("[GE T]", "is not an HTTP method name"),
        ("[\"GET/1\"]", "is not an HTTP method name"),
        ("[\"*\"]", "leave methods out"),
        ("[]", "expected at least one method"),
        ("[GÉT]", "is not an HTTP method name"),
        ("GET", "expected a list"),
    ])
    func badMethodIsAnErrorOnItsLine(methods: String, message: String) {
        let text = Self.base() + """
            roles:
              r:
                allow:
                  - methods: \(methods)
                    paths: ["/api/x"]
            """
        let errors = Self.errors(text)
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.message.contains(message) == true, "\(errors)")
        #expect(errors.first?.location?.line == Self.line(of: "methods:", in: text))
        #expect(errors.first?.key.hasPrefix("roles.r.allow[0].methods") == true, "\(errors)")
    }

    @Test(arguments: [
        ("api/ListUsers", "must start with /"),
        ("", "starting with /"),
        ("/api//ListUsers", "empty segment"),
        ("/api/ListUsers/", "ends in /"),
        ("/api/a%2Fb", "encoded slash"),
        ("/api/a%5cb", "encoded slash"),
        ("/api/a%zz", "two hex digits"),
        ("/api/a%2", "two hex digits"),
        ("/api/a**", "whole segment"),
        ("/api/***", "whole segment"),
        ("/api/x?tenantFilter=a", "query"),
        ("/api/x#top", "fragment"),
        ("/api/../ExecX", "resolved"),
        ("/api/./x", "resolved"),
        ("/api/users/{id}", "write * for a path parameter"),
        ("/api/a b", "spaces"),
        ("/api/a\\\\b", "backslash"),
        ("/api/[ab]", "character classes"),
        ("/api/a%00", "control"),
    ])
    func badPathPatternIsAnErrorOnItsLine(pattern: String, message: String) {
        let text = Self.base() + """
            roles:
              r:
                deny:
                  - { paths: ["/ok"] }
                  - paths:
                      - "/fine"
                      - "\(pattern)"
            """
        let errors = Self.errors(text)
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.message.contains(message) == true, "\(pattern): \(errors)")
        #expect(errors.first?.location?.line == Self.line(of: "- \"/fine\"", in: text) + 1)
        #expect(errors.first?.key == "roles.r.deny[1].paths[1]")
    }

    @Test func everyBadAddressFormIsReportedOnItsLineAtOnce() {
        let text = Self.base() + """
            roles:
              r:
                allow: [{ paths: ["/**"] }]
            clients:
              - id: a
                issuer: local
                roles: [r]
                allowed_ips:
                  - "010.1.1.1"
                  - "1.2.3.4/24"
                  - "127.1"
                  - "fe80::1%eth0"
                  - "192.0.2.0/33"
                  - "0x7f.0.0.1"
                  - "[2001:db8::1]"
                  - "2001:db8::/48"
                  - "203.0.113.9"
            """
        let errors = Self.errors(text)
        #expect(errors.count == 7, "\(errors)")
        let expected: [(String, String)] = [
            ("010.1.1.1", "leading zero"),
            ("1.2.3.4/24", "did you mean 1.2.3.0/24"),
            ("127.1", "four"),
            ("fe80::1%eth0", "zone"),
            ("192.0.2.0/33", "over 32"),
            ("0x7f.0.0.1", ""),
            ("[2001:db8::1]", ""),
        ]
        for (index, (entry, words)) in expected.enumerated() {
            let error = errors.first { $0.key == "clients[0].allowed_ips[\(index)]" }
            #expect(error?.location?.line == Self.line(of: "\"\(entry)\"", in: text), "\(entry): \(errors)")
            #expect(words.isEmpty || error?.message.lowercased().contains(words) == true, "\(entry): \(error?.message ?? "none")")
        }
    }

    @Test func roleAndRuleKeysAreChecked() {
        let text = Self.base() + """
            roles:
              r:
                alow: [{ paths: ["/x"] }]
                deny:
                  - { path: ["/y"] }
                  - { paths: ["/z"], any_tenant: true }
            """
        let errors = Self.errors(text)
        let messages = errors.map { "\($0.key): \($0.message)" }.joined(separator: "\n")
        #expect(messages.contains("roles.r.alow: unknown key (did you mean 'allow'?)"), "\(messages)")
        #expect(messages.contains("roles.r.deny[0].path: unknown key (did you mean 'paths'?)"), "\(messages)")
        #expect(messages.contains("roles.r.deny[0]: missing paths"), "\(messages)")
        #expect(messages.contains("roles.r.deny[1].any_tenant: any_tenant applies to allow rules only"), "\(messages)")
    }

    @Test func tenantsNeedTheCIPPProfile() {
        let text = Self.base(profile: "generic") + """
            roles:
              r:
                allow: [{ paths: ["/x"] }]
                tenants: { allow: [contoso.onmicrosoft.com] }
            """
        let errors = Self.errors(text)
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.message.contains("upstream.profile: cipp") == true)
        #expect(errors.first?.location?.line == Self.line(of: "tenants:", in: text))
    }

    @Test func permissionsWithoutACatalogueAreAnError() {
        let text = Self.base() + """
            roles:
              reader:
                permissions: { include: ["*.Read"] }
            """
        let errors = Self.errors(text)
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.key == "roles.reader.permissions")
        #expect(errors.first?.message.contains("need a permission catalogue") == true)
        #expect(errors.first?.location?.line == Self.line(of: "permissions:", in: text))
    }

    @Test func everyErrorOfAConfigIsReportedAtOnceInLineOrder() {
        let text = Self.base() + """
            roles:
              a:
                allow: [{ methods: ["GE T"], paths: ["/x"] }]
              b:
                deny: [{ paths: ["nope"] }]
            clients:
              - id: c
                issuer: local
                roles: [a, zzz]
                allowed_ips: ["127.1"]
            """
        let errors = Self.errors(text)
        #expect(errors.count == 4, "\(errors)")
        #expect(errors.compactMap(\.location?.line) == [
            Self.line(of: "GE T", in: text), Self.line(of: "nope", in: text),
            Self.line(of: "zzz", in: text), Self.line(of: "127.1", in: text),
        ])
        #expect(errors.allSatisfy { $0.description.hasPrefix("gateway.yaml:") })
    }
}
