import Foundation
import PortcullisPolicy
import Testing

@testable import PortcullisStore

@Suite struct RegistryEditorTests {
    static let hash = String(repeating: "a", count: 64)
    static let builtin = IssuerConfig.testBuiltin(name: "local")

    static func context(declared: [String] = ["declared"]) -> RegistryContext {
        RegistryContext(store: .directory(path: "/tmp"), issuers: [Self.builtin], roleNames: ["readonly"], declaredClientIDs: declared)
    }

    static func draft(_ id: String, roles: [String] = ["readonly"], ips: [String]? = nil) -> ClientDraft {
        ClientDraft(id: id, issuer: "local", roles: roles, allowedIPs: ips, secretSHA256: Self.hash)
    }

    @Test func addingAValidClientPutsIt() throws {
        let change = try RegistryEditor.change(for: .add(Self.draft("new")), registry: Registry(), context: Self.context())
        guard case .put(let client) = change else {
            Issue.record("expected put, got \(change)")
            return
        }
        #expect(client.id == "new")
        #expect(client.secretSHA256 == Self.hash)
    }

    @Test func addingAClientWithAnUnknownRoleIsInvalidAndSaysWhy() {
        do {
            _ = try RegistryEditor.change(for: .add(Self.draft("new", roles: ["admin"])), registry: Registry(), context: Self.context())
            Issue.record("an unknown role was accepted")
        } catch {
            #expect(error.code == .invalid)
            #expect(error.reason.contains("client 'new' roles[0]: unknown role 'admin' (roles: readonly)"), "\(error.reason)")
        }
    }

    @Test func addingAClientWithAnAmbiguousAddressIsInvalid() {
        #expect(throws: StoreError(.invalid, reason: "")) {
            try RegistryEditor.change(for: .add(Self.draft("new", ips: ["010.1.1.1"])), registry: Registry(), context: Self.context())
        }
    }

    @Test func addingADeclaredOrStoredIdIsADuplicate() throws {
        #expect(throws: StoreError(.duplicateClient, reason: "")) {
            try RegistryEditor.change(for: .add(Self.draft("declared")), registry: Registry(), context: Self.context())
        }
        var registry = Registry()
        registry.clients["stored"] = StoredClient(Self.draft("stored"), lastModified: "2026-12-04T10:00:00Z")
        #expect(throws: StoreError(.duplicateClient, reason: "")) {
            try RegistryEditor.change(for: .add(Self.draft("stored")), registry: registry, context: Self.context())
        }
    }

    @Test func disablingADeclaredClientWritesAnOverride() throws {
        let change = try RegistryEditor.change(for: .setEnabled(id: "declared", enabled: false), registry: Registry(), context: Self.context())
        guard case .override(let id, let override) = change else {
            Issue.record("expected override, got \(change)")
            return
        }
        #expect(id == "declared")
        #expect(override.enabled == false)
        #expect(override.secretSHA256 == nil)
    }

    @Test func removingADeclaredClientIsRefused() {
        #expect(throws: StoreError(.declaredClient, reason: "")) {
            try RegistryEditor.change(for: .remove(id: "declared"), registry: Registry(), context: Self.context())
        }
        #expect(throws: StoreError(.unknownClient, reason: "")) {
            try RegistryEditor.change(for: .remove(id: "nobody"), registry: Registry(), context: Self.context())
        }
    }

    @Test func overridesWinOverDeclaredValuesAndInvalidStoredClientsAreLeftOut() throws {
        let declared = ClientConfig(id: "declared", name: "declared", enabled: true, issuer: "local", roles: ["readonly"], secretSHA256: Self.hash)
        var registry = Registry()
        registry.overrides["declared"] = ClientOverride(enabled: false, lastModified: "2026-12-04T10:00:00Z")
        registry.clients["good"] = StoredClient(Self.draft("good"), lastModified: "2026-12-04T10:00:00Z")
        registry.clients["orphan"] = StoredClient(Self.draft("orphan", roles: ["gone"]), lastModified: "2026-12-04T10:00:00Z")
        let (clients, warnings) = registry.effectiveClients(declared: [declared], context: Self.context())
        #expect(clients.map(\.id) == ["declared", "good"])
        #expect(clients[0].enabled == false)
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("orphan") == true)
    }
}

