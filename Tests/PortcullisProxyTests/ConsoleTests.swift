import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import PortcullisPolicy
import Testing
import PortcullisStore

@testable import PortcullisProxy

/// A settable clock, milliseconds since 1970.
final class TestClock: Sendable {
    private let value = NIOLockedValueBox<Int64>(1_700_000_000_000)
    var now: Int64 { self.value.withLockedValue { $0 } }
    func advance(_ millis: Int64) { self.value.withLockedValue { $0 += millis } }
}

@Suite struct ConsoleSessionsTests {
    @Test func aSessionIsFoundByItsIdOnlyAndItsTokensAreRandom() {
        let clock = TestClock()
        let sessions = ConsoleSessions(now: { clock.now })
        let (id, session) = sessions.create(admin: "admin")
        #expect(id.utf8.count == 43, "256 bits as unpadded base64url")
        #expect(session.csrfToken.utf8.count == 43)
        #expect(id != session.csrfToken)
        #expect(sessions.use(id)?.admin == "admin")
        #expect(sessions.use(session.csrfToken) == nil)
        #expect(sessions.use(String(id.dropLast()) + (id.hasSuffix("A") ? "B" : "A")) == nil)
        #expect(sessions.use("short") == nil)
        let (other, _) = sessions.create(admin: "admin")
        #expect(other != id)
    }

    @Test func aSessionEndsWhenIdleAndAtItsAbsoluteLimit() {
        let clock = TestClock()
        let sessions = ConsoleSessions(idleTimeoutMillis: 1000, absoluteTimeoutMillis: 2500, now: { clock.now })
        let (id, _) = sessions.create(admin: "admin")
        clock.advance(900)
        #expect(sessions.use(id) != nil, "used within the idle timeout")
        clock.advance(900)
        #expect(sessions.use(id) != nil, "the idle clock restarted at the last use")
        clock.advance(500)
        #expect(sessions.peek(id) != nil)
        clock.advance(300)
        #expect(sessions.use(id) == nil, "past the absolute limit however busy")
        let (idle, _) = sessions.create(admin: "admin")
        clock.advance(1000)
        #expect(sessions.use(idle) == nil, "idle for the whole idle timeout")
        #expect(sessions.count <= 1)
    }

    @Test func peekDoesNotKeepASessionAlive() {
        let clock = TestClock()
        let sessions = ConsoleSessions(idleTimeoutMillis: 1000, now: { clock.now })
        let (id, _) = sessions.create(admin: "admin")
        clock.advance(600)
        #expect(sessions.peek(id) != nil)
        clock.advance(600)
        #expect(sessions.peek(id) == nil)
    }

    @Test func theTableIsBoundedAndSignOutEndsASession() {
        let clock = TestClock()
        let sessions = ConsoleSessions(maxSessions: 3, now: { clock.now })
        var ids: [String] = []
        for _ in 0..<3 {
            ids.append(sessions.create(admin: "admin").id)
            clock.advance(10)
        }
        _ = sessions.use(ids[0])
        let fourth = sessions.create(admin: "admin").id
        #expect(sessions.count == 3)
        #expect(sessions.use(ids[1]) == nil, "the least recently used went")
        #expect(sessions.use(ids[0]) != nil)
        sessions.end(fourth)
        #expect(sessions.use(fourth) == nil)
    }

    @Test func constantTimeEqualityIsEquality() {
        #expect(ConsoleSessions.constantTimeEquals("abc", "abc"))
        #expect(!ConsoleSessions.constantTimeEquals("abc", "abd"))
        #expect(!ConsoleSessions.constantTimeEquals("abc", "abcd"))
        #expect(ConsoleSessions.base64URL([0xFB, 0xFF]) == "-_8")
    }
}

@Suite struct ConsoleRequestGuardTests {
    static func headers(_ pairs: [(String, String)]) -> HTTPHeaders {
        HTTPHeaders([("Host", "127.0.0.1:9090")] + pairs)
    }

