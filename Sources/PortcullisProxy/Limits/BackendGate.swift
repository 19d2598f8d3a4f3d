import Atomics
import NIOCore

/// `upstream.max_concurrent`: the exchanges in flight to the backend from this gateway, all
/// clients and event loops together, never above the cap (one atomic word, compare-and-swap).
/// Beyond it an exchange waits in its loop's queue (`LoopContext.backendQueue`) up to
/// `upstream.queue.timeout`; a slot given back wakes one loop that has waiters.
final class BackendGate: Sendable {
    /// One event loop's side: how many of its exchanges wait, and how to wake it.
    final class Loop: Sendable {
        let eventLoop: EventLoop
        let waiters = ManagedAtomic<Int>(0)
        let admit: @Sendable () -> Void

        init(eventLoop: EventLoop, admit: @escaping @Sendable () -> Void) {
            self.eventLoop = eventLoop
            self.admit = admit
        }
    }

    private let inFlight = ManagedAtomic<Int>(0)
    /// Exchanges waiting in every loop's queue.
    let waiting = ManagedAtomic<Int>(0)
    private let nextLoop = ManagedAtomic<Int>(0)
    private let loops: [Loop]

    init(loops: [Loop]) {
        self.loops = loops
    }

    var exchangesInFlight: Int { self.inFlight.load(ordering: .relaxed) }

    /// The loops' sides in the order given to `init`, to hand each to its loop.
    var loopsForSetup: [Loop] { self.loops }

    /// Takes a slot if fewer than `cap` are taken.
    func tryAcquire(cap: Int) -> Bool {
        var current = self.inFlight.load(ordering: .sequentiallyConsistent)
        while current < cap {
            let (exchanged, original) = self.inFlight.compareExchange(expected: current, desired: current + 1, ordering: .sequentiallyConsistent)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Gives a slot back and wakes a loop with waiters, if any. A waiter that queued as this
    /// ran tries once more after queueing (`LoopContext.waitForBackend`), so none is missed.
    func release() {
        self.inFlight.wrappingDecrement(ordering: .sequentiallyConsistent)
        guard self.waiting.load(ordering: .sequentiallyConsistent) > 0, !self.loops.isEmpty else { return }
        let start = self.nextLoop.loadThenWrappingIncrement(ordering: .relaxed)
        for offset in 0..<self.loops.count {
            let loop = self.loops[(start &+ offset) % self.loops.count]
            if loop.waiters.load(ordering: .sequentiallyConsistent) > 0 {
                loop.eventLoop.execute(loop.admit)
                return
            }
        }
    }
}
