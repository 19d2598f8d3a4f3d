/// One replica's admitted count for one limited client in one window, as replicas exchange them
/// through the store (`store.limits_sync`) so a limit holds across replicas.
public struct LimitCount: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// Every request the client's rate admitted on the replica since it started
        /// (`window` 0): the others charge the increase to their token bucket.
        case rate
        /// The client's quota count in a UTC day (`window`: days since 1970-01-01).
        case day
        /// The client's quota count in a UTC month (`window`: months since January 1970).
        case month
    }

    public var clientID: String
    public var kind: Kind
    public var window: Int64
    public var count: Int64

    public init(clientID: String, kind: Kind, window: Int64, count: Int64) {
        self.clientID = clientID
        self.kind = kind
        self.window = window
        self.count = count
    }
}

/// What the other replicas reported.
public struct LimitExchange: Sendable, Equatable {
    /// Replica id -> its counts: rate totals, and quota counts of the windows asked for.
    public var others: [String: [LimitCount]]
    /// Replicas alive (seen within the liveness span), this one included.
    public var replicas: Int

    public init(others: [String: [LimitCount]], replicas: Int) {
        self.others = others
        self.replicas = replicas
    }
}

/// A store that several replicas share and so can exchange limit counters (PostgreSQL).
public protocol LimitCounterStore: Sendable {
    /// Writes this replica's counts and a heartbeat in one transaction, and reads the others'
    /// counts for the rate and the quota windows `day` and `month`, and how many replicas
    /// wrote a heartbeat within `aliveSeconds`.
    func exchangeLimitCounts(
        replica: String,
        counts: [LimitCount],
        day: Int64,
        month: Int64,
        now: Int64,
        aliveSeconds: Int64
    ) async throws(StoreError) -> LimitExchange
}
