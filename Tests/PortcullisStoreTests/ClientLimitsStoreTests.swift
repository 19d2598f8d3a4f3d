import Foundation
import PortcullisPolicy
import Testing

@testable import PortcullisStore

/// A stored client's own limits and a declared client's run-time limits: edited through the
/// registry editor, kept by the stores, applied when the registry is compiled.
@Suite struct ClientLimitsStoreTests {
    static let tenPerSecond = ClientLimits(rate: RateSpec(count: 10, period: .second), burst: 20)

    static func stored(_ limits: ClientLimits?) -> Registry {
        var draft = RegistryEditorTests.draft("stored")
        draft.limits = limits
        var registry = Registry()
        registry.clients["stored"] = StoredClient(draft, lastModified: "2026-12-04T10:00:00Z")
        return registry
    }

    @Test func aStoredClientsLimitsAreEditedFieldByFieldAndCleared() throws {
        let registry = Self.stored(Self.tenPerSecond)
        let quota = LimitsEdit(set: ClientLimits(quota: QuotaSpec(count: 100, window: .day)))
        guard case .put(let client) = try RegistryEditor.change(for: .setLimits(id: "stored", quota), registry: registry, context: RegistryEditorTests.context())
        else {
            Issue.record("expected put")
            return
        }
        #expect(client.limits == ClientLimits(rate: RateSpec(count: 10, period: .second), burst: 20, quota: QuotaSpec(count: 100, window: .day)))
        guard case .put(let cleared) = try RegistryEditor.change(for: .setLimits(id: "stored", LimitsEdit(clear: true)), registry: registry, context: RegistryEditorTests.context())
        else {
            Issue.record("expected put")
            return
        }
        #expect(cleared.limits == nil)
    }

    @Test func aBurstWithoutARateIsRefusedNamingTheField() {
        do {
            _ = try RegistryEditor.change(
                for: .setLimits(id: "stored", LimitsEdit(set: ClientLimits(burst: 5))), registry: Self.stored(nil), context: RegistryEditorTests.context())
            Issue.record("a burst without a rate was accepted")
        } catch {
            #expect(error.code == .invalid)
            #expect(error.reason.contains("client 'stored' limits: burst needs a rate beside it"), "\(error.reason)")
        }
        #expect(throws: StoreError(.invalid, reason: "")) {
            try RegistryEditor.change(
                for: .setLimits(id: "declared", LimitsEdit(set: ClientLimits(burst: 5))), registry: Registry(), context: RegistryEditorTests.context())
        }
    }

    @Test func aDeclaredClientsRunTimeLimitsApplyOverItsDeclaredOnes() throws {
        let change = try RegistryEditor.change(
            for: .setLimits(id: "declared", LimitsEdit(set: ClientLimits(concurrency: 2))), registry: Registry(), context: RegistryEditorTests.context())
        guard case .override(_, let override) = change else {
            Issue.record("expected override, got \(change)")
            return
        }
        #expect(override.limits == ClientLimits(concurrency: 2))
        var registry = Registry()
        registry.apply(change)
        var declared = ClientConfig(id: "declared", name: "declared", issuer: "local", roles: ["readonly"])
        declared.limits = Self.tenPerSecond
        let (clients, _) = registry.effectiveClients(declared: [declared], context: RegistryEditorTests.context())
        #expect(clients.first?.limits == ClientLimits(rate: RateSpec(count: 10, period: .second), burst: 20, concurrency: 2))
        // Cleared: the declared limits again.
        registry.apply(try RegistryEditor.change(for: .setLimits(id: "declared", LimitsEdit(clear: true)), registry: registry, context: RegistryEditorTests.context()))
        #expect(registry.effectiveClients(declared: [declared], context: RegistryEditorTests.context()).clients.first?.limits == Self.tenPerSecond)
    }

    @Test func aStoredClientIsServedWithItsLimits() {
        let (clients, warnings) = Self.stored(Self.tenPerSecond).effectiveClients(declared: [], context: RegistryEditorTests.context())
        #expect(warnings.isEmpty)
        #expect(clients.first?.limits == Self.tenPerSecond)
    }

    @Test func aClientWrittenBeforeLimitsExistedStillReads() throws {
        let old = #"{"enabled":true,"id":"old","issuer":"local","last_modified":"2026-12-01T00:00:00Z","name":"old","roles":["readonly"]}"#
        let client = try JSONDecoder().decode(StoredClient.self, from: Data(old.utf8))
        #expect(client.limits == nil)
        let override = try JSONDecoder().decode(ClientOverride.self, from: Data(#"{"enabled":false,"last_modified":"2026-12-01T00:00:00Z"}"#.utf8))
        #expect(override.limits == nil)
    }

    @Test func theDirectoryStoreKeepsLimitsAcrossAReopen() async throws {
        let path = DirectoryStoreTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = DirectoryStore(path: path)
        try await store.prepare()
        var draft = RegistryEditorTests.draft("new")
        draft.limits = ClientLimits(quota: QuotaSpec(count: 10_000, window: .month), concurrency: 3)
        _ = try await store.apply(ClientMutationRequest(.add(draft), context: RegistryEditorTests.context()))
        _ = try await store.apply(ClientMutationRequest(.setLimits(id: "declared", LimitsEdit(set: Self.tenPerSecond)), context: RegistryEditorTests.context()))
        await store.close()
        let registry = try await DirectoryStore(path: path).load()
        #expect(registry.clients["new"]?.limits == draft.limits)
        #expect(registry.overrides["declared"]?.limits == Self.tenPerSecond)
        // And an export carries them.
        let exported = try RegistryDocument.decode(try RegistryDocument.encode(registry))
        #expect(exported.clients["new"]?.limits == draft.limits)
    }
}
