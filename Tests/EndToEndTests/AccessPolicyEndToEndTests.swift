import Foundation
import Testing

/// Roles, allowlists and the CIPP profile, end to end: a real gateway in front of the demo
/// backend (which answers like CIPP), clients calling from different loopback addresses.
@Suite("Access policy end to end", .serialized)
struct AccessPolicyEndToEndTests {
    static func gateway() throws -> GatewayUnderTest {
        try GatewayUnderTest.start(
            """
            issuers:
            \(TestIdentity.issuerEntryYAML)
            clients:
              - id: reporting
                issuer: e2e
                roles: [readonly]
                allowed_ips: ["127.0.0.2", "127.0.0.3/32", "::1"]
              - id: helpdesk
                issuer: e2e
                roles: [helpdesk, readonly]
              - id: nowhere
                issuer: e2e
                roles: [readonly]
                allowed_ips: []
            roles:
              readonly:
                allow:
                  - { methods: [GET, HEAD], paths: ["/api/List*", "/api/Get*", "/demo/echo/**"] }
                deny:
                  - { paths: ["/api/ListOffboardTenants"] }
              helpdesk:
                allow:
                  - { methods: [GET], paths: ["/api/ListUsers"] }
                  - { methods: [POST], paths: ["/api/ExecResetPass", "/api/$batch"] }
                tenants: { allow: ["contoso.onmicrosoft.com"] }
            """,
            upstreamExtra: "  profile: cipp"
        )
    }

    static func call(
        _ gateway: GatewayUnderTest,
        _ method: String,
        _ path: String,
        client: String,
        from source: String? = nil,
        host: String = "127.0.0.1",
        body: String? = nil
    ) -> HTTPTestResponse {
        do {
            let connection = try RawHTTPClient.connect(host: host, port: gateway.port, from: source)
            defer { connection.close() }
            var headers = [("Authorization", "Bearer \(TestIdentity.token(clientID: client))")]
            if body != nil { headers.append(("Content-Type", "application/json")) }
            connection.sendRequest(method, path, headers: headers, body: body.map { Array($0.utf8) }, authorize: false)
            return connection.readResponse(requestMethod: method) ?? .failed(connection.lastFailure ?? "no response")
        } catch {
            return .failed("\(error)")
        }
    }

    @Test func theAllowlistDecidesByTheCallersAddress() throws {
        let gateway = try Self.gateway()
        #expect(Self.call(gateway, "GET", "/api/ListTenants", client: "reporting", from: "127.0.0.2").status == 200)
        #expect(Self.call(gateway, "GET", "/api/ListTenants", client: "reporting", from: "127.0.0.3").status == 200)
        let outside = Self.call(gateway, "GET", "/api/ListTenants", client: "reporting", from: "127.0.0.4")
        #expect(outside.status == 403)
        #expect(outside.json?["error"] as? String == "ip_not_allowed")
        #expect(Self.call(gateway, "GET", "/api/ListTenants", client: "reporting", from: "127.0.0.1").status == 403)
        // No allowed_ips: any address; an empty list: none.
        #expect(Self.call(gateway, "GET", "/api/ListTenants", client: "helpdesk", from: "127.0.0.9").status == 200)
        #expect(Self.call(gateway, "GET", "/api/ListTenants", client: "nowhere", from: "127.0.0.2").status == 403)
    }

    @Test func theAllowlistMatchesIPv6Callers() throws {
        let gateway = try GatewayUnderTest.start(
            try Self.gatewayConfigForIPv6(),
            listen: "[::1]:0"
        )
        #expect(Self.call(gateway, "GET", "/api/ListTenants", client: "reporting", host: "::1").status == 200)
        #expect(Self.call(gateway, "GET", "/api/ListTenants", client: "nowhere", host: "::1").status == 403)
    }

    static func gatewayConfigForIPv6() throws -> String {
        """
        issuers:
        \(TestIdentity.issuerEntryYAML)
        clients:
          - id: reporting
            issuer: e2e
            roles: [readonly]
            allowed_ips: ["::1"]
          - id: nowhere
            issuer: e2e
            roles: [readonly]
            allowed_ips: ["127.0.0.1"]
        roles:
          readonly:
            allow:
              - { methods: [GET], paths: ["/api/List*"] }
        """
    }

