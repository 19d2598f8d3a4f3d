import Foundation
import Testing

/// The CIPP profile reads a request the way CIPP's own code does: every tenant field in the
/// query and the body, `$batch` items with their query objects, wildcard endpoint names, and
/// tenants known by id and domain through a directory fetched from the backend's ListTenants.
/// Each bypass form is refused and the backend receives nothing.
@Suite("CIPP tenants end to end", .serialized)
struct CIPPTenantEndToEndTests {
    static let contosoID = "3b2e6f0a-6c1d-4a57-9a3e-0c4b8f1d2e01"
    static let fabrikamID = "7d41c9b5-2f8e-4d06-b1a7-5e9c3a2f4b02"

    static func gateway() throws -> GatewayUnderTest {
        let gateway = try GatewayUnderTest.start(
            """
            issuers:
            \(TestIdentity.issuerEntryYAML)
            clients:
              - id: helpdesk
                issuer: e2e
                roles: [helpdesk]
              - id: notfabrikam
                issuer: e2e
                roles: [notfabrikam]
            roles:
              helpdesk:
                allow:
                  - { paths: ["/api/ListUsers", "/api/ExecResetPass", "/api/EditContact", "/api/$batch", "/api/ListT*"] }
                tenants: { allow: ["contoso.onmicrosoft.com"] }
              notfabrikam:
                allow:
                  - { paths: ["/api/ListUsers"] }
                tenants: { block: ["fabrikam.onmicrosoft.com"] }
            tenant_directory:
              upstream: /api/ListTenants
            logging:
              access_log: access.log
            """,
            upstreamExtra: "  profile: cipp"
        )
        // The directory is fetched from the backend after the start: wait for it.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if Self.call(gateway, "GET", "/api/ListUsers?tenantFilter=\(Self.contosoID)", client: "helpdesk").status == 200 { break }
            usleep(100_000)
        }
        return gateway
    }

    static func call(_ gateway: GatewayUnderTest, _ method: String, _ path: String, client: String, body: String? = nil) -> HTTPTestResponse {
        AccessPolicyEndToEndTests.call(gateway, method, path, client: client, body: body)
    }

    /// Sends the request and checks the status, and that the backend received nothing.
    static func refused(
        _ gateway: GatewayUnderTest,
        _ method: String,
        _ path: String,
        client: String = "helpdesk",
        body: String? = nil,
        status: Int,
        reason: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let before = gateway.backendStats()["requests"] ?? -1
        let response = Self.call(gateway, method, path, client: client, body: body)
        let after = gateway.backendStats()["requests"] ?? -2
        #expect(response.status == status, "\(method) \(path) \(body ?? ""): \(response)", sourceLocation: sourceLocation)
        #expect(after == before + 1, "the backend received \(after - before - 1) request(s) for \(method) \(path)", sourceLocation: sourceLocation)
        #expect(Self.accessLogHas(gateway, reason: reason), "no access-log line with reason \(reason)", sourceLocation: sourceLocation)
    }

    /// Whether the access log has a line with `reason`, waiting up to 10 s (the writer batches).
    static func accessLogHas(_ gateway: GatewayUnderTest, reason: String) -> Bool {
        guard let file = gateway.gateway.configDirectory?.appendingPathComponent("access.log") else { return false }
        let deadline = Date().addingTimeInterval(10)
        repeat {
            if let text = try? String(contentsOf: file, encoding: .utf8), text.contains("\"reason\":\"\(reason)\"") { return true }
            Thread.sleep(forTimeInterval: 0.05)
        } while Date() < deadline
        return false
    }

    @Test func theDirectoryIsFetchedAndEitherFormOfATenantIsKnown() throws {
        let gateway = try Self.gateway()
        #expect(Self.call(gateway, "GET", "/api/ListUsers?tenantFilter=contoso.onmicrosoft.com", client: "helpdesk").status == 200)
        #expect(Self.call(gateway, "GET", "/api/ListUsers?tenantFilter=\(Self.contosoID.uppercased())", client: "helpdesk").status == 200)
        #expect(gateway.gateway.output.contains("tenant directory fetched"))
        // A block list is not sidestepped by naming the blocked tenant by its id.
        Self.refused(gateway, "GET", "/api/ListUsers?tenantFilter=\(Self.fabrikamID)", client: "notfabrikam", status: 403, reason: "tenant_denied")
        Self.refused(gateway, "GET", "/api/ListUsers?tenantFilter=AllTenants", client: "notfabrikam", status: 403, reason: "tenant_unknown")
        #expect(Self.call(gateway, "GET", "/api/ListUsers?tenantFilter=northwind.onmicrosoft.com", client: "notfabrikam").status == 200)
    }

    @Test func everyTenantFieldOfTheQueryAndTheBodyIsReadAndMustAgree() throws {
        let gateway = try Self.gateway()
        let contoso = "tenantFilter=contoso.onmicrosoft.com"
        // The query's tenantFilter allowed, the body's tenantID another tenant (EditContact acts on it).
        Self.refused(gateway, "POST", "/api/EditContact?\(contoso)", body: #"{"tenantID":"fabrikam.onmicrosoft.com","ContactID":"1"}"#, status: 400, reason: "tenant_conflict")
        // tenantId alone, in the query and in the body.
        Self.refused(gateway, "GET", "/api/ListUsers?tenantId=fabrikam.onmicrosoft.com", status: 403, reason: "tenant_denied")
        Self.refused(gateway, "POST", "/api/ExecResetPass", body: #"{"TenantId":"fabrikam.onmicrosoft.com","ID":"x"}"#, status: 403, reason: "tenant_denied")
        // Names in mixed case.
        Self.refused(gateway, "GET", "/api/ListUsers?TENANTfilter=fabrikam.onmicrosoft.com", status: 403, reason: "tenant_denied")
        Self.refused(gateway, "GET", "/api/ListUsers?\(contoso)&TenantID=fabrikam.onmicrosoft.com", status: 400, reason: "tenant_conflict")
        // A body not labelled JSON is read too.
        Self.refused(gateway, "POST", "/api/ExecResetPass?\(contoso)", body: "not json", status: 400, reason: "bad_request")
        // One tenant written both ways agrees; the backend receives it.
        let agreeing = Self.call(gateway, "POST", "/api/ExecResetPass?\(contoso)", client: "helpdesk", body: #"{"tenantID":"\#(Self.contosoID)","ID":"adele.vance@contoso.onmicrosoft.com"}"#)
        #expect(agreeing.status == 200, "\(agreeing)")
    }

    @Test func batchItemsAreReadWithTheirQueryObjects() throws {
        let gateway = try Self.gateway()
        func batch(_ items: String...) -> String { #"{"requests":["# + items.joined(separator: ",") + "]}" }
        let listContoso = #"{"id":"1","method":"GET","url":"ListUsers","query":{"tenantFilter":"contoso.onmicrosoft.com"}}"#
        let answered = Self.call(gateway, "POST", "/api/$batch", client: "helpdesk", body: batch(listContoso))
        #expect(answered.status == 200, "\(answered)")
        #expect(answered.bodyString.contains("adele.vance@contoso.onmicrosoft.com"), "the demo backend ran the item with its query object")
        let listFabrikam = #"{"id":"2","method":"GET","url":"ListUsers","query":{"TENANTID":"fabrikam.onmicrosoft.com"}}"#
        Self.refused(gateway, "POST", "/api/$batch", body: batch(listContoso, listFabrikam), status: 403, reason: "tenant_denied")
        let queryVsBody = #"{"id":"3","method":"POST","url":"EditContact","query":{"tenantFilter":"contoso.onmicrosoft.com"},"body":{"tenantID":"fabrikam.onmicrosoft.com"}}"#
        Self.refused(gateway, "POST", "/api/$batch", body: batch(queryVsBody), status: 400, reason: "tenant_conflict")
        Self.refused(gateway, "POST", "/api/$batch", body: batch(#"{"id":"4","method":"GET","url":"ListUsers","query":"tenantFilter=x"}"#), status: 400, reason: "batch_invalid")
        Self.refused(gateway, "POST", "/api/$batch", body: batch(#"{"id":"5","method":"GET","url":"ListUsers?tenantFilter=contoso.onmicrosoft.com"}"#), status: 400, reason: "batch_invalid")
        Self.refused(gateway, "POST", "/api/$batch", body: batch(#"{"id":"6","method":"GET","url":"ListT*"}"#), status: 400, reason: "batch_invalid")
        let twentyOne = batch(Array(repeating: listContoso, count: 21).joined(separator: ","))
        Self.refused(gateway, "POST", "/api/$batch", body: twentyOne, status: 400, reason: "batch_invalid")
    }

    @Test(arguments: ["/api/ListT*", "/api/ListT%2A", "/api/ListTenant%3F", "/api/ListT%5Bae%5Dnants"])
    func wildcardEndpointNamesAreRefused(path: String) throws {
        let gateway = try Self.gateway()
        Self.refused(gateway, "GET", path, status: 400, reason: "endpoint_wildcard")
    }
}
