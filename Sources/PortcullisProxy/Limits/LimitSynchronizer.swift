import Atomics
import Foundation
import Logging
import NIOCore
import PortcullisPolicy
import PortcullisStore

/// What `/metrics` says of the limit exchange across replicas.
public final class LimitSyncStatus: Sendable {
    private let active = ManagedAtomic<Bool>(false)
    private let degraded = ManagedAtomic<Bool>(false)
    private let replicas = ManagedAtomic<Int>(1)

    public init() {}

    /// The exchange runs (a PostgreSQL store).
    public var isActive: Bool { self.active.load(ordering: .relaxed) }
    /// The last exchange failed: each replica enforces its share of every limit.
    public var isDegraded: Bool { self.degraded.load(ordering: .relaxed) }
    /// Replicas alive at the last exchange, this one included.
    public var replicaCount: Int { self.replicas.load(ordering: .relaxed) }

    func markActive() { self.active.store(true, ordering: .relaxed) }
    func set(degraded: Bool, replicas: Int) {
        self.degraded.store(degraded, ordering: .relaxed)
        self.replicas.store(replicas, ordering: .relaxed)
    }

    func render(into out: inout PrometheusTextWriter) {
        guard self.isActive else { return }
        out.family(
            "portcullis_limits_store_degraded",
            .gauge,
            help: "1 while the store cannot be reached for the limit exchange: each replica enforces its share (limit / replicas last seen) of every client limit."
        )
        out.sample("portcullis_limits_store_degraded", self.isDegraded ? 1 : 0, labels: [:])
        out.family("portcullis_limits_replicas", .gauge, help: "Replicas sharing the client limits at the last exchange, this one included.")
        out.sample("portcullis_limits_replicas", self.replicaCount, labels: [:])
    }
}

/// The arithmetic of the exchange, pure: from what the other replicas reported, what each
/// client's limiter here is charged (rate) or told (quota); and, with the store unreachable,
/// this replica's share.
struct LimitSyncMath: Sendable {
    struct Update: Equatable, Sendable {
        /// Rate cells the others admitted since the last exchange.
        var rateCells: Int64 = 0
        /// The others' quota count in the current window.
        var quotaOthers = 0
        /// Replicas alive, this one included.
        var replicas = 1

        /// What this replica counts as the others' use of a quota of `limit` when it has used
        /// `own`: their count, or more so that it takes at most its share of what is left.
        func quotaOthers(limit: Int, own: Int) -> Int {
            let left = max(0, limit - own - self.quotaOthers)
            let share = (left + self.replicas - 1) / self.replicas
            return limit - own - share
        }
    }

    /// Client -> replica -> the rate total last seen.
    private(set) var seenRate: [String: [String: Int64]] = [:]
    /// Client -> the others' quota count at the last exchange.
    private(set) var seenQuota: [String: LimitCount] = [:]
    /// Replicas alive at the last exchange, this one included (1 before the first).
    private(set) var replicas = 1

    /// The others' counts: rate totals are charged by their increase (a replica seen for the
    /// first time only sets where it starts from), quota counts are summed.
    mutating func merge(_ exchange: LimitExchange) -> [String: Update] {
        self.replicas = max(1, exchange.replicas)
        var updates: [String: Update] = [:]
        var quota: [String: LimitCount] = [:]
        for (replica, counts) in exchange.others {
            for count in counts {
                switch count.kind {
                case .rate:
                    let previous = self.seenRate[count.clientID]?[replica]
                    self.seenRate[count.clientID, default: [:]][replica] = count.count
                    guard let previous else { continue }
                    // A smaller total: that replica's counter started again.
                    let delta = count.count >= previous ? count.count - previous : count.count
                    if delta > 0 { updates[count.clientID, default: Update()].rateCells += delta }
                case .day, .month:
                    var sum = quota[count.clientID] ?? LimitCount(clientID: count.clientID, kind: count.kind, window: count.window, count: 0)
                    sum.count += count.count
                    quota[count.clientID] = sum
                    updates[count.clientID, default: Update()].quotaOthers = Int(sum.count)
                }
            }
        }
        self.seenQuota = quota
        for key in updates.keys { updates[key]!.replicas = self.replicas }
        return updates
    }


