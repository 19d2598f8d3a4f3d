import SharedTestData
import Testing

@testable import PortcullisPolicy

@Suite struct RouteMatcherTests {
    static func policy(profile: String = "cipp", roles: String, clients: String) throws -> GatewayConfig {
        try RolesConfigLoaderTests.load(RolesConfigLoaderTests.base(profile: profile) + "roles:\n" + roles + "clients:\n" + clients)
    }

    static func client(_ id: String, _ roles: String) -> String {
        "  - id: \(id)\n    issuer: local\n    roles: [\(roles)]\n"
    }

    // MARK: - Deny by default; privileges add up; deny wins

    @Test func noMatchingRuleIsDeniedByDefault() throws {
        let config = try Self.policy(
            roles: """
              readonly:
                allow: [{ methods: [GET], paths: ["/api/List*"] }]

            """,
            clients: Self.client("a", "readonly")
        )
        let decision = config.decide("a", "POST", "/api/ExecResetPass")
        #expect(decision.outcome == .noAllowRule)
        #expect(decision.rule == nil)
        #expect("\(decision.reason)" == "role_denied")
        #expect(!config.allows("a", "GET", "/api/ExecResetPass"))
        #expect(!config.allows("a", "GET", "/"))
    }

    @Test func privilegesOfSeveralRolesAddUp() throws {
        let config = try Self.policy(
            roles: """
              reader:
                allow: [{ methods: [GET], paths: ["/api/List*"] }]
              resetter:
                allow: [{ methods: [POST], paths: ["/api/ExecResetPass"] }]

            """,
            clients: Self.client("both", "reader, resetter") + Self.client("reader", "reader")
        )
        #expect(config.allows("both", "GET", "/api/ListUsers"))
        #expect(config.allows("both", "POST", "/api/ExecResetPass"))
        #expect(!config.allows("both", "POST", "/api/ListUsers"))
        #expect(!config.allows("reader", "POST", "/api/ExecResetPass"))
        let decision = config.decide("both", "POST", "/api/ExecResetPass")
        #expect(decision.allowingRoles == RoleSlots(bits: 0b10))
        #expect(config.rule(of: decision)?.roleName == "resetter")
    }

    @Test func aDenyRuleOfAnyRoleWinsOverAnAllowOfAnother() throws {
        let config = try Self.policy(
            roles: """
              everything:
                allow: [{ paths: ["/**"] }]
              careful:
                allow: [{ methods: [GET], paths: ["/api/List*"] }]
                deny: [{ methods: [GET, POST], paths: ["/api/ListOffboardTenants", "/api/Exec*"] }]

            """,
            clients: Self.client("c", "everything, careful") + Self.client("e", "everything")
        )
        let decision = config.decide("c", "GET", "/api/ListOffboardTenants")
        #expect(decision.outcome == .denyRule)
        #expect("\(decision.reason)" == "deny_rule")
        #expect(config.rule(of: decision)?.key == "roles.careful.deny[0].paths[0]")
        #expect(config.decide("c", "POST", "/api/ExecResetPass").outcome == .denyRule)
        #expect(config.rule(of: config.decide("c", "POST", "/api/ExecResetPass"))?.key == "roles.careful.deny[0].paths[1]")
        // The deny rule names methods: others still pass through the other role's allow.
        #expect(config.allows("c", "DELETE", "/api/ExecResetPass"))
        #expect(config.allows("c", "GET", "/api/ListUsers"))
        // A role the client does not hold denies nothing.
        #expect(config.allows("e", "GET", "/api/ListOffboardTenants"))
    }

    @Test func theFirstAllowRuleInFileOrderDecides() throws {
        let config = try Self.policy(
            roles: """
              a:
                allow:
                  - { methods: [GET], paths: ["/api/**"] }
                  - { methods: [GET], paths: ["/api/ListUsers"] }
              b:
                allow: [{ methods: [GET], paths: ["/api/List*"] }]

            """,
            clients: Self.client("x", "b, a")
        )
        let decision = config.decide("x", "GET", "/api/ListUsers")
        #expect(config.rule(of: decision)?.key == "roles.a.allow[0]")
        #expect(decision.allowingRoles == RoleSlots(bits: 0b11))
    }

    // MARK: - Patterns

