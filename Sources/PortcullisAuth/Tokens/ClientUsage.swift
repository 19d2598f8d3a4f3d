import Atomics
import NIOConcurrencyHelpers

/// The second a client last made a request (`last_used`). One per client id, kept across
/// snapshots by ``ClientUsageTable``; the request path touches it with an atomic load, and a
/// store only when the second changed, so a busy client's cache line stays shared.
public final class UsageClock: Sendable {
    private let seconds = ManagedAtomic<Int64>(0)

    public init() {}

    @inline(__always)
    public func touch(_ now: Int64) {
        if self.seconds.load(ordering: .relaxed) < now {
            self.seconds.store(now, ordering: .relaxed)
        }
    }

    public var lastUsed: Int64 { self.seconds.load(ordering: .relaxed) }
}

/// Every client's ``UsageClock``, handed to each compiled snapshot (off the request path) and
/// read about once a second by the store's usage writer.
public final class ClientUsageTable: Sendable {
    private struct State {
        var clocks: [String: UsageClock] = [:]
        var reported: [String: Int64] = [:]
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public func clock(for clientID: String) -> UsageClock {
        self.state.withLockedValue { state in
            if let clock = state.clocks[clientID] { return clock }
            let clock = UsageClock()
            state.clocks[clientID] = clock
            return clock
        }
    }

    /// Client id -> last-used second, for every client used since start.
    public func snapshot() -> [String: Int64] {
        self.state.withLockedValue { state in
            state.clocks.compactMapValues { $0.lastUsed > 0 ? $0.lastUsed : nil }
        }
    }

    /// Client id -> last-used second, for the clients used since the last call.
    public func takeChanges() -> [String: Int64] {
        self.state.withLockedValue { state in
            var changed: [String: Int64] = [:]
            for (id, clock) in state.clocks {
                let seconds = clock.lastUsed
                if seconds > 0, seconds != state.reported[id] {
                    changed[id] = seconds
                    state.reported[id] = seconds
                }
            }
            return changed
        }
    }
}
