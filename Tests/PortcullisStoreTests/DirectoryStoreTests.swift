import Foundation
import PortcullisPolicy
import Testing

@testable import PortcullisStore

@Suite struct DirectoryStoreTests {
    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "portcullis-store-\(UUID().uuidString)"
        return path
    }

    @Test func changesAndUsageSurviveANewStoreOnTheSameDirectory() async throws {
        let path = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let context = RegistryEditorTests.context()
        let store = DirectoryStore(path: path)
        try await store.prepare()
        _ = try await store.apply(ClientMutationRequest(.add(RegistryEditorTests.draft("new")), context: context))
        _ = try await store.apply(ClientMutationRequest(.setEnabled(id: "declared", enabled: false), context: context))
        try await store.record(UsageBatch(lastUsed: ["new": 1_000], lastRedeemed: ["new": 900], revocations: ["jti-1": Int64.max / 2]))
        await store.close()

        let reopened = DirectoryStore(path: path)
        let registry = try await reopened.load()
        #expect(registry.clients["new"]?.roles == ["readonly"])
        #expect(registry.overrides["declared"]?.enabled == false)
        #expect(registry.lastUsed["new"] == 1_000)
        #expect(registry.lastRedeemed["new"] == 900)
        #expect(registry.revocations["jti-1"] == Int64.max / 2)
        // No temporary file is left beside the state.
        let files = try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".lock") }
        #expect(Set(files) == [DirectoryStore.registryFile, DirectoryStore.usageFile])
        await reopened.close()
    }

    @Test func anExportImportsIntoAnotherStoreUnchanged() async throws {
        let source = Self.temporaryDirectory()
        let target = Self.temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: source)
            try? FileManager.default.removeItem(atPath: target)
        }
        let store = DirectoryStore(path: source)
        try await store.prepare()
        _ = try await store.apply(ClientMutationRequest(.add(RegistryEditorTests.draft("moved")), context: RegistryEditorTests.context()))
        let exported = try RegistryDocument.encode(try await store.load())
        let other = DirectoryStore(path: target)
        try await other.prepare()
        try await other.replaceAll(with: try RegistryDocument.decode(exported))
        #expect(try await other.load() == (try await store.load()))
        await store.close()
        await other.close()
    }

    @Test func aFileNotWrittenByPortcullisIsAnErrorNotAnEmptyRegistry() async throws {
        let path = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = DirectoryStore(path: path)
        try await store.prepare()
        try Data("not json".utf8).write(to: URL(fileURLWithPath: path + "/" + DirectoryStore.registryFile))
        await #expect(throws: StoreError(.io, reason: "")) { try await store.load() }
        await store.close()
    }
}