    @Test func rolesDecideWithDenyPrecedenceCaseInsensitiveUnderCIPP() throws {
        let gateway = try Self.gateway()
        func status(_ method: String, _ path: String, _ client: String = "helpdesk") -> Int {
            Self.call(gateway, method, path, client: client).status
        }
        #expect(status("GET", "/api/ListTenants") == 200)
        #expect(status("GET", "/api/listtenants") == 200)
        #expect(status("HEAD", "/api/ListTenants") == 200)
        #expect(status("DELETE", "/api/ListTenants") == 403)
        #expect(status("GET", "/api/ListOffboardTenants") == 403, "deny wins")
        #expect(status("GET", "/api/listoffboardtenants") == 403, "deny wins in any case")
        #expect(status("GET", "/api/ExecOffboardUser") == 403, "no rule: deny")
        // Traversal and encoded forms are decided on the canonical path.
        #expect(status("GET", "/api/ListUsers/../ExecOffboardUser") == 403)
        #expect(status("GET", "/api/%4cistTenants") == 200)
        #expect(status("GET", "/api/%2e%2e/api/ListTenants") == 200)
        #expect(status("GET", "//api//ListTenants") == 200)
        #expect(status("GET", "/api/ListTenants/../../api/ExecOffboardUser") == 403)
        let denied = Self.call(gateway, "POST", "/api/ExecOffboardUser", client: "helpdesk", body: "{}")
        #expect(denied.status == 403)
        #expect(denied.header("WWW-Authenticate") == #"Bearer realm="portcullis", error="insufficient_scope""#)
        #expect(denied.json?["error"] as? String == "insufficient_scope")
    }

    @Test func tenantsAreReadFromTheQueryAndTheBody() throws {
        let gateway = try Self.gateway()
        func status(_ method: String, _ path: String, body: String? = nil) -> Int {
            Self.call(gateway, method, path, client: "helpdesk", body: body).status
        }
        // GET ListUsers is allowed by readonly (any tenant) and by helpdesk (contoso only):
        // privileges add up.
        #expect(status("GET", "/api/ListUsers?tenantFilter=fabrikam.onmicrosoft.com") == 200)
        let reset = #"{"tenantFilter":"contoso.onmicrosoft.com","ID":"adele.vance@contoso.onmicrosoft.com"}"#
        #expect(status("POST", "/api/ExecResetPass", body: reset) == 200)
        #expect(status("POST", "/api/ExecResetPass?tenantFilter=contoso.onmicrosoft.com", body: #"{"ID":"adele.vance@contoso.onmicrosoft.com"}"#) == 200)
        #expect(status("POST", "/api/ExecResetPass", body: #"{"tenantFilter":{"value":"fabrikam.onmicrosoft.com"},"ID":"x"}"#) == 403)
        #expect(status("POST", "/api/ExecResetPass", body: #"{"ID":"x"}"#) == 403, "no tenant where one is required")
        // Two different tenants, one in the query and one in the body: refused, not guessed.
        #expect(status("POST", "/api/ExecResetPass?tenantFilter=contoso.onmicrosoft.com", body: #"{"tenantFilter":"fabrikam.onmicrosoft.com"}"#) == 400)
        #expect(status("POST", "/api/ExecResetPass?tenantFilter=a.com&tenantFilter=b.com", body: "{}") == 400)
    }

    /// A cipp gateway whose one client may POST /demo/upload for contoso only.
    static func uploadGateway(extra: String = "", upstreamExtra: String = "") throws -> GatewayUnderTest {
        try GatewayUnderTest.start(
            """
            issuers:
            \(TestIdentity.issuerEntryYAML)
            clients:
              - id: helpdesk
                issuer: e2e
                roles: [echo]
            roles:
              echo:
                allow:
                  - { methods: [POST], paths: ["/demo/upload"] }
                tenants: { allow: ["contoso.onmicrosoft.com"] }
            \(extra)
            """,
            upstreamExtra: "  profile: cipp\n" + upstreamExtra
        )
    }

    @Test func aBodyReadToDecideIsBoundedAndForwardedUnchanged() throws {
        let gateway = try Self.uploadGateway(extra: "limits:\n  max_inspect_body: 2048")
        let body = #"{"tenantFilter":"contoso.onmicrosoft.com","note":"\#(String(repeating: "x", count: 1000))"}"#
        let echoed = Self.call(gateway, "POST", "/demo/upload", client: "helpdesk", body: body)
        #expect(echoed.status == 200, "\(echoed)")
        #expect(echoed.json?["bytes"] as? Int == body.utf8.count)
        let big = #"{"tenantFilter":"contoso.onmicrosoft.com","note":"\#(String(repeating: "x", count: 4000))"}"#
        #expect(Self.call(gateway, "POST", "/demo/upload", client: "helpdesk", body: big).status == 413)
        let otherTenant = #"{"tenantFilter":"fabrikam.onmicrosoft.com"}"#
        #expect(Self.call(gateway, "POST", "/demo/upload", client: "helpdesk", body: otherTenant).status == 403)
    }