    @Test func aChangeNeedsTheOwnOriginAndTheCSRFToken() {
        let csrf = "token-of-the-session"
        func check(_ method: HTTPMethod, _ pairs: [(String, String)], tls: Bool = false) -> ConsoleRequestGuard.Verdict {
            ConsoleRequestGuard.check(method: method, headers: Self.headers(pairs), tls: tls, csrfToken: csrf)
        }
        let same = ("Origin", "http://127.0.0.1:9090")
        #expect(check(.POST, [same, ("X-CSRF-Token", csrf)]) == .allowed)
        #expect(check(.POST, [("Sec-Fetch-Site", "same-origin"), ("X-CSRF-Token", csrf)]) == .allowed)
        #expect(check(.POST, [same]) == .badCSRF)
        #expect(check(.POST, [same, ("X-CSRF-Token", "token-of-another")]) == .badCSRF)
        #expect(check(.POST, [same, ("X-CSRF-Token", csrf), ("X-CSRF-Token", csrf)]) == .badCSRF)
        #expect(check(.POST, [("X-CSRF-Token", csrf)]) == .crossSite("a change needs Origin or Sec-Fetch-Site"))
        #expect(check(.DELETE, [("Origin", "http://evil.example"), ("X-CSRF-Token", csrf)]) == .crossSite("Origin http://evil.example is not this listener's"))
        #expect(check(.POST, [same, ("Sec-Fetch-Site", "same-site"), ("X-CSRF-Token", csrf)]) == .crossSite("Sec-Fetch-Site: same-site"))
        #expect(check(.POST, [("Origin", "https://127.0.0.1:9090"), ("X-CSRF-Token", csrf)]) != .allowed, "the scheme is part of the origin")
        #expect(check(.POST, [("Origin", "https://127.0.0.1:9090"), ("X-CSRF-Token", csrf)], tls: true) == .allowed)
        #expect(check(.POST, [("Origin", "null"), ("X-CSRF-Token", csrf)]) != .allowed)
    }

    @Test func aReadWithTheCookieMustNotBeCrossSite() {
        func check(_ pairs: [(String, String)]) -> ConsoleRequestGuard.Verdict {
            ConsoleRequestGuard.check(method: .GET, headers: Self.headers(pairs), tls: false, csrfToken: "x")
        }
        #expect(check([]) == .allowed)
        #expect(check([("Sec-Fetch-Site", "none")]) == .allowed)
        #expect(check([("Sec-Fetch-Site", "same-origin")]) == .allowed)
        #expect(check([("Sec-Fetch-Site", "cross-site")]) == .crossSite("Sec-Fetch-Site: cross-site"))
        #expect(check([("Origin", "http://127.0.0.1:9091")]) != .allowed)
    }

    @Test func theCookieIsStrictAndSecureUnderTLS() {
        let plain = ConsoleRequestGuard.setCookie(id: "abc", maxAgeSeconds: 60, tls: false)
        #expect(plain == "portcullis_console=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60")
        #expect(ConsoleRequestGuard.setCookie(id: "abc", maxAgeSeconds: 60, tls: true).hasSuffix("; Secure"))
        #expect(ConsoleRequestGuard.setCookie(id: nil, maxAgeSeconds: 60, tls: false).contains("Max-Age=0"))
        #expect(ConsoleRequestGuard.sessionID(HTTPHeaders([("Cookie", "a=1; portcullis_console=xyz; b=2")])) == "xyz")
        #expect(ConsoleRequestGuard.sessionID(HTTPHeaders([("Cookie", "portcullis_console=x"), ("Cookie", "portcullis_console=y")])) == nil)
        #expect(ConsoleRequestGuard.sessionID(HTTPHeaders([("Cookie", "other=1")])) == nil)
    }

    @Test func theContentSecurityPolicyAllowsNoInlineScriptAndNothingFromElsewhere() {
        let csp = ConsoleRequestGuard.contentSecurityPolicy
        #expect(csp.contains("default-src 'none'"))
        #expect(csp.contains("script-src 'self';"))
        #expect(csp.contains("frame-ancestors 'none'"))
        #expect(!csp.contains("unsafe"))
        #expect(!ConsoleAssets.html.contains("<script>"), "the page has no inline script")
        #expect(!ConsoleAssets.html.contains("style="))
        #expect(!ConsoleAssets.script.contains("innerHTML"), "the script never parses markup")
        #expect(!ConsoleAssets.script.contains("insertAdjacentHTML"))
        #expect(!ConsoleAssets.script.contains("document.write"))
    }
}