@Suite struct UsageBufferTests {
    @Test func laterTimesWinAndNewIdsPastCapacityAreDroppedAndCounted() {
        var buffer = UsageBuffer(capacity: 2)
        #expect(buffer.add(UsageBatch(lastUsed: ["a": 10, "b": 10])) == 0)
        #expect(buffer.add(UsageBatch(lastUsed: ["a": 20, "c": 5])) == 1)
        #expect(buffer.pending.lastUsed == ["a": 20, "b": 10])
        #expect(buffer.dropped == 1)
    }

    @Test func aFailedWriteIsPutBackUnderNewerEntries() {
        var buffer = UsageBuffer(capacity: 10)
        buffer.add(UsageBatch(lastUsed: ["a": 10], revocations: ["jti": 100]))
        let batch = buffer.take()
        #expect(buffer.pending.isEmpty)
        buffer.add(UsageBatch(lastUsed: ["a": 12]))
        buffer.restore(batch)
        #expect(buffer.pending.lastUsed == ["a": 12])
        #expect(buffer.pending.revocations == ["jti": 100])
    }
}

@Suite struct FailureCountTests {
    @Test func incrementsOfOneWindowAddUpAndALaterWindowStartsAfresh() {
        let first = FailureCount(start: 100, failures: 3, window: 60)
        #expect(FailureCount.adding(FailureCount(start: 130, failures: 2, window: 60), to: first) == FailureCount(start: 100, failures: 5, window: 60))
        #expect(FailureCount.adding(FailureCount(start: 160, failures: 1, window: 60), to: first) == FailureCount(start: 160, failures: 1, window: 60))
        #expect(FailureCount.adding(first, to: nil) == first)
    }

    @Test func countsFromTheStoreAreDroppedWhenTheirWindowEnded() {
        var registry = Registry()
        registry.apply(UsageBatch(failedAuth: ["id:a": FailureCount(start: 100, failures: 2, window: 60)]))
        registry.apply(UsageBatch(failedAuth: ["id:a": FailureCount(start: 110, failures: 2, window: 60)]))
        #expect(registry.failedAuth["id:a"]?.failures == 4)
        registry.pruneRevocations(now: 161)
        #expect(registry.failedAuth.isEmpty)
    }
}

@Suite struct PostgresURLTests {
    @Test func aURLIsReadWithItsPartsDecoded() throws {
        let url = try PostgresStore.parseURL("postgres://port%40cullis:p%3Ass@127.0.0.1:5433/gateway", file: "pg-url")
        #expect(url == .init(user: "port@cullis", password: "p:ss", host: "127.0.0.1", port: 5433, database: "gateway"))
        let v6 = try PostgresStore.parseURL("postgresql://u@[::1]/db", file: "pg-url")
        #expect(v6.host == "::1")
        #expect(v6.port == 5432)
    }

    @Test func plainTCPIsOnlyForLoopback() {
        #expect(PostgresStore.isLoopback("127.0.0.1"))
        #expect(PostgresStore.isLoopback("::1"))
        #expect(PostgresStore.isLoopback("localhost"))
        #expect(!PostgresStore.isLoopback("10.0.0.5"))
        #expect(!PostgresStore.isLoopback("127.example.com"))
        #expect(throws: StoreError(.io, reason: "")) {
            try PostgresStore.parseURL("mysql://u@h/db", file: "pg-url")
        }
    }
}

extension IssuerConfig {
    static func testBuiltin(name: String) -> IssuerConfig {
        IssuerConfig(
            name: name,
            issuer: "https://gateway.example",
            audiences: ["portcullis"],
            keySource: nil,
            algorithms: [],
            clientClaim: "client_id",
            builtin: true,
            builtinSettings: BuiltinIssuerSettings(signingKeyFile: "/dev/null", stateFile: "/dev/null")
        )
    }
}
