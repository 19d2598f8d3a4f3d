import Logging
import NIOConcurrencyHelpers
import PortcullisPolicy

/// Watches the running configuration's client secrets off the event loops: says when the next
/// one (current or in its grace) ends, so the snapshot is compiled again then, and logs a
/// warning once per secret as its expiry comes near.
public final class SecretExpiryWatch: Sendable {
    private struct State {
        var boundary: Int64?
        /// Client id -> (expiry, warning lead).
        var expiries: [String: (at: Int64, lead: Int64)] = [:]
        /// Client id -> the expiry already warned about.
        var warned: [String: Int64] = [:]
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// A configuration was applied at `now`.
    public func configApplied(_ config: GatewayConfig, now: Int64) {
        let boundary = config.nextSecretBoundary(after: now)
        var expiries: [String: (at: Int64, lead: Int64)] = [:]
        for (id, at) in config.secretExpiries() { expiries[id] = (at, config.secretWarningLead(clientID: id)) }
        self.state.withLockedValue { state in
            state.boundary = boundary
            state.expiries = expiries
        }
    }

    /// Whether a secret has ended since the last configuration was applied.
    public func boundaryPassed(now: Int64) -> Bool {
        self.state.withLockedValue { state in state.boundary.map { now >= $0 } ?? false }
    }

    /// Client id -> expiry of the secrets to warn about now, each once.
    public func takeWarnings(now: Int64) -> [(clientID: String, expiresAt: Int64)] {
        self.state.withLockedValue { state in
            var due: [(String, Int64)] = []
            for (id, expiry) in state.expiries where now >= expiry.at - expiry.lead && state.warned[id] != expiry.at {
                state.warned[id] = expiry.at
                due.append((id, expiry.at))
            }
            return due.sorted { $0.0 < $1.0 }
        }
    }

    /// Logs the due warnings.
    public func warn(now: Int64, logger: Logger) {
        for (id, at) in self.takeWarnings(now: now) {
            let text = at > now ? "client secret expires soon; rotate it (portcullis client rotate --grace)" : "client secret has expired; the client cannot get tokens until it is rotated"
            logger.warning("\(text)", metadata: ["client_id": "\(id)", "expires": "\(UTCTime.format(at))", "seconds_left": "\(at - now)"])
        }
    }
}
