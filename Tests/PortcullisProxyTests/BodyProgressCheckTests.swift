import NIOCore
import Testing

@testable import PortcullisProxy

@Suite struct BodyProgressCheckTests {
    static let timeout = TimeAmount.seconds(4)
    static let interval = TimeAmount.seconds(1)

    static func at(_ seconds: Int64) -> NIODeadline {
        .uptimeNanoseconds(UInt64(1_000_000_000 + seconds * 1_000_000_000))
    }

    /// Runs every check that falls due up to `until`; the time the body was cut, if it was.
    static func run(_ check: inout BodyProgressCheck, until: Int64, reads: Set<Int64> = [], held: Set<Int64> = []) -> Int64? {
        for second in 1...until {
            if reads.contains(second) { check.madeProgress() }
            guard let due = check.nextCheck, due <= Self.at(second) else { continue }
            if check.check(now: Self.at(second), readsHeld: held.contains(second), timeout: Self.timeout, interval: Self.interval) {
                return second
            }
        }
        return nil
    }

    @Test func aQuietBodyIsCutAtTheTimeoutNotBefore() {
        var check = BodyProgressCheck()
        check.start(now: Self.at(0), interval: Self.interval)
        #expect(Self.run(&check, until: 10) == 4)
        #expect(!check.isRunning)
    }

    @Test func everyReadRestartsTheGapSoALongBodyWithShortGapsLives() {
        var check = BodyProgressCheck()
        check.start(now: Self.at(0), interval: Self.interval)
        // A read every 3 s (shorter than the 4 s timeout) for 30 s: never cut.
        #expect(Self.run(&check, until: 30, reads: Set(stride(from: 3, through: 30, by: 3))) == nil)
        #expect(check.isRunning)
    }

    @Test func theGapCountsFromTheLastReadAndIsCutWithinOneInterval() {
        var check = BodyProgressCheck()
        check.start(now: Self.at(0), interval: Self.interval)
        // Last read in (2 s, 3 s]; seen at the 3 s check; cut 4 s later.
        #expect(Self.run(&check, until: 20, reads: [3]) == 7)
    }

    @Test func timeTheGatewayHoldsReadsIsNotTheClientsGap() {
        var check = BodyProgressCheck()
        check.start(now: Self.at(0), interval: Self.interval)
        #expect(Self.run(&check, until: 20, held: Set(1...10)) == 14)
    }

    @Test func aStoppedCheckNeverCuts() {
        var check = BodyProgressCheck()
        check.start(now: Self.at(0), interval: Self.interval)
        check.stop()
        let cut = check.check(now: Self.at(100), readsHeld: false, timeout: Self.timeout, interval: Self.interval)
        #expect(!cut)
        #expect(check.nextCheck == nil)
    }
}
