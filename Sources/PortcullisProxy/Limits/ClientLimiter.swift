import Atomics
import PortcullisPolicy

/// One client's limit counters, shared by every event loop: a rate (GCRA state), a quota (the
/// window and its count) and the exchanges in flight, each one atomic word updated by
/// compare-and-swap, so an admitted count never exceeds a limit and no lock is taken.
///
/// The counters outlive reloads (`LimiterRegistry` keeps them by client id); the limits they are
/// checked against come with each settings snapshot.
final class ClientLimiter: Sendable {
    private let rate = ManagedAtomic<UInt64>(0)
    private let quota = ManagedAtomic<UInt64>(0)
    private let inFlight = ManagedAtomic<Int>(0)
    /// The counts are exchanged with other replicas (`LimitSynchronizer`, PostgreSQL store);
    /// without it nothing below is read or written on the request path.
    let shared: Bool
    /// Rate cells admitted here since start (shared only), reported to the other replicas.
    private let rateCells = ManagedAtomic<UInt64>(0)
    /// The other replicas' quota count in a window, packed as the quota state is (window in the
    /// high 24 bits, count in the low 40): this replica admits only what they left.
    private let remoteQuota = ManagedAtomic<UInt64>(0)

    init(shared: Bool = false) {
        self.shared = shared
    }

    enum Refusal: Error, Equatable {
        case rate(retryAfterNanos: UInt64)
        case quota(retryAfterSeconds: Int64)
        case concurrency
    }

    /// What an admitted request's `RateLimit` header reports: the policy that is nearest to
    /// refusing, its remaining count and the seconds until it resets.
    struct Allowance: Equatable {
        /// `rate` or `quota`: a name of the client's `RateLimit-Policy`.
        var policy: String
        var remaining: Int
        var resetSeconds: Int64
    }

    /// Admits `cells` requests (a `$batch` counts its items) now, all or nothing. A request
    /// admitted with a concurrency limit holds one slot until `release()`.
    func admit(
        _ limits: ClientLimits,
        cells: Int,
        nowNanos: UInt64,
        nowSeconds: Int64
    ) -> Result<Allowance?, Refusal> {
        if let cap = limits.concurrency {
            var current = self.inFlight.load(ordering: .relaxed)
            while true {
                guard current < cap else { return .failure(.concurrency) }
                let (exchanged, original) = self.inFlight.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
                if exchanged { break }
                current = original
            }
        }
        var allowance: Allowance?
        var rateCost: UInt64 = 0
        if let spec = limits.rate {
            let interval = spec.intervalNanos
            var state = self.rate.load(ordering: .relaxed)
            while true {
                let decision = RateLimitMath.admit(state: state, now: nowNanos, cells: cells, interval: interval, burst: limits.effectiveBurst)
                guard let new = decision.newState else {
                    if limits.concurrency != nil { self.release() }
                    return .failure(.rate(retryAfterNanos: decision.waitNanos))
                }
                let (exchanged, original) = self.rate.compareExchange(expected: state, desired: new, ordering: .acquiringAndReleasing)
                if exchanged {
                    rateCost = interval &* UInt64(cells)
                    if self.shared { self.rateCells.wrappingIncrement(by: UInt64(cells), ordering: .relaxed) }
                    allowance = Allowance(policy: "rate", remaining: decision.remaining, resetSeconds: Int64((decision.waitNanos + 999_999_999) / 1_000_000_000))
                    break
                }
                state = original
            }
        }
        if let spec = limits.quota {
            let window = RateLimitMath.window(spec.window, seconds: nowSeconds)
            let limit = self.shared ? spec.count - self.remoteCount(window: window) : spec.count
            var state = self.quota.load(ordering: .relaxed)
            while true {
                let (new, remaining) = RateLimitMath.admitQuota(state: state, window: window, cells: cells, limit: limit)
                guard let new else {
                    // Refused whole: give back what the rate took.
                    if rateCost > 0 {
                        self.rate.wrappingDecrement(by: rateCost, ordering: .relaxed)
                        if self.shared { self.rateCells.wrappingDecrement(by: UInt64(cells), ordering: .relaxed) }
                    }
                    if limits.concurrency != nil { self.release() }
                    return .failure(.quota(retryAfterSeconds: RateLimitMath.secondsUntilNextWindow(spec.window, seconds: nowSeconds)))
                }
                let (exchanged, original) = self.quota.compareExchange(expected: state, desired: new, ordering: .acquiringAndReleasing)
                if exchanged {
                    if allowance == nil || remaining < allowance!.remaining {
                        allowance = Allowance(policy: "quota", remaining: remaining, resetSeconds: RateLimitMath.secondsUntilNextWindow(spec.window, seconds: nowSeconds))
                    }
                    break
                }
                state = original
            }
        }
        return .success(allowance)
    }

