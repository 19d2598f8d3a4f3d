import Foundation
import Testing

/// `portcullis explain` and the running gateway decide with the same function: over a table of
/// requests that covers every decision reason, explain's reason and status are the gateway's
/// (read from its access log).
@Suite("Explain agrees with the gateway", .serialized)
struct ExplainAgreesWithGatewayTests {
    static let contosoID = "3b2e6f0a-6c1d-4a57-9a3e-0c4b8f1d2e01"
    static let tenants = #"""
        [{"customerId":"3b2e6f0a-6c1d-4a57-9a3e-0c4b8f1d2e01","defaultDomainName":"contoso.onmicrosoft.com"},
         {"customerId":"7d41c9b5-2f8e-4d06-b1a7-5e9c3a2f4b02","defaultDomainName":"fabrikam.onmicrosoft.com"}]
        """#

    struct Case: CustomStringConvertible {
        var client: String
        var method: String
        var path: String
        var body: String? = nil
        var from: String = "127.0.0.1"
        var reason: String

        var description: String { "\(self.client) \(self.method) \(self.path) \(self.body ?? "") from \(self.from) -> \(self.reason)" }
    }

    static let cases: [Case] = [
        Case(client: "helpdesk", method: "GET", path: "/api/ListUsers?tenantFilter=contoso.onmicrosoft.com", reason: "allowed"),
        Case(client: "helpdesk", method: "GET", path: "/api/ListUsers?tenantFilter=\(contosoID)", reason: "allowed"),
        Case(client: "fenced", method: "GET", path: "/api/ListTenants", from: "127.0.0.9", reason: "ip_not_allowed"),
        Case(client: "helpdesk", method: "GET", path: "/api/ExecOffboardUser", reason: "role_denied"),
        Case(client: "reader", method: "GET", path: "/api/ListOffboardTenants", reason: "deny_rule"),
        Case(client: "helpdesk", method: "GET", path: "/api/ListUsers", reason: "tenant_required"),
        Case(client: "helpdesk", method: "GET", path: "/api/ListUsers?tenantId=fabrikam.onmicrosoft.com", reason: "tenant_denied"),
        Case(client: "helpdesk", method: "GET", path: "/api/ListUsers?tenantFilter=AllTenants", reason: "tenant_unknown"),
        Case(
            client: "helpdesk", method: "POST", path: "/api/ExecResetPass?tenantFilter=contoso.onmicrosoft.com",
            body: #"{"tenantID":"fabrikam.onmicrosoft.com"}"#, reason: "tenant_conflict"),
        Case(client: "reader", method: "GET", path: "/api/List%2A", reason: "endpoint_wildcard"),
        Case(client: "helpdesk", method: "POST", path: "/api/$batch", body: #"{"requests":[{"method":"GET","url":"List*"}]}"#, reason: "batch_invalid"),
        Case(
            client: "helpdesk", method: "POST", path: "/api/$batch",
            body: #"{"requests":[{"method":"GET","url":"ListUsers","query":{"tenantFilter":"fabrikam.onmicrosoft.com"}}]}"#,
            reason: "tenant_denied"),
        Case(client: "helpdesk", method: "POST", path: "/api/ExecResetPass", body: "not json", reason: "bad_request"),
        Case(client: "retired", method: "GET", path: "/api/ListTenants", reason: "client_disabled"),
        Case(client: "reader", method: "GET", path: "/api/ListTenants;x=1", reason: "path_semicolon"),
        Case(client: "reader", method: "GET", path: "/api/ListTenants.", reason: "path_trailing_dot"),
    ]

    @Test func explainGivesTheGatewaysAnswerForEveryReason() throws {
        let gateway = try GatewayUnderTest.start(
            """
            issuers:
            \(TestIdentity.issuerEntryYAML)
            clients:
              - { id: helpdesk, issuer: e2e, roles: [helpdesk] }
              - { id: reader, issuer: e2e, roles: [reader] }
              - { id: fenced, issuer: e2e, roles: [reader], allowed_ips: ["127.0.0.2"] }
              - { id: retired, issuer: e2e, roles: [reader], enabled: false }
            roles:
              reader:
                allow: [{ paths: ["/api/List*"] }]
                deny: [{ paths: ["/api/ListOffboardTenants"] }]
              helpdesk:
                allow: [{ paths: ["/api/ListUsers", "/api/ExecResetPass", "/api/$batch"] }]
                tenants: { block: ["northwind.onmicrosoft.com"], allow: ["contoso.onmicrosoft.com"] }
            tenant_directory: { file: tenants.json }
            logging:
              access_log: access.log
            """,
            upstreamExtra: "  profile: cipp",
            extraFiles: ["tenants.json": Self.tenants]
        )
        let directory = try #require(gateway.gateway.configDirectory)
        let covered = Set(Self.cases.map(\.reason))
        #expect(covered.isSuperset(of: ["allowed", "ip_not_allowed", "role_denied", "deny_rule", "tenant_required", "tenant_denied",
            "tenant_unknown", "tenant_conflict", "endpoint_wildcard", "batch_invalid", "bad_request"]))
        for item in Self.cases {
            let response = Self.send(gateway, item)
            let requestID = try #require(response.header("X-Request-Id"), "\(item): \(response)")
            let line = try #require(Self.accessLogLine(directory.appendingPathComponent("access.log"), requestID: requestID), "\(item)")
            let explained = try Self.explain(directory, item)
            #expect(line["reason"] as? String == item.reason, "gateway: \(item)")
            #expect(explained["reason"] as? String == item.reason, "explain: \(item) \(explained)")
            #expect(explained["status"] as? Int == response.status, "status: \(item)")
        }
    }

    static func send(_ gateway: GatewayUnderTest, _ item: Case) -> HTTPTestResponse {
        do {
            let connection = try RawHTTPClient.connect(port: gateway.port, from: item.from)
            defer { connection.close() }
            var headers = [("Authorization", "Bearer \(TestIdentity.token(clientID: item.client))")]
            if item.body != nil { headers.append(("Content-Type", "application/json")) }
            connection.sendRequest(item.method, item.path, headers: headers, body: item.body.map { Array($0.utf8) }, authorize: false)
            return connection.readResponse(requestMethod: item.method) ?? .failed(connection.lastFailure ?? "no response")
        } catch {
            return .failed("\(error)")
        }
    }

    /// The access-log line with `request_id`, waiting up to 10 s (the writer batches).
    static func accessLogLine(_ file: URL, requestID: String) -> [String: Any]? {
        let deadline = Date().addingTimeInterval(10)
        repeat {
            let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") where line.contains(requestID) {
                return try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            }
            Thread.sleep(forTimeInterval: 0.05)
        } while Date() < deadline
        return nil
    }

    static func explain(_ directory: URL, _ item: Case) throws -> [String: Any] {
        let process = Process()
        process.executableURL = try PortcullisProcess.executableURL()
        var arguments = ["explain", directory.path, "--client", item.client, "--method", item.method, "--path", item.path, "--ip", item.from, "--json"]
        if let body = item.body { arguments += ["--body", body] }
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }
}
