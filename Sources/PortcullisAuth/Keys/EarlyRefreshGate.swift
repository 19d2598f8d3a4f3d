import Atomics
import NIOConcurrencyHelpers
import NIOCore

/// Lets the request path ask an issuer's refresher for an early fetch when a token names a
/// `kid` the current set lacks, without letting tokens drive the IdP: at most one request per
/// `interval`, and a `kid` that a fetch did not bring stays refused for `negativeTTL`.
///
/// ``request(_:)`` runs on an event loop: two atomic loads and a compare-and-swap, and only
/// the request that wins the window takes a lock (to hand the `kid` and wake the refresher).
/// Everything else here belongs to the refresher's task.
final class EarlyRefreshGate: Sendable {
    /// What the refresher takes before each fetch.
    struct Request: Sendable {
        /// Whether an early fetch was asked for since the last fetch started.
        var requested: Bool
        /// The `kid`s that asked, to remember those the fetch does not bring.
        var keyIDs: [String]
    }

    private struct State {
        var requested = false
        var keyIDs: [String] = []
        var waiter: CheckedContinuation<Void, Never>?
    }

    /// `kid`s no fetch has brought, and until when (uptime nanoseconds) they stay refused.
    private final class UnknownKeyIDs: AtomicReference, Sendable {
        let expiries: [String: Int64]

        init(_ expiries: [String: Int64]) {
            self.expiries = expiries
        }
    }

    static let maximumKeyIDsPerRequest = 8

    let interval: Int64
    let negativeTTL: Int64
    let negativeCapacity: Int
    private let lastRequest = ManagedAtomic<Int64>(.min)
    private let unknown = ManagedAtomic(UnknownKeyIDs([:]))
    private let state = NIOLockedValueBox(State())
    private let acceptedRequests = ManagedAtomic<Int>(0)

    init(interval: Duration, negativeTTL: Duration, negativeCapacity: Int) {
        self.interval = Self.nanoseconds(interval)
        self.negativeTTL = Self.nanoseconds(negativeTTL)
        self.negativeCapacity = max(negativeCapacity, 0)
    }

    /// How many early fetches were let through.
    var acceptedCount: Int { self.acceptedRequests.load(ordering: .relaxed) }

    /// Asks for an early fetch because `keyID` is unknown; false when the window or the negative
    /// cache refuses.
    @discardableResult
    func request(_ keyID: String) -> Bool {
        let now = Self.now()
        let last = self.lastRequest.load(ordering: .relaxed)
        if last != .min && now &- last < self.interval {
            return false
        }
        if let until = self.unknown.load(ordering: .acquiring).expiries[keyID], now < until {
            return false
        }
        guard self.lastRequest.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged else {
            return false
        }
        self.acceptedRequests.wrappingIncrement(ordering: .relaxed)
        let waiter = self.state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            state.requested = true
            if state.keyIDs.count < Self.maximumKeyIDsPerRequest {
                state.keyIDs.append(keyID)
            }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
        return true
    }

    /// Clears and returns what was asked for; called as a fetch starts, since that fetch serves it.
    func take() -> Request {
        self.state.withLockedValue { state in
            defer {
                state.requested = false
                state.keyIDs.removeAll(keepingCapacity: true)
            }
            return Request(requested: state.requested, keyIDs: state.keyIDs)
        }
    }

    /// Refuses `keyIDs` for the negative TTL: a successful fetch did not bring them.
    func rememberUnknown(_ keyIDs: [String]) {
        guard !keyIDs.isEmpty, self.negativeCapacity > 0 else { return }
        let now = Self.now()
        var expiries = self.unknown.load(ordering: .acquiring).expiries.filter { $0.value > now }
        let until = self.negativeTTL > Int64.max - now ? Int64.max : now + self.negativeTTL
        for keyID in keyIDs {
            expiries[keyID] = until
        }
        if expiries.count > self.negativeCapacity {
            let kept = expiries.sorted { $0.value > $1.value }.prefix(self.negativeCapacity)
            expiries = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
        }
        // The refresher is the only writer.
        self.unknown.store(UnknownKeyIDs(expiries), ordering: .releasing)
    }

    /// Returns after `delay`, at once if an early fetch is asked for (or was, since the last
    /// ``take()``), or when the task is cancelled.
    func wait(upTo delay: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: delay)
            }
            group.addTask {
                await self.waitForRequest()
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForRequest() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLockedValue { state -> Bool in
                    if state.requested || Task.isCancelled {
                        return true
                    }
                    precondition(state.waiter == nil, "two refreshers wait on one issuer's gate")
                    state.waiter = continuation
                    return false
                }
                if resumeNow {
                    continuation.resume()
                }
            }
        } onCancel: {
            let waiter = self.state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }

    /// Monotonic nanoseconds; never compared across processes.
    static func now() -> Int64 {
        Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)
    }

    /// Whole nanoseconds of `duration`, saturating.
    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, overflowAdding) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow || overflowAdding {
            return seconds < 0 ? .min : .max
        }
        return total
    }
}