    @Test func aBodyTooSlowToDecideIsA408NotA504() throws {
        let gateway = try Self.uploadGateway(upstreamExtra: "  timeout: 500ms")
        let client = try RawHTTPClient.connect(port: gateway.port)
        let head = RawHTTPClient.requestHead(
            "POST", "/demo/upload", authority: client.authority,
            headers: [("Authorization", "Bearer \(TestIdentity.token(clientID: "helpdesk"))"), ("Content-Type", "application/json")],
            bodyLength: 100, authorize: false)
        #expect(client.send(head + Array(#"{"tenantFilter":"#.utf8)))  // and then nothing
        let response = try #require(client.readResponse(timeout: 5))
        #expect(response.status == 408, "\(response)")
        #expect(gateway.backendStats()["requests"] == 1, "only the stats request itself reached the backend")
    }

    @Test func everyBatchSubRequestIsChecked() throws {
        let gateway = try Self.gateway()
        func batch(_ requests: String) -> Int {
            Self.call(gateway, "POST", "/api/$batch", client: "helpdesk", body: #"{"requests":[\#(requests)]}"#).status
        }
        let listContoso = #"{"id":"1","method":"GET","url":"ListUsers","query":{"tenantFilter":"contoso.onmicrosoft.com"}}"#
        let resetContoso = #"{"id":"2","method":"POST","url":"ExecResetPass","body":{"tenantFilter":"contoso.onmicrosoft.com","ID":"adele.vance@contoso.onmicrosoft.com"}}"#
        let resetFabrikam = #"{"id":"3","method":"POST","url":"ExecResetPass","body":{"tenantFilter":"fabrikam.onmicrosoft.com","ID":"x"}}"#
        let offboard = #"{"id":"4","method":"POST","url":"ExecOffboardUser","body":{"tenantFilter":"contoso.onmicrosoft.com"}}"#
        #expect(batch(listContoso + "," + resetContoso) == 200)
        #expect(batch(listContoso + "," + resetFabrikam) == 403, "one sub-request outside the tenants")
        #expect(batch(listContoso + "," + offboard) == 403, "one sub-request no role allows")
        #expect(batch(#"{"id":"5","method":"GET","url":"../../demo/stats"}"#) == 400, "not an endpoint name")
        #expect(batch(#"{"id":"6","method":"GET","url":"../demo/stats"}"#) == 400, "not an endpoint name")
        #expect(Self.call(gateway, "POST", "/api/$batch", client: "helpdesk", body: "not json").status == 400)
        // The reporting client has no $batch privilege at all.
        #expect(Self.call(gateway, "POST", "/api/$batch", client: "reporting", from: "127.0.0.2", body: #"{"requests":[]}"#).status == 403)
    }

    @Test func aChangedFileIsReloadedWithoutASignalAndABrokenOneKeepsTheRunningConfig() throws {
        let gateway = try Self.gateway()
        let path = "/api/ExecOffboardUser?tenantFilter=contoso.onmicrosoft.com"
        #expect(Self.call(gateway, "GET", path, client: "helpdesk").status == 403)
        // Allow it by editing the file only.
        try gateway.rewriteConfig {
            $0.replacingOccurrences(of: #"paths: ["/api/ListUsers"] }"#, with: #"paths: ["/api/ListUsers", "/api/ExecOffboardUser"] }"#)
        }
        func waitFor(_ status: Int) -> Bool {
            let deadline = Date().addingTimeInterval(8)
            while Date() < deadline {
                if Self.call(gateway, "GET", path, client: "helpdesk").status == status { return true }
                usleep(100_000)
            }
            return false
        }
        #expect(waitFor(404), "the edited file was not picked up (the demo backend answers 404 for this endpoint)")
        // A broken file: every error is logged, the running config stays.
        try gateway.rewriteConfig { $0.replacingOccurrences(of: "roles: [helpdesk, readonly]", with: "roles: [helpdesk, no-such-role]") }
        usleep(2_500_000)
        #expect(Self.call(gateway, "GET", path, client: "helpdesk").status == 404)
        #expect(Self.call(gateway, "GET", "/api/ListTenants", client: "helpdesk").status == 200, "readonly still applies")
        #expect(gateway.gateway.output.contains("no-such-role"), "the reload error names the problem")
    }

    @Test func aHundredReloadsUnderLoadFailNoRequest() throws {
        let gateway = try Self.gateway()
        let stop = ManagedFlag()
        let counts = Counts()
        let workers = (0..<2).map { _ in
            Thread {
                guard let connection = try? RawHTTPClient.connect(port: gateway.port) else { return counts.add(failed: 1) }
                let token = TestIdentity.token(clientID: "helpdesk")
                while !stop.isSet {
                    connection.sendRequest("GET", "/api/ListTenants", headers: [("Authorization", "Bearer \(token)")], authorize: false)
                    let status = connection.readResponse()?.status ?? 0
                    counts.add(ok: status == 200 ? 1 : 0, failed: status == 200 ? 0 : 1)
                }
            }
        }
        workers.forEach { $0.start() }
        for _ in 0..<100 {
            gateway.gateway.signal(SIGHUP)
            usleep(30_000)
        }
        usleep(300_000)
        stop.set()
        usleep(300_000)
        #expect(counts.failed == 0, "\(counts.failed) failed of \(counts.ok + counts.failed)")
        #expect(counts.ok > 100)
        #expect(gateway.gateway.output.components(separatedBy: "configuration reloaded").count > 50)
    }
}

/// A flag one thread sets and others read.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { self.lock.withLock { self.value } }
    func set() { self.lock.withLock { self.value = true } }
}

final class Counts: @unchecked Sendable {
    private let lock = NSLock()
    private var okCount = 0
    private var failedCount = 0
    var ok: Int { self.lock.withLock { self.okCount } }
    var failed: Int { self.lock.withLock { self.failedCount } }
    func add(ok: Int = 0, failed: Int = 0) {
        self.lock.withLock {
            self.okCount += ok
            self.failedCount += failed
        }
    }
}

/// Roles written against the permission catalogue of ../shared/testdata/cipp/catalog.json.
@Suite("Catalogue roles end to end")
struct CatalogueRolesEndToEndTests {
    static var catalog: URL? {
        LLHTTPFixtures.directory()?.deletingLastPathComponent().appendingPathComponent("cipp/catalog.json")
    }
    static let missing = "the CIPP catalogue fixture (../shared/testdata/cipp/catalog.json) is not present"

