import NIOCore

/// A client connection's deadlines, one value: the connection keeps one scheduled task, armed
/// for the earliest of them, and when it fires takes the ones that are due.
struct ConnectionTimers {
    enum Deadline {
        /// `client_header_timeout` for a request head (from the accept, or from the head's
        /// first byte), or `idle_timeout` between requests.
        case head
        /// `upstream.timeout`: the exchange in flight.
        case exchange
        /// `upstream.queue.timeout`: waiting for a backend slot.
        case backendQueue
        /// `send_timeout` while the client takes nothing written.
        case sendStall
        /// `send_timeout` for the last bytes, after which the connection closes.
        case close
    }

    // Each deadline as uptime nanoseconds, `Self.none` while unset: plain words, so that the
    // earliest is a minimum of six (an idle connection carries this for its whole life).
    private var headNanos = Self.none
    private var exchangeNanos = Self.none
    private var backendQueueNanos = Self.none
    private var sendStallNanos = Self.none
    private var closeNanos = Self.none
    private var armedNanos = Self.none
    /// No deadline: `NIODeadline.distantFuture`'s nanoseconds (`Int64.max`), which is never due;
    /// a literal, so that reading it costs no lazy initialisation.
    private static let none: UInt64 = 0x7FFF_FFFF_FFFF_FFFF

    var head: NIODeadline? {
        get { Self.deadline(self.headNanos) }
        set { Self.set(&self.headNanos, newValue, &self.changed) }
    }
    var exchange: NIODeadline? {
        get { Self.deadline(self.exchangeNanos) }
        set { Self.set(&self.exchangeNanos, newValue, &self.changed) }
    }
    var backendQueue: NIODeadline? {
        get { Self.deadline(self.backendQueueNanos) }
        set { Self.set(&self.backendQueueNanos, newValue, &self.changed) }
    }
    var sendStall: NIODeadline? {
        get { Self.deadline(self.sendStallNanos) }
        set { Self.set(&self.sendStallNanos, newValue, &self.changed) }
    }
    var close: NIODeadline? {
        get { Self.deadline(self.closeNanos) }
        set { Self.set(&self.closeNanos, newValue, &self.changed) }
    }
    /// `client_body_timeout`: its own periodic check, on the same task.
    var bodyProgress = BodyProgressCheck() { didSet { self.changed = true } }
    /// When the scheduled task fires; nil while none is scheduled.
    var armedAt: NIODeadline? { Self.deadline(self.armedNanos) }
    /// A deadline was set or cleared since the last `rearm`: only then can it have work to do.
    private var changed = false

    var earliest: NIODeadline? {
        let body = self.bodyProgress.nextCheck?.uptimeNanoseconds ?? Self.none
        let earliest = min(
            min(self.headNanos, min(self.exchangeNanos, self.backendQueueNanos)),
            min(body, min(self.sendStallNanos, self.closeNanos))
        )
        return Self.deadline(earliest)
    }

    /// The time to schedule the task for, or nil when the one scheduled fires early enough
    /// (a wake-up before any deadline is due finds nothing and re-arms).
    mutating func rearm() -> NIODeadline? {
        guard self.changed else { return nil }
        self.changed = false
        guard let earliest = self.earliest else { return nil }
        if let armed = self.armedAt, armed <= earliest { return nil }
        self.armedNanos = earliest.uptimeNanoseconds
        return earliest
    }

    /// The scheduled task ran or was cancelled.
    mutating func disarmed() {
        self.armedNanos = Self.none
        self.changed = true
    }

    private static func deadline(_ nanos: UInt64) -> NIODeadline? {
        nanos >= Self.none ? nil : .uptimeNanoseconds(nanos)
    }

    private static func set(_ nanos: inout UInt64, _ deadline: NIODeadline?, _ changed: inout Bool) {
        nanos = min(deadline?.uptimeNanoseconds ?? Self.none, Self.none)
        changed = true
    }

    /// True, and the deadline cleared, when `deadline` is due at `now`.
    mutating func take(_ deadline: Deadline, dueAt now: NIODeadline) -> Bool {
        switch deadline {
        case .head: return Self.take(&self.headNanos, now, &self.changed)
        case .exchange: return Self.take(&self.exchangeNanos, now, &self.changed)
        case .backendQueue: return Self.take(&self.backendQueueNanos, now, &self.changed)
        case .sendStall: return Self.take(&self.sendStallNanos, now, &self.changed)
        case .close: return Self.take(&self.closeNanos, now, &self.changed)
        }
    }

    private static func take(_ nanos: inout UInt64, _ now: NIODeadline, _ changed: inout Bool) -> Bool {
        guard nanos < Self.none, nanos <= now.uptimeNanoseconds else { return false }
        nanos = Self.none
        changed = true
        return true
    }
}
