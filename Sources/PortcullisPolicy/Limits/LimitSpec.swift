/// A request rate: `count` requests per `period` (`10/s`, `100/m`, `5000/h`).
public struct RateSpec: Hashable, Sendable, CustomStringConvertible {
    public enum Period: String, Hashable, Sendable {
        case second = "s"
        case minute = "m"
        case hour = "h"

        public var seconds: Int64 {
            switch self {
            case .second: return 1
            case .minute: return 60
            case .hour: return 3600
            }
        }
    }

    public var count: Int
    public var period: Period

    public init(count: Int, period: Period) {
        self.count = count
        self.period = period
    }

    /// `N/s`, `N/m` or `N/h`, N from 1 to 1,000,000,000.
    public init?(parsing text: String) {
        guard let (count, unit) = LimitText.split(text), let period = Period(rawValue: unit) else { return nil }
        self.init(count: count, period: period)
    }

    /// Nanoseconds between two requests at this rate (GCRA's emission interval).
    public var intervalNanos: UInt64 {
        UInt64(self.period.seconds) * 1_000_000_000 / UInt64(self.count)
    }

    public var description: String { "\(self.count)/\(self.period.rawValue)" }
}

/// A request quota per UTC calendar window: `10000/d` or `200000/month`.
public struct QuotaSpec: Hashable, Sendable, CustomStringConvertible {
    public enum Window: String, Hashable, Sendable {
        case day = "d"
        case month = "month"
    }

    public var count: Int
    public var window: Window

    public init(count: Int, window: Window) {
        self.count = count
        self.window = window
    }

    public init?(parsing text: String) {
        guard let (count, unit) = LimitText.split(text), let window = Window(rawValue: unit) else { return nil }
        self.init(count: count, window: window)
    }

    public var description: String { "\(self.count)/\(self.window.rawValue)" }
}

/// The limits of one client (`client_limits:`, `roles.X.limits`, `clients[].limits`); each
/// field nil when not set at that level.
public struct ClientLimits: Hashable, Sendable {
    public var rate: RateSpec?
    /// Requests a client may make at once above its rate; default: one second's worth of the
    /// rate (at least 1).
    public var burst: Int?
    public var quota: QuotaSpec?
    /// Exchanges in flight to the backend at once.
    public var concurrency: Int?

    public init(rate: RateSpec? = nil, burst: Int? = nil, quota: QuotaSpec? = nil, concurrency: Int? = nil) {
        self.rate = rate
        self.burst = burst
        self.quota = quota
        self.concurrency = concurrency
    }

    public var isEmpty: Bool { self.rate == nil && self.quota == nil && self.concurrency == nil }

    /// `rate 10/s, burst 20, quota 10000/d, concurrency 2`: the fields that are set.
    public var summary: String {
        var fields: [String] = []
        if let rate = self.rate { fields.append("rate \(rate)") }
        if let burst = self.burst { fields.append("burst \(burst)") }
        if let quota = self.quota { fields.append("quota \(quota)") }
        if let concurrency = self.concurrency { fields.append("concurrency \(concurrency)") }
        return fields.isEmpty ? "none" : fields.joined(separator: ", ")
    }

    /// The burst in force: the one set, else one second of the rate (at least 1).
    public var effectiveBurst: Int {
        if let burst { return burst }
        guard let rate else { return 1 }
        return max(1, rate.count / Int(rate.period.seconds))
    }

    /// The most specific wins, field by field: `self` (more specific) over `general`. `burst`
    /// goes with the rate it was set beside.
    public func over(_ general: ClientLimits) -> ClientLimits {
        var merged = general
        if let rate = self.rate {
            merged.rate = rate
            merged.burst = self.burst
        } else if let burst = self.burst {
            merged.burst = burst
        }
        if let quota = self.quota { merged.quota = quota }
        if let concurrency = self.concurrency { merged.concurrency = concurrency }
        return merged
    }

    /// The limits of a client: its own over its roles' over the global ones. Across several
    /// roles the most generous value of each field applies (privileges add up).
    public static func resolve(client: ClientLimits?, roles: [ClientLimits], global: ClientLimits?) -> ClientLimits {
        var fromRoles = ClientLimits()
        for role in roles {
            if let rate = role.rate {
                let current = fromRoles.rate.map(Self.perSecond) ?? -1
                if Self.perSecond(rate) > current || (Self.perSecond(rate) == current && role.effectiveBurst > fromRoles.effectiveBurst) {
                    fromRoles.rate = rate
                    fromRoles.burst = role.burst
                }
            }
            if let quota = role.quota, fromRoles.quota.map({ Self.perDay(quota) > Self.perDay($0) }) ?? true {
                fromRoles.quota = quota
            }
            if let concurrency = role.concurrency, concurrency > (fromRoles.concurrency ?? 0) {
                fromRoles.concurrency = concurrency
            }
        }
        return (client ?? ClientLimits()).over(fromRoles.over(global ?? ClientLimits()))
    }

    private static func perSecond(_ rate: RateSpec) -> Double { Double(rate.count) / Double(rate.period.seconds) }
    private static func perDay(_ quota: QuotaSpec) -> Double { quota.window == .day ? Double(quota.count) : Double(quota.count) / 31 }
}

enum LimitText {
    /// `N/unit` with N a positive decimal without leading zeros.
    static func split(_ text: String) -> (Int, String)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let first = parts[0].first, first != "0", parts[0].count <= 10,
            parts[0].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let count = Int(parts[0]), count <= 1_000_000_000
        else { return nil }
        return (count, String(parts[1]))
    }
}

extension GatewayConfig {
    /// The limits in force for `client`: its own over its roles' over `client_limits`.
    public func limits(of client: ClientConfig) -> ClientLimits {
        let roles = client.roles.compactMap { name in self.roles.first { $0.name == name }?.limits }
        return ClientLimits.resolve(client: client.limits, roles: roles, global: self.clientLimits)
    }
}
