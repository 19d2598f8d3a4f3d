import Atomics
import Metrics
import NIOConcurrencyHelpers
import Foundation
import PortcullisAuth
import PortcullisStore
import Prometheus

/// The gateway's metrics in the Prometheus text format (version 0.0.4), as `/metrics` serves them.
///
/// Two kinds of source, kept apart so the request path takes no lock:
/// - per-request counts live in each event loop's `LoopMetrics` (plain integers touched only on
///   that loop); a scrape collects a `LoopMetrics.Snapshot` from every loop and merges them;
/// - rare events (configuration loads and reloads) go through swift-metrics into this gateway's
///   own swift-prometheus registry, and figures other components already keep (issuer key
///   refreshes, the access-log writer's queue) are read when scraped.
///
/// The registry is this object's, never the process-wide `MetricsSystem`, so that several
/// gateways can run in one process (tests). `factory` gives other swift-metrics users the same
/// registry.
public final class GatewayMetrics: Sendable {
    /// Where the swift-metrics values live; rendered after the request metrics.
    public let registry: PrometheusCollectorRegistry
    /// A swift-metrics factory writing into `registry`.
    public let factory: PrometheusMetricsFactory

    private let generation: CoreMetrics.Meter
    private let generationValue = ManagedAtomic(0)
    private let reloads: CoreMetrics.Counter
    private let reloadFailures: CoreMetrics.Counter
    private let sources = NIOLockedValueBox(Sources())
    /// `store:`'s health; nil without one.
    private let store: StoreStatus?

    private struct Sources {
        var issuerKeys: [String: IssuerKeys] = [:]
        /// Counts of key sets a reload replaced, by issuer name, so the totals never go down.
        var retiredRefreshes: [String: Int] = [:]
        var retiredFailures: [String: Int] = [:]
        var accessLog: (any AccessLogStats)?
        /// Client id -> when its current secret expires (seconds since the epoch).
        var secretExpiries: [String: Int64] = [:]
    }

    public init(accessLog: (any AccessLogStats)? = nil, store: StoreStatus? = nil) {
        self.store = store
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        self.registry = registry
        self.factory = factory
        // Made on the registry directly for their HELP text (the factory gives none); used
        // through swift-metrics.
        let generation = MetricNameDescriptor(
            namespace: "portcullis",
            subsystem: "config",
            metricName: "generation",
            unitName: "",
            helpText: "Configurations applied since start: 1 at start, one more per successful reload."
        )
        let reloads = MetricNameDescriptor(
            namespace: "portcullis",
            subsystem: "config",
            metricName: "reloads",
            unitName: "total",
            helpText: "Successful configuration reloads (SIGHUP or a changed file)."
        )
        let reloadFailures = MetricNameDescriptor(
            namespace: "portcullis",
            subsystem: "config",
            metricName: "reload_failures",
            unitName: "total",
            helpText: "Reloads refused because the new configuration was not valid; the running one stayed."
        )
        self.generation = CoreMetrics.Meter(
            label: generation.name,
            dimensions: [],
            handler: registry.makeGauge(descriptor: generation),
            factory: factory
        )
        self.reloads = CoreMetrics.Counter(
            label: reloads.name,
            dimensions: [],
            handler: registry.makeCounter(descriptor: reloads),
            factory: factory
        )
        self.reloadFailures = CoreMetrics.Counter(
            label: reloadFailures.name,
            dimensions: [],
            handler: registry.makeCounter(descriptor: reloadFailures),
            factory: factory
        )
        self.sources.withLockedValue { $0.accessLog = accessLog }
    }

    /// Configurations applied so far (the `portcullis_config_generation` gauge).
    public var configGeneration: Int { self.generationValue.load(ordering: .relaxed) }

    /// A configuration took effect (at start or by a reload); its issuers' key sets are read at
    /// every scrape from now on.
    func configApplied(issuerKeys: [String: any IssuerKeyProvider], secretExpiries: [String: Int64] = [:]) {
        let keys = issuerKeys.compactMapValues { $0 as? IssuerKeys }
        self.sources.withLockedValue { sources in
            sources.secretExpiries = secretExpiries
            for (name, old) in sources.issuerKeys where keys[name] !== old {
                sources.retiredRefreshes[name, default: 0] += old.refreshCount
                sources.retiredFailures[name, default: 0] += old.failureCount
            }
            sources.issuerKeys = keys
        }
        self.generation.set(self.generationValue.wrappingIncrementThenLoad(ordering: .relaxed))
    }

    /// Counts one reload attempt; a failed one left the running configuration in place.
    public func recordReload(succeeded: Bool) {
        if succeeded {
            self.reloads.increment()
        } else {
            self.reloadFailures.increment()
        }
    }

