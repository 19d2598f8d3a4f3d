import Foundation
import Logging
import PortcullisAuth
import PortcullisPolicy
import PortcullisStore

/// The token endpoint's lockouts: `GET /api/v1/lockouts`, `POST /api/v1/clients/{id}/unlock`
/// and `DELETE /api/v1/lockouts/{key}` (`id:CLIENT`, `ip:ADDRESS` or `ip6:PREFIX/64`).
extension AdminAPI {
    func lockouts() -> Response {
        guard let limiter = self.limiter, let settings = self.config.issuers.first(where: \.builtin)?.builtinSettings else {
            return .json(.ok, ["lockouts": [] as [Any]])
        }
        let now = Int64(Date().timeIntervalSince1970)
        let list = limiter.lockouts(
            limits: { $0.hasPrefix("id:") ? settings.maxFailedAuth : settings.maxFailedAuthPerAddress },
            window: settings.failureWindow.nanoseconds / 1_000_000_000,
            now: now
        )
        return .json(.ok, ["lockouts": list.map { ["key": $0.key, "failures": $0.failures, "retry_after": $0.retryAfter] as [String: Any] }])
    }

    /// Forgets a key's failures on this replica and, with a store, on every replica; audited.
    func unlock(_ key: String, clientID: String?, actor: AuditActor) async -> Response {
        guard let limiter = self.limiter else {
            return .error(.notFound, "not_found", "no built-in issuer is configured: nothing is locked out")
        }
        if let clientID, !self.config.clients.contains(where: { $0.id == clientID }) {
            return .error(.notFound, "not_found", "no client has id '\(clientID)'")
        }
        guard key.hasPrefix("id:") || key.hasPrefix("ip:") || key.hasPrefix("ip6:") else {
            return .error(.badRequest, "invalid_request", "expected a lockout key: id:CLIENT, ip:ADDRESS or ip6:PREFIX/64")
        }
        let wasLocked = limiter.unlock(key, now: Int64(Date().timeIntervalSince1970))
        do throws(StoreError) {
            try await self.auditTrail.record(
                actor: actor,
                action: "lockout.clear",
                client: clientID,
                before: ["lockout": .list([key])],
                after: ["lockout": .none]
            )
        } catch {
            return .error(.internalServerError, "audit_failed", "the lockout is cleared, but its audit record was not written: \(error.reason)")
        }
        return .json(.ok, ["unlocked": key, "had_failures": wasLocked])
    }
}

extension AdminAPI {
    /// A client revoked one of its own tokens at `POST /oauth/revoke`: recorded off the event
    /// loop, the client as the actor.
    func auditRevocation(_ clientID: String, _ tokenID: String, _ address: IPAddress, logger: Logger) {
        Task {
            do throws(StoreError) {
                try await self.auditTrail.record(
                    actor: AuditActor(name: "client \(clientID)", source: "\(address)"),
                    action: "token.revoke",
                    client: clientID,
                    tokenID: tokenID
                )
            } catch {
                logger.warning("audit: a self-revocation was not recorded", metadata: ["client_id": "\(clientID)", "error": "\(error.reason)"])
            }
        }
    }
}