    @Test(arguments: [
        ("/api/*", "/api/x", true as Bool?), ("/api/*", "/api/x/y", false), ("/api/*", "/api", false),
        ("/api/*", "/api/", false),
        ("/api/**", "/api", true), ("/api/**", "/api/", true), ("/api/**", "/api/x", true),
        ("/api/**", "/api/x/y/z", true), ("/api/**", "/apix", false), ("/api/**", "/", false),
        ("/**", "/", true), ("/**", "/anything/at/all", true),
        ("/", "/", true), ("/", "/x", false),
        ("/a/**/z", "/a/z", true), ("/a/**/z", "/a/b/z", true), ("/a/**/z", "/a/b/c/z", true),
        ("/a/**/z", "/a/b/c", false), ("/a/**/z", "/a/z/q", false), ("/a/**/z", "/a/z/z", true),
        ("/a/*/z", "/a/b/z", true), ("/a/*/z", "/a/b/c/z", false), ("/a/*/z", "/a/z", false),
        ("/**/x/**/y", "/x/y", true), ("/**/x/**/y", "/q/x/r/s/y", true), ("/**/x/**/y", "/q/y/x", false),
        ("/api/List*", "/api/List", true), ("/api/List*", "/api/ListUsers", true),
        ("/api/List*", "/api/ListUsers/x", false), ("/api/List*", "/api/GetList", false),
        ("/api/*Users", "/api/ListUsers", true), ("/api/*Users", "/api/ListUsersX", false),
        ("/api/L*s*s", "/api/ListUsers", true), ("/api/L*s*s", "/api/Listx", false),
        ("/api/L*s*s", "/api/Lss", true),
        ("/v1/*.json", "/v1/report.json", true), ("/v1/*.json", "/v1/report.xml", false),
        ("/x/a*b*c*d", "/x/abcd", true), ("/x/a*b*c*d", "/x/aXbYcZd", true), ("/x/a*b*c*d", "/x/acbd", false),
        ("/x/a*bc*bc", "/x/abcbc", true), ("/x/a*bc*bc", "/x/abcbcbc", true), ("/x/a*bc*bc", "/x/abc", false),
        ("/x/LongPrefix12*", "/x/LongPrefix12", true), ("/x/LongPrefix12*", "/x/LongPrefix13", false),
        ("/x/LongPrefix12*z", "/x/LongPrefix12yz", true), ("/x/LongPrefix12*z", "/x/LongPrefiX12yz", nil),
        ("/x/*ab*ab*", "/x/abab", true), ("/x/*ab*ab*", "/x/aba", false),
        ("/api/ListUsers", "/api/ListUsers/", true), ("/api/ListUsers", "/api/ListUsers/x", false),
        ("/files/%7euser", "/files/~user", true), ("/files/%c3%a9", "/files/%C3%A9", true),
        ("/files/é", "/files/%C3%A9", true), ("/files/a%2Ab", "/files/a%2Ab", true),
        ("/files/a%2Ab", "/files/aXb", false),
    ])
    /// `matches` nil: only when case is folded (the CIPP profile).
    func patternsMatchSegmentsAsDocumented(pattern: String, path: String, matches: Bool?) throws {
        let rule = RouteMatcher.Rule(kind: .allow, role: 0, methods: nil, pattern: try #require(PathPattern(pattern)))
        for fold in [false, true] {
            let expected = matches ?? fold
            let matcher = RouteMatcher(rules: [rule], caseInsensitive: fold)
            #expect(matcher.decide(roles: [0], method: "GET", path: path.utf8).isAllowed == expected, "\(pattern) on \(path)")
            #expect(try #require(PathPattern(pattern)).matches(path, caseInsensitive: fold) == expected, "naive: \(pattern) on \(path)")
        }
    }

    @Test func cippPathsMatchCaseInsensitively() throws {
        let config = try Self.policy(
            roles: """
              helpdesk:
                allow:
                  - { methods: [POST], paths: ["/api/ExecResetPass", "/api/List*/Details", "/API/v1/**"] }
                deny: [{ paths: ["/api/execresetmfa"] }]
              all:
                allow: [{ paths: ["/**"] }]

            """,
            clients: Self.client("h", "helpdesk") + Self.client("x", "all, helpdesk")
        )
        for path in ["/api/ExecResetPass", "/api/execresetpass", "/API/EXECRESETPASS", "/Api/ExecResetPass/"] {
            #expect(config.allows("h", "POST", path), "\(path)")
        }
        #expect(config.allows("h", "POST", "/api/listusers/DETAILS"))
        #expect(config.allows("h", "POST", "/api/V1/a/b"))
        #expect(!config.allows("h", "POST", "/api/ExecResetPassword"))
        // A deny rule cannot be sidestepped by changing case either.
        #expect(config.decide("x", "POST", "/api/ExecResetMFA").outcome == .denyRule)
        #expect(config.decide("x", "POST", "/API/EXECRESETMFA/").outcome == .denyRule)
    }

    @Test func genericPathsMatchCaseSensitively() throws {
        let config = try Self.policy(
            profile: "generic",
            roles: """
              r:
                allow: [{ methods: [GET], paths: ["/v1/Items", "/v1/List*"] }]

            """,
            clients: Self.client("c", "r")
        )
        #expect(config.allows("c", "GET", "/v1/Items"))
        #expect(!config.allows("c", "GET", "/v1/items"))
        #expect(!config.allows("c", "GET", "/V1/Items"))
        #expect(config.allows("c", "GET", "/v1/ListAll"))
        #expect(!config.allows("c", "GET", "/v1/listAll"))
    }

    // MARK: - Methods

    @Test func headAndOptionsAreAllowedOnlyWhenARuleNamesThem() throws {
        let config = try Self.policy(
            roles: """
              getOnly:
                allow: [{ methods: [GET], paths: ["/a"] }]
              getHead:
                allow: [{ methods: [GET, HEAD], paths: ["/b"] }]
              options:
                allow: [{ methods: [OPTIONS], paths: ["/c"] }]
              anyMethod:
                allow: [{ paths: ["/d"] }]
              dav:
                allow: [{ methods: [propfind], paths: ["/e"] }]

            """,
            clients: Self.client("c", "getOnly, getHead, options, anyMethod, dav")
        )
        #expect(config.allows("c", "GET", "/a"))
        #expect(!config.allows("c", "HEAD", "/a"))
        #expect(!config.allows("c", "OPTIONS", "/a"))
        #expect(config.allows("c", "HEAD", "/b"))
        #expect(!config.allows("c", "OPTIONS", "/b"))
        #expect(config.allows("c", "OPTIONS", "/c"))
        #expect(!config.allows("c", "GET", "/c"))
        for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "MKCOL", "get"] {
            #expect(config.allows("c", method, "/d"), "\(method)")
        }
        #expect(config.allows("c", "PROPFIND", "/e"))
        #expect(!config.allows("c", "MKCOL", "/e"))
        #expect(!config.allows("c", "GET", "/e"))
        // Request methods are case-sensitive (RFC 9110): "get" is not GET.
        #expect(!config.allows("c", "get", "/a"))
        #expect(!config.allows("c", "propfind", "/e"))
    }

