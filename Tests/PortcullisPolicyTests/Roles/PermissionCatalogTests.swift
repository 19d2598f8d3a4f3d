import Foundation
import Testing

@testable import PortcullisPolicy

@Suite struct PermissionCatalogTests {
    /// A config in `folder` whose catalogue is `catalogPath` and whose roles and clients follow.
    static func load(folder: TemporaryFolder, catalog: String, roles: String, clients: String, profile: String = "cipp") throws(ConfigErrors) -> GatewayConfig {
        let text = RolesConfigLoaderTests.base(profile: profile) + """
            catalog:
              openapi: \(catalog)
              permission_field: x-cipp-role
            roles:
            \(roles)
            clients:\(clients.isEmpty ? " []" : "\n" + clients)
            """
        return try ConfigLoader.load(sources: [(file: "\(folder.path)/gateway.yaml", text: text)], directory: folder.path)
    }

    static let smallCatalog = """
        {
          "openapi": "3.0.3",
          "info": {"title": "t", "version": "1"},
          "paths": {
            "/api/ListThings": {"get": {"x-cipp-role": "Thing.Read", "responses": {}}},
            "/api/ListTenants": {"get": {"x-cipp-role": "Core.Read", "x-cipp-any-tenant": true}},
            "/api/things/{id}": {
              "get": {"x-cipp-role": "Thing.Read"},
              "head": {"x-cipp-role": "Thing.Audit"},
              "delete": {"x-cipp-role": "Thing.ReadWrite"}
            },
            "/api/ExecPeek": {"post": {"x-cipp-role": "Thing.Read"}},
            "/api/ExecUnlabelled": {"post": {}}
          }
        }
        """

    // MARK: - A hand-written catalogue

    static func smallConfig(_ folder: TemporaryFolder, profile: String) throws -> GatewayConfig {
        try folder.write("api.json", Self.smallCatalog)
        return try Self.load(
            folder: folder,
            catalog: "api.json",
            roles: """
                  reader:
                    permissions: { include: ["*.Read"] }
                  auditor:
                    permissions: { include: ["Thing.*"], exclude: ["*Write"] }
                """,
            clients: """
                  - id: r
                    issuer: local
                    roles: [reader]
                  - id: a
                    issuer: local
                    roles: [auditor]
                """,
            profile: profile
        )
    }

