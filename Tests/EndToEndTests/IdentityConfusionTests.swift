import Foundation
import Testing

/// Issue 8, "identity and routing confusion": whatever a client writes, the backend learns who
/// called, from where, with which method and for which host only from the gateway. A real
/// gateway runs in front of a raw Python backend that records every request head exactly as
/// it arrives; a read-only client (`reader`, GET on `/api/List*` only) makes the calls, from
/// 127.0.0.1 (untrusted) or 127.0.0.2 (a trusted proxy).
@Suite("Identity and routing confusion", .serialized)
struct IdentityConfusionTests {
    static let readerID = "reader"
    static let readerName = "Read-only dashboard"

    /// A gateway in front of a backend that records each request head (one JSON line per
    /// request, written before it answers `200 ok`).
    final class System {
        let backend: PythonBackend
        let record: URL
        let gateway: PortcullisProcess
        var port: Int { self.gateway.port() }

        /// `role` is the body of the reader's `readonly` role and `upstreamExtra` lines under
        /// `upstream:`, both indented as in the file; `extra` ends the config.
        init(
            role: String = "    allow:\n      - { methods: [GET], paths: [\"/api/List*\"] }",
            upstreamExtra: String = "",
            extra: String = ""
        ) throws {
            let record = FileManager.default.temporaryDirectory.appendingPathComponent("identity-\(UUID().uuidString).jsonl")
            FileManager.default.createFile(atPath: record.path, contents: nil)
            let backend = try PythonBackend(
                "identity-recording",
                script: """
                    import json
                    out = open(sys.argv[1], "a")
                    lock = threading.Lock()
                    def serve(conn):
                        data = b""
                        try:
                            while True:
                                head, data = read_head(conn, data)
                                if head is None: return
                                lines = head.split(b"\\r\\n")
                                length = 0
                                for l in lines[1:]:
                                    name, _, value = l.partition(b":")
                                    if name.strip().lower() == b"content-length": length = int(value.strip())
                                while len(data) < length:
                                    chunk = conn.recv(65536)
                                    if not chunk: raise EOFError()
                                    data += chunk
                                data = data[length:]
                                with lock:
                                    out.write(json.dumps({"head": head.decode("latin-1")}) + "\\n")
                                    out.flush()
                                body = b"" if lines[0].startswith(b"HEAD ") else b"ok"
                                conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\n" + body)
                        except (EOFError, ValueError, ConnectionError):
                            conn.close()
                    serve_forever(serve)
                    """,
                arguments: [record.path]
            )
            let gateway = try PortcullisProcess.serve(
                configYAML: """
                    listen:
                      - address: "127.0.0.1:0"
                    upstream:
                      url: "http://127.0.0.1:\(backend.port)"
                    \(upstreamExtra)
                    trusted_proxies: ["127.0.0.2", "10.0.0.0/8"]
                    issuers:
                    \(TestIdentity.issuerEntryYAML)
                    clients:
                      - id: \(IdentityConfusionTests.readerID)
                        name: "\(IdentityConfusionTests.readerName)"
                        issuer: e2e
                        roles: [readonly]
                    roles:
                      readonly:
                    \(role)
                    \(extra)
                    """,
                environment: ["PORTCULLIS_THREADS": "1"]
            )
            self.backend = backend
            self.record = record
            self.gateway = gateway
        }

        deinit {
            try? FileManager.default.removeItem(at: self.record)
        }