    @Test(.enabled(if: CatalogueRolesEndToEndTests.catalog.map { FileManager.default.fileExists(atPath: $0.path) } ?? false, Comment(rawValue: missing)))
    func aReadOnlyRoleFromTheCatalogueAllowsReadPermissionsOnly() throws {
        let catalog = try #require(Self.catalog)
        let gateway = try GatewayUnderTest.start(
            """
            issuers:
            \(TestIdentity.issuerEntryYAML)
            catalog:
              openapi: "\(catalog.path)"
              permission_field: x-cipp-role
            clients:
              - id: reader
                issuer: e2e
                roles: [reader]
            roles:
              reader:
                permissions: { include: ["*.Read"], exclude: ["CIPP.SuperAdmin.*"] }
            """,
            upstreamExtra: "  profile: cipp"
        )
        func status(_ method: String, _ path: String, body: String? = nil) -> Int {
            AccessPolicyEndToEndTests.call(gateway, method, path, client: "reader", body: body).status
        }
        #expect(status("GET", "/api/ListUsers?tenantFilter=contoso.onmicrosoft.com") == 200)
        #expect(status("GET", "/api/listtenants") == 200)
        #expect(status("POST", "/api/ExecResetPass", body: #"{"tenantFilter":"contoso.onmicrosoft.com"}"#) == 403, "ReadWrite")
        #expect(status("POST", "/api/ListOffboardTenants", body: "{}") == 403, "a List endpoint needing ReadWrite")
        // ExecGetRecoveryKey needs only Endpoint.Device.Read: the gateway lets it through
        // (the demo backend does not know it and answers 404).
        #expect(status("POST", "/api/ExecGetRecoveryKey", body: #"{"tenantFilter":"contoso.onmicrosoft.com"}"#) == 404)
        // CIPP runs an endpoint's handler for every method: the permission decides, not the method.
        #expect(status("GET", "/api/ExecGetRecoveryKey?tenantFilter=contoso.onmicrosoft.com") == 404)
        #expect(status("GET", "/api/ExecResetPass?tenantFilter=contoso.onmicrosoft.com") == 403, "ReadWrite, whatever the method")
    }
}
