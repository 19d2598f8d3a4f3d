import Foundation
import PrometheusTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The admin listener of a real gateway process: `/healthz`, `/readyz` and `/metrics`.
@Suite("Admin endpoints end to end", .serialized)
struct AdminEndpointsEndToEndTests {
    /// A gateway with `admin.address` on a free loopback port, in front of the demo backend.
    static func start(_ config: String = "") throws -> GatewayUnderTest {
        try GatewayUnderTest.start(
            """
            admin:
              address: "127.0.0.1:0"
            \(config)
            """
        )
    }

    static func adminPort(_ system: GatewayUnderTest) throws -> Int {
        let url = try #require(system.gateway.url(label: "admin"), "no admin line in the ready file: \(system.gateway.listeners)")
        return try #require(PortcullisProcess.port(of: url))
    }

    static func get(_ path: String, port: Int) -> HTTPTestResponse {
        RawHTTPClient.request("GET", path, port: port, authorize: false)
    }

    static func scrape(port: Int) throws -> PrometheusExposition {
        let response = Self.get("/metrics", port: port)
        try #require(response.status == 200, "\(response)")
        #expect(response.header("content-type") == "text/plain; version=0.0.4; charset=utf-8")
        return try PrometheusExposition(parsing: response.bodyString)
    }

    /// Scrapes until `condition` holds (the figures of a reload or a drain move asynchronously).
    static func scrape(
        port: Int,
        timeout: Double = 5,
        until condition: (PrometheusExposition) -> Bool
    ) throws -> PrometheusExposition {
        let deadline = Date().addingTimeInterval(timeout)
        var metrics = try Self.scrape(port: port)
        while !condition(metrics) && Date() < deadline {
            usleep(50_000)
            metrics = try Self.scrape(port: port)
        }
        return metrics
    }

    @Test func adminListenerIsAnnouncedApartFromTheProxyListener() throws {
        let system = try Self.start()
        #expect(system.gateway.listeners.map(\.label) == [nil, "admin"])
        let admin = try Self.adminPort(system)
        #expect(admin != system.port)
        // The proxy listener does not answer the admin paths itself.
        #expect(RawHTTPClient.request("GET", "/healthz", port: system.port, authorize: false).status == 401)
    }

    @Test func healthzAndReadyzAnswerWithoutAToken() throws {
        let system = try Self.start()
        let admin = try Self.adminPort(system)
        let health = Self.get("/healthz", port: admin)
        #expect(health.status == 200)
        #expect(health.json?["status"] as? String == "ok")
        let ready = Self.get("/readyz", port: admin)
        #expect(ready.status == 200)
        #expect(ready.json?["status"] as? String == "ready")
        let missing = Self.get("/admin/clients", port: admin)
        #expect(missing.status == 404)
        #expect(missing.json?["error"] as? String == "not_found")
    }

