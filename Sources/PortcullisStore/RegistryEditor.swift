import Foundation
import PortcullisPolicy

#if canImport(Glibc)
import Glibc
#endif

/// Turns a client mutation into the one ``StoreChange`` that makes it, checked against the
/// registry as the store holds it now and against the running issuers and roles only.
public enum RegistryEditor {
    /// A change to one field of a stored client, or of the override of a declared one.
    private static func edit(
        _ id: String,
        _ registry: Registry,
        _ declared: Set<String>,
        _ stamp: String,
        stored editStored: (inout StoredClient) -> Void,
        declared editOverride: (inout ClientOverride) -> Void
    ) throws(StoreError) -> StoreChange {
        if var stored = registry.clients[id] {
            editStored(&stored)
            stored.lastModified = stamp
            return .put(stored)
        }
        guard declared.contains(id) else { throw StoreError(.unknownClient, reason: "no client '\(id)'") }
        var override = registry.overrides[id] ?? ClientOverride(lastModified: stamp)
        editOverride(&override)
        override.lastModified = stamp
        return .override(id: id, override)
    }

    public static func change(
        for mutation: ClientMutation,
        registry: Registry,
        context: RegistryContext,
        now: Date = Date()
    ) throws(StoreError) -> StoreChange {
        let stamp = Self.timestamp(now)
        let declared = Set(context.declaredClientIDs)
        switch mutation {
        case .add(let draft):
            if declared.contains(draft.id) || registry.clients[draft.id] != nil {
                throw StoreError(.duplicateClient, reason: "a client '\(draft.id)' already exists")
            }
            var draft = draft
            if draft.secretSHA256 != nil, draft.secretCreated == nil { draft.secretCreated = stamp }
            try Self.validate(draft, stamp, context)
            return .put(StoredClient(draft, lastModified: stamp))
        case .rotate(let id, let hash, let grace):
            if let stored = registry.clients[id], stored.secretSHA256 == nil {
                throw StoreError(.notBuiltin, reason: "client '\(id)' belongs to the outside issuer '\(stored.issuer)', which holds its credentials: rotate them there")
            }
            if registry.clients[id] == nil, declared.contains(id), context.declaredSecrets[id] == nil {
                throw StoreError(.notBuiltin, reason: "client '\(id)' belongs to an outside issuer, which holds its credentials: rotate them there")
            }
            return try Self.edit(
                id, registry, declared, stamp,
                stored: { $0.draft.secrets = $0.draft.secrets.rotated(to: hash, grace: grace, now: now) },
                declared: { override in
                    let current =
                        override.secretSHA256.map {
                            ClientSecrets(currentSHA256: $0, created: override.secretCreated, retired: override.retiredSecrets ?? [])
                        } ?? context.declaredSecrets[id] ?? ClientSecrets(currentSHA256: nil, created: nil, retired: [])
                    let next = current.rotated(to: hash, grace: grace, now: now)
                    override.secretSHA256 = next.currentSHA256
                    override.secretCreated = next.created
                    override.retiredSecrets = next.retired.isEmpty ? nil : next.retired
                }
            )
        case .update(let id, let update):
            guard var stored = registry.clients[id] else {
                if declared.contains(id) {
                    throw StoreError(.declaredClient, reason: "client '\(id)' is declared in the configuration files: change it there")
                }
                throw StoreError(.unknownClient, reason: "no client '\(id)'")
            }
            var draft = stored.draft
            update.apply(to: &draft)
            try Self.validate(draft, stamp, context)
            stored.draft = draft
            stored.lastModified = stamp
            return .put(stored)
        case .setEnabled(let id, let enabled):
            return try Self.edit(id, registry, declared, stamp, stored: { $0.enabled = enabled }, declared: { $0.enabled = enabled })
        case .remove(let id):
            if registry.clients[id] != nil { return .remove(id: id) }
            if declared.contains(id) {
                throw StoreError(.declaredClient, reason: "client '\(id)' is declared in the configuration files: remove it there (or disable it here)")
            }
            throw StoreError(.unknownClient, reason: "no client '\(id)'")
        case .setLimits(let id, let edit):
            return try Self.setLimits(id, edit, registry, declared, stamp, context: context)
        }
    }

    /// A stored client's own limits, edited and checked as a whole client; a declared client's
    /// override limits, which apply field by field over its declared `limits:`.
    private static func setLimits(
        _ id: String,
        _ edit: LimitsEdit,
        _ registry: Registry,
        _ declared: Set<String>,
        _ stamp: String,
        context: RegistryContext
    ) throws(StoreError) -> StoreChange {
        if var stored = registry.clients[id] {
            stored.limits = edit.applied(to: stored.limits)
            try Self.validate(stored.draft, stamp, context)
        } else if declared.contains(id) {
            let limits = edit.applied(to: registry.overrides[id]?.limits)
            if let limits, limits.burst != nil, limits.rate == nil {
                throw StoreError(.invalid, reason: "client '\(id)' limits.burst: a burst set at run time needs a rate beside it")
            }
        }
        return try Self.edit(id, registry, declared, stamp, stored: { $0.limits = edit.applied(to: $0.limits) }, declared: { $0.limits = edit.applied(to: $0.limits) })
    }

    private static func validate(_ draft: ClientDraft, _ stamp: String, _ context: RegistryContext) throws(StoreError) {
        do {
            _ = try ConfigLoader.validateClient(draft, lastModified: stamp, context: context)
        } catch {
            throw StoreError(.invalid, reason: "the client is not valid, nothing was changed:\n\(error)")
        }
    }

    /// `2026-12-04T10:00:00Z`.
    public static func timestamp(_ date: Date) -> String {
        UTCTime.format(Int64(date.timeIntervalSince1970.rounded(.down)))
    }
}
