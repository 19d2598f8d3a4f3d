import PortcullisAuth
import PrometheusTestSupport
import Testing

@testable import PortcullisProxy

@Suite struct MetricsTests {
    static func record(
        client: String? = "reporting",
        status: Int = 200,
        reason: AccessLogReason = .allowed,
        totalNanos: Int64 = 3_000_000,
        upstreamNanos: Int64? = 2_000_000
    ) -> ExchangeRecord {
        ExchangeRecord(
            startMillis: 0,
            requestID: "r",
            clientID: client,
            clientName: nil,
            sourceIP: "127.0.0.1",
            method: "GET",
            path: "/api/ListTenants",
            status: status,
            decision: status < 400 ? .allow : .deny,
            reason: reason,
            rule: nil,
            tenant: nil,
            bytesIn: 0,
            bytesOut: 0,
            upstreamNanos: upstreamNanos,
            totalNanos: totalNanos,
            userAgent: nil,
            traceID: nil
        )
    }

    struct FakeAccessLog: AccessLogStats {
        var queuedLines = 3
        var writtenLines = 40
        var droppedLines = 2
    }

    // MARK: - Counting on a loop

    @Test func requestsAreCountedByClientStatusClassAndReason() {
        let metrics = LoopMetrics()
        metrics.record(Self.record())
        metrics.record(Self.record())
        metrics.record(Self.record(status: 403, reason: .ipNotAllowed, upstreamNanos: nil))
        metrics.record(Self.record(client: nil, status: 401, reason: .unauthenticated("token_missing"), upstreamNanos: nil))
        let snapshot = metrics.snapshot(tokenCacheHits: 0, tokenCacheMisses: 0, upstreamConnections: 0)
        #expect(
            snapshot.requests == [
                LoopMetrics.RequestKey(clientID: "reporting", statusClass: 2, reason: "allowed"): 2,
                LoopMetrics.RequestKey(clientID: "reporting", statusClass: 4, reason: "ip_not_allowed"): 1,
                LoopMetrics.RequestKey(clientID: "-", statusClass: 4, reason: "token_missing"): 1,
            ]
        )
        #expect(snapshot.requestDuration.count == 4)
        #expect(snapshot.upstreamDuration.count == 2, "a request that never went upstream has no upstream time")
    }

    @Test func histogramBucketsIncludeTheirUpperBound() {
        var histogram = LoopMetrics.Histogram()
        histogram.record(nanos: 1_000_000)  // exactly 0.001 s
        histogram.record(nanos: 1_000_001)
        histogram.record(nanos: 0)
        histogram.record(nanos: 600_000_000_000)  // exactly 600 s
        histogram.record(nanos: 700_000_000_000)  // beyond the last bound
        #expect(histogram.counts[0] == 2)
        #expect(histogram.counts[1] == 1)
        #expect(histogram.counts[16] == 1)
        #expect(histogram.counts[17] == 1)
        #expect(histogram.count == 5)
        #expect(histogram.sumNanos == 1_300_002_000_001)
        let cumulative = histogram.cumulativeCounts
        #expect(cumulative.count == LoopMetrics.Histogram.bucketLabels.count)
        #expect(cumulative.first == 2)
        #expect(cumulative.last == 5)
        #expect(cumulative == cumulative.sorted())
    }

    @Test func bucketLabelsMatchTheBounds() {
        #expect(LoopMetrics.Histogram.bucketLabels.count == LoopMetrics.Histogram.bucketBounds.count + 1)
        #expect(LoopMetrics.Histogram.bucketLabels.last == "+Inf")
        for (label, bound) in zip(LoopMetrics.Histogram.bucketLabels, LoopMetrics.Histogram.bucketBounds) {
            #expect(PrometheusTextWriter.seconds(bound) == label)
        }
    }

    @Test func snapshotsOfSeveralLoopsAddUp() {
        let a = LoopMetrics()
        let b = LoopMetrics()
        a.record(Self.record())
        b.record(Self.record())
        b.record(Self.record(status: 504, reason: .upstreamTimeout, totalNanos: 10_000_000_000))
        var merged = a.snapshot(tokenCacheHits: 5, tokenCacheMisses: 1, upstreamConnections: 2)
        merged.merge(b.snapshot(tokenCacheHits: 7, tokenCacheMisses: 2, upstreamConnections: 3))
        #expect(merged.requests[LoopMetrics.RequestKey(clientID: "reporting", statusClass: 2, reason: "allowed")] == 2)
        #expect(merged.requests[LoopMetrics.RequestKey(clientID: "reporting", statusClass: 5, reason: "upstream_timeout")] == 1)
        #expect(merged.requestDuration.count == 3)
        #expect(merged.requestDuration.sumNanos == 10_006_000_000)
        #expect(merged.tokenCacheHits == 12)
        #expect(merged.tokenCacheMisses == 3)
        #expect(merged.upstreamConnections == 5)
    }

    @Test func tokenCacheCountsSurviveAReload() {
        let metrics = LoopMetrics()
        metrics.retireTokenCache(hits: 10, misses: 4)
        let snapshot = metrics.snapshot(tokenCacheHits: 1, tokenCacheMisses: 1, upstreamConnections: 0)
        #expect(snapshot.tokenCacheHits == 11)
        #expect(snapshot.tokenCacheMisses == 5)
    }

    @Test func aSeenLabelSetIsCountedInPlace() {
        let metrics = LoopMetrics()
        let record = Self.record()
        for _ in 0..<1000 {
            metrics.record(record)
        }
        let snapshot = metrics.snapshot(tokenCacheHits: 0, tokenCacheMisses: 0, upstreamConnections: 0)
        #expect(snapshot.requests.count == 1)
        #expect(snapshot.requests.values.first == 1000)
    }

    // MARK: - Text format

    @Test func secondsAreWrittenExactly() {
        #expect(PrometheusTextWriter.seconds(0) == "0")
        #expect(PrometheusTextWriter.seconds(1) == "0.000000001")
        #expect(PrometheusTextWriter.seconds(2_500_000) == "0.0025")
        #expect(PrometheusTextWriter.seconds(1_500_000_000) == "1.5")
        #expect(PrometheusTextWriter.seconds(600_000_000_000) == "600")
    }

    @Test func labelValuesAndHelpAreEscaped() {
        #expect(PrometheusTextWriter.escapeLabelValue(#"a"b\c"# + "\nd") == #"a\"b\\c\nd"#)
        #expect(PrometheusTextWriter.escapeLabelValue("plain-id_1.2") == "plain-id_1.2")
        #expect(PrometheusTextWriter.escapeHelp(#"say "hi" \ there"# + "\n") == #"say "hi" \\ there\n"#)
    }

    @Test func everyFamilyHasHelpAndTypeAndTheTextParses() throws {
        let metrics = GatewayMetrics(accessLog: FakeAccessLog())
        metrics.configApplied(issuerKeys: ["entra": IssuerKeys(issuerName: "entra", keys: JWKSet(keys: []))])
        let loop = LoopMetrics()
        loop.record(Self.record())
        loop.record(Self.record(client: nil, status: 401, reason: .unauthenticated("token_missing"), totalNanos: 500_000, upstreamNanos: nil))
        let text = metrics.render(loop.snapshot(tokenCacheHits: 9, tokenCacheMisses: 4, upstreamConnections: 2), clientConnections: 7)
        let exposition = try PrometheusExposition(parsing: text)

        for (family, type) in PrometheusExposition.gatewayFamilies.merging(PrometheusExposition.accessLogFamilies) { a, _ in a } {
            #expect(exposition.types[family] == type, "\(family)")
            #expect(exposition.helps[family]?.isEmpty == false, "\(family) has no HELP")
        }
        #expect(exposition.value("portcullis_requests_total", ["client": "reporting", "status_class": "2xx", "reason": "allowed"]) == 1)
        #expect(exposition.value("portcullis_requests_total", ["client": "-", "status_class": "4xx", "reason": "token_missing"]) == 1)
        #expect(exposition.value("portcullis_request_duration_seconds_count") == 2)
        #expect(exposition.value("portcullis_request_duration_seconds_sum") == 0.0035)
        #expect(exposition.value("portcullis_request_duration_seconds_bucket", ["le": "0.001"]) == 1)
        #expect(exposition.value("portcullis_request_duration_seconds_bucket", ["le": "0.005"]) == 2)
        #expect(exposition.value("portcullis_request_duration_seconds_bucket", ["le": "+Inf"]) == 2)
        #expect(exposition.value("portcullis_upstream_duration_seconds_count") == 1)
        #expect(exposition.value("portcullis_upstream_duration_seconds_bucket", ["le": "0.0025"]) == 1)
        #expect(exposition.value("portcullis_upstream_connections") == 2)
        #expect(exposition.value("portcullis_client_connections") == 7)
        #expect(exposition.value("portcullis_token_cache_hits_total") == 9)
        #expect(exposition.value("portcullis_token_cache_misses_total") == 4)
        #expect(exposition.value("portcullis_jwks_refreshes_total", ["issuer": "entra"]) == 1)
        #expect(exposition.value("portcullis_jwks_refresh_failures_total", ["issuer": "entra"]) == 0)
        #expect(exposition.value("portcullis_access_log_queue_lines") == 3)
        #expect(exposition.value("portcullis_access_log_written_lines_total") == 40)
        #expect(exposition.value("portcullis_access_log_dropped_lines_total") == 2)
        #expect(exposition.value("portcullis_config_generation") == 1)
        #expect(exposition.value("portcullis_config_reloads_total") == 0)
        #expect(exposition.value("portcullis_config_reload_failures_total") == 0)
    }

    @Test func aClientIDWithQuotesIsEscapedInItsLabel() throws {
        let metrics = GatewayMetrics()
        let loop = LoopMetrics()
        loop.record(Self.record(client: #"odd "id" \ here"#))
        let text = metrics.render(loop.snapshot(tokenCacheHits: 0, tokenCacheMisses: 0, upstreamConnections: 0), clientConnections: 0)
        #expect(text.contains(#"portcullis_requests_total{client="odd \"id\" \\ here",status_class="2xx",reason="allowed"} 1"#))
        let exposition = try PrometheusExposition(parsing: text)
        #expect(exposition.value("portcullis_requests_total", ["client": #"odd "id" \ here"#, "status_class": "2xx", "reason": "allowed"]) == 1)
    }

    @Test func withoutAnAccessLogItsFamiliesAreLeftOut() {
        let text = GatewayMetrics().render(LoopMetrics.Snapshot(), clientConnections: 0)
        #expect(!text.contains("portcullis_access_log"))
        #expect(text.contains("# TYPE portcullis_requests_total counter\n"))
    }

    @Test func reloadsAndGenerationsAreCounted() throws {
        let metrics = GatewayMetrics()
        metrics.configApplied(issuerKeys: [:])
        metrics.recordReload(succeeded: false)
        metrics.configApplied(issuerKeys: [:])
        metrics.recordReload(succeeded: true)
        metrics.configApplied(issuerKeys: [:])
        metrics.recordReload(succeeded: true)
        #expect(metrics.configGeneration == 3)
        let exposition = try PrometheusExposition(parsing: metrics.render(LoopMetrics.Snapshot(), clientConnections: 0))
        #expect(exposition.value("portcullis_config_generation") == 3)
        #expect(exposition.value("portcullis_config_reloads_total") == 2)
        #expect(exposition.value("portcullis_config_reload_failures_total") == 1)
    }

    @Test func keyRefreshesKeepCountingWhenAReloadReplacesTheKeySet() throws {
        let metrics = GatewayMetrics()
        let fetched = IssuerKeys(issuerName: "entra", keys: JWKSet(keys: []))
        metrics.configApplied(issuerKeys: ["entra": fetched, "file": IssuerKeys(issuerName: "file", keys: JWKSet(keys: []))])
        // A reload: the fetched set is kept, the file is read again (a new set), `fixed` is not
        // an `IssuerKeys` and has no counts.
        metrics.configApplied(issuerKeys: [
            "entra": fetched,
            "file": IssuerKeys(issuerName: "file", keys: JWKSet(keys: [])),
            "fixed": FixedKeys(JWKSet(keys: [])),
        ])
        let exposition = try PrometheusExposition(parsing: metrics.render(LoopMetrics.Snapshot(), clientConnections: 0))
        #expect(exposition.value("portcullis_jwks_refreshes_total", ["issuer": "entra"]) == 1)
        #expect(exposition.value("portcullis_jwks_refreshes_total", ["issuer": "file"]) == 2)
        #expect(exposition.value("portcullis_jwks_refreshes_total", ["issuer": "fixed"]) == nil)
    }
}
