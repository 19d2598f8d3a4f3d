import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Client limits across three gateway replicas on one throwaway PostgreSQL: a stored client's
/// rate, driven at every replica at once, admits in total at most the bound documented in
/// docs/configuration.md (`store.limits_sync`); with PostgreSQL stopped each replica says so in
/// `portcullis_limits_store_degraded` and enforces its share of a quota.
@Suite(
    "Client limits across replicas end to end",
    .serialized,
    .enabled(if: PostgresCluster.isAvailable, "\(PostgresCluster.skipMessage)")
)
struct ClientLimitsPostgresEndToEndTests {
    typealias System = BuiltinIssuerEndToEndTests.System

    /// A client created on `system` with `limits` (JSON), and its token once every replica knows it.
    static func client(_ id: String, limits: String, on systems: [System]) throws -> String {
        let created = systems[0].api("POST", "/api/v1/clients", json: #"{"id": "\#(id)", "roles": ["reader"], "limits": \#(limits)}"#)
        try #require(created.status == 201, "\(created)")
        let secret = try #require(created.json?["client_secret"] as? String)
        for system in systems {
            let deadline = Deadline(seconds: 15)
            while system.api("GET", "/api/v1/clients/\(id)").status != 200 && deadline.remainingMilliseconds > 0 { usleep(20_000) }
        }
        return try #require(StoreEndToEndTests.token(systems[0], id, secret))
    }

    @Test func threeReplicasAdmitAtMostTheDocumentedBoundAndShareAQuotaWithTheStoreDown() throws {
        let cluster = try PostgresCluster()
        let systems = try PostgresStoreEndToEndTests.replicas(3, cluster: cluster)
        defer {
            for system in systems {
                // A replica that does not stop on SIGTERM within 15 s is a failure, not a hang.
                #expect(system.under.gateway.terminate(grace: 15) == 0, "\(system.under.gateway.output.suffix(2000))")
            }
        }

        // 600 a minute (10/s), burst 10, exchanged every second (the default).
        let token = try Self.client("metered", limits: #"{"rate": "600/m", "burst": 10}"#, on: systems)
        let shown = systems[1].api("GET", "/api/v1/clients/metered")
        let limits = shown.json?["limits"] as? [String: Any]
        #expect(limits?["rate"] as? String == "600/m", "\(shown)")
        #expect((limits?["sources"] as? [String: Any])?["rate"] as? String == "client", "\(shown)")

        // Two connections at each replica, each about 100 requests a second (60 times the rate
        // together), for 20 s.
        let counts = (0..<3).map { _ in StatusCounts() }
        let stop = Date().addingTimeInterval(20)
        let start = Date()
        let workers = (0..<6).map { index in
            Thread {
                let system = systems[index % 3]
                guard let connection = try? RawHTTPClient.connect(port: system.port) else { return counts[index % 3].add(0) }
                defer { connection.close() }
                while Date() < stop {
                    connection.sendRequest("GET", "/demo/echo", headers: [("Authorization", "Bearer \(token)")], authorize: false)
                    counts[index % 3].add(connection.readResponse()?.status ?? 0)
                    usleep(10_000)
                }
            }
        }
        workers.forEach { $0.start() }
        let deadline = Date().addingTimeInterval(60)
        while workers.contains(where: { !$0.isFinished }) && Date() < deadline { usleep(50_000) }
        let seconds = Date().timeIntervalSince(start)
        let admitted = counts.map { $0.count(200) }.reduce(0, +)
        // rate x T + burst + (replicas - 1) x (burst + rate x 2 x limits_sync)
        let bound = Int(10 * seconds) + 10 + 2 * (10 + 10 * 2)
        print("three replicas, 600/m burst 10: \(admitted) admitted in \(seconds) s (bound \(bound)); per replica \(counts.map(\.all))")
        #expect(admitted <= bound, "\(admitted) admitted in \(seconds) s; per replica \(counts.map(\.all))")
        #expect(admitted >= Int(10 * 20) / 2, "\(admitted) admitted in \(seconds) s; per replica \(counts.map(\.all))")
        for count in counts {
            #expect(count.count(429) > 0, "every replica refused some: \(count.all)")
            #expect(count.count(200) + count.count(429) == count.total, "\(count.all)")
        }
        let metrics = try AdminEndpointsEndToEndTests.scrape(port: systems[0].admin) { $0.value("portcullis_limits_replicas") == 3 }
        #expect(metrics.value("portcullis_limits_replicas") == 3)
        #expect(metrics.value("portcullis_limits_store_degraded") == 0)

        // A quota of 30 a day; with PostgreSQL down each of the three replicas takes 10 of it.
        let quotaToken = try Self.client("daily", limits: #"{"quota": "30/d"}"#, on: systems)
        try cluster.stop()
        let degraded = try AdminEndpointsEndToEndTests.scrape(port: systems[0].admin, timeout: 30) {
            $0.value("portcullis_limits_store_degraded") == 1
        }
        #expect(degraded.value("portcullis_limits_store_degraded") == 1, "\(systems[0].under.gateway.output)")
        var quotaAdmitted = 0
        for _ in 0..<20 where systems[0].call("/demo/echo", token: quotaToken).status == 200 { quotaAdmitted += 1 }
        #expect(quotaAdmitted == 10)
        #expect(systems[0].under.gateway.output.contains("limits: the store cannot be reached"))

        try cluster.start()
        let recovered = try AdminEndpointsEndToEndTests.scrape(port: systems[0].admin, timeout: 30) {
            $0.value("portcullis_limits_store_degraded") == 0
        }
        #expect(recovered.value("portcullis_limits_store_degraded") == 0)
        #expect(systems[0].under.gateway.output.contains("limits: the store is reachable again"))
    }
}
