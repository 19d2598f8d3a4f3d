import Foundation
import PortcullisPolicy
import PortcullisStore
import Testing

@testable import PortcullisProxy

/// Limits across replicas: the merge of the others' counts, the share with the store down, and
/// simulated replicas on an injected clock whose total stays within the documented bound.
@Suite struct LimitSyncTests {
    /// 2026-12-07T00:00:00Z.
    static let midnight: Int64 = 1_796_601_600
    static let day = RateLimitMath.window(.day, seconds: midnight)
    static let month = RateLimitMath.window(.month, seconds: midnight)

    @Test func aRateTotalIsChargedByItsIncreaseFromTheSecondSighting() {
        var math = LimitSyncMath()
        let first = math.merge(LimitExchange(others: ["b": [LimitCount(clientID: "c", kind: .rate, window: 0, count: 500)]], replicas: 2))
        // A replica seen for the first time only sets where it starts from.
        #expect(first["c"]?.rateCells ?? 0 == 0)
        let second = math.merge(
            LimitExchange(
                others: [
                    "b": [LimitCount(clientID: "c", kind: .rate, window: 0, count: 530)],
                    "d": [LimitCount(clientID: "c", kind: .rate, window: 0, count: 7)],
                ], replicas: 3))
        #expect(second["c"]?.rateCells == 30)
        #expect(second["c"]?.replicas == 3)
        let third = math.merge(
            LimitExchange(
                others: [
                    "b": [LimitCount(clientID: "c", kind: .rate, window: 0, count: 531)],
                    "d": [LimitCount(clientID: "c", kind: .rate, window: 0, count: 9)],
                ], replicas: 3))
        #expect(third["c"]?.rateCells == 3)
    }

    @Test func quotaCountsAreSummedAndThisReplicaTakesItsShareOfWhatIsLeft() {
        var math = LimitSyncMath()
        let updates = math.merge(
            LimitExchange(
                others: [
                    "b": [LimitCount(clientID: "c", kind: .day, window: Self.day, count: 40)],
                    "d": [LimitCount(clientID: "c", kind: .day, window: Self.day, count: 20)],
                ], replicas: 3))
        let update = updates["c"]!
        #expect(update.quotaOthers == 60)
        // 100 - 10 (own) - 60 = 30 left: this replica may take 10 of them before the next exchange.
        #expect(update.quotaOthers(limit: 100, own: 10) == 80)
        // Alone, it may take all that is left.
        #expect(LimitSyncMath.Update(quotaOthers: 0, replicas: 1).quotaOthers(limit: 100, own: 10) == 0)
        // Nothing left: nothing more.
        #expect(update.quotaOthers(limit: 50, own: 10) == 40)
    }

    @Test func aLimiterAdmitsOnlyWhatTheOtherReplicasLeftInTheWindow() {
        let limiter = ClientLimiter(shared: true)
        let limits = ClientLimits(quota: QuotaSpec(count: 100, window: .day))
        limiter.setRemoteQuota(window: Self.day, count: 95)
        var admitted = 0
        for _ in 0..<10 where ClientLimiterTests.admitted(limiter.admit(limits, cells: 1, nowNanos: 1, nowSeconds: Self.midnight)) {
            admitted += 1
        }
        #expect(admitted == 5)
        #expect(limiter.quotaCount(window: Self.day) == 5)
        // The next UTC day starts again; the others' count was of the day before.
        #expect(ClientLimiterTests.admitted(limiter.admit(limits, cells: 1, nowNanos: 1, nowSeconds: Self.midnight + 86_400)))
    }

    @Test func anUnsharedLimiterIgnoresTheRemoteCounts() {
        let limiter = ClientLimiter()
        let limits = ClientLimits(quota: QuotaSpec(count: 3, window: .day))
        limiter.setRemoteQuota(window: Self.day, count: 3)
        #expect(ClientLimiterTests.admitted(limiter.admit(limits, cells: 1, nowNanos: 1, nowSeconds: Self.midnight)))
        #expect(limiter.rateCellsAdmitted == 0)
    }

    @Test func chargingTheRateUsesTheBucketAsIfTheRequestsWereMadeHere() {
        let limiter = ClientLimiter(shared: true)
        let limits = ClientLimits(rate: RateSpec(count: 10, period: .second), burst: 10)
        let now: UInt64 = 5_000_000_000
        // The others used 8 of the burst of 10.
        limiter.chargeRate(nanos: 8 * limits.rate!.intervalNanos, since: now)
        var admitted = 0
        for _ in 0..<5 where ClientLimiterTests.admitted(limiter.admit(limits, cells: 1, nowNanos: now, nowSeconds: Self.midnight)) {
            admitted += 1
        }
        #expect(admitted == 2)
        #expect(limiter.rateCellsAdmitted == 2)
    }

    /// Replicas that each try a request every millisecond, exchanging every `syncMillis` at
    /// staggered moments (what each pushed is what the others read), on an injected clock.
    static func simulate(_ limits: ClientLimits, replicas count: Int, seconds: Int, syncMillis: Int, exchange: Bool = true) -> Int {
        let slots = (0..<count).map { _ in ClientLimitSlot(clientID: "c", limits: limits, limiter: ClientLimiter(shared: true)) }
        var maths = Array(repeating: LimitSyncMath(), count: count)
        var published: [String: [LimitCount]] = [:]
        var admitted = 0
        for millis in 0..<(seconds * 1000) {
            let nanos = 1_000_000_000 + UInt64(millis) * 1_000_000
            let unix = Self.midnight + Int64(millis / 1000)
            for replica in 0..<count {
                if exchange, (millis + replica * syncMillis / count) % syncMillis == 0 {
                    published["r\(replica)"] = LimitSynchronizer.counts([slots[replica]], day: Self.day, month: Self.month)
                    let others = published.filter { $0.key != "r\(replica)" }
                    let updates = maths[replica].merge(LimitExchange(others: others, replicas: count))
                    LimitSynchronizer.apply(
                        updates, replicas: count, to: [slots[replica]], since: nanos - UInt64(syncMillis) * 1_000_000, day: Self.day, month: Self.month)
                }
                if ClientLimiterTests.admitted(slots[replica].limiter.admit(limits, cells: 1, nowNanos: nanos, nowSeconds: unix)) {
                    admitted += 1
                }
            }
        }
        return admitted
    }