    /// The whole exposition: the merged loop snapshots, then the rest.
    func render(_ loops: LoopMetrics.Snapshot, clientConnections: Int) -> String {
        var out = PrometheusTextWriter()

        out.family(
            "portcullis_requests_total",
            .counter,
            help: "Requests answered, by client id (- when none was identified), status class and reason code."
        )
        let series = loops.requests.sorted { a, b in
            (a.key.clientID, a.key.statusClass, a.key.reason) < (b.key.clientID, b.key.statusClass, b.key.reason)
        }
        for (key, count) in series {
            out.sample(
                "portcullis_requests_total",
                count,
                labels: ["client": key.clientID, "status_class": "\(key.statusClass)xx", "reason": key.reason]
            )
        }
        out.family(
            "portcullis_request_duration_seconds",
            .histogram,
            help: "Time from the request head to the end of the response."
        )
        out.histogram("portcullis_request_duration_seconds", loops.requestDuration)
        out.family(
            "portcullis_upstream_duration_seconds",
            .histogram,
            help: "Time from asking for an upstream connection to the end of the upstream response."
        )
        out.histogram("portcullis_upstream_duration_seconds", loops.upstreamDuration)

        out.family("portcullis_upstream_connections", .gauge, help: "Open upstream connections, idle in the pools or in use.")
        out.sample("portcullis_upstream_connections", loops.upstreamConnections)
        out.family("portcullis_client_connections", .gauge, help: "Open client connections.")
        out.sample("portcullis_client_connections", clientConnections)
        out.family("portcullis_token_cache_hits_total", .counter, help: "Bearer tokens found in a verified-token cache.")
        out.sample("portcullis_token_cache_hits_total", loops.tokenCacheHits)
        out.family(
            "portcullis_token_cache_misses_total",
            .counter,
            help: "Bearer tokens not found in a verified-token cache (then verified in full)."
        )
        out.sample("portcullis_token_cache_misses_total", loops.tokenCacheMisses)

        let expiries = self.sources.withLockedValue { $0.secretExpiries }
        if !expiries.isEmpty {
            out.family(
                "portcullis_client_secret_expiry_seconds",
                .gauge,
                help: "Seconds until the client's current secret expires (negative once it has), for clients whose secrets expire."
            )
            let now = Int64(Date().timeIntervalSince1970)
            for (id, at) in expiries.sorted(by: { $0.key < $1.key }) {
                out.sample("portcullis_client_secret_expiry_seconds", Int(at - now), labels: ["client": id])
            }
        }

        let (issuers, accessLog) = self.sources.withLockedValue { sources in
            let names = Set(sources.issuerKeys.keys).union(sources.retiredRefreshes.keys).sorted()
            let counts = names.map { name in
                (
                    name: name,
                    refreshes: sources.retiredRefreshes[name, default: 0] + (sources.issuerKeys[name]?.refreshCount ?? 0),
                    failures: sources.retiredFailures[name, default: 0] + (sources.issuerKeys[name]?.failureCount ?? 0)
                )
            }
            return (counts, sources.accessLog)
        }
        out.family(
            "portcullis_jwks_refreshes_total",
            .counter,
            help: "Key set fetches (or jwks_file loads) that gave a valid set, by issuer."
        )
        for issuer in issuers {
            out.sample("portcullis_jwks_refreshes_total", issuer.refreshes, labels: ["issuer": issuer.name])
        }
        out.family(
            "portcullis_jwks_refresh_failures_total",
            .counter,
            help: "Key set fetches that failed (the last good set stayed in use), by issuer."
        )
        for issuer in issuers {
            out.sample("portcullis_jwks_refresh_failures_total", issuer.failures, labels: ["issuer": issuer.name])
        }

        if let accessLog {
            out.family("portcullis_access_log_queue_lines", .gauge, help: "Access-log lines waiting to be written.")
            out.sample("portcullis_access_log_queue_lines", accessLog.queuedLines)
            out.family("portcullis_access_log_written_lines_total", .counter, help: "Access-log lines written.")
            out.sample("portcullis_access_log_written_lines_total", accessLog.writtenLines)
            out.family(
                "portcullis_access_log_dropped_lines_total",
                .counter,
                help: "Access-log lines dropped because the writer fell too far behind."
            )
            out.sample("portcullis_access_log_dropped_lines_total", accessLog.droppedLines)
        }

        if let store = self.store {
            out.family("portcullis_store_up", .gauge, help: "1 when the store answered its last request, else 0.")
            out.sample("portcullis_store_up", store.isUp ? 1 : 0)
            out.family(
                "portcullis_store_seconds_since_sync",
                .gauge,
                help: "Seconds since the registry was last loaded in full (-1 before the first load)."
            )
            let last = store.lastSync
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            out.sample("portcullis_store_seconds_since_sync", last == 0 ? -1 : Int((now - last) / 1000))
            out.family("portcullis_store_buffered_updates", .gauge, help: "Usage updates waiting for the store.")
            out.sample("portcullis_store_buffered_updates", store.bufferedUpdates)
            out.family(
                "portcullis_store_dropped_updates_total",
                .counter,
                help: "Usage updates dropped because the buffer was full while the store was down."
            )
            out.sample("portcullis_store_dropped_updates_total", store.droppedUpdates)
        }

        out.append(self.registry.emitToString())
        return out.text
    }
}
