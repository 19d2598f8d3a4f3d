import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `upstream.auth` end to end: a Python process that is both an OAuth token endpoint (plain
/// http on loopback, counting requests) and an HTTPS upstream (a throwaway CA) that answers 200
/// only when it sees the gateway's current credential, and echoes what it received.
@Suite("Upstream credential end to end", .serialized)
struct UpstreamCredentialEndToEndTests {
    static let enabled = commandExists("openssl") && commandExists("python3")
    static let secret = "cl1ent-s3cret+/="

    /// Arguments: expires_in, token delay (s), mode (ok | fail_after_first), value file or "-",
    /// certificate, key.
    static let script = """
        import http.server, json, ssl, time, urllib.parse
        expires_in = int(sys.argv[1]); delay = float(sys.argv[2]); mode = sys.argv[3]; value_file = sys.argv[4]
        lock = threading.Lock()
        state = {"token_requests": 0, "times": [], "forms": [], "tokens": {}, "seen": []}

        def reply(handler, status, body):
            data = json.dumps(body).encode()
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)

        class Token(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_POST(self):
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                with lock:
                    state["token_requests"] += 1
                    n = state["token_requests"]
                    state["times"].append(time.monotonic())
                    entry = {k: v[0] for k, v in form.items()}
                    entry["content_type"] = self.headers.get("Content-Type")
                    state["forms"].append(entry)
                time.sleep(delay)
                if mode == "fail_after_first" and n > 1:
                    return reply(self, 503, {"error": "temporarily_unavailable"})
                token = "tok-%d-%s" % (n, os.urandom(6).hex())
                with lock:
                    state["tokens"][token] = time.monotonic() + expires_in
                reply(self, 200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in})
            def do_GET(self):
                with lock:
                    body = {"token_requests": state["token_requests"], "forms": state["forms"],
                            "tokens": list(state["tokens"]), "upstream_port": upstream.server_address[1],
                            "gaps": [b - a for a, b in zip(state["times"], state["times"][1:])]}
                reply(self, 200, body)
            def log_message(self, *args):
                pass

        class Upstream(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                auth = self.headers.get_all("Authorization") or []
                keys = self.headers.get_all("X-Functions-Key") or []
                if value_file != "-":
                    expected = open(value_file).read().rstrip("\\r\\n")
                    ok = keys == [expected] and not auth
                else:
                    with lock:
                        ok = (len(auth) == 1 and auth[0].startswith("Bearer ")
                              and state["tokens"].get(auth[0][7:], 0) > time.monotonic() and not keys)
                reply(self, 200 if ok else 401, {"ok": ok, "authorization": auth, "x-functions-key": keys})
            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[5], sys.argv[6])
        upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        upstream.socket = context.wrap_socket(upstream.socket, server_side=True)
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
        tokens = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Token)
        announce(tokens.server_address[1])
        tokens.serve_forever()
        """

    struct System {
        let pki: ThrowawayPKI
        let backend: PythonBackend
        let gateway: PortcullisProcess
        let upstreamPort: Int
        var tokenURL: String { "http://127.0.0.1:\(self.backend.port)/token" }

        var stats: [String: Any] {
            RawHTTPClient.request("GET", "/stats", port: self.backend.port, authorize: false).json ?? [:]
        }
        var tokenRequests: Int { self.stats["token_requests"] as? Int ?? -1 }

        func get(_ path: String = "/api/ListTenants", headers: [(String, String)] = []) -> HTTPTestResponse {
            RawHTTPClient.request("GET", path, port: self.gateway.port(), headers: headers)
        }

        func accessLog() -> [[String: Any]] {
            guard let directory = self.gateway.configDirectory,
                let text = try? String(contentsOf: directory.appendingPathComponent("access.log"), encoding: .utf8)
            else { return [] }
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
    }

    /// Starts the backend and a gateway whose `upstream.auth` is `auth` (nil: client_credentials
    /// against the backend's token endpoint, scope `api://upstream/.default`).
    static func start(
        expiresIn: Int = 3600,
        tokenDelay: Double = 0,
        mode: String = "ok",
        valueFile: String = "-",
        downstreamTLS: Bool = false,
        auth: ((String) -> String)? = nil
    ) throws -> System {
        let pki = try ThrowawayPKI.make()
        let backend = try PythonBackend(
            "upstream-credential",
            script: Self.script,
            arguments: ["\(expiresIn)", "\(tokenDelay)", mode, valueFile, pki.serverCertificate, pki.serverKey]
        )
        let stats = RawHTTPClient.request("GET", "/stats", port: backend.port, authorize: false).json ?? [:]
        let upstreamPort = try #require(stats["upstream_port"] as? Int)
        let tokenURL = "http://127.0.0.1:\(backend.port)/token"
        let authYAML =
            auth?(tokenURL) ?? """
                    client_credentials:
                      token_url: "\(tokenURL)"
                      client_id: "portcullis-gw"
                      client_secret_file: upstream-secret
                      scope: "api://upstream/.default"
                """
        // The same throwaway CA's `localhost` certificate serves the clients as well.
        let tlsLine =
            downstreamTLS
            ? "    tls: { certificate: \"\(pki.serverCertificate)\", key: \"\(pki.serverKey)\" }" : ""
        let gateway = try PortcullisProcess.serve(
            configYAML: """
                listen:
                  - address: "127.0.0.1:0"
                \(tlsLine)
                upstream:
                  url: "https://localhost:\(upstreamPort)"
                  ca_file: "\(pki.caCertificate)"
                  auth:
                \(authYAML)
                logging:
                  level: debug
                  access_log: access.log
                """,
            extraFiles: ["upstream-secret": Self.secret + "\n"]
        )
        return System(pki: pki, backend: backend, gateway: gateway, upstreamPort: upstreamPort)
    }

    @Test(.enabled(if: enabled, "needs openssl and python3"))
    func upstreamSeesTheGatewaysTokenAndNeverTheCallers() throws {
        let system = try Self.start()
        let response = system.get()
        #expect(response.status == 200, "\(response)")
        let seen = response.json?["authorization"] as? [String] ?? []
        #expect(seen.count == 1)
        #expect(seen.first?.hasPrefix("Bearer tok-1-") == true, "\(seen)")
        #expect(!seen.contains("Bearer \(TestIdentity.token)"))

        let stats = system.stats
        #expect(stats["token_requests"] as? Int == 1)
        let form = try #require((stats["forms"] as? [[String: Any]])?.first)
        #expect(form["grant_type"] as? String == "client_credentials")
        #expect(form["client_id"] as? String == "portcullis-gw")
        #expect(form["client_secret"] as? String == Self.secret)
        #expect(form["scope"] as? String == "api://upstream/.default")
        #expect(form["content_type"] as? String == "application/x-www-form-urlencoded")

        // Neither the secret nor any token is in any log.
        system.gateway.terminate()
        let output = system.gateway.output + (system.accessLog().description)
        #expect(output.contains("upstream token obtained"))
        #expect(!output.contains(Self.secret))
        for token in stats["tokens"] as? [String] ?? [] {
            #expect(!output.contains(token))
        }
    }

    /// The whole chain encrypted: an HTTPS client, the gateway's TLS listener, the HTTPS upstream
    /// that answers 200 only with the gateway's own current token.
    @Test(.enabled(if: enabled && commandExists("curl"), "needs openssl, python3 and curl"))
    func httpsClientThroughTheGatewayToAnHTTPSUpstreamWithTheGatewaysCredential() throws {
        let system = try Self.start(downstreamTLS: true)
        let port = system.gateway.port()
        let (name, value) = TestIdentity.authorizationHeader
        let result = try curl([
            "--http1.1", "--cacert", system.pki.caCertificate, "--resolve", "localhost:\(port):127.0.0.1",
            "-H", "\(name): \(value)", "-w", "\n%{http_code}", "https://localhost:\(port)/api/ListTenants",
        ])
        #expect(result.exitCode == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.last == "200", "\(result.stdout)")
        let body = lines.dropLast().joined(separator: "\n")
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        #expect(json?["ok"] as? Bool == true)
        let seen = json?["authorization"] as? [String] ?? []
        #expect(seen.count == 1)
        #expect(seen.first?.hasPrefix("Bearer tok-1-") == true, "\(seen)")
        #expect(!seen.contains(value))

        // Plain HTTP to the TLS listener is not served.
        let plain = RawHTTPClient.request("GET", "/api/ListTenants", port: port)
        #expect(plain.status != 200)
    }

    @Test(.enabled(if: enabled, "needs openssl and python3"))
    func tokenIsRefreshedBeforeItExpires() throws {
        let system = try Self.start(expiresIn: 3, tokenDelay: 0.2)
        var statuses: [Int] = []
        var tokens = Set<String>()
        let end = Date().addingTimeInterval(8)
        while Date() < end {
            let response = system.get()
            statuses.append(response.status)
            if let seen = (response.json?["authorization"] as? [String])?.first { tokens.insert(seen) }
            usleep(100_000)
        }
        #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
        let count = system.tokenRequests
        // Refreshed at half of a 3 s lifetime: about 1 + 8 / 1.5 requests, not one per call.
        #expect(count > 1)
        #expect(count <= 8, "\(count) token requests")
        #expect(count * 4 < statuses.count)
        #expect(tokens.count > 1)
    }

    @Test(.enabled(if: enabled, "needs openssl and python3"))
    func concurrentRequestsAtRefreshTimeCauseOneTokenRequest() throws {
        let system = try Self.start(expiresIn: 3, tokenDelay: 0.5)
        let before = system.tokenRequests
        let failures = ManagedCounter()
        let done = ManagedCounter()
        let end = Date().addingTimeInterval(4)
        DispatchQueue.concurrentPerform(iterations: 12) { _ in
            while Date() < end {
                let status = system.get().status
                done.add()
                if status != 200 { failures.add() }
            }
        }
        #expect(failures.value == 0, "\(failures.value) of \(done.value) failed")
        let stats = system.stats
        let count = stats["token_requests"] as? Int ?? 0
        // One refresh every 1.5 s, each a single request: never two close together.
        #expect(count - before <= 4, "\(count - before) token requests during \(done.value) calls")
        let gaps = stats["gaps"] as? [Double] ?? []
        #expect(gaps.allSatisfy { $0 > 1.0 }, "\(gaps)")
    }

    @Test(.enabled(if: enabled, "needs openssl and python3"))
    func tokenEndpointDownAtStartGives502QuicklyWithTheReasonLogged() throws {
        let system = try Self.start(auth: { _ in
            """
                    client_credentials:
                      token_url: "http://127.0.0.1:1/token"
                      client_id: "portcullis-gw"
                      client_secret_file: upstream-secret
            """
        })
        let started = Date()
        let response = system.get()
        let elapsed = Date().timeIntervalSince(started)
        #expect(response.status == 502)
        #expect(response.json?["error"] as? String == "upstream_credential_unavailable")
        #expect(elapsed < 2, "took \(elapsed) s")
        #expect(waitForOutput(system.gateway, containing: "upstream token request failed"))
        var line: [String: Any]?
        let deadline = Date().addingTimeInterval(5)
        while line == nil && Date() < deadline {
            line = system.accessLog().last
            if line == nil { usleep(50_000) }
        }
        #expect(line?["status"] as? Int == 502)
        #expect(line?["reason"] as? String == "upstream_credential_unavailable")
        #expect(!system.gateway.output.contains(Self.secret))
    }

    @Test(.enabled(if: enabled, "needs openssl and python3"))
    func expiredTokenWithFailingRefreshesGives502() throws {
        let system = try Self.start(expiresIn: 2, mode: "fail_after_first")
        #expect(system.get().status == 200)
        usleep(2_500_000)
        let started = Date()
        let response = system.get()
        #expect(response.status == 502)
        #expect(response.json?["error"] as? String == "upstream_credential_unavailable")
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(system.gateway.output.contains("503"))
    }

    @Test(.enabled(if: enabled, "needs openssl and python3"))
    func headerIsReadAgainAfterItsFileChangesAndClientCopiesAreDropped() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fn-key-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let valueFile = directory.appendingPathComponent("fn-key.txt")
        try "first-key\n".write(to: valueFile, atomically: true, encoding: .utf8)
        let system = try Self.start(valueFile: valueFile.path, auth: { _ in
            """
                    header: {name: X-Functions-Key, value_file: "\(valueFile.path)"}
            """
        })
        let forged = system.get(headers: [("X-Functions-Key", "forged"), ("x-functions-key", "forged-2")])
        #expect(forged.status == 200, "\(forged)")
        #expect(forged.json?["x-functions-key"] as? [String] == ["first-key"])
        #expect(forged.json?["authorization"] as? [String] == [])

        try "second-key\n".write(to: valueFile, atomically: true, encoding: .utf8)
        var seen: [String]?
        let deadline = Date().addingTimeInterval(5)
        repeat {
            usleep(200_000)
            seen = system.get().json?["x-functions-key"] as? [String]
        } while seen != ["second-key"] && Date() < deadline
        #expect(seen == ["second-key"])
        #expect(!system.gateway.output.contains("configuration reloaded"))
        #expect(!system.gateway.output.contains("second-key"))
    }

    @Test(.enabled(if: enabled, "needs openssl and python3"))
    func reloadKeepsAnUnchangedCredentialAndFetchesForAChangedOne() throws {
        let system = try Self.start()
        #expect(system.get().status == 200)
        #expect(system.tokenRequests == 1)
        let file = try #require(system.gateway.configDirectory).appendingPathComponent("portcullis.yaml")
        let yaml = try String(contentsOf: file, encoding: .utf8)

        try yaml.replacingOccurrences(of: "  auth:\n", with: "  timeout: 5m\n  auth:\n").write(to: file, atomically: true, encoding: .utf8)
        system.gateway.signal(SIGHUP)
        #expect(waitForOutput(system.gateway, containing: "configuration reloaded"))
        #expect(system.get().status == 200)
        #expect(system.tokenRequests == 1)

        try yaml.replacingOccurrences(of: "api://upstream/.default", with: "api://other/.default").write(to: file, atomically: true, encoding: .utf8)
        system.gateway.signal(SIGHUP)
        let deadline = Date().addingTimeInterval(5)
        while system.tokenRequests < 2 && Date() < deadline { usleep(50_000) }
        #expect(system.tokenRequests == 2)
        let forms = system.stats["forms"] as? [[String: Any]] ?? []
        #expect(forms.last?["scope"] as? String == "api://other/.default")
        let response = system.get()
        #expect(response.status == 200)
        #expect((response.json?["authorization"] as? [String])?.first?.hasPrefix("Bearer tok-2-") == true)
    }
}

/// A thread-safe counter for the concurrent test.
final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { self.lock.withLock { self.count } }
    func add() { self.lock.withLock { self.count += 1 } }
}
