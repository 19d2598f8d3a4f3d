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

    var head: NIODeadline? { didSet { self.changed = true } }
    var exchange: NIODeadline? { didSet { self.changed = true } }
    var backendQueue: NIODeadline? { didSet { self.changed = true } }
    var sendStall: NIODeadline? { didSet { self.changed = true } }
    var close: NIODeadline? { didSet { self.changed = true } }
    /// `client_body_timeout`: its own periodic check, on the same task.
    var bodyProgress = BodyProgressCheck() { didSet { self.changed = true } }
    /// When the scheduled task fires; nil while none is scheduled.
    private(set) var armedAt: NIODeadline?
    /// A deadline was set or cleared since the last `rearm`: only then can it have work to do.
    private var changed = false

    var earliest: NIODeadline? {
        let earliest = min(
            min(self.head ?? .distantFuture, min(self.exchange ?? .distantFuture, self.backendQueue ?? .distantFuture)),
            min(self.bodyProgress.nextCheck ?? .distantFuture, min(self.sendStall ?? .distantFuture, self.close ?? .distantFuture))
        )
        return earliest == .distantFuture ? nil : earliest
    }

    /// The time to schedule the task for, or nil when the one scheduled fires early enough
    /// (a wake-up before any deadline is due finds nothing and re-arms).
    mutating func rearm() -> NIODeadline? {
        guard self.changed else { return nil }
        self.changed = false
        guard let earliest = self.earliest else { return nil }
        if let armed = self.armedAt, armed <= earliest { return nil }
        self.armedAt = earliest
        return earliest
    }

    /// The scheduled task ran or was cancelled.
    mutating func disarmed() {
        self.armedAt = nil
        self.changed = true
    }

    /// True, and the deadline cleared, when `deadline` is due at `now`.
    mutating func take(_ deadline: Deadline, dueAt now: NIODeadline) -> Bool {
        switch deadline {
        case .head: return Self.take(&self.head, now)
        case .exchange: return Self.take(&self.exchange, now)
        case .backendQueue: return Self.take(&self.backendQueue, now)
        case .sendStall: return Self.take(&self.sendStall, now)
        case .close: return Self.take(&self.close, now)
        }
    }

    private static func take(_ deadline: inout NIODeadline?, _ now: NIODeadline) -> Bool {
        guard let due = deadline, due <= now else { return false }
        deadline = nil
        return true
    }
}
