import Foundation
import Testing

/// `portcullis explain` on policies/demo: the verdict, the reason and the deciding rule.
@Suite("Explain command")
struct ExplainCommandTests {
    static func explain(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = try PortcullisProcess.executableURL()
        process.arguments = ["explain", DemoCommandTests.demoDirectory.path] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func allowedRequestNamesTheRoleAndRuleWithItsLine() throws {
        let (status, output) = try Self.explain([
            "--client", "reporting-dashboard", "--method", "get", "--path", "/api/listusers?tenantFilter=contoso.onmicrosoft.com",
            "--ip", "127.0.0.1",
        ])
        #expect(status == 0, "\(output)")
        #expect(output.hasPrefix("allow"), "\(output)")
        #expect(output.contains("role readonly"), "\(output)")
        #expect(output.contains("portcullis.yaml:"), "\(output)")
    }

    @Test(arguments: [
        (["--client", "reporting-dashboard", "--method", "POST", "--path", "/api/ExecResetPass"], "deny (role_denied)"),
        (["--client", "reporting-dashboard", "--method", "GET", "--path", "/api/ListOffboardTenants"], "deny (deny_rule)"),
        (["--client", "reporting-dashboard", "--method", "GET", "--path", "/api/ListTenants", "--ip", "10.0.0.1"], "deny (ip_not_allowed)"),
        (["--client", "psa-sync", "--method", "POST", "--path", "/api/ExecResetPass", "--tenant", "northwind.onmicrosoft.com"], "deny (tenant_denied)"),
        (["--client", "retired-script", "--method", "GET", "--path", "/api/ListTenants"], "deny (client_disabled)"),
        (["--client", "nobody", "--method", "GET", "--path", "/api/ListTenants"], "deny (unknown_client)"),
        (["--client", "reporting-dashboard", "--method", "GET", "--path", "/api/ListTenants;x=1"], "deny (path_semicolon)"),
        (["--client", "reporting-dashboard", "--method", "GET", "--path", "/api/ListTenants."], "deny (path_trailing_dot)"),
    ])
    func deniedRequestsSayWhy(arguments: [String], verdict: String) throws {
        let (status, output) = try Self.explain(arguments)
        #expect(status == 2, "\(output)")
        #expect(output.hasPrefix(verdict), "\(output)")
    }

    @Test(arguments: ["demo", "cipp"])
    func theExamplePolicyDirectoriesPassCheck(name: String) throws {
        let process = Process()
        process.executableURL = try PortcullisProcess.executableURL()
        process.arguments = ["check", DemoCommandTests.demoDirectory.deletingLastPathComponent().appendingPathComponent(name).path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.hasPrefix("ok: "), "\(output)")
    }
}
