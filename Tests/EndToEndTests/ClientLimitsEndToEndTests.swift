import Foundation
import Testing

/// Per-client limits on one gateway with two event loops: a rate admits exactly its allowance
/// whatever the connections and loops, a concurrency cap holds at the backend, a `$batch` counts
/// as its items, refusals are 429 with `Retry-After` and the RateLimit headers.
@Suite("Client limits end to end", .serialized)
struct ClientLimitsEndToEndTests {
    static func gateway(_ limits: String, profile: String = "generic", upstream: String = "", extra: String = "") throws -> GatewayUnderTest {
        try GatewayUnderTest.start(
            """
            issuers:
            \(TestIdentity.issuerEntryYAML)
            clients:
              - { id: limited, issuer: e2e, roles: [limited] }
              - { id: free, issuer: e2e, roles: [free] }
              - { id: own, issuer: e2e, roles: [limited], limits: { rate: 60/h, burst: 3 } }
            roles:
              limited:
                allow: [{ paths: ["/**"] }]
                limits: \(limits)
              free:
                allow: [{ paths: ["/**"] }]
            logging:
              access_log: access.log
            admin:
              address: "127.0.0.1:0"
            \(extra)
            """,
            upstreamExtra: "  profile: \(profile)" + upstream,
            threads: 2
        )
    }

    static func call(_ gateway: GatewayUnderTest, _ path: String, client: String, method: String = "GET", body: String? = nil) -> HTTPTestResponse {
        AccessPolicyEndToEndTests.call(gateway, method, path, client: client, body: body)
    }

    @Test func sixteenConnectionsOnTwoLoopsAreAdmittedExactlyTheRate() throws {
        // 100 an hour with a burst of 100: over this test's few seconds, exactly 100 pass.
        let gateway = try Self.gateway("{ rate: 100/h, burst: 100 }")
        let token = TestIdentity.token(clientID: "limited")
        let counts = StatusCounts()
        let workers = (0..<16).map { _ in
            Thread {
                guard let connection = try? RawHTTPClient.connect(port: gateway.port) else { return counts.add(0) }
                defer { connection.close() }
                for _ in 0..<20 {
                    connection.sendRequest("GET", "/api/ListTenants", headers: [("Authorization", "Bearer \(token)")], authorize: false)
                    counts.add(connection.readResponse()?.status ?? 0)
                }
            }
        }
        let start = Date()
        workers.forEach { $0.start() }
        let deadline = Date().addingTimeInterval(120)
        while counts.total < 320 && Date() < deadline { usleep(20_000) }
        // One more request is allowed for every 36 s the run took (100 an hour); a run is a
        // second or two, so that is 100 unless the machine is very slow.
        let refills = Int(Date().timeIntervalSince(start) / 36)
        #expect(counts.total == 320)
        #expect((100...100 + refills).contains(counts.count(200)), "\(counts.all)")
        #expect(counts.count(200) + counts.count(429) == 320, "\(counts.all)")
        // Another client is not limited by it.
        #expect(Self.call(gateway, "/api/ListTenants", client: "free").status == 200)
        let refused = Self.call(gateway, "/api/ListTenants", client: "limited")
        #expect(refused.status == 429)
        #expect(refused.json?["error"] as? String == "rate_limited")
        #expect(Int(refused.header("Retry-After") ?? "") ?? 0 >= 1)
        #expect(refused.header("RateLimit-Policy") == "\"rate\";q=100;w=3600")
        #expect(refused.header("RateLimit")?.hasPrefix("\"rate\";r=0;t=") == true)
        #expect(CIPPTenantEndToEndTests.accessLogHas(gateway, reason: "rate_limited"))
    }

    @Test func anAdmittedResponseCarriesTheRateLimitHeaders() throws {
        let gateway = try Self.gateway("{ rate: 10/m, burst: 5 }")
        let first = Self.call(gateway, "/api/ListTenants", client: "limited")
        #expect(first.status == 200)
        #expect(first.header("RateLimit-Policy") == "\"rate\";q=5;w=30")
        #expect(first.header("RateLimit")?.hasPrefix("\"rate\";r=4;t=") == true, "\(first.header("RateLimit") ?? "none")")
        #expect(Self.call(gateway, "/api/ListTenants", client: "free").header("RateLimit") == nil)
        // A client's own limits win over its role's.
        let own = Self.call(gateway, "/api/ListTenants", client: "own")
        #expect(own.header("RateLimit-Policy") == "\"rate\";q=3;w=180", "\(own.header("RateLimit-Policy") ?? "none")")
        let metrics = try AdminEndpointsEndToEndTests.scrape(port: try AdminEndpointsEndToEndTests.adminPort(gateway))
        // 4 left of the burst of 5 (5 again once 6 s have passed on a slow machine).
        #expect([4, 5].contains(metrics.value("portcullis_client_limit_remaining", ["client": "limited", "limit": "rate"]) ?? -1))
        #expect(metrics.value("portcullis_client_limit_remaining", ["client": "free", "limit": "rate"]) == nil)
    }