    @Test func underCIPPAPermissionGrantsItsEndpointsForEveryMethod() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let config = try Self.smallConfig(folder, profile: "cipp")
        #expect(config.allows("r", "GET", "/api/listthings"))
        #expect(config.allows("r", "POST", "/api/ListThings"))
        #expect(config.allows("r", "DELETE", "/api/things/42"), "the path's Thing.Read operation grants it")
        #expect(!config.allows("r", "POST", "/api/ExecUnlabelled"))
        #expect(!config.allows("a", "GET", "/api/ListTenants"))
    }

    @Test func permissionsExpandIntoRulesForEachSelectedOperation() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let config = try Self.smallConfig(folder, profile: "generic")
        let catalog = try #require(config.catalog)
        #expect(catalog.permissions == ["Core.Read", "Thing.Audit", "Thing.Read", "Thing.ReadWrite"])
        #expect(catalog.operations.count == 7)

        #expect(config.allows("r", "GET", "/api/ListThings"))
        #expect(config.allows("r", "HEAD", "/api/ListThings"))  // a GET covers HEAD
        #expect(!config.allows("r", "GET", "/api/listthings"))  // generic profile: case-sensitive
        #expect(!config.allows("r", "POST", "/api/ListThings"))
        #expect(config.allows("r", "GET", "/api/things/42"))  // {id} is one segment
        #expect(!config.allows("r", "GET", "/api/things/42/x"))
        #expect(!config.allows("r", "HEAD", "/api/things/42"))  // its own head operation needs Thing.Audit
        #expect(!config.allows("r", "DELETE", "/api/things/42"))
        #expect(config.allows("r", "POST", "/api/ExecPeek"))  // read-only by permission, not by name
        #expect(!config.allows("r", "POST", "/api/ExecUnlabelled"))
        #expect(config.allows("r", "GET", "/api/ListTenants"))

        #expect(config.allows("a", "HEAD", "/api/things/7"))
        #expect(config.allows("a", "GET", "/api/things/7"))
        #expect(!config.allows("a", "DELETE", "/api/things/7"))
        #expect(!config.allows("a", "GET", "/api/ListTenants"))

        let decision = config.decide("r", "GET", "/api/ListThings")
        let rule = try #require(config.rule(of: decision))
        #expect(rule.origin == .permission("Thing.Read", catalog: "api.json", path: "/api/ListThings"))
        #expect(rule.description.hasPrefix("role reader, permission Thing.Read (api.json /api/ListThings)"), "\(rule)")
        #expect(rule.location?.file == "\(folder.path)/gateway.yaml")
        #expect(rule.location?.line == 14)  // the role's permissions key
    }

    @Test func unknownPermissionsAreErrorsOnTheirLines() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try folder.write("api.json", Self.smallCatalog)
        let errors: [ConfigError]
        do throws(ConfigErrors) {
            _ = try Self.load(
                folder: folder,
                catalog: "api.json",
                roles: """
                      reader:
                        permissions:
                          include: ["Thing.Reed", "*.Read"]
                          exclude: ["Thing.Audt"]
                    """,
                clients: ""
            )
            Issue.record("loaded")
            return
        } catch {
            errors = error.errors
        }
        // An include that matches nothing is an error; an exclude, a warning (below).
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.map(\.key) == ["roles.reader.permissions.include[0]"])
        #expect(errors.map { $0.location?.line ?? 0 } == [15])
        #expect(errors.first?.message.contains("matches no permission in api.json (did you mean 'Thing.Read'?)") == true, "\(errors)")
        let loaded = try Self.load(
            folder: folder,
            catalog: "api.json",
            roles: """
                  reader:
                    permissions:
                      include: ["*.Read"]
                      exclude: ["Thing.Audt"]
                """,
            clients: ""
        )
        #expect(loaded.warnings.map(\.key) == ["roles.reader.permissions.exclude[0]"])
        #expect(loaded.warnings.first?.location?.line == 16)
        #expect(loaded.warnings.first?.message.contains("'Thing.Audt' matches no permission in api.json (did you mean 'Thing.Audit'?)") == true, "\(loaded.warnings)")
    }

    @Test func aPermissionFieldNoOperationCarriesIsAnErrorOnThatKey() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        try folder.write("api.json", Self.smallCatalog)
        let text = RolesConfigLoaderTests.base() + """
            catalog:
              openapi: api.json
              permission_field: x-cipp-rol
            """
        do throws(ConfigErrors) {
            _ = try ConfigLoader.load(sources: [(file: "\(folder.path)/gateway.yaml", text: text)], directory: folder.path)
            Issue.record("loaded")
        } catch {
            #expect(error.errors.count == 1, "\(error)")
            let only = error.errors.first
            #expect(only?.key == "catalog.permission_field")
            #expect(only?.location?.line == RolesConfigLoaderTests.line(of: "permission_field", in: text))
            #expect(only?.message.contains("carries the permission field 'x-cipp-rol'") == true)
            #expect(only?.message.contains("x-cipp-role") == true, "the fields found are listed: \(error)")
        }
    }

    @Test(arguments: [
        ("missing.json", nil as String?, "cannot read the OpenAPI document"),
        ("api.json", "{not json", "is not valid JSON"),
        ("api.json", "[1, 2]", "expected a JSON object"),
        ("api.json", #"{"swagger": "2.0", "paths": {}}"#, "expected an OpenAPI 3 document"),
        ("api.json", #"{"openapi": "3.1.0"}"#, "expected \"paths\""),
        ("api.json", #"{"openapi": "3.1.0", "paths": {"/a": {"get": {"x-cipp-role": 7}}}}"#, "must be a non-empty string"),
        ("api.json", #"{"openapi": "3.1.0", "paths": {"a": {"get": {"x-cipp-role": "A.Read"}}}}"#, "must start with /"),
    ])
    func aBadCatalogueIsAnErrorOnItsOpenAPIKey(file: String, content: String?, message: String) throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        if let content { try folder.write("api.json", content) }
        let text = RolesConfigLoaderTests.base() + "catalog:\n  openapi: \(file)\nroles:\n  r:\n    permissions: { include: [\"*\"] }\n"
        do throws(ConfigErrors) {
            _ = try ConfigLoader.load(sources: [(file: "\(folder.path)/gateway.yaml", text: text)], directory: folder.path)
            Issue.record("loaded")
        } catch {
            // Only the catalogue's error: the role's permissions are not blamed for it.
            #expect(error.errors.count == 1, "\(error)")
            #expect(error.errors.first?.key == "catalog.openapi")
            #expect(error.errors.first?.location?.line == RolesConfigLoaderTests.line(of: "openapi:", in: text))
            #expect(error.errors.first?.message.contains(message) == true, "\(error)")
        }
    }

    // MARK: - The CIPP-shaped fixture (../shared/testdata/cipp/catalog.json)

    static let fixturePresent = RolesTestData.cippCatalog != nil
    static let fixtureMissing = Comment(rawValue: RolesTestData.catalogMissingMessage)

    @Test(.enabled(if: Self.fixturePresent, Self.fixtureMissing))
    func readPermissionsOfTheCIPPCatalogueAreChosenBySuffixNotByName() throws {
        let fixture = try #require(RolesTestData.cippCatalog)
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let config = try Self.load(
            folder: folder,
            catalog: fixture,
            roles: """
                  readonly:
                    description: "every .Read permission except the super-admin ones"
                    permissions: { include: ["*.Read"], exclude: ["CIPP.SuperAdmin.*"] }
                  psa:
                    allow: [{ methods: [POST], paths: ["/api/ExecResetPass"] }]
                    permissions: { include: ["Identity.User.Read"] }
                    tenants: { allow: ["contoso.onmicrosoft.com", "fabrikam.onmicrosoft.com"] }
                """,
            clients: """
                  - id: dashboard
                    issuer: local
                    roles: [readonly]
                  - id: psa
                    issuer: local
                    roles: [psa]
                """
        )
        let catalog = try #require(config.catalog)
        #expect(Set(catalog.operations.map(\.path)).count == 58)

        #expect(config.allows("dashboard", "GET", "/api/ListUsers"))
        #expect(config.allows("dashboard", "HEAD", "/api/ListUsers"))
        #expect(config.allows("dashboard", "POST", "/api/ExecGetRecoveryKey"))  // Endpoint.Device.Read
        #expect(config.allows("dashboard", "POST", "/api/ExecSendPush"))  // Identity.User.Read
        #expect(!config.allows("dashboard", "POST", "/api/ListOffboardTenants"))  // Tenant.Administration.ReadWrite
        #expect(!config.allows("dashboard", "GET", "/api/ListOffboardTenants"))
        #expect(!config.allows("dashboard", "POST", "/api/ExecResetPass"))
        #expect(!config.allows("dashboard", "POST", "/api/ExecCippFunction"))
        #expect(config.allows("dashboard", "GET", "/api/listusers"))  // cipp: case-insensitive

        // Every selected operation became a rule, and nothing else did.
        let expanded = config.policy.rules.filter { $0.roleName == "readonly" }
        let selected = catalog.operations.filter { op in
            op.permission.map { $0.hasSuffix(".Read") && !$0.hasPrefix("CIPP.SuperAdmin.") } ?? false
        }
        #expect(expanded.count == selected.count)
        #expect(expanded.allSatisfy { rule in
            if case .permission(let name, _, _) = rule.origin { return name.hasSuffix(".Read") }
            return false
        })

        let decision = config.decide("dashboard", "GET", "/api/ListUsers")
        let rule = try #require(config.rule(of: decision))
        #expect(rule.description.hasPrefix("role readonly, permission Identity.User.Read (catalog.json /api/ListUsers)"), "\(rule)")

        // Tenants: a request naming none is allowed only where the endpoint has no tenant check.
        #expect(config.tenantVerdict("dashboard", "GET", "/api/ListUsers", tenant: nil) == .allowed)  // no tenants section
        #expect(config.tenantVerdict("psa", "GET", "/api/ListUsers", tenant: "Contoso.OnMicrosoft.com") == .allowed)
        #expect(config.tenantVerdict("psa", "GET", "/api/ListUsers", tenant: "evil.onmicrosoft.com") == .tenantNotAllowed)
        #expect(config.tenantVerdict("psa", "GET", "/api/ListUsers", tenant: "AllTenants") == .tenantNotAllowed)
        #expect(config.tenantVerdict("psa", "GET", "/api/ListUsers", tenant: nil) == .tenantRequired)
        #expect(config.tenantVerdict("psa", "POST", "/api/ExecResetPass", tenant: nil) == .tenantRequired)
        #expect(config.tenantVerdict("psa", "POST", "/api/ExecResetPass", tenant: "fabrikam.onmicrosoft.com") == .allowed)
        #expect(config.tenantVerdict("psa", "POST", "/api/ExecSendPush", tenant: nil) == .tenantRequired)
        #expect(config.tenantVerdict("psa", "POST", "/api/ExecAddUser", tenant: "contoso.onmicrosoft.com") == .notAllowed)
    }

    @Test(.enabled(if: Self.fixturePresent, Self.fixtureMissing))
    func catalogueEndpointsWithoutATenantCheckNeedNoTenant() throws {
        let fixture = try #require(RolesTestData.cippCatalog)
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let config = try Self.load(
            folder: folder,
            catalog: fixture,
            roles: """
                  core:
                    permissions: { include: ["CIPP.Core.Read"] }
                    tenants: { allow: ["contoso.onmicrosoft.com"] }
                  handwritten:
                    allow: [{ methods: [GET], paths: ["/api/ListTenants", "/api/ListTenantDetails"] }]
                    tenants: { allow: ["contoso.onmicrosoft.com"] }
                """,
            clients: """
                  - id: core
                    issuer: local
                    roles: [core]
                  - id: hand
                    issuer: local
                    roles: [handwritten]
                """
        )
        // ListTenants is x-cipp-any-tenant: true; ListTenantDetails is not.
        #expect(config.tenantVerdict("core", "GET", "/api/ListTenants", tenant: nil) == .allowed)
        #expect(config.tenantVerdict("core", "GET", "/api/ListTenantDetails", tenant: nil) == .tenantRequired)
        #expect(config.tenantVerdict("core", "GET", "/api/ListTenantDetails", tenant: "contoso.onmicrosoft.com") == .allowed)
        // A named tenant is still checked on an endpoint without a tenant check.
        #expect(config.tenantVerdict("core", "GET", "/api/ListTenants", tenant: "fabrikam.onmicrosoft.com") == .tenantNotAllowed)
        // The catalogue decides for written rules too: the endpoint is what has no tenant check.
        #expect(config.tenantVerdict("hand", "GET", "/api/listtenants", tenant: nil) == .allowed)
        #expect(config.tenantVerdict("hand", "GET", "/api/ListTenantDetails", tenant: nil) == .tenantRequired)
        #expect(config.decide("hand", "GET", "/api/ListTenants").endpointHasNoTenantCheck)
    }
}
