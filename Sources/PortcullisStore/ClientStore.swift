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
    /// sees it inside the store's lock or transaction), with its audit record if `decide` gives
    /// one. Returns what was written.
    func update(_ decide: @Sendable (Registry) throws(StoreError) -> (StoreChange, AuditEvent?)) async throws(StoreError) -> StoreChange

    /// Adds a record to the audit trail (a revocation, an unlock: changes made elsewhere).
    func appendAudit(_ event: AuditEvent) async throws(StoreError)

    /// The audit records that match, oldest first.
    func audit(_ filter: AuditFilter) async throws(StoreError) -> [AuditEvent]

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
    /// Recorded in the audit trail, in the same lock or transaction, when it names an actor.
    public func apply(_ mutation: ClientMutationRequest) async throws(StoreError) -> StoreChange {
        try await self.update { registry throws(StoreError) in
            let change = try RegistryEditor.change(for: mutation.mutation, registry: registry, context: mutation.context, now: mutation.now)
            let event = mutation.actor.map { actor in
                AuditEvent.describe(mutation.mutation, change: change, before: registry, context: mutation.context, actor: actor, now: mutation.now)
            }
            return (change, event)
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
    /// Who asks; nil leaves no audit record.
    public var actor: AuditActor?

    public init(_ mutation: ClientMutation, context: RegistryContext, actor: AuditActor? = nil, now: Date = Date()) {
        self.mutation = mutation
        self.context = context
        self.actor = actor
        self.now = now
    }
}
