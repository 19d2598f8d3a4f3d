import NIOConcurrencyHelpers
import PortcullisPolicy

/// Counts failed client authentications at the token endpoints, per client id and per source
/// address (IPv6 by its /64, which one host usually holds whole), and locks a key out for the
/// rest of its window once it reaches the limit (then 429 with `Retry-After`).
///
/// Shared by every event loop and kept across reloads. It sits on the token endpoints only,
/// never on the proxied request path, so a lock is fine here.
public final class FailedAuthLimiter: Sendable {
    private struct Window {
        var start: Int64
        var failures: Int
    }

    /// Tracked keys are bounded; past this, expired windows go first, then the oldest.
    public static let maximumKeys = 100_000

    /// One key's failures in one window, as replicas exchange them through the store.
    public struct Count: Sendable, Equatable {
        public var start: Int64
        public var failures: Int
        public var window: Int64

        public init(start: Int64, failures: Int, window: Int64) {
            self.start = start
            self.failures = failures
            self.window = window
        }
    }

    private let windows = NIOLockedValueBox<[String: Window]>([:])
    /// Failures counted here since the last ``takeOutbox()``, with a store configured.
    private let outbox = NIOLockedValueBox<[String: Count]>([:])
    /// A store shares the counts between replicas.
    public let feedsStore: Bool

    public init(feedsStore: Bool = false) {
        self.feedsStore = feedsStore
    }

    /// The failures counted here since the last call (increments, by key and window).
    public func takeOutbox() -> [String: Count] {
        self.outbox.withLockedValue { outbox in
            defer { outbox = [:] }
            return outbox
        }
    }

    /// Every replica's counts from the store: a key's current window takes the larger count,
    /// so a client or address locked out on one replica is locked out on all.
    public func merge(_ counts: [String: Count], now: Int64) {
        self.windows.withLockedValue { windows in
            for (key, remote) in counts where now - remote.start < remote.window {
                if var local = windows[key], now - local.start < remote.window {
                    local.start = min(local.start, remote.start)
                    local.failures = max(local.failures, remote.failures)
                    windows[key] = local
                } else {
                    windows[key] = Window(start: remote.start, failures: remote.failures)
                }
            }
        }
    }

    /// Keys tracked now (expired windows included until a prune).
    public var count: Int { self.windows.withLockedValue { $0.count } }

    /// The keys a request is counted under.
    public static func keys(clientID: String?, address: IPAddress) -> [String] {
        let addressKey: String
        switch address.unmappedIPv4 {
        case .v4: addressKey = "ip:\(address.unmappedIPv4)"
        case .v6(let high, _): addressKey = "ip6:\(String(high, radix: 16))/64"
        }
        guard let clientID, !clientID.isEmpty else { return [addressKey] }
        return ["id:\(clientID)", addressKey]
    }

    /// Seconds until a locked-out key may try again; nil when none of `keys` is locked out.
    public func retryAfter(_ keys: [String], limit: Int, window: Int64, now: Int64) -> Int64? {
        self.windows.withLockedValue { windows in
            var wait: Int64?
            for key in keys {
                guard let entry = windows[key], now - entry.start < window, entry.failures >= limit else { continue }
                wait = max(wait ?? 0, entry.start + window - now)
            }
            return wait
        }
    }

    /// Counts a failure under every key; true when this failure locked one of them out.
    @discardableResult
    public func recordFailure(_ keys: [String], limit: Int, window: Int64, now: Int64) -> Bool {
        self.windows.withLockedValue { windows in
            if windows.count >= Self.maximumKeys { Self.prune(&windows, window: window, now: now) }
            var lockedOut = false
            for key in keys {
                var entry = windows[key] ?? Window(start: now, failures: 0)
                if now - entry.start >= window { entry = Window(start: now, failures: 0) }
                entry.failures += 1
                if entry.failures == limit { lockedOut = true }
                windows[key] = entry
                if self.feedsStore {
                    let start = entry.start
                    self.outbox.withLockedValue { outbox in
                        if var pending = outbox[key], pending.start == start {
                            pending.failures += 1
                            outbox[key] = pending
                        } else {
                            outbox[key] = Count(start: start, failures: 1, window: window)
                        }
                    }
                }
            }
            return lockedOut
        }
    }

    private static func prune(_ windows: inout [String: Window], window: Int64, now: Int64) {
        windows = windows.filter { now - $0.value.start < window }
        if windows.count >= Self.maximumKeys {
            let oldest = windows.sorted { $0.value.start < $1.value.start }.prefix(windows.count - Self.maximumKeys / 2)
            for (key, _) in oldest { windows.removeValue(forKey: key) }
        }
    }
}