    /// The store unreachable: the rate's emission time the others are assumed to use over
    /// `elapsed` nanoseconds, so this replica gets 1/replicas of the rate.
    func degradedRateNanos(elapsed: UInt64) -> UInt64 {
        elapsed / UInt64(self.replicas) * UInt64(self.replicas - 1)
    }

    /// The store unreachable: the others' count this replica assumes in `window`, so it admits
    /// at most its share (limit / replicas, rounded up) of the window, less what the others
    /// were last seen to use beyond theirs.
    func degradedQuotaOthers(clientID: String, limit: Int, kind: LimitCount.Kind, window: Int64) -> Int {
        let share = (limit + self.replicas - 1) / self.replicas
        let seen = self.seenQuota[clientID].flatMap { $0.kind == kind && $0.window == window ? Int($0.count) : nil } ?? 0
        return max(seen, limit - share)
    }
}

/// Exchanges every limited client's counts with the other replicas through the store, off the
/// event loops, every `store.limits_sync`; the request path keeps counting locally (lock-free)
/// and so admits only what the others left, seen at most a couple of intervals late.
final class LimitSynchronizer: Sendable {
    let store: any LimitCounterStore
    let interval: Duration
    let status: LimitSyncStatus
    let logger: Logger
    /// This process's id in the counters table.
    let replicaID: String

    init(store: any LimitCounterStore, interval: Duration, status: LimitSyncStatus, logger: Logger) {
        self.store = store
        self.interval = interval
        self.status = status
        self.logger = logger
        self.replicaID = UUID().uuidString.lowercased()
    }

    /// Runs until cancelled; `slots` gives the limited clients of the running snapshot.
    func run(slots: @escaping @Sendable () async -> [ClientLimitSlot]) async {
        self.status.markActive()
        var math = LimitSyncMath()
        var degraded = false
        var last = NIODeadline.now().uptimeNanoseconds
        // At a fixed rate (not an interval after each exchange), so an exchange that takes time
        // does not stretch the period the documented bound counts on.
        let period = UInt64(self.interval.components.seconds) * 1_000_000_000 + UInt64(self.interval.components.attoseconds / 1_000_000_000)
        var next = last + period
        while !Task.isCancelled {
            let wait = next > NIODeadline.now().uptimeNanoseconds ? next - NIODeadline.now().uptimeNanoseconds : 0
            try? await Task.sleep(for: .nanoseconds(Int64(wait)))
            if Task.isCancelled { break }
            next = max(next + period, NIODeadline.now().uptimeNanoseconds)
            let shared = await slots().filter { $0.limiter.shared && ($0.limits.rate != nil || $0.limits.quota != nil) }
            let now = NIODeadline.now().uptimeNanoseconds
            let elapsed = now > last ? now - last : 0
            last = now
            guard !shared.isEmpty else { continue }
            let ok = await self.exchange(shared, math: &math, elapsed: elapsed, degraded: degraded)
            if ok == degraded {
                // A transition: said once.
                if ok {
                    self.logger.info("limits: the store is reachable again; client limits are shared across replicas", metadata: ["replicas": "\(math.replicas)"])
                } else {
                    self.logger.warning(
                        "limits: the store cannot be reached; each replica enforces its share of every client limit until it is back",
                        metadata: ["replicas": "\(math.replicas)", "share": "1/\(math.replicas)"]
                    )
                }
                degraded = !ok
            }
            self.status.set(degraded: degraded, replicas: math.replicas)
        }
    }