    /// Gives back the concurrency slot of an exchange that `admit` let through.
    func release() {
        self.inFlight.wrappingDecrement(ordering: .acquiringAndReleasing)
    }

    var exchangesInFlight: Int { self.inFlight.load(ordering: .relaxed) }

    /// Requests the rate allows at once now (for the metrics gauge).
    func rateRemaining(_ spec: RateSpec, burst: Int, nowNanos: UInt64) -> Int {
        RateLimitMath.admit(state: self.rate.load(ordering: .relaxed), now: nowNanos, cells: 0, interval: spec.intervalNanos, burst: burst).remaining
    }

    /// Requests the quota still allows in the current window (for the metrics gauge).
    func quotaRemaining(_ spec: QuotaSpec, nowSeconds: Int64) -> Int {
        let window = RateLimitMath.window(spec.window, seconds: nowSeconds)
        let limit = self.shared ? spec.count - self.remoteCount(window: window) : spec.count
        return RateLimitMath.admitQuota(state: self.quota.load(ordering: .relaxed), window: window, cells: 0, limit: limit).remaining
    }

    // MARK: - Across replicas (off the request path but for `remoteCount`)

    /// The other replicas' count in `window`; 0 for another window (a new one starts at 0).
    private func remoteCount(window: Int64) -> Int {
        let packed = self.remoteQuota.load(ordering: .relaxed)
        return Int64(packed >> 40) == (window & 0xFF_FFFF) ? Int(packed & 0xFF_FFFF_FFFF) : 0
    }

    /// The other replicas used `count` of the quota in `window`.
    func setRemoteQuota(window: Int64, count: Int) {
        self.remoteQuota.store((UInt64(window & 0xFF_FFFF) << 40) | UInt64(min(max(count, 0), 0xFF_FFFF_FFFF)), ordering: .relaxed)
    }

    /// What this replica's rate admitted since start.
    var rateCellsAdmitted: UInt64 { self.rateCells.load(ordering: .relaxed) }

    /// This replica's quota count in `window` (0 when its state is of another window).
    func quotaCount(window: Int64) -> Int {
        let state = self.quota.load(ordering: .relaxed)
        return Int64(state >> 40) == (window & 0xFF_FFFF) ? Int(state & 0xFF_FFFF_FFFF) : 0
    }

    /// Charges the token bucket with `nanos` of emission time used elsewhere since `since`
    /// (monotonic nanoseconds): other replicas' requests seen at an exchange, or their share
    /// while the store is unreachable. An idle bucket is charged from `since`, not from now, as
    /// the time between refilled it for everyone.
    func chargeRate(nanos: UInt64, since: UInt64) {
        guard nanos > 0 else { return }
        var state = self.rate.load(ordering: .relaxed)
        while true {
            let (exchanged, original) = self.rate.compareExchange(
                expected: state, desired: max(state, since) &+ nanos, ordering: .acquiringAndReleasing)
            if exchanged { return }
            state = original
        }
    }
}
