import NIOCore

/// `limits.client_body_timeout` without a timer per read: each read of the connection bumps a
/// counter, and one check, every `interval` while a request body is arriving, compares it with
/// the counter at the check before. A quiet spell is counted from the last check that saw
/// progress, so a gap is cut no sooner than `timeout` after the last read and no later than
/// `timeout + interval` after it.
struct BodyProgressCheck {
    private var progress: UInt32 = 0
    private var progressAtCheck: UInt32 = 0
    private var quietSince: NIODeadline = .distantPast
    /// When the check runs next; nil while no body is arriving.
    private(set) var nextCheck: NIODeadline?

    var isRunning: Bool { self.nextCheck != nil }

    /// Bytes were read, or reads resumed after the gateway held them.
    mutating func madeProgress() {
        self.progress &+= 1
    }

    mutating func start(now: NIODeadline, interval: TimeAmount) {
        self.progressAtCheck = self.progress
        self.quietSince = now
        self.nextCheck = now + interval
    }

    mutating func stop() {
        self.nextCheck = nil
    }

    /// Runs the check due at `now`. `readsHeld`: the gateway is not reading (the body has
    /// nowhere to go yet), so the client is not the one being slow. True when the body has been
    /// quiet for `timeout`; the check then stops.
    mutating func check(now: NIODeadline, readsHeld: Bool, timeout: TimeAmount, interval: TimeAmount) -> Bool {
        guard self.nextCheck != nil else { return false }
        if readsHeld || self.progress != self.progressAtCheck {
            self.progressAtCheck = self.progress
            self.quietSince = now
        } else if now - self.quietSince >= timeout {
            self.nextCheck = nil
            return true
        }
        self.nextCheck = min(now + interval, self.quietSince + timeout)
        return false
    }
}
