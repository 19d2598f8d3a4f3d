import Testing

@testable import PortcullisPolicy

@Suite struct RateLimitMathTests {
    static let second: UInt64 = 1_000_000_000

    /// Admits one request at a time at `now`, storing the state as the gateway does.
    static func run(_ state: inout UInt64, now: UInt64, cells: Int = 1, rate: RateSpec, burst: Int) -> Bool {
        let decision = RateLimitMath.admit(state: state, now: now, cells: cells, interval: rate.intervalNanos, burst: burst)
        if let new = decision.newState { state = new }
        return decision.newState != nil
    }

    @Test func aFreshBucketAdmitsExactlyItsBurstAtOnce() {
        let rate = RateSpec(count: 10, period: .second)
        var state: UInt64 = 0
        let now = 1_000 * Self.second
        let admitted = (0..<50).filter { _ in Self.run(&state, now: now, rate: rate, burst: 20) }.count
        #expect(admitted == 20)
    }

    @Test func atTheRateEveryRequestIsAdmittedAndOneMoreIsNot() {
        let rate = RateSpec(count: 100, period: .minute)
        var state: UInt64 = 0
        var now = 5 * Self.second
        // Burst 1: one request per 600 ms, exactly.
        #expect(Self.run(&state, now: now, rate: rate, burst: 1))
        #expect(!Self.run(&state, now: now + 599_999_999, rate: rate, burst: 1))
        now += 600_000_000
        #expect(Self.run(&state, now: now, rate: rate, burst: 1))
        // Asked every 300 ms for the next minute: every other one, so with the one just admitted
        // exactly 100 in the minute.
        var admitted = 1
        for step in 0..<200 {
            if Self.run(&state, now: now + UInt64(step) * 300_000_000, rate: rate, burst: 1) { admitted += 1 }
        }
        #expect(admitted == 100)
    }

    @Test func aRefusalSaysHowLongToWaitAndRemainingCounts() {
        let rate = RateSpec(count: 10, period: .second)
        let now = 100 * Self.second
        let first = RateLimitMath.admit(state: 0, now: now, cells: 4, interval: rate.intervalNanos, burst: 5)
        #expect(first.newState == now + 400_000_000)
        #expect(first.remaining == 1)
        let refused = RateLimitMath.admit(state: first.newState!, now: now, cells: 2, interval: rate.intervalNanos, burst: 5)
        #expect(refused.newState == nil)
        #expect(refused.remaining == 1)
        #expect(refused.waitNanos == 100_000_000)
    }

    @Test func aBatchCountsAsItsItemsAndIsRefusedWhole() {
        let rate = RateSpec(count: 10, period: .second)
        let decision = RateLimitMath.admit(state: 0, now: Self.second, cells: 20, interval: rate.intervalNanos, burst: 10)
        #expect(decision.newState == nil)
        #expect(RateLimitMath.admit(state: 0, now: Self.second, cells: 10, interval: rate.intervalNanos, burst: 10).newState != nil)
    }

    @Test func quotaWindowsRollOverAtUTCMidnightAndMonthEnds() {
        // 2026-12-31T23:59:59Z and one second later.
        let lastSecond: Int64 = 1_798_761_599
        #expect(RateLimitMath.window(.day, seconds: lastSecond) + 1 == RateLimitMath.window(.day, seconds: lastSecond + 1))
        #expect(RateLimitMath.window(.month, seconds: lastSecond) + 1 == RateLimitMath.window(.month, seconds: lastSecond + 1))
        #expect(RateLimitMath.secondsUntilNextWindow(.day, seconds: lastSecond) == 1)
        #expect(RateLimitMath.secondsUntilNextWindow(.month, seconds: lastSecond) == 1)
        // 2028-02-28T12:00:00Z: a leap year's February has 29 days.
        let leap: Int64 = 1_835_352_000
        #expect(RateLimitMath.secondsUntilNextWindow(.month, seconds: leap) == 12 * 3600 + 24 * 3600)  // the rest of the 28th, then the 29th
        #expect(RateLimitMath.civil(days: RateLimitMath.days(year: 2028, month: 2, day: 29)) == (2028, 2, 29))
        #expect(RateLimitMath.window(.month, seconds: 0) == 0)
        #expect(RateLimitMath.window(.month, seconds: 1_796_601_600) == 56 * 12 + 11)  // 2026-12-07
    }

    @Test func aQuotaCountsWithinItsWindowAndStartsAgainInTheNext() {
        var state: UInt64 = 0
        var admitted = 0
        for _ in 0..<7 {
            let (new, _) = RateLimitMath.admitQuota(state: state, window: 20_000, cells: 1, limit: 5)
            if let new { state = new; admitted += 1 }
        }
        #expect(admitted == 5)
        #expect(RateLimitMath.admitQuota(state: state, window: 20_000, cells: 1, limit: 5).remaining == 0)
        let next = RateLimitMath.admitQuota(state: state, window: 20_001, cells: 3, limit: 5)
        #expect(next.newState != nil)
        #expect(next.remaining == 2)
    }

    @Test(arguments: [("10/s", true), ("100/m", true), ("5/h", true), ("0/s", false), ("010/s", false), ("10/d", false), ("10", false), ("-1/s", false)])
    func ratesAreParsedStrictly(text: String, valid: Bool) {
        #expect((RateSpec(parsing: text) != nil) == valid)
    }

    @Test func theMostSpecificLimitWinsAndRolesAddUp() {
        let global = ClientLimits(rate: RateSpec(count: 50, period: .second), burst: 100, concurrency: 16)
        let slow = ClientLimits(rate: RateSpec(count: 10, period: .second), burst: 20)
        let fast = ClientLimits(rate: RateSpec(count: 600, period: .minute), burst: 30, concurrency: 4)
        let both = ClientLimits.resolve(client: nil, roles: [slow, fast], global: global)
        #expect(both.rate == RateSpec(count: 600, period: .minute))
        #expect(both.burst == 30)
        #expect(both.concurrency == 4)
        let own = ClientLimits.resolve(client: ClientLimits(quota: QuotaSpec(count: 10_000, window: .day)), roles: [slow], global: global)
        #expect(own.rate == RateSpec(count: 10, period: .second))
        #expect(own.quota == QuotaSpec(count: 10_000, window: .day))
        #expect(own.concurrency == 16)
        #expect(ClientLimits.resolve(client: nil, roles: [], global: nil).isEmpty)
    }
}