    @Test func aConcurrencyCapHoldsAtTheBackend() throws {
        let gateway = try Self.gateway("{ concurrency: 2 }")
        gateway.resetBackendStats()
        let counts = StatusCounts()
        let workers = (0..<6).map { _ in
            Thread { counts.add(Self.call(gateway, "/demo/slow?ms=1500", client: "limited").status) }
        }
        workers.forEach { $0.start() }
        let deadline = Date().addingTimeInterval(60)
        while counts.total < 6 && Date() < deadline { usleep(20_000) }
        #expect(counts.total == 6)
        #expect(counts.count(200) >= 2, "\(counts.all)")
        #expect(counts.count(200) + counts.count(429) == 6, "\(counts.all)")
        // Never more than the cap at the backend (both at once unless the machine is very slow).
        #expect((1...2).contains(gateway.backendStats()["slow_in_flight_max"] ?? -1), "\(gateway.backendStats())")
        #expect(CIPPTenantEndToEndTests.accessLogHas(gateway, reason: "concurrency_limited"))
        // Every slot came back: two more run side by side again.
        gateway.resetBackendStats()
        let again = StatusCounts()
        let pair = (0..<2).map { _ in Thread { again.add(Self.call(gateway, "/demo/slow?ms=300", client: "limited").status) } }
        pair.forEach { $0.start() }
        while again.total < 2 && Date() < deadline { usleep(20_000) }
        #expect(again.count(200) == 2, "\(again.all)")
        // A refused request (the backend unreachable would be 502; here a 404) gives its slot back too.
        for _ in 0..<5 { #expect(Self.call(gateway, "/api/NoSuchEndpoint", client: "limited").status == 404) }
        #expect(Self.call(gateway, "/api/ListTenants", client: "limited").status == 200)
    }

    /// With a cap of 1, the next request is admitted only if the one before gave its slot back.
    @Test func aConcurrencySlotComesBackHoweverTheExchangeEnds() throws {
        let gateway = try Self.gateway("{ concurrency: 1 }", upstream: "\n  timeout: 3s", extra: "limits: { send_timeout: 1s }")
        let admin = try AdminEndpointsEndToEndTests.adminPort(gateway)
        func slotIsBack(_ how: String, timeout: Double = 15) throws {
            let metrics = try AdminEndpointsEndToEndTests.scrape(port: admin, timeout: timeout) {
                $0.value("portcullis_client_exchanges_in_flight", ["client": "limited"]) == 0
            }
            #expect(metrics.value("portcullis_client_exchanges_in_flight", ["client": "limited"]) == 0, "after \(how)")
            #expect(Self.call(gateway, "/demo/echo", client: "limited").status == 200, "after \(how)")
        }
        #expect(Self.call(gateway, "/demo/echo", client: "limited").status == 200)
        try slotIsBack("a success")
        #expect(Self.call(gateway, "/demo/reset", client: "limited").status == 502)
        try slotIsBack("a 502 (backend reset)")
        #expect(Self.call(gateway, "/demo/hang", client: "limited").status == 504)
        try slotIsBack("a 504 (upstream timeout)")

        // The client goes away while its exchange waits on the backend.
        let token = TestIdentity.token(clientID: "limited")
        let gone = try RawHTTPClient.connect(port: gateway.port)
        gone.sendRequest("GET", "/demo/slow?ms=1500", headers: [("Authorization", "Bearer \(token)")], authorize: false)
        usleep(200_000)
        gone.close()
        try slotIsBack("the client went away")

        // The client stops reading a large response: closed at send_timeout.
        let stalled = try RawHTTPClient.connect(port: gateway.port)
        stalled.sendRequest("GET", "/demo/stream?bytes=\(1 << 30)", headers: [("Authorization", "Bearer \(token)")], authorize: false)
        _ = stalled.receive(timeout: 5)
        try slotIsBack("a send timeout")
        stalled.close()
    }

    @Test func aBatchCountsAsItsItemsAndIsRefusedWhole() throws {
        let gateway = try Self.gateway("{ rate: 10/h, burst: 10 }", profile: "cipp")
        let item = #"{"id":"1","method":"GET","url":"ListTenants"}"#
        let twenty = #"{"requests":["# + Array(repeating: item, count: 20).joined(separator: ",") + "]}"
        let refused = Self.call(gateway, "/api/$batch", client: "limited", method: "POST", body: twenty)
        #expect(refused.status == 429, "\(refused)")
        let ten = #"{"requests":["# + Array(repeating: item, count: 10).joined(separator: ",") + "]}"
        #expect(Self.call(gateway, "/api/$batch", client: "limited", method: "POST", body: ten).status == 200)
        #expect(Self.call(gateway, "/api/ListTenants", client: "limited").status == 429, "the batch used the whole burst")
    }
}

/// Statuses counted across threads.
final class StatusCounts: @unchecked Sendable {
    private let lock = NSLock()
    private var statuses: [Int: Int] = [:]
    func add(_ status: Int) { self.lock.withLock { self.statuses[status, default: 0] += 1 } }
    func count(_ status: Int) -> Int { self.lock.withLock { self.statuses[status] ?? 0 } }
    var total: Int { self.lock.withLock { self.statuses.values.reduce(0, +) } }
    var all: [Int: Int] { self.lock.withLock { self.statuses } }
}

/// `upstream.max_concurrent` with its queue: the backend never sees more than the cap, whatever
/// the clients; waiting exchanges go through in turn (their bodies kept), a full queue or a
/// wait past its timeout is 503 with `Retry-After`.
@Suite("Backend cap end to end", .serialized)
struct BackendCapEndToEndTests {
    static func gateway(_ upstream: String) throws -> GatewayUnderTest {
        try GatewayUnderTest.start(
            """
            logging:
              access_log: access.log
            """,
            upstreamExtra: upstream,
            threads: 2
        )
    }

