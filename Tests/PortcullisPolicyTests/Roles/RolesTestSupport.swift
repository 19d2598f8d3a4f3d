import Foundation
import SharedTestData
import Testing

@testable import PortcullisPolicy

/// Locates `shared/testdata` (outside the repository) as the end-to-end tests do.
enum RolesTestData {
    static let catalogMissingMessage =
        "CIPP catalogue fixture not found: expected shared/testdata/cipp/catalog.json beside the repository "
        + "(../shared/testdata/cipp/catalog.json), or PORTCULLIS_TESTDATA pointing at a testdata folder"

    /// `$PORTCULLIS_TESTDATA/<relative>`, else `shared/testdata/<relative>` beside some folder
    /// above the current directory or this source file; nil when absent.
    static func file(_ relative: String, filePath: String = #filePath) -> String? {
        SharedTestData.url(relative, filePath: filePath).map(\.path)
    }

    static var cippCatalog: String? { Self.file("cipp/catalog.json") }
}

/// A config directory in a fresh temporary folder, removed by `remove()`.
struct TemporaryFolder {
    let path: String

    init() throws {
        let path = NSTemporaryDirectory() + "portcullis-roles-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        self.path = path
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: "\(self.path)/\(name)", atomically: true, encoding: .utf8)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: self.path)
    }
}

extension GatewayConfig {
    /// The decision for the client with `id`; records an issue when there is no such client.
    func decide(_ id: String, _ method: String, _ path: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> AccessDecision {
        guard let index = self.policy.clientIndex(id: id) else {
            Issue.record("no client \(id)", sourceLocation: sourceLocation)
            return AccessDecision(outcome: .noAllowRule)
        }
        return self.policy.decide(client: index, method: method, path: path)
    }

    func allows(_ id: String, _ method: String, _ path: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> Bool {
        self.decide(id, method, path, sourceLocation: sourceLocation).isAllowed
    }

    /// The deciding rule's key (`roles.x.allow[0]`), or nil.
    func rule(of decision: AccessDecision) -> PolicyRule? {
        decision.rule.map { self.policy.rules[$0] }
    }

    /// The route decision and then the tenant check, as the CIPP profile runs them.
    func tenantVerdict(_ id: String, _ method: String, _ path: String, tenant: String?) -> TenantVerdict {
        guard let index = self.policy.clientIndex(id: id) else { return .notAllowed }
        let decision = self.policy.decide(client: index, method: method, path: path)
        return self.policy.checkTenant(tenant, client: index, decision: decision)
    }
}
