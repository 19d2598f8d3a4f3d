import Foundation
import Testing

/// A stored client's own limits through the admin API (embedded store): accepted on create,
/// shown with their sources, enforced on the request path, replaced by PUT, cleared by DELETE,
/// and a bad field refused naming it.
@Suite("Stored client limits end to end", .serialized)
struct StoredClientLimitsEndToEndTests {
    @Test func limitsSetThroughTheAdminAPIAreShownAndEnforced() throws {
        let system = try StoreEndToEndTests.start()
        defer { _ = system.under.gateway.terminate() }
        let created = system.api("POST", "/api/v1/clients", json: #"{"id": "metered", "roles": ["reader"], "limits": {"rate": "2/h", "burst": 2}}"#)
        #expect(created.status == 201, "\(created)")
        let limits = created.json?["limits"] as? [String: Any]
        #expect(limits?["rate"] as? String == "2/h", "\(created)")
        #expect((limits?["sources"] as? [String: Any])?["rate"] as? String == "client", "\(created)")
        let secret = try #require(created.json?["client_secret"] as? String)
        let token = try #require(StoreEndToEndTests.token(system, "metered", secret))
        #expect(system.call("/demo/echo", token: token).status == 200)
        #expect(system.call("/demo/echo", token: token).status == 200)
        let refused = system.call("/demo/echo", token: token)
        #expect(refused.status == 429)
        #expect(refused.json?["error"] as? String == "rate_limited")

        // A bad field is 400 and names it; nothing changes.
        let bad = system.api("PUT", "/api/v1/clients/metered/limits", json: #"{"rate": "fast"}"#)
        #expect(bad.status == 400)
        #expect((bad.json?["error_description"] as? String)?.hasPrefix("limits.rate: expected a rate") == true, "\(bad)")
        // A change the configuration would refuse (a burst without a rate) is 400 too, and says why.
        let burstOnly = system.api("PUT", "/api/v1/clients/metered/limits", json: #"{"burst": 3}"#)
        #expect(burstOnly.status == 400, "\(burstOnly)")
        #expect(burstOnly.json?["error"] as? String == "invalid_request")

        // Replaced: a concurrency cap only, no rate; the counters of the rate do not matter any more.
        let put = system.api("PUT", "/api/v1/clients/metered/limits", json: #"{"concurrency": 4}"#)
        #expect(put.status == 200, "\(put)")
        #expect((put.json?["limits"] as? [String: Any])?["rate"] == nil, "\(put)")
        #expect((put.json?["limits"] as? [String: Any])?["concurrency"] as? Int == 4, "\(put)")
        #expect(system.call("/demo/echo", token: token).status == 200)
        #expect(system.call("/demo/echo", token: token).header("RateLimit-Policy") == "\"concurrency\";q=4")

        // Cleared: no limits, no RateLimit fields.
        let cleared = system.api("DELETE", "/api/v1/clients/metered/limits")
        #expect(cleared.status == 200, "\(cleared)")
        #expect(system.call("/demo/echo", token: token).header("RateLimit-Policy") == nil)
        #expect(system.api("PUT", "/api/v1/clients/nobody/limits", json: "{}").status == 404)
    }
}
