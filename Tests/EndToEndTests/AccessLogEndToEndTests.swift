import Foundation
import Testing

/// The access log, end to end: a real gateway writing `access.log` and per-client files in
/// front of the demo backend; lines counted, parsed and matched to the responses' request ids.
@Suite("Access log end to end", .serialized)
struct AccessLogEndToEndTests {
    static let fields = [
        "ts", "request_id", "client_id", "client_name", "src_ip", "method", "path", "status", "decision", "reason",
        "rule", "tenant", "bytes_in", "bytes_out", "upstream_ms", "total_ms", "user_agent", "trace_id", "jti",
    ]

    static func gateway() throws -> GatewayUnderTest {
        try GatewayUnderTest.start(
            """
            issuers:
            \(TestIdentity.issuerEntryYAML)
            clients:
              - id: \(TestIdentity.clientID)
                name: "Everything"
                issuer: e2e
                roles: [all]
              - id: reader
                name: "Read-only script"
                issuer: e2e
                roles: [readonly]
              - id: fenced
                issuer: e2e
                roles: [all]
                allowed_ips: ["10.0.0.0/8"]
            roles:
              all:
                allow:
                  - { paths: ["/**"] }
              readonly:
                allow:
                  - { methods: [GET], paths: ["/demo/echo/**"] }
            logging:
              level: debug
              access_log: access.log
              per_client_dir: clients
            """
        )
    }

    static func logDirectory(_ gateway: GatewayUnderTest) throws -> URL {
        try #require(gateway.gateway.configDirectory)
    }

