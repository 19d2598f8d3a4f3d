import NIOCore
import NIOPosix
import Testing

@testable import PortcullisProxy

/// `LoopContext.flushAtTickEnd` on a real event loop: flushes asked for while the loop handles
/// its events run after them, in the same tick, once per connection however often asked.
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

    @Test func flushesAskedForDuringATickRunAfterItOncePerConnection() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let eventLoop = group.next()
        let settings = try ClientConnectionHandlerTests.Harness().loop.settings

        let spies = try eventLoop.submit { () -> Spies in
            let spies = Spies(LoopContext(eventLoop: eventLoop, settings: settings))
            spies.loop.flushAtTickEnd(spies.first)
            spies.loop.flushAtTickEnd(spies.second)
            spies.loop.flushAtTickEnd(spies.first)  // asked twice: flushed once
            spies.flushesBeforeTheTickEnded = spies.first.flushes + spies.second.flushes
            return spies
        }.wait()
        // Submitted after the first task returned: runs after the flushes it queued.
        let flushes = try eventLoop.submit { (spies.first.flushes, spies.second.flushes) }.wait()

        #expect(spies.flushesBeforeTheTickEnded == 0)
        #expect(flushes.0 == 1)
        #expect(flushes.1 == 1)
        #expect(!spies.first.flushDeferred && !spies.second.flushDeferred)

        // The next tick's flushes are queued afresh.
        let again = try eventLoop.submit { () -> Int in
            spies.loop.flushAtTickEnd(spies.first)
            return spies.first.flushes
        }.wait()
        let later = try eventLoop.submit { spies.first.flushes }.wait()
        #expect(again == 1)
        #expect(later == 2)
    }
}
