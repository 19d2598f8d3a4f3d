import Foundation
import Testing

/// Per-client limits on one gateway with two event loops: a rate admits exactly its allowance
/// whatever the connections and loops, a concurrency cap holds at the backend, a `$batch` counts
/// as its items, refusals are 429 with `Retry-After` and the RateLimit headers.
@Suite("Client limits end to end", .serialized)
struct ClientLimitsEndToEndTests {
    static func gateway(_ limits: String, profile: String = "generic") throws -> GatewayUnderTest {
        try GatewayUnderTest.start(
            """
            issuers:
            \(TestIdentity.issuerEntryYAML)
            clients:
              - { id: limited, issuer: e2e, roles: [limited] }
              - { id: free, issuer: e2e, roles: [free] }
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
            """,
            upstreamExtra: "  profile: \(profile)",
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
        workers.forEach { $0.start() }
        let deadline = Date().addingTimeInterval(120)
        while counts.total < 320 && Date() < deadline { usleep(20_000) }
        #expect(counts.total == 320)
        #expect(counts.count(200) == 100, "\(counts.all)")
        #expect(counts.count(429) == 220, "\(counts.all)")
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

    @Test func aBatchCountsAsItsItemsAndIsRefusedWhole() throws {
        let gateway = try Self.gateway("{ rate: 10/m, burst: 10 }", profile: "cipp")
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
