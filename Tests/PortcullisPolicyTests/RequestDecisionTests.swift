import Testing

@testable import PortcullisPolicy

/// `RequestDecision` under `profile: cipp`: the every-field tenant rule, the tenant directory,
/// `$batch` items and endpoint names, as the gateway and `explain` both decide them.
@Suite struct RequestDecisionTests {
    static let contosoID = "3b2e6f0a-6c1d-4a57-9a3e-0c4b8f1d2e01"
    static let fabrikamID = "7d41c9b5-2f8e-4d06-b1a7-5e9c3a2f4b02"
    static let directory = TenantDirectory(
        tenants: [(contosoID, "contoso.onmicrosoft.com"), (fabrikamID, "fabrikam.onmicrosoft.com"), ("c8a05e3d-91b4-47f2-8d6c-2a7e1f9b5c03", "northwind.onmicrosoft.com")],
        source: "test"
    )

    static let config: GatewayConfig = {
        let text = RolesConfigLoaderTests.base() + """
            roles:
              helpdesk:
                allow:
                  - { paths: ["/api/ListUsers", "/api/ExecResetPass", "/api/EditContact", "/api/$batch"] }
                tenants: { allow: ["contoso.onmicrosoft.com"] }
              notfabrikam:
                allow:
                  - { paths: ["/api/ListUsers", "/api/$batch"] }
                tenants: { block: ["fabrikam.onmicrosoft.com"] }
              anyone:
                allow:
                  - { paths: ["/api/List*"] }
                deny:
                  - { paths: ["/api/ListOffboardTenants"] }
            tenant_directory: { upstream: /api/ListTenants }
            clients:
              - { id: helpdesk, issuer: local, roles: [helpdesk] }
              - { id: notfabrikam, issuer: local, roles: [notfabrikam] }
              - { id: anyone, issuer: local, roles: [anyone] }
            """
        return try! RolesConfigLoaderTests.load(text)
    }()

    /// The verdict for a request, reading `body` when the head asks for it.
    static func verdict(
        _ client: String,
        _ method: String,
        _ target: String,
        body: String? = nil,
        directory: TenantDirectory? = Self.directory,
        maxBatchItems: Int = 20
    ) -> RequestDecision.Verdict {
        let canonical = try! CanonicalPath.canonicalize(target).get()
        let input = RequestDecision.Input(
            client: Self.config.policy.clientIndex(id: client)!,
            method: method,
            path: canonical.path,
            query: canonical.query,
            hasBody: body != nil
        )
        let cipp = RequestDecision.CIPP(directory: directory, maxBatchItems: maxBatchItems)
        let head = RequestDecision.decide(input, policy: Self.config.policy, cipp: cipp)
        guard case .needsBody(let check) = head, let body else { return head }
        return RequestDecision.decide(input, body: Array(body.utf8), check: check, policy: Self.config.policy, cipp: cipp)
    }

    static func reason(_ verdict: RequestDecision.Verdict) -> RequestDecision.Reason? {
        switch verdict {
        case .allow(let outcome), .deny(_, let outcome): return outcome.reason
        case .needsBody: return nil
        }
    }

