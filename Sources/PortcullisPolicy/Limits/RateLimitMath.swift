/// The arithmetic of the limits, pure and clock-free so it is tested with any `now`: a rate as
/// GCRA (one 64-bit "theoretical arrival time" per client, so a compare-and-swap admits
/// exactly), and quotas as a count within a UTC calendar window.
public enum RateLimitMath {
    public struct RateDecision: Equatable, Sendable {
        /// The new state to store; nil when refused (the state stays).
        public var newState: UInt64?
        /// Requests that could still be made now, after this one.
        public var remaining: Int
        /// Nanoseconds until one request would be admitted (refused), or until the bucket is
        /// full again (admitted).
        public var waitNanos: UInt64
    }

    /// GCRA: admits `cells` requests at `now` (monotonic nanoseconds) against `state` (the
    /// theoretical arrival time; 0 for a new client) at `interval` nanoseconds per request with
    /// `burst` requests at once.
    public static func admit(state: UInt64, now: UInt64, cells: Int, interval: UInt64, burst: Int) -> RateDecision {
        let tolerance = interval &* UInt64(max(burst, 1))
        let start = max(state, now)
        let (cost, overflow) = interval.multipliedReportingOverflow(by: UInt64(max(cells, 0)))
        let newState = start &+ cost
        if overflow || newState > now &+ tolerance {
            // Refused whole: `cells` more would exceed the burst.
            let wait = newState > now &+ tolerance ? newState - now - tolerance : 0
            return RateDecision(newState: nil, remaining: Self.remaining(state: start, now: now, interval: interval, tolerance: tolerance), waitNanos: overflow ? .max : wait)
        }
        return RateDecision(
            newState: newState,
            remaining: Self.remaining(state: newState, now: now, interval: interval, tolerance: tolerance),
            waitNanos: newState - now
        )
    }

    /// Requests admissible at `now` with `state`.
    static func remaining(state: UInt64, now: UInt64, interval: UInt64, tolerance: UInt64) -> Int {
        let used = state > now ? state - now : 0
        guard tolerance > used else { return 0 }
        return Int((tolerance - used) / interval)
    }

    // MARK: - Quotas

    /// The window `seconds` (Unix time, UTC) falls in: days since 1970-01-01, or months since
    /// January 1970.
    public static func window(_ window: QuotaSpec.Window, seconds: Int64) -> Int64 {
        let day = Self.floorDivide(seconds, 86_400)
        switch window {
        case .day: return day
        case .month:
            let (year, month, _) = Self.civil(days: day)
            return (year - 1970) * 12 + (month - 1)
        }
    }

    /// Seconds from `seconds` to the start of the next window.
    public static func secondsUntilNextWindow(_ window: QuotaSpec.Window, seconds: Int64) -> Int64 {
        let day = Self.floorDivide(seconds, 86_400)
        switch window {
        case .day:
            return (day + 1) * 86_400 - seconds
        case .month:
            let (year, month, _) = Self.civil(days: day)
            let next = month == 12 ? Self.days(year: year + 1, month: 1, day: 1) : Self.days(year: year, month: month + 1, day: 1)
            return next * 86_400 - seconds
        }
    }

    /// Quota state packed in 64 bits: the window in the high 24 bits, the count in the low 40.
    public static func admitQuota(state: UInt64, window: Int64, cells: Int, limit: Int) -> (newState: UInt64?, remaining: Int) {
        let stateWindow = Int64(state >> 40)
        let used = stateWindow == (window & 0xFF_FFFF) ? Int(state & 0xFF_FFFF_FFFF) : 0
        guard used + cells <= limit else { return (nil, max(0, limit - used)) }
        let count = UInt64(used + cells)
        return ((UInt64(window & 0xFF_FFFF) << 40) | count, limit - used - cells)
    }

    // Howard Hinnant's days-from-civil and civil-from-days (proleptic Gregorian, UTC).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = Self.floorDivide(y, 400)
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = Self.floorDivide(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}
