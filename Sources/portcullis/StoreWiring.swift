import ArgumentParser
import Foundation
import Logging
import NIOConcurrencyHelpers
import PortcullisPolicy
import PortcullisStore

/// The store a `store:` section names. `watch`: the gateway follows other processes' changes.
func openStore(_ config: StoreConfig, watch: Bool, logger: Logger) throws(StoreError) -> any ClientStore {
    switch config {
    case .directory(let path):
        return DirectoryStore(path: path, watch: watch)
    case .postgres(let settings):
        return try PostgresStore(settings, listen: watch, logger: logger)
    }
}

/// The declared configuration and the registry last loaded from the store, from which the
/// running configuration is made.
final class RegistryHolder: Sendable {
    private struct State {
        var declared: GatewayConfig
        var registry: Registry?
    }

    private let state: NIOLockedValueBox<State>

    init(declared: GatewayConfig) {
        self.state = NIOLockedValueBox(State(declared: declared))
    }

    var declared: GatewayConfig { self.state.withLockedValue { $0.declared } }
    var registry: Registry? { self.state.withLockedValue { $0.registry } }

    func setDeclared(_ config: GatewayConfig) {
        self.state.withLockedValue { $0.declared = config }
    }

    /// Keeps `registry`; true when its clients or overrides differ from the last one's (usage
    /// times and revocations need no new snapshot).
    @discardableResult
    func setRegistry(_ registry: Registry) -> Bool {
        self.state.withLockedValue { state in
            let changed = state.registry?.clients != registry.clients || state.registry?.overrides != registry.overrides
            state.registry = registry
            return changed
        }
    }

    /// `declared` with the store's clients and overrides; without a store or before the first
    /// load, the declared clients as they are.
    func effective(_ declared: GatewayConfig, logger: Logger) -> GatewayConfig {
        guard declared.store != nil, let registry = self.registry else { return declared }
        let (clients, warnings) = registry.effectiveClients(declared: declared.clients, context: RegistryContext(declared))
        for warning in warnings { logger.warning("\(warning)") }
        return declared.replacingClients(clients)
    }
}

/// Prepares `store`, reads its registry and closes it; on failure prints why and exits 1.
func loadRegistryOrExit(_ store: any ClientStore) async throws -> Registry {
    let registry: Registry
    do {
        try await store.prepare()
        registry = try await store.load()
    } catch {
        await store.close()
        ClientCommand.note("\(error)")
        throw ExitCode(1)
    }
    await store.close()
    return registry
}