    /// The lines of `file`, waiting up to 5 s for at least `count` of them (the writer batches).
    static func lines(_ file: URL, atLeast count: Int) -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(5)
        var lines: [String] = []
        repeat {
            let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
            lines = text.split(separator: "\n").map(String.init)
            if lines.count >= count { break }
            Thread.sleep(forTimeInterval: 0.05)
        } while Date() < deadline
        return lines.map { line in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            if object == nil { Issue.record("not a JSON object: \(line)") }
            return object ?? [:]
        }
    }

    static func call(_ gateway: GatewayUnderTest, _ method: String, _ path: String, token: String?, extra: [(String, String)] = []) -> HTTPTestResponse {
        var headers = extra
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        headers.append(("User-Agent", "access-log-test/1"))
        return RawHTTPClient.request(method, path, port: gateway.port, headers: headers, authorize: false)
    }

    @Test func everyRequestIsOneLineWithItsOutcome() throws {
        let gateway = try Self.gateway()
        let everything = TestIdentity.token()
        let reader = TestIdentity.token(clientID: "reader")
        let fenced = TestIdentity.token(clientID: "fenced")
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

        var expected: [(id: String, status: Int, reason: String, client: String?)] = []
        func check(_ response: HTTPTestResponse, _ status: Int, _ reason: String, _ client: String?) {
            #expect(response.status == status, "\(reason): \(response)")
            expected.append((response.header("X-Request-Id") ?? "?", status, reason, client))
        }
        for _ in 0..<3 {
            check(Self.call(gateway, "GET", "/demo/echo/a", token: everything), 200, "allowed", TestIdentity.clientID)
        }
        let traced = Self.call(gateway, "GET", "/demo/echo/trace", token: everything, extra: [("traceparent", traceparent)])
        check(traced, 200, "allowed", TestIdentity.clientID)
        check(Self.call(gateway, "GET", "/demo/echo/b", token: reader), 200, "allowed", "reader")
        check(Self.call(gateway, "POST", "/demo/echo/b", token: reader), 403, "role_denied", "reader")
        check(Self.call(gateway, "GET", "/demo/echo/c", token: fenced), 403, "ip_not_allowed", "fenced")
        check(Self.call(gateway, "GET", "/demo/echo/d", token: nil), 401, "missing_token", nil)
        // The signature is good: the expired token is logged under the client it names.
        check(Self.call(gateway, "GET", "/demo/echo/e", token: TestIdentity.token(expiresIn: -600)), 401, "token_expired", TestIdentity.clientID)
        let malformed = try RawHTTPClient.connect(port: gateway.port)
        malformed.send("GET /demo/echo HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx")
        check(malformed.readResponse() ?? .failed("no response"), 400, "bad_request", nil)
        malformed.close()
        // A target refused before it is canonical is logged without its query (it may hold a secret).
        check(Self.call(gateway, "GET", "/a/../../x?access_token=s3cr3t-in-query", token: everything), 400, "bad_request", nil)

        let directory = try Self.logDirectory(gateway)
        let logged = Self.lines(directory.appendingPathComponent("access.log"), atLeast: expected.count)
        #expect(logged.count == expected.count, "one line per request")
        // Two event loops write: lines are in order per loop, so match them by request id.
        let byID = Dictionary(logged.map { ($0["request_id"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        let lines = expected.map { byID[$0.id] ?? [:] }
        for (line, want) in zip(lines, expected) {
            for field in Self.fields { #expect(line.keys.contains(field), "\(field) missing in \(line)") }
            #expect(line["status"] as? Int == want.status)
            #expect(line["reason"] as? String == want.reason, "\(line)")
            #expect(line["client_id"] as? String == want.client)
            #expect(line["decision"] as? String == (want.reason == "allowed" ? "allow" : "deny"))
            #expect((line["request_id"] as? String)?.count == 32)
            #expect((line["ts"] as? String)?.hasSuffix("Z") == true)
        }
        // Fields of a forwarded request.
        let first = lines[0]
        #expect(first["src_ip"] as? String == "127.0.0.1")
        #expect(first["method"] as? String == "GET")
        #expect(first["path"] as? String == "/demo/echo/a")
        #expect(first["client_name"] as? String == "Everything")
        #expect(first["user_agent"] as? String == "access-log-test/1")
        #expect((first["rule"] as? String)?.hasPrefix("all ") == true, "\(first)")
        #expect((first["rule"] as? String)?.contains("portcullis.yaml:") == true, "\(first)")
        #expect((first["rule"] as? String)?.hasSuffix(" roles.all.allow[0]") == true, "\(first)")
        #expect((first["upstream_ms"] as? Double).map { $0 >= 0 } == true)
        #expect((first["bytes_out"] as? Int ?? 0) > 0)
        // The caller's valid traceparent goes upstream as sent, and its trace id is logged.
        #expect(lines[3]["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(String(decoding: traced.body, as: UTF8.self).contains(traceparent))
        // Without one, the gateway starts a trace whose id is the request id.
        #expect(lines[0]["trace_id"] as? String == lines[0]["request_id"] as? String)
        // Denials carry no upstream time; the role decision names no rule when none allowed.
        #expect(lines[5]["upstream_ms"] is NSNull)
        #expect(lines[5]["rule"] is NSNull)

        // Per client: the same lines, split by client id; unidentified requests have no file.
        let clients = directory.appendingPathComponent("clients")
        #expect(Self.lines(clients.appendingPathComponent("\(TestIdentity.clientID).log"), atLeast: 5).count == 5)
        #expect(Self.lines(clients.appendingPathComponent("reader.log"), atLeast: 2).count == 2)
        #expect(Self.lines(clients.appendingPathComponent("fenced.log"), atLeast: 1).count == 1)
        let files = try FileManager.default.contentsOfDirectory(atPath: clients.path).sorted()
        #expect(files == ["\(TestIdentity.clientID).log", "fenced.log", "reader.log"])

        // No token ever reaches a log.
        #expect(gateway.gateway.terminate() == 0)
        var logs = try String(contentsOf: directory.appendingPathComponent("access.log"), encoding: .utf8)
        for file in files { logs += try String(contentsOf: clients.appendingPathComponent(file), encoding: .utf8) }
        logs += gateway.gateway.output
        #expect(!logs.contains("s3cr3t-in-query"))
        #expect(lines.last?["path"] as? String == "/a/../../x")
        for token in [everything, reader, fenced] {
            #expect(!logs.contains(token))
            #expect(!logs.contains(String(token.split(separator: ".")[2])), "a token's signature is in a log")
        }
    }

    @Test func sigusr1AfterARenameStartsANewFileAndLosesNoLine() throws {
        let gateway = try Self.gateway()
        let directory = try Self.logDirectory(gateway)
        let log = directory.appendingPathComponent("access.log")
        let rotated = directory.appendingPathComponent("access.log.1")
        for _ in 0..<5 { #expect(Self.call(gateway, "GET", "/demo/echo/before", token: TestIdentity.token()).status == 200) }
        #expect(Self.lines(log, atLeast: 5).count == 5)
        try FileManager.default.moveItem(at: log, to: rotated)
        // Written after the rename, before the signal: still in the renamed file.
        #expect(Self.call(gateway, "GET", "/demo/echo/between", token: TestIdentity.token()).status == 200)
        _ = Self.lines(rotated, atLeast: 6)
        gateway.gateway.signal(SIGUSR1)
        let deadline = Date().addingTimeInterval(5)
        while !FileManager.default.fileExists(atPath: log.path) && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        for _ in 0..<4 { #expect(Self.call(gateway, "GET", "/demo/echo/after", token: TestIdentity.token()).status == 200) }
        let new = Self.lines(log, atLeast: 4)
        let old = Self.lines(rotated, atLeast: 6)
        #expect(old.count == 6)
        #expect(new.count == 4)
        #expect(new.allSatisfy { $0["path"] as? String == "/demo/echo/after" })
    }

    @Test func sigtermUnderLoadLosesNoLine() throws {
        let gateway = try Self.gateway()
        let token = TestIdentity.token()
        let answered = LockedIDs()
        let stop = LockedFlag()
        let workers = 4
        let done = DispatchGroup()
        for _ in 0..<workers {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                while !stop.isSet {
                    guard let connection = try? RawHTTPClient.connect(port: gateway.port) else { return }
                    defer { connection.close() }
                    while !stop.isSet {
                        guard connection.sendRequest("GET", "/demo/echo/load", headers: [("Authorization", "Bearer \(token)")], authorize: false),
                            let response = connection.readResponse(timeout: 5)
                        else { break }
                        if let id = response.header("X-Request-Id") { answered.add(id) }
                        if response.header("Connection")?.lowercased() == "close" { break }
                    }
                }
            }
        }
        Thread.sleep(forTimeInterval: 0.7)
        gateway.gateway.signal(SIGTERM)
        #expect(gateway.gateway.waitForExit(timeout: 20) == 0)
        stop.set()
        done.wait()

        let ids = answered.all
        #expect(ids.count > 50, "the load made too few requests to mean anything")
        let text = try String(contentsOf: Self.logDirectory(gateway).appendingPathComponent("access.log"), encoding: .utf8)
        let logged = Set(text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["request_id"] as? String
        })
        let missing = ids.filter { !logged.contains($0) }
        #expect(missing.isEmpty, "\(missing.count) of \(ids.count) answered requests are not in the log")
        print("access log: \(ids.count) answered during SIGTERM under load, \(logged.count) lines, \(missing.count) missing")
    }
}

/// Request ids collected by several threads.
final class LockedIDs: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [String] = []
    func add(_ id: String) { self.lock.withLock { self.ids.append(id) } }
    var all: [String] { self.lock.withLock { self.ids } }
}

final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { self.lock.withLock { self.value = true } }
    var isSet: Bool { self.lock.withLock { self.value } }
}
