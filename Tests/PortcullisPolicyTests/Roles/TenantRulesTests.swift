import Testing

@testable import PortcullisPolicy

@Suite struct TenantRulesTests {
    static let config = """
        roles:
          two:
            allow:
              - { methods: [POST], paths: ["/api/ExecResetPass"] }
              - { methods: [GET], paths: ["/api/ListTenants"], any_tenant: true }
            tenants: { allow: ["contoso.onmicrosoft.com", "fabrikam.onmicrosoft.com"] }
          notFabrikam:
            allow: [{ methods: [POST], paths: ["/api/ExecResetPass"] }]
            tenants: { block: ["fabrikam.onmicrosoft.com"] }
          none:
            allow: [{ methods: [GET], paths: ["/api/ListTenants", "/api/ListUsers"] }]
            tenants: { allow: [] }
          free:
            allow: [{ methods: [GET], paths: ["/api/ListUsers"] }]
        clients:
          - { id: two, issuer: local, roles: [two] }
          - { id: notFabrikam, issuer: local, roles: [notFabrikam] }
          - { id: none, issuer: local, roles: [none] }
          - { id: free, issuer: local, roles: [free] }
          - { id: mixed, issuer: local, roles: [notFabrikam, two] }
          - { id: noneAndFree, issuer: local, roles: [none, free] }
        tenant_directory: { upstream: /api/ListTenants }

        """

    static func load() throws -> GatewayConfig {
        try RolesConfigLoaderTests.load(RolesConfigLoaderTests.base() + Self.config)
    }

    @Test func anAllowListLimitsTheNamedTenantCaseInsensitively() throws {
        let config = try Self.load()
        let reset = (method: "POST", path: "/api/ExecResetPass")
        #expect(config.tenantVerdict("two", reset.method, reset.path, tenant: "contoso.onmicrosoft.com") == .allowed)
        #expect(config.tenantVerdict("two", reset.method, reset.path, tenant: "FABRIKAM.onmicrosoft.COM") == .allowed)
        #expect(config.tenantVerdict("two", reset.method, reset.path, tenant: "tailspin.onmicrosoft.com") == .tenantNotAllowed)
        #expect(config.tenantVerdict("two", reset.method, reset.path, tenant: "AllTenants") == .tenantNotAllowed)
        #expect(config.tenantVerdict("two", reset.method, reset.path, tenant: "contoso.onmicrosoft.co") == .tenantNotAllowed)
        #expect(config.tenantVerdict("two", reset.method, reset.path, tenant: nil) == .tenantRequired)
        #expect(TenantVerdict.tenantRequired.reason.description == "tenant_required")
        #expect(TenantVerdict.tenantNotAllowed.reason.description == "tenant_denied")
    }

    @Test func aBlockListAloneAllowsEveryOtherTenant() throws {
        let config = try Self.load()
        #expect(config.tenantVerdict("notFabrikam", "POST", "/api/ExecResetPass", tenant: "contoso.onmicrosoft.com") == .allowed)
        #expect(config.tenantVerdict("notFabrikam", "POST", "/api/ExecResetPass", tenant: "AllTenants") == .allowed)
        #expect(config.tenantVerdict("notFabrikam", "POST", "/api/ExecResetPass", tenant: "Fabrikam.onmicrosoft.com") == .tenantNotAllowed)
        #expect(config.tenantVerdict("notFabrikam", "POST", "/api/ExecResetPass", tenant: nil) == .tenantRequired)
    }

    @Test func anEmptyAllowListPermitsOnlyRequestsWithoutATenantCheck() throws {
        let config = try Self.load()
        #expect(config.tenantVerdict("none", "GET", "/api/ListUsers", tenant: "contoso.onmicrosoft.com") == .tenantNotAllowed)
        #expect(config.tenantVerdict("none", "GET", "/api/ListUsers", tenant: nil) == .tenantRequired)
    }

    @Test func anyTenantRulesNeedNoTenant() throws {
        let config = try Self.load()
        #expect(config.tenantVerdict("two", "GET", "/api/ListTenants", tenant: nil) == .allowed)
        #expect(config.tenantVerdict("two", "GET", "/api/ListTenants", tenant: "tailspin.onmicrosoft.com") == .tenantNotAllowed)
        #expect(config.decide("two", "GET", "/api/ListTenants").noTenantCheckRoles == RoleSlots(bits: 1))
    }

    @Test func aRoleWithoutTenantsPlacesNoCondition() throws {
        let config = try Self.load()
        #expect(config.tenantVerdict("free", "GET", "/api/ListUsers", tenant: nil) == .allowed)
        #expect(config.tenantVerdict("free", "GET", "/api/ListUsers", tenant: "anything") == .allowed)
    }

    @Test func tenantPrivilegesAddUpAcrossRoles() throws {
        let config = try Self.load()
        // notFabrikam blocks fabrikam for itself only; two allows it.
        #expect(config.tenantVerdict("mixed", "POST", "/api/ExecResetPass", tenant: "fabrikam.onmicrosoft.com") == .allowed)
        #expect(config.tenantVerdict("mixed", "POST", "/api/ExecResetPass", tenant: "tailspin.onmicrosoft.com") == .allowed)
        // Only the roles that allow the route count: none's empty list does not hide free's grant.
        #expect(config.tenantVerdict("noneAndFree", "GET", "/api/ListUsers", tenant: "contoso.onmicrosoft.com") == .allowed)
        #expect(config.tenantVerdict("noneAndFree", "GET", "/api/ListTenants", tenant: "contoso.onmicrosoft.com") == .tenantNotAllowed)
    }

    @Test func aDeniedRouteStaysDenied() throws {
        let config = try Self.load()
        #expect(config.tenantVerdict("free", "POST", "/api/ExecResetPass", tenant: "contoso.onmicrosoft.com") == .notAllowed)
    }

    @Test func tenantEntriesAreValidated() {
        let text = RolesConfigLoaderTests.base() + """
            roles:
              r:
                allow: [{ paths: ["/x"] }]
                tenants: { allow: ["contoso onmicrosoft", ""], deny: [a] }
            """
        let errors = RolesConfigLoaderTests.errors(text)
        #expect(errors.map(\.key).sorted() == ["roles.r.tenants.allow[0]", "roles.r.tenants.allow[1]", "roles.r.tenants.deny"], "\(errors)")
    }
}
