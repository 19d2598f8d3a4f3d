import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `portcullis demo` on a copy of policies/demo (moved to free ports): it must start with
/// nothing else running and its printed token must work, as README.md promises.
@Suite("Demo command")
struct DemoCommandTests {
    static var demoDirectory: URL {
        // Tests/EndToEndTests/DemoCommandTests.swift -> the repository root.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("policies/demo")
    }

    @Test func theDemoStartsAndItsPrintedTokenWorks() throws {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: copy) }
        let backendPort = try closedPort()  // nothing listens there now: the demo backend will
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.demoDirectory.path) {
            var text = try String(contentsOf: Self.demoDirectory.appendingPathComponent(name), encoding: .utf8)
            text = text.replacingOccurrences(of: "\"127.0.0.1:8080\"", with: "\"127.0.0.1:0\"")
            text = text.replacingOccurrences(of: "\"127.0.0.1:9090\"", with: "\"127.0.0.1:0\"")
            text = text.replacingOccurrences(of: "http://127.0.0.1:8091", with: "http://127.0.0.1:\(backendPort)")
            try text.write(to: copy.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let demo = try PortcullisProcess(arguments: ["demo", "--config", copy.path], environment: ["PORTCULLIS_THREADS": "1"])
        let gatewayPort = try #require(demo.listeners.first { $0.label == nil }.flatMap { PortcullisProcess.port(of: $0.url) })

        // The banner follows readiness closely; wait for its token lines.
        var tokens: [String: String] = [:]
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let output = (try? String(contentsOfFile: demo.outputPath, encoding: .utf8)) ?? ""
            for line in output.split(separator: "\n") {
                if let range = line.range(of: "TOKEN=") { tokens["reporting"] = String(line[range.upperBound...]) }
                if line.contains("'psa-sync' (roles helpdesk): ") { tokens["helpdesk"] = line.split(separator: " ").last.map(String.init) }
                if line.contains("(disabled in the config: 401): ") { tokens["disabled"] = line.split(separator: " ").last.map(String.init) }
            }
            if tokens.count == 3 { break }
            usleep(50_000)
        }
        #expect(tokens.count == 3, "the banner did not print the three tokens: \(tokens.keys)")
        guard let reporting = tokens["reporting"], let helpdesk = tokens["helpdesk"], let disabled = tokens["disabled"] else { return }

        func call(_ method: String, _ path: String, _ token: String?, body: String? = nil) -> HTTPTestResponse {
            var headers: [(String, String)] = token.map { [("Authorization", "Bearer \($0)")] } ?? []
            if body != nil { headers.append(("Content-Type", "application/json")) }
            return RawHTTPClient.request(method, path, port: gatewayPort, headers: headers, body: body.map { Array($0.utf8) }, authorize: false)
        }
        let allowed = call("GET", "/api/ListTenants", reporting)
        #expect(allowed.status == 200, "\(allowed)")
        #expect(allowed.bodyString.contains("contoso.onmicrosoft.com"))
        #expect(call("GET", "/api/ListTenants", nil).status == 401)
        #expect(call("GET", "/api/ListTenants", disabled).status == 401)
        // Read-only: a write is 403, and so is the endpoint a deny rule names.
        let write = call("POST", "/api/ExecResetPass", reporting, body: #"{"tenantFilter":"contoso.onmicrosoft.com"}"#)
        #expect(write.status == 403, "\(write)")
        #expect(write.header("WWW-Authenticate") == #"Bearer realm="portcullis", error="insufficient_scope""#)
        #expect(call("GET", "/api/ListOffboardTenants", reporting).status == 403)
        // The helpdesk role: resets for its two tenants only, the tenant read from the JSON body.
        let reset = #"{"tenantFilter":"contoso.onmicrosoft.com","ID":"adele.vance@contoso.onmicrosoft.com"}"#
        #expect(call("POST", "/api/ExecResetPass", helpdesk, body: reset).status == 200)
        #expect(call("POST", "/api/execresetpass", helpdesk, body: reset).status == 200, "case-insensitive under cipp")
        let other = #"{"tenantFilter":{"value":"northwind.onmicrosoft.com"},"ID":"x"}"#
        #expect(call("POST", "/api/ExecResetPass", helpdesk, body: other).status == 403)
        #expect(call("GET", "/api/ListUsers?tenantFilter=fabrikam.onmicrosoft.com", helpdesk).status == 200)
        #expect(call("GET", "/api/ListUsers?tenantFilter=northwind.onmicrosoft.com", helpdesk).status == 403)
        #expect(call("GET", "/api/ListUsers", helpdesk).status == 403, "a tenant-limited role needs a tenant")
    }

    @Test func theCommittedDemoKeyIsAPublicPlaceholder() throws {
        // policies/demo/demo-jwks.json is a public key without a private half: the tests' key is
        // not it, so a token signed by anyone but `portcullis demo` itself cannot pass.
        let jwks = try String(contentsOf: Self.demoDirectory.appendingPathComponent("demo-jwks.json"), encoding: .utf8)
        #expect(jwks.contains("\"kid\":\"demo-placeholder\""))
        #expect(!jwks.contains("\"d\""))
    }
}
