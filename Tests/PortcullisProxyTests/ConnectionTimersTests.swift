import NIOCore
import Testing

@testable import PortcullisProxy

/// The connection's deadlines as one value: one task armed for the earliest, re-armed only
/// when an earlier deadline comes, each deadline taken once when due.
@Suite struct ConnectionTimersTests {
    static let t0 = NIODeadline.uptimeNanoseconds(1_000_000_000)

    @Test func noDeadlineArmsNothing() {
        var timers = ConnectionTimers()
        #expect(timers.earliest == nil)
        let got1 = timers.rearm()
        #expect(got1 == nil)
    }

    @Test func theTaskIsArmedForTheEarliestDeadlineOfAll() {
        var timers = ConnectionTimers()
        timers.head = Self.t0 + .seconds(60)
        timers.exchange = Self.t0 + .seconds(30)
        timers.sendStall = Self.t0 + .seconds(20)
        timers.close = Self.t0 + .seconds(40)
        timers.backendQueue = Self.t0 + .seconds(50)
        let got2 = timers.rearm()
        #expect(got2 == Self.t0 + .seconds(20))
        timers.bodyProgress.start(now: Self.t0, interval: .seconds(1))
        #expect(timers.earliest == Self.t0 + .seconds(1), "the body check counts as a deadline")
    }

    @Test func aLaterDeadlineKeepsTheArmedTaskAnEarlierOneReArmsIt() {
        var timers = ConnectionTimers()
        timers.exchange = Self.t0 + .seconds(30)
        let got3 = timers.rearm()
        #expect(got3 == Self.t0 + .seconds(30))
        timers.head = Self.t0 + .seconds(60)
        let got4 = timers.rearm()
        #expect(got4 == nil, "the armed task fires first and re-arms then")
        timers.sendStall = Self.t0 + .seconds(5)
        let got5 = timers.rearm()
        #expect(got5 == Self.t0 + .seconds(5))
        #expect(timers.armedAt == Self.t0 + .seconds(5))
        timers.disarmed()
        let got6 = timers.rearm()
        #expect(got6 == Self.t0 + .seconds(5), "once fired, the next earliest is armed again")
    }

    @Test func aDeadlineIsTakenOnceWhenDueAndNotBefore() {
        var timers = ConnectionTimers()
        timers.exchange = Self.t0 + .seconds(30)
        timers.head = Self.t0 + .seconds(10)
        let early = timers.take(.exchange, dueAt: Self.t0 + .seconds(29))
        #expect(!early)
        #expect(timers.exchange == Self.t0 + .seconds(30))
        let due = timers.take(.exchange, dueAt: Self.t0 + .seconds(30))
        #expect(due)
        #expect(timers.exchange == nil)
        let again = timers.take(.exchange, dueAt: Self.t0 + .seconds(31))
        #expect(!again, "taken once")
        let unset = timers.take(.close, dueAt: Self.t0 + .seconds(31))
        #expect(!unset, "never set")
        let head = timers.take(.head, dueAt: Self.t0 + .seconds(31))
        #expect(head)
        #expect(timers.earliest == nil)
    }

    /// The body check counts with the deadlines; a deadline that overflowed to
    /// `distantFuture` is never due and arms nothing.
    @Test func theBodyCheckCountsAndDistantFutureIsNoDeadline() {
        var timers = ConnectionTimers()
        timers.exchange = .distantFuture
        #expect(timers.earliest == nil)
        #expect(timers.rearm() == nil)
        timers.bodyProgress.start(now: Self.t0, interval: .seconds(5))
        timers.head = Self.t0 + .seconds(10)
        #expect(timers.earliest == Self.t0 + .seconds(5))
        #expect(timers.rearm() == Self.t0 + .seconds(5))
        #expect(MemoryLayout<ConnectionTimers>.size <= 80, "\(MemoryLayout<ConnectionTimers>.size) bytes")
    }
}