        /// Every request head the backend received so far, in order.
        var heads: [SeenHead] {
            let text = (try? String(contentsOf: self.record, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let head = object["head"] as? String
                else { return nil }
                return SeenHead(head)
            }
        }

        /// One request from the reader on a fresh connection, with `headers` after Host and
        /// the reader's token.
        func call(
            _ method: String = "GET",
            _ path: String = "/api/ListTenants",
            headers: [(String, String)] = [],
            from source: String? = nil
        ) -> HTTPTestResponse {
            do {
                let connection = try RawHTTPClient.connect(port: self.port, from: source)
                defer { connection.close() }
                connection.sendRequest(method, path, headers: [IdentityConfusionTests.readerAuthorization] + headers, authorize: false)
                return connection.readResponse(requestMethod: method) ?? .failed(connection.lastFailure ?? "no response")
            } catch {
                return .failed("\(error)")
            }
        }

        /// Sends raw bytes (the reader's token added after the request line); the response and
        /// whether the gateway then closed the connection.
        func raw(_ request: String) throws -> (response: HTTPTestResponse?, closed: Bool) {
            let connection = try RawHTTPClient.connect(port: self.port)
            defer { connection.close() }
            let line = request.range(of: "\r\n")!
            connection.send(request.replacingCharacters(in: line, with: "\r\n" + IdentityConfusionTests.readerAuthorization.0 + ": " + IdentityConfusionTests.readerAuthorization.1 + "\r\n"))
            let response = connection.readResponse()
            return (response, connection.isClosedByPeer(timeout: 3))
        }

        /// A request that must be allowed, to prove the ones before it left no trace: the
        /// backend's record ends with it, and holds `expected` heads in all.
        func expectOnlyControlReachedTheBackend(after count: Int, _ comment: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let control = self.call("GET", "/api/ListControl")
            #expect(control.status == 200, "control: \(control)", sourceLocation: sourceLocation)
            let heads = self.heads
            #expect(heads.count == count + 1, "\(comment): the backend saw \(heads.map(\.requestLine))", sourceLocation: sourceLocation)
            #expect(heads.last?.requestLine == "GET /api/ListControl HTTP/1.1", sourceLocation: sourceLocation)
        }
    }

    /// A request head as the backend received it.
    struct SeenHead {
        var requestLine: String
        var fields: [(name: String, value: String)]

        init(_ text: String) {
            var lines = text.components(separatedBy: "\r\n")
            self.requestLine = lines.removeFirst()
            self.fields = lines.map { line in
                let colon = line.firstIndex(of: ":") ?? line.endIndex
                let value = colon == line.endIndex ? "" : line[line.index(after: colon)...]
                return (String(line[..<colon]), value.trimmingCharacters(in: .whitespaces))
            }
        }

        /// The values of every field named `name` (any case), in order.
        func values(_ name: String) -> [String] {
            self.fields.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        }

        func names(withPrefix prefix: String) -> [String] {
            self.fields.map { $0.name.lowercased() }.filter { $0.hasPrefix(prefix) }
        }
    }

    static let readerAuthorization = ("Authorization", "Bearer \(TestIdentity.token(clientID: readerID))")

