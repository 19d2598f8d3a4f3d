import NIOCore
import NIOPosix
import Testing

@testable import PortcullisProxy

/// `LoopContext.flushAtTickEnd` on a real event loop: on a quiet loop a flush runs at once; on a
/// busy one (recent ticks asked for several flushes each) flushes asked for while the loop
/// handles its events run after them, in the same tick, once per connection however often asked.
@Suite struct TickFlushTests {
    final class Spy: TickFlushing, @unchecked Sendable {  // touched on its event loop only
        var flushes = 0
        var flushDeferred = false
        func flushNow() { self.flushes += 1 }
    }

    final class Spies: @unchecked Sendable {  // touched on its event loop only
        let loop: LoopContext
        let first = Spy()
        let second = Spy()
        var flushesBeforeTheTickEnded = -1
        init(_ loop: LoopContext) { self.loop = loop }
    }

    @Test func aQuietLoopFlushesAtOnceAndABusyOneBatchesItsFlushesByTick() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let eventLoop = group.next()
        let settings = try ClientConnectionHandlerTests.Harness().loop.settings
        let spies = try eventLoop.submit { Spies(LoopContext(eventLoop: eventLoop, settings: settings)) }.wait()

        // Quiet: one flush a tick leaves at once, and the loop stays quiet.
        for tick in 1...3 {
            let atOnce = try eventLoop.submit { () -> Int in
                spies.loop.flushAtTickEnd(spies.first)
                return spies.first.flushes
            }.wait()
            #expect(atOnce == tick)
        }
        #expect(try eventLoop.submit { spies.loop.averageFlushRequests }.wait() < LoopContext.batchingThreshold)

        // Ticks that ask for many flushes each make the loop busy: from then on, flushes wait
        // for the end of their tick.
        for _ in 0..<4 {
            try eventLoop.submit { for _ in 0..<32 { spies.loop.flushAtTickEnd(Spy()) } }.wait()
        }
        #expect(try eventLoop.submit { spies.loop.averageFlushRequests }.wait() >= LoopContext.batchingThreshold)
        try eventLoop.submit { spies.first.flushes = 0 }.wait()

        try eventLoop.submit {
            spies.loop.flushAtTickEnd(spies.first)
            spies.loop.flushAtTickEnd(spies.second)
            spies.loop.flushAtTickEnd(spies.first)  // asked twice: flushed once
            spies.flushesBeforeTheTickEnded = spies.first.flushes + spies.second.flushes
        }.wait()
        // Submitted after the first task returned: runs after the flushes it queued.
        let flushes = try eventLoop.submit { (spies.first.flushes, spies.second.flushes) }.wait()

        #expect(spies.flushesBeforeTheTickEnded == 0)
        #expect(flushes.0 == 1)
        #expect(flushes.1 == 1)
        #expect(!spies.first.flushDeferred && !spies.second.flushDeferred)

        // The next tick's flushes are queued afresh (the loop is still busy: the average
        // falls by a quarter of the gap a tick).
        let again = try eventLoop.submit { () -> Int in
            for _ in 0..<16 { spies.loop.flushAtTickEnd(Spy()) }
            spies.loop.flushAtTickEnd(spies.first)
            return spies.first.flushes
        }.wait()
        let later = try eventLoop.submit { spies.first.flushes }.wait()
        #expect(again == 1)
        #expect(later == 2)

        // Quiet ticks bring the loop back to flushing at once.
        var quietTicks = 0
        while try eventLoop.submit({ spies.loop.averageFlushRequests }).wait() >= LoopContext.batchingThreshold {
            quietTicks += 1
            guard quietTicks <= 20 else {
                Issue.record("still batching after 20 ticks of one flush each")
                return
            }
            try eventLoop.submit { spies.loop.flushAtTickEnd(spies.second) }.wait()
        }
        let atOnce = try eventLoop.submit { () -> Int in
            let before = spies.first.flushes
            spies.loop.flushAtTickEnd(spies.first)
            return spies.first.flushes - before
        }.wait()
        #expect(atOnce == 1)
    }
}