    @Test func metricsParseAndCarryEveryFamily() throws {
        let system = try Self.start()
        let admin = try Self.adminPort(system)
        // One connection: the first request verifies the token, the next two hit the cache, and
        // the upstream connection stays pooled.
        let client = try RawHTTPClient.connect(port: system.port)
        for _ in 0..<3 {
            client.sendRequest("GET", "/api/ListTenants")
            #expect(client.readResponse()?.status == 200)
        }
        #expect(RawHTTPClient.request("GET", "/api/ListTenants", port: system.port, authorize: false).status == 401)

        let metrics = try Self.scrape(port: admin)
        for (family, type) in PrometheusExposition.gatewayFamilies {
            #expect(metrics.types[family] == type, "\(family)")
            #expect(metrics.helps[family] != nil, "\(family) has no HELP")
        }
        #expect(metrics.value("portcullis_token_cache_misses_total") ?? 0 >= 1)
        #expect(metrics.value("portcullis_token_cache_hits_total") ?? 0 >= 2)
        #expect(metrics.value("portcullis_upstream_connections") ?? 0 >= 1)
        #expect(metrics.value("portcullis_client_connections") ?? 0 >= 1, "the keep-alive client is still connected")
        #expect(metrics.value("portcullis_config_generation") == 1)
        #expect(metrics.value("portcullis_config_reloads_total") == 0)
        #expect(metrics.value("portcullis_config_reload_failures_total") == 0)
        #expect(metrics.value("portcullis_jwks_refreshes_total", ["issuer": "e2e"]) == 1)
        #expect(metrics.value("portcullis_jwks_refresh_failures_total", ["issuer": "e2e"]) == 0)

        #expect(metrics.value("portcullis_requests_total", ["client": "e2e-client", "status_class": "2xx", "reason": "allowed"]) == 3)
        let unauthenticated = metrics.samples.filter { $0.name == "portcullis_requests_total" && $0.labels["client"] == "-" }
        #expect(unauthenticated.map(\.labels["status_class"]) == ["4xx"])
        #expect(unauthenticated.map(\.value) == [1])
        #expect(metrics.value("portcullis_request_duration_seconds_count") == 4)
        #expect(metrics.value("portcullis_request_duration_seconds_bucket", ["le": "+Inf"]) == 4)
        #expect(metrics.value("portcullis_upstream_duration_seconds_count") == 3)
        client.close()
    }

    @Test func reloadsAdvanceTheGenerationAndAFailedOneIsCounted() throws {
        let system = try Self.start()
        let admin = try Self.adminPort(system)

        system.gateway.signal(SIGHUP)
        // The key set is read again after the reload is counted (its own task): wait for both.
        var metrics = try Self.scrape(port: admin) {
            $0.value("portcullis_config_reloads_total") == 1 && $0.value("portcullis_jwks_refreshes_total", ["issuer": "e2e"]) == 2
        }
        #expect(metrics.value("portcullis_config_reloads_total") == 1)
        #expect(metrics.value("portcullis_config_generation") == 2)
        // The jwks_file is read again at every reload: the count goes on from the first load.
        #expect(metrics.value("portcullis_jwks_refreshes_total", ["issuer": "e2e"]) == 2)

        // The directory watcher reloads a changed file by itself.
        try system.rewriteConfig { $0 + "\nupstrem: {}\n" }
        metrics = try Self.scrape(port: admin, timeout: 10) { ($0.value("portcullis_config_reload_failures_total") ?? 0) >= 1 }
        #expect(metrics.value("portcullis_config_reload_failures_total") ?? 0 >= 1)
        #expect(metrics.value("portcullis_config_generation") == 2)
        #expect(metrics.value("portcullis_config_reloads_total") == 1)
        #expect(Self.get("/readyz", port: admin).status == 200, "a refused reload leaves the gateway ready")
    }

    @Test func readyzSaysDrainingWhileInFlightRequestsFinish() throws {
        let system = try Self.start()
        let admin = try Self.adminPort(system)
        let client = try RawHTTPClient.connect(port: system.port)
        client.sendRequest("GET", "/demo/slow?ms=1500")
        usleep(200_000)
        system.gateway.signal(SIGTERM)

        var ready = Self.get("/readyz", port: admin)
        let deadline = Date().addingTimeInterval(1)
        while ready.status == 200 && Date() < deadline {
            usleep(20_000)
            ready = Self.get("/readyz", port: admin)
        }
        #expect(ready.status == 503)
        #expect(ready.json?["status"] as? String == "draining")
        #expect(Self.get("/healthz", port: admin).status == 200, "the process is still up while it drains")

        #expect(client.readResponse(timeout: 5)?.status == 200)
        #expect(system.gateway.waitForExit(timeout: 5) == 0)
        #expect((try? RawHTTPClient.connect(port: admin, timeout: 1)) == nil, "the admin listener is closed after the drain")
    }

    @Test func anAdminAddressInUseStopsTheStart() throws {
        let system = try Self.start()
        let taken = try Self.adminPort(system)
        #expect(throws: PortcullisProcessError.self) {
            _ = try GatewayUnderTest.start("admin:\n  address: \"127.0.0.1:\(taken)\"")
        }
    }
}
