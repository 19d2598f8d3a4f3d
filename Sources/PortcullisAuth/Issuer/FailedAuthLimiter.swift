import NIOConcurrencyHelpers
import PortcullisPolicy

/// Counts failed client authentications at the token endpoints, per client id and per source
/// address (IPv6 by its /64, which one host usually holds whole), each key against its own
/// limit, and locks a key out for the rest of its window once it reaches it (then 429 with
/// `Retry-After`). An address has a higher limit than a client id, so one client's failures do
/// not lock out the other clients behind the same NAT address.
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

    /// A key a request is counted under, with the failures that lock it out.
    public struct Key: Sendable, Equatable {
        public var name: String
        public var limit: Int

        public init(_ name: String, limit: Int) {
            self.name = name
            self.limit = limit
        }
    }

    /// A locked-out key: what `GET /api/v1/lockouts` lists.
    public struct Lockout: Sendable, Equatable {
        public var key: String
        public var failures: Int
        public var retryAfter: Int64
    }

    private let windows = NIOLockedValueBox<[String: Window]>([:])
    /// Failures counted here since the last ``takeOutbox()``, with a store configured.
    private let outbox = NIOLockedValueBox<[String: Count]>([:])
    /// Keys unlocked here since the last ``takeUnlocks()`` (key -> when), with a store.
    private let unlockOutbox = NIOLockedValueBox<[String: Int64]>([:])
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

    /// The unlocks made here since the last call, for the store.
    public func takeUnlocks() -> [String: Int64] {
        self.unlockOutbox.withLockedValue { outbox in
            defer { outbox = [:] }
            return outbox
        }
    }

    /// Every replica's counts from the store: a key's current window takes the larger count,
    /// so a client or address locked out on one replica is locked out on all. An unlock (key ->
    /// when) made on any replica first drops the windows that started before it.
    public func merge(_ counts: [String: Count], unlocks: [String: Int64] = [:], now: Int64) {
        self.windows.withLockedValue { windows in
            for (key, at) in unlocks {
                if let local = windows[key], local.start <= at { windows.removeValue(forKey: key) }
            }
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

    /// A client id's key.
    public static func clientKey(_ clientID: String) -> String { "id:\(clientID)" }

    /// An address's key: IPv4 whole, IPv6 by its /64.
    public static func addressKey(_ address: IPAddress) -> String {
        switch address.unmappedIPv4 {
        case .v4: return "ip:\(address.unmappedIPv4)"
        case .v6(let high, _): return "ip6:\(String(high, radix: 16))/64"
        }
    }

    /// The keys a request is counted under: the client id it names (if any) against
    /// `perClient`, its address against `perAddress`.
    public static func keys(clientID: String?, address: IPAddress, perClient: Int, perAddress: Int) -> [Key] {
        let addressKey = Key(Self.addressKey(address), limit: perAddress)
        guard let clientID, !clientID.isEmpty else { return [addressKey] }
        return [Key(Self.clientKey(clientID), limit: perClient), addressKey]
    }

    /// Seconds until a locked-out key may try again; nil when none of `keys` is locked out.
    public func retryAfter(_ keys: [Key], window: Int64, now: Int64) -> Int64? {
        self.windows.withLockedValue { windows in
            var wait: Int64?
            for key in keys {
                guard let entry = windows[key.name], now - entry.start < window, entry.failures >= key.limit else { continue }
                wait = max(wait ?? 0, entry.start + window - now)
            }
            return wait
        }
    }

    /// The keys locked out now.
    public func lockouts(limits: (_ key: String) -> Int, window: Int64, now: Int64) -> [Lockout] {
        self.windows.withLockedValue { windows in
            windows.compactMap { key, entry in
                guard now - entry.start < window, entry.failures >= limits(key) else { return nil }
                return Lockout(key: key, failures: entry.failures, retryAfter: entry.start + window - now)
            }.sorted { $0.key < $1.key }
        }
    }

    /// Forgets `key`'s failures (an admin's unlock); true when it had any. With a store, the
    /// unlock goes to every replica.
    @discardableResult
    public func unlock(_ key: String, now: Int64) -> Bool {
        let had = self.windows.withLockedValue { $0.removeValue(forKey: key) != nil }
        if self.feedsStore {
            self.unlockOutbox.withLockedValue { $0[key] = now }
            self.outbox.withLockedValue { _ = $0.removeValue(forKey: key) }
        }
        return had
    }

    /// Counts a failure under every key; true when this failure locked one of them out.
    @discardableResult
    public func recordFailure(_ keys: [Key], window: Int64, now: Int64) -> Bool {
        self.windows.withLockedValue { windows in
            if windows.count >= Self.maximumKeys { Self.prune(&windows, window: window, now: now) }
            var lockedOut = false
            for counted in keys {
                let key = counted.name
                var entry = windows[key] ?? Window(start: now, failures: 0)
                if now - entry.start >= window { entry = Window(start: now, failures: 0) }
                entry.failures += 1
                if entry.failures == counted.limit { lockedOut = true }
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