@Suite struct RecentRequestsTests {
    static func entry(_ client: String, minute: Int64, status: Int, jti: String? = nil) -> RecentRequests.Entry {
        RecentRequests.Entry(clientID: client, millis: minute * 60_000 + 5, statusClass: status / 100, tokenID: jti, line: "{\"status\":\(status)}")
    }

    @Test func eachClientKeepsItsLastLinesInOrder() {
        let recent = RecentRequests(linesPerClient: 3)
        recent.append((0..<5).map { Self.entry("a", minute: 100, status: 200 + $0) })
        recent.append([Self.entry("b", minute: 100, status: 404)])
        let lines = recent.lines(client: "a")
        #expect(lines.map(\.text) == ["{\"status\":202}", "{\"status\":203}", "{\"status\":204}"])
        #expect(recent.lines(client: "a", after: lines[1].sequence).map(\.text) == ["{\"status\":204}"])
        #expect(recent.lines(client: "a", limit: 1).map(\.text) == ["{\"status\":204}"])
        #expect(recent.lines(client: "b").count == 1)
        #expect(recent.lines(client: "c").isEmpty)
    }

    @Test func countsArePerMinuteAndStatusClassForTheLastHour() {
        let recent = RecentRequests()
        recent.append([
            Self.entry("a", minute: 1000, status: 200, jti: "t1"),
            Self.entry("a", minute: 1000, status: 403),
            Self.entry("a", minute: 1059, status: 200),
            Self.entry("a", minute: 1059, status: 502, jti: "t2"),
            Self.entry("a", minute: 940, status: 200),
        ])
        let now = 1059 * 60_000 + 30_000
        let minutes = recent.perMinute(client: "a", nowMillis: Int64(now))
        #expect(minutes.count == 60)
        #expect(minutes[0] == [0, 1, 0, 1, 0], "59 minutes ago")
        #expect(minutes[59] == [0, 1, 0, 0, 1], "this minute")
        let summary = recent.summaries(nowMillis: Int64(now))["a"]
        #expect(summary?.requests == 4, "the request of two hours ago (in the same slot) is not counted")
        #expect(summary?.errors == 2)
        #expect(summary?.lastTokenID == "t2")
        // An hour later the old minutes no longer count.
        #expect(recent.summaries(nowMillis: Int64(now + 3_600_000))["a"]?.requests == 0)
    }

    @Test func theLeastRecentlySeenClientIsForgottenBeyondTheBound() {
        let recent = RecentRequests(maxClients: 2)
        recent.append([Self.entry("a", minute: 1, status: 200)])
        recent.append([Self.entry("b", minute: 1, status: 200)])
        recent.append([Self.entry("a", minute: 1, status: 200)])
        recent.append([Self.entry("c", minute: 1, status: 200)])
        #expect(recent.lines(client: "b").isEmpty)
        #expect(recent.lines(client: "a").count == 2)
        #expect(recent.lines(client: "c").count == 1)
    }
}

/// The console's routes on an `EmbeddedChannel`, ahead of the admin handler as `AdminServer`
/// builds the pipeline.
@Suite struct ConsoleRequestHandlerTests {
    static let actor = AuditActor(name: "test", source: "127.0.0.1")

    static let adminToken = "console-test-admin-token-0123456789"

    struct Harness {
        let channel = EmbeddedChannel()
        let console: Console
        let config: GatewayConfig
        let tokenFile: URL
        let clock = TestClock()