    /// One exchange and its application; false when the store failed (the share applied).
    func exchange(_ slots: [ClientLimitSlot], math: inout LimitSyncMath, elapsed: UInt64, degraded: Bool) async -> Bool {
        let seconds = Int64(Date().timeIntervalSince1970)
        let day = RateLimitMath.window(.day, seconds: seconds)
        let month = RateLimitMath.window(.month, seconds: seconds)
        let aliveSeconds = max(5, 3 * self.interval.components.seconds + 1)
        do throws(StoreError) {
            let exchange = try await self.store.exchangeLimitCounts(
                replica: self.replicaID, counts: Self.counts(slots, day: day, month: month), day: day, month: month, now: seconds,
                aliveSeconds: aliveSeconds)
            let updates = math.merge(exchange)
            Self.apply(updates, replicas: math.replicas, to: slots, since: Self.since(elapsed), day: day, month: month)
            return true
        } catch {
            if !degraded {
                self.logger.debug("limits: exchange failed", metadata: ["error": "\(error)"])
            }
            Self.applyShare(math, to: slots, elapsed: elapsed, since: Self.since(elapsed), day: day, month: month)
            return false
        }
    }

    /// This replica's counts: each rate's total since start, each quota's current window.
    static func counts(_ slots: [ClientLimitSlot], day: Int64, month: Int64) -> [LimitCount] {
        var counts: [LimitCount] = []
        for slot in slots {
            if slot.limits.rate != nil {
                counts.append(LimitCount(clientID: slot.clientID, kind: .rate, window: 0, count: Int64(slot.limiter.rateCellsAdmitted)))
            }
            if let quota = slot.limits.quota {
                let (kind, window) = Self.window(quota, day: day, month: month)
                counts.append(LimitCount(clientID: slot.clientID, kind: kind, window: window, count: Int64(slot.limiter.quotaCount(window: window))))
            }
        }
        return counts
    }

    /// The others' use, applied: their rate cells charged to the bucket here; of a quota, this
    /// replica may use until the next exchange its share (1/replicas, rounded up) of what is
    /// left, so replicas that all run out together do not each take the whole remainder.
    static func apply(
        _ updates: [String: LimitSyncMath.Update], replicas: Int, to slots: [ClientLimitSlot], since: UInt64, day: Int64, month: Int64
    ) {
        for slot in slots {
            let update = updates[slot.clientID] ?? LimitSyncMath.Update(replicas: replicas)
            if let rate = slot.limits.rate, update.rateCells > 0 {
                slot.limiter.chargeRate(nanos: UInt64(update.rateCells) &* rate.intervalNanos, since: since)
            }
            if let quota = slot.limits.quota {
                let window = Self.window(quota, day: day, month: month).window
                let own = slot.limiter.quotaCount(window: window)
                slot.limiter.setRemoteQuota(window: window, count: update.quotaOthers(limit: quota.count, own: own))
            }
        }
    }

    /// The store unreachable: the rate charged with the others' share of the time elapsed, each
    /// quota capped at this replica's share.
    static func applyShare(_ math: LimitSyncMath, to slots: [ClientLimitSlot], elapsed: UInt64, since: UInt64, day: Int64, month: Int64) {
        for slot in slots {
            if slot.limits.rate != nil {
                slot.limiter.chargeRate(nanos: math.degradedRateNanos(elapsed: elapsed), since: since)
            }
            if let quota = slot.limits.quota {
                let (kind, window) = Self.window(quota, day: day, month: month)
                slot.limiter.setRemoteQuota(
                    window: window, count: math.degradedQuotaOthers(clientID: slot.clientID, limit: quota.count, kind: kind, window: window))
            }
        }
    }

    /// The start of the interval since the last exchange, on the request path's clock.
    static func since(_ elapsed: UInt64) -> UInt64 {
        let now = NIODeadline.now().uptimeNanoseconds
        return now > elapsed ? now - elapsed : 0
    }

    static func window(_ quota: QuotaSpec, day: Int64, month: Int64) -> (kind: LimitCount.Kind, window: Int64) {
        quota.window == .day ? (.day, day) : (.month, month)
    }
}