    static func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Int) -> StatusCounts {
        let counts = StatusCounts()
        let threads = (0..<count).map { index in Thread { counts.add(body(index)) } }
        threads.forEach { $0.start() }
        let deadline = Date().addingTimeInterval(120)
        while counts.total < count && Date() < deadline { usleep(20_000) }
        return counts
    }

    @Test func waitingExchangesGoThroughInTurnAndTheBackendNeverSeesMoreThanTheCap() throws {
        let gateway = try Self.gateway("  max_concurrent: 2\n  queue: { size: 8, timeout: 60s }")
        gateway.resetBackendStats()
        let counts = Self.concurrently(6) { _ in RawHTTPClient.request("GET", "/demo/slow?ms=700", port: gateway.port).status }
        #expect(counts.count(200) == 6, "\(counts.all)")
        #expect((1...2).contains(gateway.backendStats()["slow_in_flight_max"] ?? -1), "\(gateway.backendStats())")
        // A waiting request's body is kept and forwarded once its turn comes.
        let body = String(repeating: "b", count: 3000)
        let results = Self.concurrently(3) { index in
            if index < 2 { return RawHTTPClient.request("GET", "/demo/slow?ms=700", port: gateway.port).status }
            usleep(100_000)
            let upload = RawHTTPClient.request("POST", "/demo/upload", port: gateway.port, body: Array(body.utf8))
            return upload.json?["bytes"] as? Int == 3000 ? 299 : upload.status
        }
        #expect(results.count(200) == 2 && results.count(299) == 1, "\(results.all)")
    }

    @Test func aFullQueueIs503AndAWaitPastItsTimeoutToo() throws {
        let full = try Self.gateway("  max_concurrent: 1\n  queue: { size: 0 }")
        let counts = Self.concurrently(2) { index in
            if index == 1 { usleep(300_000) }
            let response = RawHTTPClient.request("GET", "/demo/slow?ms=1500", port: full.port)
            if response.status == 503 {
                #expect(response.header("Retry-After") == "1")
                #expect(response.json?["error"] as? String == "backend_busy")
            }
            return response.status
        }
        #expect(counts.count(200) == 1 && counts.count(503) == 1, "\(counts.all)")
        #expect(CIPPTenantEndToEndTests.accessLogHas(full, reason: "backend_busy"))

        let timed = try Self.gateway("  max_concurrent: 1\n  queue: { size: 4, timeout: 300ms }")
        let start = Date()
        let waited = Self.concurrently(2) { index in
            if index == 1 { usleep(300_000) }
            return RawHTTPClient.request("GET", "/demo/slow?ms=3000", port: timed.port).status
        }
        #expect(waited.count(200) == 1 && waited.count(503) == 1, "\(waited.all)")
        #expect(Date().timeIntervalSince(start) >= 3, "the first request ran its 3 s")
        // The slot came back: the next one goes through.
        #expect(RawHTTPClient.request("GET", "/demo/slow?ms=10", port: timed.port).status == 200)
    }
}