    @Test func aPathThatIsNotCanonicalIsDenied() {
        let rule = RouteMatcher.Rule(kind: .allow, role: 0, methods: nil, pattern: PathPattern("/**")!)
        let matcher = RouteMatcher(rules: [rule], caseInsensitive: false)
        #expect(!matcher.decide(roles: [0], method: "GET", path: "".utf8).isAllowed)
        #expect(!matcher.decide(roles: [0], method: "GET", path: "api/x".utf8).isAllowed)
        for empty in ["//", "///", "/////", "//a", "/a//b", "/a/b//", "/" + String(repeating: "/", count: 5000)] {
            #expect(!matcher.decide(roles: [0], method: "GET", path: empty.utf8).isAllowed, "\(empty.prefix(10))")
        }
        #expect(matcher.decide(roles: [0], method: "GET", path: "/a/b/".utf8).isAllowed)
        #expect(matcher.decide(roles: [0], method: "GET", path: ("/" + String(repeating: "a/", count: 5000)).utf8).isAllowed)
        #expect(!matcher.decide(roles: [1], method: "GET", path: "/api/x".utf8).isAllowed)
        #expect(!matcher.decide(roles: [], method: "GET", path: "/api/x".utf8).isAllowed)
    }

    @Test func manyDoubleStarsOnALongPathStayLinear() throws {
        // Without remembering tried (node, segment) pairs this is about 200^4 steps.
        let patterns = ["/**/a/**/a/**/a/**/a/**/b", "/**/a/**/a/**/c"]
        let rules = try patterns.map { RouteMatcher.Rule(kind: .allow, role: 0, methods: nil, pattern: try #require(PathPattern($0))) }
        let matcher = RouteMatcher(rules: rules, caseInsensitive: false)
        let path = String(repeating: "/a", count: 200)
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            #expect(!matcher.decide(roles: [0], method: "GET", path: path.utf8).isAllowed)
            #expect(matcher.decide(roles: [0], method: "GET", path: (path + "/b").utf8).isAllowed)
        }
        #expect(elapsed < .seconds(2))
    }

    // MARK: - The compiled matcher against a linear scan

    /// What DESIGN.md says, written as directly as possible: scan every rule.
    static func naiveDecision(
        _ rules: [RouteMatcher.Rule],
        roles: [Int32],
        method: String,
        path: String,
        fold: Bool
    ) -> AccessDecision {
        var firstAllow: Int?
        var firstDeny: Int?
        var allowing: UInt64 = 0
        var anyTenant: UInt64 = 0
        var noTenantCheck = false
        for (index, rule) in rules.enumerated() {
            guard rule.methods?.contains(method) ?? true, rule.pattern.matches(path, caseInsensitive: fold) else { continue }
            if rule.kind == .noTenantCheck {
                noTenantCheck = true
                continue
            }
            guard let slot = roles.firstIndex(of: Int32(rule.role)) else { continue }
            if rule.kind == .deny {
                firstDeny = firstDeny ?? index
            } else {
                firstAllow = firstAllow ?? index
                allowing |= 1 << UInt64(slot)
                if rule.anyTenant { anyTenant |= 1 << UInt64(slot) }
            }
        }
        if let firstDeny { return AccessDecision(outcome: .denyRule, rule: firstDeny, endpointHasNoTenantCheck: noTenantCheck) }
        if let firstAllow {
            return AccessDecision(
                outcome: .allowed,
                rule: firstAllow,
                allowingRoles: RoleSlots(bits: allowing),
                noTenantCheckRoles: RoleSlots(bits: anyTenant),
                endpointHasNoTenantCheck: noTenantCheck
            )
        }
        return AccessDecision(outcome: .noAllowRule, endpointHasNoTenantCheck: noTenantCheck)
    }

    @Test(arguments: [(UInt64(1), false), (2, true), (3, false), (4, true), (5, false), (6, true)])
    func compiledMatcherAgreesWithALinearScan(seed: UInt64, fold: Bool) throws {
        var random = SplitMix64(seed: seed)
        let literals = ["a", "b", "ab", "aba", "abba", "List", "list", "ListUsers", "LISTUSERS", "ListUsersss", "x.json", "%C3%A9", "~u", "sea"]
        let globs = ["a*", "*b", "L*s", "List*", "*s*", "*.json", "l*", "*s*e*", "a*b*a", "Li*t*rs", "ListUsers*", "listuser*s", "*%C3*"]
        let methods = ["GET", "HEAD", "POST", "DELETE", "OPTIONS", "PROPFIND"]
        func segment(forPattern: Bool) -> String {
            let roll = Int.random(in: 0..<100, using: &random)
            if forPattern {
                if roll < 8 { return "**" }
                if roll < 18 { return "*" }
                if roll < 38 { return globs.randomElement(using: &random)! }
            }
            if !forPattern, roll < 10 { return "zz" + String(roll) }
            return literals.randomElement(using: &random)!
        }
        func path(forPattern: Bool) -> String {
            let count = Int.random(in: forPattern ? 0...4 : 0...6, using: &random)
            return "/" + (0..<count).map { _ in segment(forPattern: forPattern) }.joined(separator: "/")
        }
        var rules: [RouteMatcher.Rule] = []
        for _ in 0..<Int.random(in: 20...160, using: &random) {
            let roll = Int.random(in: 0..<100, using: &random)
            let kind: RouteMatcher.Rule.Kind = roll < 70 ? .allow : roll < 92 ? .deny : .noTenantCheck
            let ruleMethods = Bool.random(using: &random) ? nil : Array(methods.shuffled(using: &random).prefix(Int.random(in: 1...3, using: &random)))
            var text = path(forPattern: true)
            if text.hasSuffix("/"), text != "/" { text.removeLast() }
            guard let pattern = PathPattern(text) else { continue }
            rules.append(
                RouteMatcher.Rule(
                    kind: kind,
                    role: Int.random(in: 0..<6, using: &random),
                    methods: ruleMethods,
                    pattern: pattern,
                    anyTenant: Int.random(in: 0..<5, using: &random) == 0
                )
            )
        }
        let matcher = RouteMatcher(rules: rules, caseInsensitive: fold)
        var disagreements: [String] = []
        var allowed = 0
        for _ in 0..<3000 {
            let roles = (0..<6).filter { _ in Int.random(in: 0..<3, using: &random) == 0 }.map(Int32.init).shuffled(using: &random)
            let method = (methods + ["PATCH", "get"]).randomElement(using: &random)!
            var request = path(forPattern: false)
            if Int.random(in: 0..<8, using: &random) == 0 { request += "/" }
            let compiled = matcher.decide(roles: roles, method: method, path: request.utf8)
            let naive = Self.naiveDecision(rules, roles: roles, method: method, path: request, fold: fold)
            if compiled.isAllowed { allowed += 1 }
            if compiled != naive, disagreements.count < 5 {
                disagreements.append("\(method) \(request) roles \(roles): compiled \(compiled), naive \(naive)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
        // The generator must exercise both outcomes to mean anything.
        #expect(allowed > 50 && allowed < 2950, "allowed \(allowed) of 3000")
    }
}
