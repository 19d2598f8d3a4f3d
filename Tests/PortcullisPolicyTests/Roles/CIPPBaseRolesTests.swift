import Foundation
import Testing

@testable import PortcullisPolicy

/// CIPP's four base roles (`Config/cipp-roles.json`, in ../shared/testdata/cipp/base-roles.json)
/// load verbatim and decide over the catalogue fixture exactly as CIPP would: an endpoint is
/// allowed when its permission matches an include glob and no exclude glob (PowerShell's
/// case-insensitive `-like`), whatever the method.
@Suite struct CIPPBaseRolesTests {
    static let present = RolesTestData.cippCatalog != nil && RolesTestData.file("cipp/base-roles.json") != nil
    static let missing = Comment(rawValue: RolesTestData.catalogMissingMessage + " (and cipp/base-roles.json)")

    struct BaseRole {
        var name: String
        var include: [String]
        var exclude: [String]
    }

    static func baseRoles() throws -> [BaseRole] {
        let path = try #require(RolesTestData.file("cipp/base-roles.json"))
        let data = try #require(FileManager.default.contents(atPath: path))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: [String]]])
        return object.keys.sorted().map { BaseRole(name: $0, include: object[$0]?["include"] ?? [], exclude: object[$0]?["exclude"] ?? []) }
    }

    /// CIPP's reading of a glob, written independently of `PermissionSelection.glob`.
    static func like(_ name: String, _ pattern: String) -> Bool {
        let escaped = NSRegularExpression.escapedPattern(for: pattern).replacingOccurrences(of: "\\*", with: ".*")
        return name.range(of: "^\(escaped)$", options: [.regularExpression, .caseInsensitive]) != nil
    }

    static func cippAllows(_ role: BaseRole, permission: String) -> Bool {
        role.include.contains { like(permission, $0) } && !role.exclude.contains { like(permission, $0) }
    }

    static func config(_ roles: [BaseRole], folder: TemporaryFolder) throws -> GatewayConfig {
        func list(_ names: [String]) -> String { "[" + names.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        let roleText = roles.map { role in
            "  \(role.name):\n    permissions: { include: \(list(role.include)), exclude: \(list(role.exclude)) }"
        }.joined(separator: "\n")
        let clients = roles.map { "  - id: \($0.name)-client\n    issuer: local\n    roles: [\($0.name)]" }.joined(separator: "\n")
        return try PermissionCatalogTests.load(
            folder: folder,
            catalog: try #require(RolesTestData.cippCatalog),
            roles: roleText,
            clients: clients
        )
    }

    @Test(.enabled(if: Self.present, Self.missing))
    func theBaseRolesLoadVerbatimWithWarningsForExcludesThatMatchNothing() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let roles = try Self.baseRoles()
        #expect(roles.map(\.name) == ["admin", "editor", "readonly", "superadmin"])
        let config = try Self.config(roles, folder: folder)
        let unmatched = config.warnings.filter { $0.message.contains("matches no permission") }
        #expect(unmatched.contains { $0.message.contains("'CIPP.Admin.*'") && $0.key.hasPrefix("roles.readonly.permissions.exclude") }, "\(config.warnings)")
    }

    @Test(.enabled(if: Self.present, Self.missing))
    func theBaseRolesDecideAsCIPPDoesForEveryEndpointAndMethod() throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        let roles = try Self.baseRoles()
        let config = try Self.config(roles, folder: folder)
        let catalog = try #require(config.catalog)
        let cipp = RequestDecision.CIPP(directory: nil, maxBatchItems: 20)
        var checked = 0
        for role in roles {
            let client = try #require(config.policy.clientIndex(id: "\(role.name)-client"))
            for operation in catalog.operations {
                let permission = try #require(operation.permission)
                let expected = Self.cippAllows(role, permission: permission)
                for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                    for path in [operation.path, operation.path.lowercased()] {
                        let input = RequestDecision.Input(client: client, method: method, path: Substring(path), query: nil, hasBody: false)
                        let verdict = RequestDecision.decide(input, policy: config.policy, cipp: cipp)
                        let allowedByRoute: Bool
                        switch verdict {
                        case .allow: allowedByRoute = true
                        case .deny(_, let outcome): allowedByRoute = outcome.reason != .roleDenied && outcome.reason != .denyRule
                        case .needsBody: allowedByRoute = true
                        }
                        #expect(allowedByRoute == expected, "\(role.name) \(method) \(path) (\(permission)): CIPP says \(expected)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked == 4 * catalog.operations.count * 10)
        // The fixture's notes: read-only is the .Read suffix, not the endpoint's name.
        let readonly = try #require(config.policy.clientIndex(id: "readonly-client"))
        #expect(config.policy.decide(client: readonly, method: "POST", path: "/api/ExecGetRecoveryKey").isAllowed)
        #expect(!config.policy.decide(client: readonly, method: "GET", path: "/api/ListOffboardTenants").isAllowed)
    }
}