    @Test func threeReplicasTogetherStayWithinTheDocumentedRateBound() {
        // 600/m (10/s), burst 10, one exchange a second, 60 s of load at every replica.
        let limits = ClientLimits(rate: RateSpec(count: 600, period: .minute), burst: 10)
        let total = Self.simulate(limits, replicas: 3, seconds: 60, syncMillis: 1000)
        print("rate simulation: \(total) admitted, 600 a minute")
        // rate x T + burst + (replicas - 1) x (burst + rate x 2 x limits_sync)
        let bound = 600 + 10 + 2 * (10 + 10 * 2)
        #expect(total <= bound, "\(total) admitted")
        #expect(total >= 600, "\(total) admitted")
        // Without the exchange each replica admits the whole rate: the bound above means something.
        #expect(Self.simulate(limits, replicas: 3, seconds: 60, syncMillis: 1000, exchange: false) > bound)
    }

    @Test func threeReplicasTogetherStayWithinTheDocumentedQuotaBound() {
        // 3000 a day, no rate: every replica would take it all in 3 s on its own.
        let limits = ClientLimits(quota: QuotaSpec(count: 3000, window: .day))
        let total = Self.simulate(limits, replicas: 3, seconds: 20, syncMillis: 1000)
        // At most limit + (replicas - 1) x ceil(limit / replicas) (docs/configuration.md).
        #expect(total >= 3000, "\(total) admitted")
        #expect(total <= 3000 + 2 * 1000, "\(total) admitted")
        print("quota simulation: \(total) admitted of 3000")
    }

    @Test func withTheStoreDownEachReplicaTakesItsShare() {
        var math = LimitSyncMath()
        _ = math.merge(LimitExchange(others: ["b": [], "d": []], replicas: 3))
        let quota = ClientLimitSlot(clientID: "q", limits: ClientLimits(quota: QuotaSpec(count: 30, window: .day)), limiter: ClientLimiter(shared: true))
        let rate = ClientLimitSlot(
            clientID: "r", limits: ClientLimits(rate: RateSpec(count: 60, period: .minute), burst: 1), limiter: ClientLimiter(shared: true))
        var quotaAdmitted = 0
        var rateAdmitted = 0
        for second in 0..<60 {
            let nanos = 1_000_000_000 + UInt64(second) * 1_000_000_000
            LimitSynchronizer.applyShare(math, to: [quota, rate], elapsed: 1_000_000_000, since: nanos - 1_000_000_000, day: Self.day, month: Self.month)
            for _ in 0..<5 {
                if ClientLimiterTests.admitted(quota.limiter.admit(quota.limits, cells: 1, nowNanos: nanos, nowSeconds: Self.midnight)) {
                    quotaAdmitted += 1
                }
                if ClientLimiterTests.admitted(rate.limiter.admit(rate.limits, cells: 1, nowNanos: nanos, nowSeconds: Self.midnight)) {
                    rateAdmitted += 1
                }
            }
        }
        #expect(quotaAdmitted == 10)
        // A third of 60 a minute, give or take the burst.
        #expect((19...22).contains(rateAdmitted), "\(rateAdmitted)")
    }
}

/// A limit changed through the store (`portcullis client limits`, `PUT .../limits`) is compiled
/// like a reload: the client's counters stay.
@Suite struct StoreLimitChangeTests {
    @Test func aStoreMadeChangeKeepsTheCountersAndAppliesTheNewLimit() throws {
        let declared = try LimiterRegistryTests.config(rate: "10/m")
        let context = RegistryContext(declared)
        let limiters = LimiterRegistry()
        var registry = Registry()
        let first = ClientLimitSlot.compile(declared, registry: limiters)
        let a = try #require(first[0])
        for _ in 0..<5 { _ = a.limiter.admit(a.limits, cells: 1, nowNanos: 1_000_000_000, nowSeconds: 0) }
        // Client a's own limits set at run time: a faster rate and a quota.
        let edit = LimitsEdit(set: ClientLimits(rate: RateSpec(count: 20, period: .minute), burst: 5, quota: QuotaSpec(count: 100, window: .day)))
        registry.apply(try RegistryEditor.change(for: .setLimits(id: "a", edit), registry: registry, context: context))
        let (clients, warnings) = registry.effectiveClients(declared: declared.clients, context: context)
        #expect(warnings.isEmpty)
        let second = ClientLimitSlot.compile(declared.replacingClients(clients), registry: limiters)
        let changed = try #require(second[0])
        #expect(changed.limiter === a.limiter)
        #expect(changed.limits.quota == QuotaSpec(count: 100, window: .day))
        #expect(changed.limits.rate == RateSpec(count: 20, period: .minute))
        guard case .failure(.rate) = changed.limiter.admit(changed.limits, cells: 1, nowNanos: 1_000_000_000, nowSeconds: 0) else {
            Issue.record("the change gave client a a fresh allowance")
            return
        }
    }
}
