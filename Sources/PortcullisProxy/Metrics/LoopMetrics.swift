/// The request metrics of one event loop: plain counters owned by the loop's `LoopContext`, so
/// counting a request takes no lock, no atomic and, once its label set has been seen, no
/// allocation. A scrape reads every loop's `Snapshot` on that loop and merges them.
final class LoopMetrics {
    /// One `portcullis_requests_total` series. Bounded: `clientID` is a configured client's id or
    /// `-`, `reason` one of a fixed set of codes.
    struct RequestKey: Hashable, Sendable {
        var clientID: String
        /// 1 for 1xx ... 5xx.
        var statusClass: Int
        var reason: String
    }

    /// A latency histogram with the fixed buckets of `bucketBounds`.
    struct Histogram: Sendable, Equatable {
        /// Upper bounds (inclusive) in nanoseconds; a last, unlisted bucket is `+Inf`.
        static let bucketBounds: [Int64] = [
            1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000, 250_000_000,
            500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000, 30_000_000_000,
            60_000_000_000, 300_000_000_000, 600_000_000_000,
        ]
        /// The bounds as the `le` label writes them, `+Inf` last.
        static let bucketLabels = [
            "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30",
            "60", "300", "600", "+Inf",
        ]

        /// Observations per bucket, not cumulative (the text format's `le` counts are summed
        /// when rendered); `bucketBounds.count + 1` entries.
        var counts: [Int]
        var sumNanos: Int64 = 0
        var count = 0

        init() {
            self.counts = Array(repeating: 0, count: Self.bucketBounds.count + 1)
        }

        mutating func record(nanos: Int64) {
            let value = max(0, nanos)
            var index = 0
            while index < Self.bucketBounds.count && value > Self.bucketBounds[index] {
                index += 1
            }
            self.counts[index] += 1
            self.sumNanos &+= value
            self.count += 1
        }

        mutating func merge(_ other: Histogram) {
            for index in self.counts.indices {
                self.counts[index] += other.counts[index]
            }
            self.sumNanos &+= other.sumNanos
            self.count += other.count
        }

        /// Observations at or below each bound, `+Inf` last.
        var cumulativeCounts: [Int] {
            var total = 0
            return self.counts.map { count in
                total += count
                return total
            }
        }
    }

    /// One loop's metrics at one moment, or several loops' merged.
    struct Snapshot: Sendable {
        var requests: [RequestKey: Int] = [:]
        var requestDuration = Histogram()
        var upstreamDuration = Histogram()
        var tokenCacheHits = 0
        var tokenCacheMisses = 0
        /// Upstream connections open now, idle in the pool or leased to an exchange.
        var upstreamConnections = 0

        mutating func merge(_ other: Snapshot) {
            self.requests.merge(other.requests, uniquingKeysWith: +)
            self.requestDuration.merge(other.requestDuration)
            self.upstreamDuration.merge(other.upstreamDuration)
            self.tokenCacheHits += other.tokenCacheHits
            self.tokenCacheMisses += other.tokenCacheMisses
            self.upstreamConnections += other.upstreamConnections
        }
    }

    private var requests: [RequestKey: Int] = [:]
    private var requestDuration = Histogram()
    private var upstreamDuration = Histogram()
    /// Hits and misses of token caches a reload has replaced, so the totals never go down.
    private var retiredTokenCacheHits = 0
    private var retiredTokenCacheMisses = 0

    /// Requests counted for `runKey` but not yet added to `requests`: consecutive requests
    /// mostly share their series, and comparing two short strings costs less than hashing
    /// them. Added when the series changes and before every snapshot.
    private var runKey: RequestKey?
    private var runCount = 0

    /// Counts one finished request.
    func record(_ record: ExchangeRecord) {
        let key = RequestKey(clientID: record.clientID ?? "-", statusClass: record.statusClass, reason: record.reason.code)
        if key == self.runKey {
            self.runCount += 1
        } else {
            self.endRun()
            self.runKey = key
            self.runCount = 1
        }
        self.requestDuration.record(nanos: record.totalNanos)
        if let upstream = record.upstreamNanos {
            self.upstreamDuration.record(nanos: upstream)
        }
    }

    /// A token cache is about to be replaced: keep its counts.
    func retireTokenCache(hits: Int, misses: Int) {
        self.retiredTokenCacheHits += hits
        self.retiredTokenCacheMisses += misses
    }

    private func endRun() {
        if let key = self.runKey, self.runCount > 0 {
            self.requests[key, default: 0] += self.runCount
        }
        self.runCount = 0
    }

    /// The counts so far, with the live token cache's and pool's figures.
    func snapshot(tokenCacheHits: Int, tokenCacheMisses: Int, upstreamConnections: Int) -> Snapshot {
        self.endRun()
        return Snapshot(
            requests: self.requests,
            requestDuration: self.requestDuration,
            upstreamDuration: self.upstreamDuration,
            tokenCacheHits: self.retiredTokenCacheHits + tokenCacheHits,
            tokenCacheMisses: self.retiredTokenCacheMisses + tokenCacheMisses,
            upstreamConnections: upstreamConnections
        )
    }
}

@available(*, unavailable)
extension LoopMetrics: Sendable {}
