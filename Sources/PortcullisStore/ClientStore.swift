/// The one interface of every store: the client registry and the run-time state.
///
/// Off the request path only: the gateway loads a ``Registry`` into an immutable snapshot that
/// every event loop reads, and writes usage in batches.
public protocol ClientStore: Sendable {
    /// A short name for logs and errors (`directory /var/lib/portcullis`, `postgres db@host`).
    var description: String { get }

    /// Creates or migrates the schema; idempotent.
    func prepare() async throws(StoreError)

    /// Everything the store holds now.
    func load() async throws(StoreError) -> Registry

    /// One change, made atomically against the registry as it is at that moment (`decide`
    /// sees it inside the store's lock or transaction). Returns what was written.
    func update(_ decide: @Sendable (Registry) throws(StoreError) -> StoreChange) async throws(StoreError) -> StoreChange

    /// Usage times and revocations, later times winning.
    func record(_ batch: UsageBatch) async throws(StoreError)

    /// Replaces everything (`portcullis store import`).
    func replaceAll(with registry: Registry) async throws(StoreError)

    /// Yields whenever another process may have changed the registry; finishes with `close`.
    func changes() -> AsyncStream<Void>

    func close() async
}

extension ClientStore {
    /// A client mutation, checked by ``RegistryEditor`` inside the store's lock.
    public func apply(_ mutation: ClientMutationRequest) async throws(StoreError) -> StoreChange {
        try await self.update { registry throws(StoreError) in
            try RegistryEditor.change(for: mutation.mutation, registry: registry, context: mutation.context, now: mutation.now)
        }
    }
}

import Foundation
import PortcullisPolicy

/// A mutation and what it is checked against.
public struct ClientMutationRequest: Sendable {
    public var mutation: ClientMutation
    public var context: RegistryContext
    public var now: Date

    public init(_ mutation: ClientMutation, context: RegistryContext, now: Date = Date()) {
        self.mutation = mutation
        self.context = context
        self.now = now
    }
}