    @Test func everyTenantFieldIsReadAndMustAgree() {
        let contoso = "tenantFilter=contoso.onmicrosoft.com"
        #expect(Self.reason(Self.verdict("helpdesk", "GET", "/api/ListUsers?\(contoso)")) == .allowed)
        // tenantId alone, in any letter case, in the query or the body.
        #expect(Self.reason(Self.verdict("helpdesk", "GET", "/api/ListUsers?TENANTID=fabrikam.onmicrosoft.com")) == .tenantDenied)
        #expect(Self.reason(Self.verdict("helpdesk", "POST", "/api/EditContact", body: #"{"tenantID":"fabrikam.onmicrosoft.com"}"#)) == .tenantDenied)
        // The query allowed, the body's tenantID another tenant: what CIPP's EditContact acts on.
        #expect(
            Self.reason(Self.verdict("helpdesk", "POST", "/api/EditContact?\(contoso)", body: #"{"tenantID":"fabrikam.onmicrosoft.com"}"#))
                == .tenantConflict
        )
        #expect(
            Self.reason(Self.verdict("helpdesk", "POST", "/api/EditContact?\(contoso)", body: #"{"TenantFilter":{"value":"Contoso.onmicrosoft.com"}}"#))
                == .allowed
        )
        // One tenant written as its domain and as its id is one tenant.
        #expect(
            Self.reason(Self.verdict("helpdesk", "POST", "/api/EditContact?\(contoso)", body: #"{"tenantID":"\#(Self.contosoID)"}"#))
                == .allowed
        )
        // Without a directory the two forms cannot be known to agree.
        #expect(
            Self.reason(Self.verdict("helpdesk", "POST", "/api/EditContact?\(contoso)", body: #"{"tenantID":"\#(Self.contosoID)"}"#, directory: nil))
                == .tenantConflict
        )
        // Any body is read under CIPP: one not labelled JSON could still be parsed by it.
        #expect(Self.reason(Self.verdict("helpdesk", "POST", "/api/EditContact?\(contoso)", body: "ID=1")) == .badRequest)
    }

    @Test func tenantsResolveThroughTheDirectory() {
        #expect(Self.reason(Self.verdict("helpdesk", "GET", "/api/ListUsers?tenantFilter=\(Self.contosoID)")) == .allowed)
        #expect(Self.reason(Self.verdict("notfabrikam", "GET", "/api/ListUsers?tenantFilter=\(Self.fabrikamID)")) == .tenantDenied)
        #expect(Self.reason(Self.verdict("notfabrikam", "GET", "/api/ListUsers?tenantFilter=FABRIKAM.onmicrosoft.com")) == .tenantDenied)
        #expect(Self.reason(Self.verdict("notfabrikam", "GET", "/api/ListUsers?tenantFilter=northwind.onmicrosoft.com")) == .allowed)
        #expect(Self.reason(Self.verdict("notfabrikam", "GET", "/api/ListUsers?tenantFilter=AllTenants")) == .tenantUnknown)
        #expect(Self.reason(Self.verdict("helpdesk", "GET", "/api/ListUsers?tenantFilter=unknown.example")) == .tenantUnknown)
        // A directory not fetched yet resolves nothing: refused, never compared as written.
        let empty = TenantDirectory(tenants: [], source: "empty")
        #expect(Self.reason(Self.verdict("notfabrikam", "GET", "/api/ListUsers?tenantFilter=\(Self.fabrikamID)", directory: empty)) == .tenantUnknown)
        // A client without tenant rules is not limited by the directory.
        #expect(Self.reason(Self.verdict("anyone", "GET", "/api/ListUsers?tenantFilter=AllTenants", directory: empty)) == .allowed)
    }

    @Test func batchItemsAreDecidedOneByOneAndOneDenialDeniesAll() {
        func batch(_ items: String...) -> String { #"{"requests":["# + items.joined(separator: ",") + "]}" }
        let listContoso = #"{"id":"1","method":"GET","url":"ListUsers","query":{"tenantFilter":"contoso.onmicrosoft.com"}}"#
        let listFabrikam = #"{"id":"2","method":"GET","url":"ListUsers","query":{"TenantID":"fabrikam.onmicrosoft.com"}}"#
        let queryVsBody = #"{"id":"3","method":"POST","url":"EditContact","query":{"tenantFilter":"contoso.onmicrosoft.com"},"body":{"tenantID":"fabrikam.onmicrosoft.com"}}"#
        let offboard = #"{"id":"4","method":"GET","url":"ListOffboardTenants"}"#
        #expect(Self.reason(Self.verdict("helpdesk", "POST", "/api/$batch", body: batch(listContoso))) == .allowed)
        #expect(Self.reason(Self.verdict("helpdesk", "POST", "/api/$batch", body: batch(listContoso, listFabrikam))) == .tenantDenied)
        #expect(Self.reason(Self.verdict("helpdesk", "POST", "/api/$batch", body: batch(queryVsBody))) == .tenantConflict)
        #expect(Self.reason(Self.verdict("helpdesk", "POST", "/api/$batch", body: batch(listContoso, offboard))) == .roleDenied)
        #expect(Self.reason(Self.verdict("helpdesk", "GET", "/api/$BATCH", body: batch(listFabrikam))) == .tenantDenied, "any method batches")
        #expect(Self.reason(Self.verdict("helpdesk", "POST", "/api/$batch", body: batch(listContoso, listContoso), maxBatchItems: 1)) == .batchInvalid)
        #expect(Self.reason(Self.verdict("helpdesk", "POST", "/api/$batch", body: batch(#"{"method":"GET","url":"ListUsers?tenantFilter=contoso.onmicrosoft.com"}"#))) == .batchInvalid)
        if case .deny(.forbidden(let why), let outcome) = Self.verdict("helpdesk", "POST", "/api/$batch", body: batch(listContoso, listFabrikam)) {
            #expect(outcome.batchItem == 1)
            #expect(why.hasPrefix("$batch request 1 (GET /api/ListUsers)"), "\(why)")
        } else {
            Issue.record("expected a 403")
        }
    }

    @Test(arguments: ["/api/List*", "/api/List%2A", "/api/ListUser%3F", "/api/List%5BU%5Dsers", "/api/List[U]sers"])
    func wildcardEndpointNamesAreRefusedBeforeAnyRule(path: String) {
        #expect(Self.reason(Self.verdict("anyone", "GET", path)) == .endpointWildcard)
    }

    @Test func outsideCIPPNothingButTheRouteIsDecided() {
        let canonical = try! CanonicalPath.canonicalize("/api/List*?tenantFilter=x").get()
        let input = RequestDecision.Input(
            client: Self.config.policy.clientIndex(id: "anyone")!,
            method: "GET",
            path: canonical.path,
            query: canonical.query,
            hasBody: true
        )
        #expect(Self.reason(RequestDecision.decide(input, policy: Self.config.policy, cipp: nil)) == .allowed)
    }
}

@Suite struct TenantDirectoryConfigTests {
    static let roles = """
        roles:
          blocked:
            allow: [{ paths: ["/api/ListUsers"] }]
            tenants: { block: ["fabrikam.onmicrosoft.com"] }

        """

    @Test func aBlockListWithoutATenantDirectoryIsAnError() {
        let errors = RolesConfigLoaderTests.errors(RolesConfigLoaderTests.base() + Self.roles)
        #expect(errors.contains { $0.key == "roles.blocked.tenants.block" && $0.message.contains("needs tenant_directory") }, "\(errors)")
    }

    @Test func anAllowListWithoutATenantDirectoryIsAWarning() throws {
        let text = RolesConfigLoaderTests.base() + """
            roles:
              limited:
                allow: [{ paths: ["/api/ListUsers"] }]
                tenants: { allow: ["contoso.onmicrosoft.com"] }

            """
        let config = try RolesConfigLoaderTests.load(text)
        #expect(config.warnings.contains { $0.key == "roles.limited.tenants.allow" && $0.message.contains("compared as written") })
    }

    @Test func aTenantDirectoryFileIsReadAndItsUnknownNamesWarned() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try folder.write("tenants.json", TenantDirectoryTests.listTenants)
        let text = RolesConfigLoaderTests.base() + Self.roles + """
            clients: [{ id: c, issuer: local, roles: [blocked] }]
            tenant_directory: { file: tenants.json }
            """
        let config = try ConfigLoader.load(sources: [(file: "\(folder.path)/gateway.yaml", text: text)], directory: folder.path)
        guard case .file(_, let directory)? = config.tenantDirectory else {
            Issue.record("no file directory")
            return
        }
        #expect(directory.tenants.count == 2)
        #expect(config.warnings.isEmpty, "\(config.warnings)")
        let unknown = text.replacingOccurrences(of: "fabrikam.onmicrosoft.com", with: "tailspin.onmicrosoft.com")
        let warned = try ConfigLoader.load(sources: [(file: "\(folder.path)/gateway.yaml", text: unknown)], directory: folder.path)
        #expect(warned.warnings.contains { $0.message.contains("'tailspin.onmicrosoft.com' is not in the tenant directory") })
    }

    @Test(arguments: [
        ("tenant_directory: { file: missing.json }", "cannot read"),
        ("tenant_directory: { upstream: ListTenants }", "expected a path on the upstream"),
        ("tenant_directory: { upstream: /api/ListTenants, refresh: 1s }", "at least 10s"),
        ("tenant_directory: {}", "expected file:"),
        ("tenant_directory: { upstream: /api/ListTenants, file: t.json }", "not both"),
    ])
    func badTenantDirectoriesAreErrors(line: String, message: String) {
        let errors = RolesConfigLoaderTests.errors(RolesConfigLoaderTests.base() + line + "\n")
        #expect(errors.contains { $0.key.hasPrefix("tenant_directory") && $0.message.contains(message) }, "\(errors)")
    }

    @Test func aTenantDirectoryOutsideCIPPIsAnError() {
        let errors = RolesConfigLoaderTests.errors(RolesConfigLoaderTests.base(profile: "generic") + "tenant_directory: { upstream: /api/ListTenants }\n")
        #expect(errors.contains { $0.message.contains("applies only with upstream.profile: cipp") }, "\(errors)")
    }
}
