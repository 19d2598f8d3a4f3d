import Foundation
import PortcullisPolicy
import Testing

@testable import PortcullisStore

/// Rotation with a grace, updates and their audit records, decided by ``RegistryEditor``.
@Suite struct ClientLifecycleTests {
    static let old = String(repeating: "a", count: 64)
    static let new = String(repeating: "b", count: 64)
    static let now = Date(timeIntervalSince1970: 1_796_378_400)  // 2026-12-04T10:00:00Z
    static let actor = AuditActor(name: "ops-alice", source: "192.0.2.1")

    static func context() -> RegistryContext {
        RegistryContext(
            store: .directory(path: "/tmp"),
            issuers: [IssuerConfig.testBuiltin(name: "local")],
            roleNames: ["readonly", "helpdesk"],
            declaredClientIDs: ["declared"],
            declaredSecrets: ["declared": ClientSecrets(currentSHA256: Self.old, created: nil, retired: [])]
        )
    }

    static func registry() -> Registry {
        var registry = Registry()
        var draft = ClientDraft(id: "stored", issuer: "local", roles: ["readonly"], secretSHA256: Self.old)
        draft.secretCreated = "2026-11-01T00:00:00Z"
        registry.clients["stored"] = StoredClient(draft, lastModified: "2026-11-01T00:00:00Z")
        return registry
    }

    @Test func aRotationWithGraceKeepsTheOldSecretOfAStoredClientUntilItEnds() throws {
        let mutation = ClientMutation.rotate(id: "stored", secretSHA256: Self.new, grace: .hours(2))
        let change = try RegistryEditor.change(for: mutation, registry: Self.registry(), context: Self.context(), now: Self.now)
        guard case .put(let client) = change else {
            Issue.record("expected put, got \(change)")
            return
        }
        #expect(client.secretSHA256 == Self.new)
        #expect(client.secretCreated == "2026-12-04T10:00:00Z")
        #expect(client.retiredSecrets == [RetiredSecret(secretSHA256: Self.old, created: "2026-11-01T00:00:00Z", until: "2026-12-04T12:00:00Z")])

        let event = AuditEvent.describe(mutation, change: change, before: Self.registry(), context: Self.context(), actor: Self.actor, now: Self.now)
        #expect(event.action == "client.rotate")
        #expect(event.actor == "ops-alice")
        #expect(event.changes["secret_created"] == AuditFieldChange(before: .text("2026-11-01T00:00:00Z"), after: .text("2026-12-04T10:00:00Z")))
        #expect(event.changes["secrets_in_grace"]?.after == .list(["until 2026-12-04T12:00:00Z"]))
        let line = String(decoding: AuditLogFile.line(event), as: UTF8.self)
        #expect(!line.contains(Self.old) && !line.contains(Self.new), "\(line)")
    }

    @Test func aRotationWithGraceOfADeclaredClientKeepsItsDeclaredSecret() throws {
        let change = try RegistryEditor.change(
            for: .rotate(id: "declared", secretSHA256: Self.new, grace: .minutes(5)),
            registry: Registry(),
            context: Self.context(),
            now: Self.now
        )
        guard case .override(_, let override) = change else {
            Issue.record("expected override, got \(change)")
            return
        }
        #expect(override.secretSHA256 == Self.new)
        #expect(override.retiredSecrets?.map(\.secretSHA256) == [Self.old])
        #expect(override.retiredSecrets?.first?.until == "2026-12-04T10:05:00Z")
    }

    @Test func anUpdateChangesFieldsKeepsTheSecretAndRecordsBeforeAndAfter() throws {
        let mutation = ClientMutation.update(id: "stored", ClientUpdate(name: "Stored one", roles: ["helpdesk"], allowedIPs: .some(["10.0.0.0/8"])))
        let change = try RegistryEditor.change(for: mutation, registry: Self.registry(), context: Self.context(), now: Self.now)
        guard case .put(let client) = change else {
            Issue.record("expected put, got \(change)")
            return
        }
        #expect(client.secretSHA256 == Self.old)
        #expect(client.secretCreated == "2026-11-01T00:00:00Z")
        #expect(client.roles == ["helpdesk"])
        let event = AuditEvent.describe(mutation, change: change, before: Self.registry(), context: Self.context(), actor: Self.actor, now: Self.now)
        #expect(Set(event.changes.keys) == ["name", "roles", "allowed_ips"])
        #expect(event.changes["roles"] == AuditFieldChange(before: .list(["readonly"]), after: .list(["helpdesk"])))
        #expect(event.changes["allowed_ips"] == AuditFieldChange(before: .none, after: .list(["10.0.0.0/8"])))
    }

    @Test func anUpdateThatWouldMakeAnInvalidClientOrTouchesADeclaredOneIsRefused() {
        #expect(throws: StoreError(.invalid, reason: "")) {
            try RegistryEditor.change(for: .update(id: "stored", ClientUpdate(roles: ["nope"])), registry: Self.registry(), context: Self.context())
        }
        #expect(throws: StoreError(.declaredClient, reason: "")) {
            try RegistryEditor.change(for: .update(id: "declared", ClientUpdate(name: "x")), registry: Self.registry(), context: Self.context())
        }
        #expect(throws: StoreError(.unknownClient, reason: "")) {
            try RegistryEditor.change(for: .update(id: "nobody", ClientUpdate(name: "x")), registry: Self.registry(), context: Self.context())
        }
    }

    @Test func theAuditFileIsReadBackWithFilters() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("audit-\(UUID().uuidString).jsonl").path
        defer { unlink(path) }
        let file = AuditLogFile(path: path)
        let bob = AuditActor(name: "bob", source: "cli@host")
        try file.append(AuditEvent.describe(action: "client.add", clientID: "a", before: [:], after: ["name": .text("a")], actor: Self.actor, now: Self.now))
        try file.append(AuditEvent.describe(action: "client.rotate", clientID: "a", before: [:], after: [:], actor: bob, now: Self.now.addingTimeInterval(3600)))
        try file.append(AuditEvent.describe(action: "client.add", clientID: "b", before: [:], after: [:], actor: bob, now: Self.now.addingTimeInterval(7200)))
        #expect(file.read(AuditFilter()).count == 3)
        #expect(file.read(AuditFilter(clientID: "a")).map(\.action) == ["client.add", "client.rotate"])
        #expect(file.read(AuditFilter(actor: "bob")).map(\.clientID) == ["a", "b"])
        #expect(file.read(AuditFilter(action: "client.add")).map(\.clientID) == ["a", "b"])
        #expect(file.read(AuditFilter(action: "client.")).count == 3)
        #expect(file.read(AuditFilter(since: UTCTime.seconds("2026-12-04T11:00:00Z"))).count == 2)
        #expect(file.read(AuditFilter(limit: 1)).map(\.clientID) == ["b"])
        let since: Int64? = AuditFilter.since("30d", now: 1_000_000_000)
        #expect(since == 997_408_000)
        #expect(AuditFilter.since("yesterday", now: 0) == nil)
    }
}