        init() throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("console-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            self.tokenFile = directory.appendingPathComponent("admin-token")
            try (ConsoleRequestHandlerTests.adminToken + "\n").write(to: self.tokenFile, atomically: true, encoding: .utf8)
            let text = """
                listen:
                  - address: "127.0.0.1:8080"
                upstream:
                  url: "http://127.0.0.1:8091"
                admin:
                  address: "127.0.0.1:0"
                  token_file: "\(directory.path)/admin-token"
                issuers:
                  - { name: idp, issuer: "https://idp.example.com/", audiences: ["api://gateway"], jwks_url: "https://idp.example.com/keys", algorithms: [RS256] }
                roles:
                  reader:
                    allow: [{ methods: [GET], paths: ["/demo/**"] }]
                clients:
                  - { id: "psa-sync", issuer: idp, roles: [reader] }
                """
            let config = try ConfigLoader.load(sources: [(file: "gateway.yaml", text: text)], directory: directory.path)
            self.config = config
            let clock = self.clock
            self.console = Console(api: try AdminAPI(config: config, state: nil), recent: RecentRequests(), now: { clock.now })
            let endpoints = AdminServer.Endpoints(metricsText: { $0.makeSucceededFuture("x 1\n") }, isReady: { true }, api: self.console.api)
            let sync = self.channel.pipeline.syncOperations
            try sync.configureHTTPServerPipeline(withErrorHandling: true)
            try sync.addHandler(ConsoleRequestHandler(console: self.console))
            try sync.addHandler(AdminRequestHandler(endpoints: endpoints))
            try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9090)).wait()
        }

        func request(_ method: String, _ path: String, headers: [(String, String)] = [], body: String = "") throws -> String {
            var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:9090\r\n"
            for (name, value) in headers { head += "\(name): \(value)\r\n" }
            head += "Content-Length: \(body.utf8.count)\r\n\r\n"
            try self.channel.writeInbound(ByteBuffer(string: head + body))
            self.channel.embeddedEventLoop.run()
            var all = ByteBuffer()
            while let buffer = try self.channel.readOutbound(as: ByteBuffer.self) { all.writeImmutableBuffer(buffer) }
            return String(buffer: all)
        }

        /// Signs in from the console's own origin; returns the cookie header and the CSRF token.
        func signIn() throws -> (cookie: (String, String), csrf: String) {
            let response = try self.request(
                "POST", "/ui/session", headers: [("Origin", "http://127.0.0.1:9090")], body: "{\"token\":\"\(ConsoleRequestHandlerTests.adminToken)\"}")
            #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(response)")
            let cookieLine = try #require(response.split(separator: "\r\n").first { $0.hasPrefix("Set-Cookie: ") })
            let value = cookieLine.dropFirst("Set-Cookie: ".count).prefix { $0 != ";" }
            let body = try #require(response.range(of: "\r\n\r\n").map { response[$0.upperBound...] })
            let object = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            return (("Cookie", String(value)), try #require(object["csrf_token"] as? String))
        }
    }

    @Test func thePagesCarryTheSecurityHeaders() throws {
        let harness = try Harness()
        let page = try harness.request("GET", "/ui/")
        #expect(page.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(page.contains("Content-Security-Policy: default-src 'none'; script-src 'self';"))
        #expect(page.contains("X-Content-Type-Options: nosniff\r\n"))
        #expect(page.contains("Referrer-Policy: no-referrer\r\n"))
        #expect(page.contains("<script src=\"/ui/app.js\" defer></script>"))
        #expect(try harness.request("GET", "/ui/app.js").contains("Content-Type: text/javascript; charset=utf-8\r\n"))
        #expect(try harness.request("GET", "/ui").contains("Location: /ui/\r\n"))
        #expect(try harness.request("GET", "/healthz").hasSuffix("{\"status\":\"ok\"}\n"), "other routes pass through")
    }

    @Test func signInNeedsTheAdminTokenAndSetsAStrictHttpOnlyCookie() throws {
        let harness = try Harness()
        let wrong = try harness.request("POST", "/ui/session", headers: [("Origin", "http://127.0.0.1:9090")], body: "{\"token\":\"nope-nope-nope-nope\"}")
        #expect(wrong.hasPrefix("HTTP/1.1 401 "))
        #expect(!wrong.contains("Set-Cookie"))
        let foreign = try harness.request(
            "POST", "/ui/session", headers: [("Origin", "http://evil.example")], body: "{\"token\":\"\(ConsoleRequestHandlerTests.adminToken)\"}")
        #expect(foreign.hasPrefix("HTTP/1.1 403 "), "no sign-in from another origin")
        let response = try harness.request(
            "POST", "/ui/session", headers: [("Sec-Fetch-Site", "same-origin")], body: "{\"token\":\"\(ConsoleRequestHandlerTests.adminToken)\"}")
        #expect(response.contains("; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800\r\n"))
        #expect(!response.contains("Secure"), "the admin listener is plain HTTP here")
        #expect(response.contains("\"admin\":\"admin\""))
        #expect(harness.console.sessions.count == 1)
    }

    @Test func wrongTokensFromOneAddressAreThrottled() throws {
        let harness = try Harness()
        let wrong = "{\"token\":\"nope-nope-nope-nope\"}"
        let origin = ("Origin", "http://127.0.0.1:9090")
        for _ in 0..<Console.maxFailedSignIns {
            #expect(try harness.request("POST", "/ui/session", headers: [origin], body: wrong).hasPrefix("HTTP/1.1 401 "))
        }
        let throttled = try harness.request("POST", "/ui/session", headers: [origin], body: "{\"token\":\"\(ConsoleRequestHandlerTests.adminToken)\"}")
        #expect(throttled.hasPrefix("HTTP/1.1 429 "), "even the right token waits")
        #expect(throttled.contains("Retry-After: 300\r\n"))
        #expect(harness.console.signInRetryAfter(address: "10.0.0.1") == nil, "another address is not held back")
        harness.clock.advance(Console.signInWindowMillis)
        #expect(try harness.request("POST", "/ui/session", headers: [origin], body: "{\"token\":\"\(ConsoleRequestHandlerTests.adminToken)\"}").hasPrefix("HTTP/1.1 200 "))
    }

    @Test func theAPIThroughTheConsoleNeedsASessionAndChangesNeedTheCSRFToken() throws {
        let harness = try Harness()
        #expect(try harness.request("GET", "/ui/api/v1/clients").hasPrefix("HTTP/1.1 401 "))
        #expect(try harness.request("GET", "/ui/live/summary").hasPrefix("HTTP/1.1 401 "))
        let (cookie, csrf) = try harness.signIn()
        #expect(try harness.request("GET", "/ui/live/summary", headers: [cookie]).contains("\"available\":true"))
        #expect(try harness.request("GET", "/ui/session", headers: [cookie]).contains("\"csrf_token\":\"\(csrf)\""))
        let crossSite = try harness.request("GET", "/ui/api/v1/clients", headers: [cookie, ("Sec-Fetch-Site", "cross-site")])
        #expect(crossSite.hasPrefix("HTTP/1.1 403 "))
        #expect(crossSite.contains("cross_site_request"))
        let noToken = try harness.request("POST", "/ui/api/v1/clients/psa-sync/disable", headers: [cookie, ("Origin", "http://127.0.0.1:9090")])
        #expect(noToken.hasPrefix("HTTP/1.1 403 "))
        #expect(noToken.contains("csrf_token_invalid"))
        let foreign = try harness.request(
            "POST", "/ui/api/v1/clients/psa-sync/disable", headers: [cookie, ("Origin", "http://localhost:9090"), ("X-CSRF-Token", csrf)])
        #expect(foreign.hasPrefix("HTTP/1.1 403 "))
        #expect(try harness.request("DELETE", "/ui/session", headers: [cookie, ("Origin", "http://127.0.0.1:9090")]).hasPrefix("HTTP/1.1 403 "))
        let out = try harness.request("DELETE", "/ui/session", headers: [cookie, ("Origin", "http://127.0.0.1:9090"), ("X-CSRF-Token", csrf)])
        #expect(out.hasPrefix("HTTP/1.1 204 "))
        #expect(out.contains("Max-Age=0"))
        #expect(try harness.request("GET", "/ui/live/summary", headers: [cookie]).hasPrefix("HTTP/1.1 401 "))
    }

    /// What the channel has written since the last read.
    static func written(_ channel: EmbeddedChannel) throws -> String {
        var all = ByteBuffer()
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { all.writeImmutableBuffer(buffer) }
        return String(buffer: all)
    }

    @Test func theLiveViewStreamsAClientsNewLinesUntilSignOut() throws {
        let harness = try Harness()
        let (cookie, _) = try harness.signIn()
        let recent = try #require(harness.console.recent)
        recent.append([RecentRequestsTests.entry("psa-sync", minute: 1, status: 200)])
        let head = try harness.request("GET", "/ui/live/clients/psa-sync/log", headers: [cookie])
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(head.contains("Content-Type: text/event-stream; charset=utf-8\r\n"))
        #expect(head.contains("id: 1\ndata: {\"status\":200}\n\n"), "a new view starts with the kept lines")
        recent.append([RecentRequestsTests.entry("other", minute: 1, status: 200), RecentRequestsTests.entry("psa-sync", minute: 1, status: 401)])
        harness.channel.embeddedEventLoop.advanceTime(by: ConsoleRequestHandler.liveInterval)
        let next = try Self.written(harness.channel)
        #expect(next.contains("id: 3\ndata: {\"status\":401}\n\n"), "\(next)")
        #expect(!next.contains("id: 2"), "another client's line is not sent")
        #expect(harness.console.liveViews.load(ordering: .relaxed) == 1)
        // Signed out (from another tab): the view ends at its next tick.
        harness.console.sessions.end(try #require(ConsoleRequestGuard.sessionID(HTTPHeaders([cookie]))))
        harness.channel.embeddedEventLoop.advanceTime(by: ConsoleRequestHandler.liveInterval)
        #expect(try Self.written(harness.channel).contains("event: signed-out"))
        #expect(harness.console.liveViews.load(ordering: .relaxed) == 0)
    }

    @Test func aSessionEndsWhenItsAdminTokenIsRotatedAway() throws {
        let harness = try Harness()
        let (cookie, _) = try harness.signIn()
        #expect(try harness.request("GET", "/ui/live/summary", headers: [cookie]).hasPrefix("HTTP/1.1 200 "))
        try "another-admin-token-0123456789abcdef\n".write(to: harness.tokenFile, atomically: true, encoding: .utf8)
        harness.console.api.update(harness.config, tokens: try harness.console.api.tokens(of: harness.config))
        #expect(try harness.request("GET", "/ui/live/summary", headers: [cookie]).hasPrefix("HTTP/1.1 401 "))
        #expect(harness.console.sessions.count == 0)
    }

    @Test func theAPIsExplainAnswersAsTheCommandDoes() async throws {
        let harness = try Harness()
        let allowed = await harness.console.api.handle(
            method: .POST, path: "/api/v1/explain", body: Array(#"{"client":"psa-sync","method":"get","path":"/demo/echo","ip":""}"#.utf8), actor: Self.actor)
        #expect(allowed.status == .ok)
        #expect(allowed.body.contains("\"decision\":\"allow\""), "\(allowed.body)")
        #expect(allowed.body.contains("roles.reader.allow[0]"), "\(allowed.body)")
        let denied = await harness.console.api.handle(
            method: .POST, path: "/api/v1/explain", body: Array(#"{"client":"psa-sync","method":"DELETE","path":"/demo/echo"}"#.utf8), actor: Self.actor)
        #expect(denied.body.contains("\"reason\":\"role_denied\""), "\(denied.body)")
        let unknown = await harness.console.api.handle(
            method: .POST, path: "/api/v1/explain", body: Array(#"{"client":"nobody","method":"GET","path":"/"}"#.utf8), actor: Self.actor)
        #expect(unknown.body.contains("\"reason\":\"unknown_client\""))
        let bad = await harness.console.api.handle(method: .POST, path: "/api/v1/explain", body: Array(#"{"client":"a","method":"GET","path":"/","x":1}"#.utf8), actor: Self.actor)
        #expect(bad.status == .badRequest)
        #expect(await harness.console.api.handle(method: .GET, path: "/api/v1/explain", body: [], actor: Self.actor).status == .methodNotAllowed)
    }
}
