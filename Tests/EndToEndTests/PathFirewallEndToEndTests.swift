import Foundation
import Testing

/// Paths a backend may read differently from the gateway, end to end: a real gateway in front
/// of a backend that records every request head, a reader allowed everything but `/admin/**`.
/// Every spelling of `/admin/...` is refused or denied, and the backend never sees it.
@Suite("Path firewall end to end", .serialized)
struct PathFirewallEndToEndTests {
    static let role = """
            allow:
              - { methods: [GET], paths: ["/**"] }
            deny:
              - { paths: ["/admin/**"] }
        """

    static func system(upstreamExtra: String = "", extra: String = "") throws -> IdentityConfusionTests.System {
        try IdentityConfusionTests.System(role: Self.role, upstreamExtra: upstreamExtra, extra: extra)
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func everySpellingOfADeniedPathIsRefusedAndNeverForwarded() throws {
        let system = try Self.system(upstreamExtra: "  case_insensitive_paths: true")
        let refused: [(path: String, status: Int)] = [
            ("/x/..;/admin/y", 400),  // Tomcat: `..;` is `..`
            ("/admin;x/y", 400),  // Java servers strip `;params`
            ("/admin%3Bx/y", 400),
            ("/%2561dmin/x", 400),  // decoded twice: /admin/x
            ("/admin%C0%AF/x", 400),  // overlong UTF-8 `/`
            ("/admin./x", 400),  // IIS drops the trailing dot
            ("/admin%2E/x", 400),
            ("/Admin/x", 403),  // a case-insensitive backend routes it to /admin/x
            ("/ADMIN/X", 403),
            ("/admin/x", 403),
            ("/x/../admin/y", 403),
        ]
        for (path, status) in refused {
            let response = system.call("GET", path)
            #expect(response.status == status, "\(path): \(response)")
        }
        system.expectOnlyControlReachedTheBackend(after: 0, "refused paths")
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func withoutCaseInsensitivePathsTheRulesAreCaseSensitive() throws {
        let system = try Self.system()
        #expect(system.call("GET", "/admin/x").status == 403)
        // The backend's own routing decides what /Admin means: the setting exists for that.
        #expect(system.call("GET", "/Admin/x").status == 200)
        #expect(system.heads.map(\.requestLine) == ["GET /Admin/x HTTP/1.1"])
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func anOptOutForwardsItsFormUnchanged() throws {
        let system = try Self.system(extra: "path_firewall:\n  allow_semicolon: true\n  allow_trailing_dot: true")
        #expect(system.call("GET", "/files;jsessionid=1/a").status == 200)
        #expect(system.call("GET", "/files/a.").status == 200)
        // The other checks stay on.
        #expect(system.call("GET", "/files/%2561").status == 400)
        #expect(system.call("GET", "/files/%C3%A9").status == 400)
        #expect(system.heads.map(\.requestLine) == ["GET /files;jsessionid=1/a HTTP/1.1", "GET /files/a. HTTP/1.1"])
    }
}
