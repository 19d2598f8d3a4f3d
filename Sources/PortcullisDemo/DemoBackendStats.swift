import NIOConcurrencyHelpers
import NIOCore

/// Counters across the whole demo backend, as `/demo/stats` reports them.
public struct DemoBackendStats: Sendable, Equatable {
    public var connectionsAccepted: Int
    public var connectionsOpen: Int
    /// Request heads received, the current `/demo/stats` request included.
    public var requests: Int
    /// `/demo/slow` requests waiting now, and the most that ever waited at once.
    public var slowInFlight = 0
    public var slowInFlightMax = 0

    public init(connectionsAccepted: Int = 0, connectionsOpen: Int = 0, requests: Int = 0) {
        self.connectionsAccepted = connectionsAccepted
        self.connectionsOpen = connectionsOpen
        self.requests = requests
    }
}

/// Counts connections and requests and keeps the open connections, so `close()` can end them.
/// A lock is fine here: the demo backend is a test and demo tool, not the gateway's hot path.
final class DemoConnectionTracker: Sendable {
    private struct State {
        var stats = DemoBackendStats()
        var channels: [ObjectIdentifier: any Channel] = [:]
        var isClosed = false
    }

    private let state = NIOLockedValueBox(State())

    var stats: DemoBackendStats {
        self.state.withLockedValue { $0.stats }
    }

    /// Records an accepted connection; false when the backend is closing and the caller should close it.
    func connectionOpened(_ channel: any Channel) -> Bool {
        self.state.withLockedValue { state in
            guard !state.isClosed else { return false }
            state.stats.connectionsAccepted += 1
            state.stats.connectionsOpen += 1
            state.channels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func connectionClosed(_ channel: any Channel) {
        self.state.withLockedValue { state in
            if state.channels.removeValue(forKey: ObjectIdentifier(channel)) != nil {
                state.stats.connectionsOpen -= 1
            }
        }
    }

    func requestReceived() {
        self.state.withLockedValue { $0.stats.requests += 1 }
    }

    func slowStarted() {
        self.state.withLockedValue { state in
            state.stats.slowInFlight += 1
            state.stats.slowInFlightMax = max(state.stats.slowInFlightMax, state.stats.slowInFlight)
        }
    }

    func slowEnded() {
        self.state.withLockedValue { $0.stats.slowInFlight -= 1 }
    }

    /// Zeroes the accepted and request counts; the open count stays the live number.
    func reset() {
        self.state.withLockedValue { state in
            state.stats.connectionsAccepted = 0
            state.stats.requests = 0
            state.stats.slowInFlightMax = state.stats.slowInFlight
        }
    }

    /// Stops admitting connections and hands back the open ones.
    func closeAll() -> [any Channel] {
        self.state.withLockedValue { state in
            state.isClosed = true
            return Array(state.channels.values)
        }
    }
}