    // MARK: - Client address

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func forwardedForFromAnUntrustedPeerIsReplacedByThePeer() throws {
        let system = try System()
        let spoofs: [(String, [(String, String)])] = [
            ("one header", [("X-Forwarded-For", "6.6.6.6")]),
            ("several headers", [("X-Forwarded-For", "6.6.6.6"), ("x-forwarded-for", "10.1.2.3"), ("X-FORWARDED-FOR", "7.7.7.7")]),
            ("a list", [("X-Forwarded-For", "6.6.6.6, 203.0.113.9,10.1.2.3")]),
            ("look-alikes", [("Forwarded", "for=6.6.6.6"), ("X-Real-IP", "6.6.6.6"), ("X-Forwarded-For", "garbage, 6.6.6.6")]),
        ]
        for (index, (name, headers)) in spoofs.enumerated() {
            let response = system.call(headers: headers)
            #expect(response.status == 200, "\(name): \(response)")
            let heads = system.heads
            try #require(heads.count == index + 1, "\(name)")
            let seen = heads[index]
            #expect(seen.values("x-forwarded-for") == ["127.0.0.1"], "\(name): \(seen.fields)")
            #expect(seen.values("forwarded").isEmpty && seen.values("x-real-ip").isEmpty, "\(name): \(seen.fields)")
        }
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func forwardedForFromATrustedProxyKeepsTheHopsItVouchesForThenThePeer() throws {
        let system = try System()
        let response = system.call(headers: [("X-Forwarded-For", "6.6.6.6, 203.0.113.9"), ("X-Forwarded-For", "10.1.2.3")], from: "127.0.0.2")
        #expect(response.status == 200, "\(response)")
        let one = system.call(headers: [("X-Forwarded-For", "198.51.100.7")], from: "127.0.0.2")
        #expect(one.status == 200, "\(one)")
        let heads = system.heads
        try #require(heads.count == 2)
        // 6.6.6.6 is what the untrusted 203.0.113.9 claimed: not believed, not forwarded.
        #expect(heads[0].values("x-forwarded-for") == ["203.0.113.9, 10.1.2.3, 127.0.0.2"], "\(heads[0].fields)")
        #expect(heads[1].values("x-forwarded-for") == ["198.51.100.7, 127.0.0.2"], "\(heads[1].fields)")
    }

    // MARK: - Client identity

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func clientSentPortcullisHeadersAreReplacedByTheAuthenticatedClient() throws {
        let system = try System()
        let response = system.call(headers: [
            ("X-Portcullis-Client-Id", "admin"),
            ("x-portcullis-client-id", "root"),
            ("X-PORTCULLIS-CLIENT-ID", "psa-sync"),
            ("X-Portcullis-Client-Name", "Administrator"),
            ("x-PortCullis-client-NAME", "Administrator"),
            ("X-Portcullis-Anything", "1"),
            ("x-portcullis-roles", "superadmin"),
            ("X-Portcullis", "kept: not the gateway's prefix"),
        ])
        #expect(response.status == 200, "\(response)")
        let seen = try #require(system.heads.first)
        #expect(seen.values("x-portcullis-client-id") == [Self.readerID], "\(seen.fields)")
        #expect(seen.values("x-portcullis-client-name") == [Self.readerName], "\(seen.fields)")
        #expect(seen.names(withPrefix: "x-portcullis-").sorted() == ["x-portcullis-client-id", "x-portcullis-client-name"], "\(seen.fields)")
        #expect(seen.values("x-portcullis") == ["kept: not the gateway's prefix"])
    }

    /// CGI, WSGI, PHP and many frameworks read `_` as `-` in header names.
    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func underscoreSpellingsOfGatewayHeadersNeverReachTheBackend() throws {
        let system = try System()
        let response = system.call(headers: [
            ("X_Forwarded_For", "6.6.6.6"),
            ("X_Portcullis_Client_Id", "admin"),
            ("x_portcullis_client_name", "Administrator"),
            ("X_Request_Id", "client-chosen"),
            ("X_Forwarded_Host", "evil.example"),
            ("X_Real_IP", "6.6.6.6"),
            ("X_MS_CLIENT_PRINCIPAL_NAME", "admin@contoso.onmicrosoft.com"),
            ("X_HTTP_Method_Override", "DELETE"),
            ("X_Custom_Header", "kept"),
        ])
        #expect(response.status == 200, "\(response)")
        let seen = try #require(system.heads.first)
        #expect(!seen.fields.contains { $0.name.contains("_") && $0.name != "X_Custom_Header" }, "\(seen.fields)")
        #expect(!seen.fields.contains { ["6.6.6.6", "admin", "Administrator", "client-chosen", "evil.example", "DELETE"].contains($0.value) }, "\(seen.fields)")
        #expect(seen.values("x-portcullis-client-id") == [Self.readerID], "\(seen.fields)")
        #expect(seen.values("x_custom_header") == ["kept"], "\(seen.fields)")
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func dropHeadersWithUnderscoresDropsEveryNameHoldingOne() throws {
        let system = try System(upstreamExtra: "  drop_headers_with_underscores: true")
        let response = system.call(headers: [("X_Custom_Header", "dropped"), ("Accept_Language", "dropped"), ("X-Plain", "kept")])
        #expect(response.status == 200, "\(response)")
        let seen = try #require(system.heads.first)
        #expect(!seen.fields.contains { $0.name.contains("_") || $0.value == "dropped" }, "\(seen.fields)")
        #expect(seen.values("x-plain") == ["kept"], "\(seen.fields)")
    }

    // MARK: - Bearer credentials

    /// RFC 6750 2.1: `"Bearer" 1*SP b64token`; the second call finds the verified token cached.
    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func aBearerTokenAfterSeveralSpacesIsAccepted() throws {
        let system = try System()
        let token = TestIdentity.token(clientID: Self.readerID)
        for spaces in [2, 5, 2] {
            let connection = try RawHTTPClient.connect(port: system.port)
            defer { connection.close() }
            connection.sendRequest(
                "GET", "/api/ListUsers",
                headers: [("Authorization", "Bearer" + String(repeating: " ", count: spaces) + token)],
                authorize: false
            )
            let response = connection.readResponse() ?? .failed(connection.lastFailure ?? "no response")
            #expect(response.status == 200, "\(spaces) spaces: \(response)")
        }
        #expect(system.heads.count == 3)
        #expect(system.heads.allSatisfy { $0.values("authorization").isEmpty })
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func azurePrincipalHeadersNeverReachTheBackend() throws {
        let system = try System()
        // What Azure App Service's authentication would set for a signed-in CIPP admin.
        let principal = Data(#"{"identityProvider":"aad","userId":"admin","userRoles":["superadmin"]}"#.utf8).base64EncodedString()
        let response = system.call(headers: [
            ("x-ms-client-principal", principal),
            ("X-MS-CLIENT-PRINCIPAL", principal),
            ("x-ms-client-principal-id", "00000000-0000-0000-0000-000000000001"),
            ("X-Ms-Client-Principal-Name", "admin@contoso.onmicrosoft.com"),
            ("x-ms-client-principal-idp", "aad"),
            ("x-ms-client-principal-anything", "1"),
        ])
        #expect(response.status == 200, "\(response)")
        let seen = try #require(system.heads.first)
        #expect(seen.names(withPrefix: "x-ms-client-principal").isEmpty, "\(seen.fields)")
        #expect(!seen.fields.contains { $0.value.contains(principal) || $0.value.contains("admin@") }, "\(seen.fields)")
    }

    // MARK: - Method

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func methodOverrideHeadersAreDroppedAndTheRealMethodIsDecided() throws {
        let system = try System()
        let overrides = ["X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method"]
        for name in overrides {
            let response = system.call("GET", headers: [(name, "DELETE"), (name.lowercased(), "PUT"), (name.uppercased(), "DELETE")])
            #expect(response.status == 200, "\(name): \(response)")
        }
        let heads = system.heads
        try #require(heads.count == overrides.count)
        for (name, seen) in zip(overrides, heads) {
            #expect(seen.requestLine == "GET /api/ListTenants HTTP/1.1", "\(name)")
            #expect(seen.names(withPrefix: "x-http-method").isEmpty && seen.names(withPrefix: "x-method").isEmpty, "\(name): \(seen.fields)")
        }

        // A write the role does not allow is refused on its real method, override or not.
        for name in overrides {
            let response = system.call("POST", headers: [(name, "GET"), ("Content-Length", "0")])
            #expect(response.status == 403, "\(name): \(response)")
            #expect(response.header("www-authenticate")?.contains(#"error="insufficient_scope""#) == true, "\(name)")
            #expect(response.json?["error"] as? String == "insufficient_scope", "\(name)")
        }
        system.expectOnlyControlReachedTheBackend(after: overrides.count, "POST with a GET override")
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func headAndOptionsAreNotAllowedByAGetOnlyRule() throws {
        let system = try System()
        #expect(system.call("GET").status == 200, "GET is allowed")
        for method in ["HEAD", "OPTIONS"] {
            let response = system.call(method)
            #expect(response.status == 403, "\(method): \(response)")
            #expect(response.header("www-authenticate")?.contains(#"error="insufficient_scope""#) == true, "\(method)")
        }
        system.expectOnlyControlReachedTheBackend(after: 1, "HEAD and OPTIONS")
    }

    // MARK: - Host

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func absoluteFormTargetsAndRepeatedHostsAreRefused() throws {
        let system = try System()
        let requests = [
            "GET http://other.example/api/ListTenants HTTP/1.1\r\nHost: 127.0.0.1:\(system.port)\r\n\r\n",
            "GET http://127.0.0.1:\(system.port)/api/ListTenants HTTP/1.1\r\nHost: other.example\r\n\r\n",
            "GET /api/ListTenants HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: other.example\r\n\r\n",
            "GET /api/ListTenants HTTP/1.1\r\nHost: 127.0.0.1\r\nhost: 127.0.0.1\r\n\r\n",
            "GET /api/ListTenants HTTP/1.1\r\nHost: 127.0.0.1, other.example\r\n\r\n",
            "GET /api/ListTenants HTTP/1.1\r\nX-Forwarded-Host: other.example\r\n\r\n",
        ]
        for request in requests {
            let (response, closed) = try system.raw(request)
            #expect(response?.status == 400, "\(request.debugDescription): \(response.map { "\($0)" } ?? "none")")
            #expect(response?.json?["error"] as? String == "bad_request", "\(request.debugDescription)")
            #expect(closed, "\(request.debugDescription): connection left open")
        }
        // A network-path target is a path (`//` merged), decided as one, never an authority.
        let (networkPath, _) = try system.raw("GET //other.example/api/ListTenants HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(networkPath?.status == 403, "\(networkPath.map { "\($0)" } ?? "none")")
        system.expectOnlyControlReachedTheBackend(after: 0, "absolute-form targets and repeated Host")
    }

    static let invalidHosts = [
        "api.example.com evil.example", "a\tb", "admin@api.example.com", "user:pass@api.example.com", "api.example.com/admin",
        "api.example.com?x", "api.example.com#x", "api%2eexample.com", "api.example.com,evil.example", "api.example.com;x",
        "api.example.com:", "api.example.com:0", "api.example.com:08443", "api.example.com:65536", "api.example.com:84a3",
        "api.example.com:80:81", ":8443", "[::1", "[::1]evil", "[::1%25eth0]", "",
    ]

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func aHostTheBackendCouldReadDifferentlyIsRefused() throws {
        let system = try System()
        for host in Self.invalidHosts {
            let (response, closed) = try system.raw("GET /api/ListTenants HTTP/1.1\r\nHost: \(host)\r\n\r\n")
            #expect(response?.status == 400, "\(host.debugDescription): \(response.map { "\($0)" } ?? "none")")
            #expect(response?.json?["error"] as? String == "bad_request", "\(host.debugDescription)")
            #expect(closed, "\(host.debugDescription): connection left open")
        }
        system.expectOnlyControlReachedTheBackend(after: 0, "invalid Host values")
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func forwardedHostIsTheClientsValidHostAndAClientCopyIsReplaced() throws {
        let system = try System()
        let hosts = ["api.example.com:8443", "API.Example.COM", "[::1]:443", "127.0.0.1"]
        for host in hosts {
            let response = system.call(headers: [
                ("Host", host), ("X-Forwarded-Host", "evil.example"), ("x-forwarded-host", "evil.example:443"),
                ("X-Forwarded-Proto", "https"), ("X-Forwarded-Port", "443"),
            ])
            #expect(response.status == 200, "\(host): \(response)")
        }
        let heads = system.heads
        try #require(heads.count == hosts.count)
        for (host, seen) in zip(hosts, heads) {
            #expect(seen.values("x-forwarded-host") == [host], "\(host): \(seen.fields)")
            #expect(seen.values("host") == ["127.0.0.1:\(system.backend.port)"], "\(host): \(seen.fields)")
            #expect(seen.values("x-forwarded-proto") == ["http"], "\(host): \(seen.fields)")
        }
    }
}
