import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real backend process and a real gateway process in front of it, over loopback.
struct GatewayUnderTest {
    let backend: PortcullisProcess
    let gateway: PortcullisProcess

    var port: Int { self.gateway.port() }
    var backendPort: Int { self.backend.port() }

    /// `config` is appended to a minimal listen + upstream config; `upstream` replaces the url.
    static func start(
        _ config: String = "",
        upstream: String? = nil,
        upstreamExtra: String = "",
        listen: String = "127.0.0.1:0",
        threads: Int = 2,
        extraFiles: [String: String] = [:]
    ) throws -> GatewayUnderTest {
        let backend = try PortcullisProcess.demoBackend()
        let url = upstream ?? "http://127.0.0.1:\(backend.port())"
        let yaml = """
            listen:
              - address: "\(listen)"
            upstream:
              url: "\(url)"
            \(upstreamExtra)
            \(config)
            """
        let gateway = try PortcullisProcess.serve(
            configYAML: yaml,
            extraFiles: extraFiles,
            environment: ["PORTCULLIS_THREADS": "\(threads)"]
        )
        return GatewayUnderTest(backend: backend, gateway: gateway)
    }

    func backendStats() -> [String: Int] {
        let response = RawHTTPClient.request("GET", "/demo/stats", port: self.backendPort)
        return (response.json ?? [:]).compactMapValues { $0 as? Int }
    }

    func resetBackendStats() {
        _ = RawHTTPClient.request("GET", "/demo/stats/reset", port: self.backendPort)
    }

    /// Edits the gateway's `portcullis.yaml` in place (send SIGHUP to apply it).
    func rewriteConfig(_ edit: (String) -> String) throws {
        let file = try #require(self.gateway.configDirectory).appendingPathComponent("portcullis.yaml")
        let text = try String(contentsOf: file, encoding: .utf8)
        try edit(text).write(to: file, atomically: true, encoding: .utf8)
    }
}

@Suite("Proxy end to end", .serialized)
struct ProxyEndToEndTests {
    // MARK: Streaming

    @Test func largeDownloadStreamsThroughWithBoundedMemory() throws {
        let system = try GatewayUnderTest.start()
        let size = 1 << 30
        let result = RawHTTPClient.streamDownload(port: system.port, path: "/demo/stream?bytes=\(size)")
        #expect(result.status == 200)
        #expect(result.bodyBytes == size)
        #expect(result.fnv1a == TestBodyPattern.fnv1a(totalBytes: size))
        let peak = try #require(system.gateway.peakRSSKiB)
        print("1 GiB download: gateway peak RSS \(peak / 1024) MiB")
        #expect(peak < 150 * 1024, "gateway peak RSS \(peak) KiB while streaming 1 GiB")
    }

    @Test func largeUploadStreamsThroughWithBoundedMemory() throws {
        let system = try GatewayUnderTest.start()
        let size = 1 << 30
        let response = RawHTTPClient.streamUpload(port: system.port, path: "/demo/upload", totalBytes: size)
        #expect(response.status == 200)
        #expect(response.json?["bytes"] as? Int == size)
        #expect(response.json?["fnv1a"] as? String == TestBodyPattern.fnv1aHex(totalBytes: size))
        let peak = try #require(system.gateway.peakRSSKiB)
        print("1 GiB upload: gateway peak RSS \(peak / 1024) MiB")
        #expect(peak < 150 * 1024, "gateway peak RSS \(peak) KiB while streaming 1 GiB")
    }

    @Test func chunkedAndEOFFramedResponsesReachTheClientWhole() throws {
        let system = try GatewayUnderTest.start(threads: 1)
        let client = try RawHTTPClient.connect(port: system.port)
        for query in ["chunked=1", "eof=1", "chunked=1"] {
            client.sendRequest("GET", "/demo/stream?bytes=300000&\(query)")
            let response = try #require(client.readResponse())
            #expect(response.status == 200)
            #expect(response.body.count == 300_000)
            #expect(response.body == TestBodyPattern.bytes(offset: 0, length: 300_000))
        }
        // The EOF-framed response ended its upstream connection: the next one used a new one.
        #expect(system.backendStats()["connections_accepted"] == 3)
    }

    // MARK: Keep-alive and pipelining

    @Test func keepAliveReusesOneUpstreamConnection() throws {
        let system = try GatewayUnderTest.start(threads: 1)
        let client = try RawHTTPClient.connect(port: system.port)
        for _ in 0..<20 {
            client.sendRequest("GET", "/api/ListTenants")
            #expect(client.readResponse()?.status == 200)
        }
        // A second client connection on the same loop shares the pool.
        #expect(RawHTTPClient.request("GET", "/api/ListLogs", port: system.port).status == 200)
        let stats = system.backendStats()
        #expect(stats["connections_accepted"] == 2, "one pooled upstream connection plus the stats request: \(stats)")
        #expect(stats["requests"] == 22)
    }

    @Test func upstreamConnectionCloseIsNeverReused() throws {
        let system = try GatewayUnderTest.start(threads: 1)
        let client = try RawHTTPClient.connect(port: system.port)
        for _ in 0..<3 {
            client.sendRequest("GET", "/demo/close")
            let response = try #require(client.readResponse())
            #expect(response.status == 200)
            // The upstream's Connection: close is hop-by-hop: the client connection stays open.
            #expect(response.header("connection") == nil)
        }
        #expect(system.backendStats()["connections_accepted"] == 4)
    }

    @Test func idlePooledConnectionsExpireAfterKeepaliveTimeout() throws {
        let system = try GatewayUnderTest.start(upstreamExtra: "  keepalive_timeout: 200ms", threads: 1)
        #expect(RawHTTPClient.request("GET", "/api/ListTenants", port: system.port).status == 200)
        #expect(system.backendStats()["connections_open"] == 2)
        usleep(700_000)
        // The pooled connection was closed by the sweeper; the next request opens a new one.
        #expect(system.backendStats()["connections_open"] == 1)
        #expect(RawHTTPClient.request("GET", "/api/ListTenants", port: system.port).status == 200)
        #expect(system.gateway.isRunning)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let system = try GatewayUnderTest.start()
        let client = try RawHTTPClient.connect(port: system.port)
        var bytes: [UInt8] = []
        bytes += RawHTTPClient.requestHead("GET", "/demo/slow?ms=300", authority: "gw")
        for i in 1...4 {
            bytes += RawHTTPClient.requestHead("GET", "/demo/echo/\(i)", authority: "gw")
        }
        bytes += RawHTTPClient.requestHead("HEAD", "/demo/echo/head", authority: "gw")
        bytes += RawHTTPClient.requestHead("GET", "/demo/echo/last", authority: "gw")
        client.send(bytes)
        #expect(client.readResponse()?.json?["slept_ms"] as? Int == 300)
        for i in 1...4 {
            let response = try #require(client.readResponse())
            #expect(response.json?["uri"] as? String == "/demo/echo/\(i)")
        }
        let head = try #require(client.readResponse(requestMethod: "HEAD"))
        #expect(head.status == 200 && head.body.isEmpty)
        #expect(client.readResponse()?.json?["uri"] as? String == "/demo/echo/last")
    }

    // MARK: Timeouts and upstream failures

    @Test func exchangeTimeoutGives504BeforeTheResponseHead() throws {
        let system = try GatewayUnderTest.start(upstreamExtra: "  timeout: 400ms")
        let started = Date()
        let response = RawHTTPClient.request("GET", "/demo/hang", port: system.port)
        #expect(response.status == 504)
        #expect(response.json?["error"] as? String == "upstream_timeout")
        #expect(response.header("x-request-id")?.count == 32)
        #expect(Date().timeIntervalSince(started) < 3)
        // The gateway goes on serving.
        #expect(RawHTTPClient.request("GET", "/api/ListTenants", port: system.port).status == 200)
    }

    @Test func exchangeTimeoutClosesAResponseStillStreaming() throws {
        let system = try GatewayUnderTest.start(upstreamExtra: "  timeout: 400ms")
        let client = try RawHTTPClient.connect(port: system.port)
        client.sendRequest("GET", "/demo/slowbody?ms=5000")
        let started = Date()
        let response = client.readResponse(timeout: 5)
        // The head came in time; the body cannot finish, so the connection is cut.
        #expect(response == nil || response?.failure != nil)
        #expect(client.isClosedByPeer(timeout: 3))
        #expect(Date().timeIntervalSince(started) < 3)
    }

    @Test func refusedUpstreamGives502AndTheGatewayKeepsServing() throws {
        let port = try closedPort()
        let system = try GatewayUnderTest.start(upstream: "http://127.0.0.1:\(port)")
        for _ in 0..<3 {
            let response = RawHTTPClient.request("GET", "/api/ListTenants", port: system.port)
            #expect(response.status == 502)
            #expect(response.json?["error"] as? String == "upstream_unavailable")
        }
    }

    @Test func upstreamResetGives502() throws {
        let system = try GatewayUnderTest.start()
        let response = RawHTTPClient.request("GET", "/demo/reset", port: system.port)
        #expect(response.status == 502)
        #expect(RawHTTPClient.request("GET", "/api/ListTenants", port: system.port).status == 200)
    }

    @Test func connectTimeoutGives502() throws {
        // A listener whose accept queue is full drops further SYNs: connect() hangs.
        let (listener, port, fillers) = try saturatedListener()
        defer {
            for fd in fillers { close(fd) }
            close(listener)
        }
        let system = try GatewayUnderTest.start(upstream: "http://127.0.0.1:\(port)", upstreamExtra: "  connect_timeout: 300ms")
        let started = Date()
        let response = RawHTTPClient.request("GET", "/api/ListTenants", port: system.port)
        let elapsed = Date().timeIntervalSince(started)
        #expect(response.status == 502)
        #expect(elapsed >= 0.25 && elapsed < 3, "answered after \(elapsed)s")
    }

    @Test func slowRequestHeadGets408AndIdleConnectionIsClosed() throws {
        let system = try GatewayUnderTest.start("limits:\n  client_header_timeout: 300ms\n  idle_timeout: 300ms")
        let slow = try RawHTTPClient.connect(port: system.port)
        slow.send("GET /api/ListTenants HTTP/1.1\r\nHost: gw\r\n")
        let response = try #require(slow.readResponse(timeout: 3))
        #expect(response.status == 408)
        #expect(slow.isClosedByPeer(timeout: 3))

        let idle = try RawHTTPClient.connect(port: system.port)
        idle.sendRequest("GET", "/api/ListTenants")
        #expect(idle.readResponse()?.status == 200)
        let started = Date()
        #expect(idle.isClosedByPeer(timeout: 3))
        #expect(Date().timeIntervalSince(started) >= 0.2)
    }

    @Test func connectionsOverTheCapGet503WithRetryAfter() throws {
        let system = try GatewayUnderTest.start("limits:\n  max_connections: 2")
        let first = try RawHTTPClient.connect(port: system.port)
        let second = try RawHTTPClient.connect(port: system.port)
        first.sendRequest("GET", "/api/ListTenants")
        #expect(first.readResponse()?.status == 200)
        second.sendRequest("GET", "/api/ListTenants")
        #expect(second.readResponse()?.status == 200)
        let third = try RawHTTPClient.connect(port: system.port)
        third.sendRequest("GET", "/api/ListTenants")
        let refused = try #require(third.readResponse())
        #expect(refused.status == 503)
        #expect(refused.header("retry-after") != nil)
        first.close()
        // Room again once a connection has gone.
        var status = 0
        for _ in 0..<50 where status != 200 {
            usleep(20_000)
            status = RawHTTPClient.request("GET", "/api/ListTenants", port: system.port).status
        }
        #expect(status == 200)
    }

    // MARK: What goes upstream

    @Test func headersAreRewrittenAsDesignSays() throws {
        let system = try GatewayUnderTest.start()
        let response = RawHTTPClient.request(
            "GET",
            "/demo/echo",
            port: system.port,
            headers: [
                TestIdentity.authorizationHeader,
                ("X-Forwarded-For", "6.6.6.6"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "evil"),
                ("X-Request-Id", "client-chosen"),
                ("X-Portcullis-Client-Id", "admin"),
                ("x-ms-client-principal-name", "admin@contoso"),
                ("Connection", "keep-alive, X-Drop-Me"),
                ("X-Drop-Me", "1"),
                ("Keep-Alive", "timeout=5"),
                ("X-Kept", "yes"),
            ]
        )
        #expect(response.status == 200)
        let seen = try #require(response.json?["headers"] as? [[String]])
        func values(_ name: String) -> [String] {
            seen.filter { $0[0].lowercased() == name }.map { $0[1] }
        }
        #expect(values("authorization").isEmpty)
        // The client-sent copy is dropped; the gateway's names the authenticated client.
        #expect(values("x-portcullis-client-id") == [TestIdentity.clientID])
        #expect(values("x-portcullis-client-name") == [TestIdentity.clientName])
        #expect(values("x-ms-client-principal-name").isEmpty)
        #expect(values("x-drop-me").isEmpty)
        #expect(values("keep-alive").isEmpty)
        #expect(values("connection").isEmpty)
        #expect(values("x-kept") == ["yes"])
        #expect(values("x-forwarded-for") == ["127.0.0.1"])
        #expect(values("x-forwarded-proto") == ["http"])
        #expect(values("x-forwarded-host") == ["127.0.0.1:\(system.port)"])
        #expect(values("host") == ["127.0.0.1:\(system.backendPort)"])
        let requestID = try #require(response.header("x-request-id"))
        #expect(values("x-request-id") == [requestID])
        #expect(requestID != "client-chosen")
    }

    @Test func forwardedForIsBelievedOnlyFromTrustedProxies() throws {
        let trusted = try GatewayUnderTest.start("trusted_proxies: [\"127.0.0.0/8\", \"10.0.0.0/8\"]")
        let response = RawHTTPClient.request(
            "GET",
            "/demo/echo",
            port: trusted.port,
            headers: [("X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.1.2.3")]
        )
        let seen = try #require(response.json?["headers"] as? [[String]])
        #expect(seen.filter { $0[0] == "X-Forwarded-For" }.map { $0[1] } == ["203.0.113.9, 10.1.2.3, 127.0.0.1"])
    }

    @Test func theCanonicalPathIsWhatGoesUpstream() throws {
        let system = try GatewayUnderTest.start()
        let cases: [(sent: String, upstream: String)] = [
            ("/demo//echo/a/./b/../c?q=%2F&r=../x", "/demo/echo/a/c?q=%2F&r=../x"),
            ("/demo/%65cho/%7Euser", "/demo/echo/~user"),
            ("/demo/echo/a%7bb%7d", "/demo/echo/a%7Bb%7D"),
        ]
        for (sent, upstream) in cases {
            let response = RawHTTPClient.request("GET", sent, port: system.port)
            #expect(response.status == 200, "\(sent)")
            #expect(response.json?["uri"] as? String == upstream, "\(sent)")
        }
        system.resetBackendStats()
        for bad in [
            "/demo/echo/../../../etc/passwd", "/demo/%2e%2e/%2e%2e/x", "/demo/echo/a%2fb", "/demo/echo\\x",
            "/demo/echo/%e2%82%ac", "/demo/echo;x", "/demo/echo%2561", "/demo./echo",
        ] {
            let client = try RawHTTPClient.connect(port: system.port)
            client.send("GET \(bad) HTTP/1.1\r\nHost: gw\r\n\r\n")
            let response = try #require(client.readResponse())
            #expect(response.status == 400, "\(bad)")
            #expect(client.isClosedByPeer(timeout: 3), "\(bad)")
        }
        #expect(system.backendStats()["requests"] == 1, "only the stats request itself reached the backend")
    }

    // MARK: Listeners and graceful stop

    @Test(.enabled(if: ipv6LoopbackAvailable(), "no IPv6 loopback on this machine"))
    func servesOnIPv6Listeners() throws {
        let system = try GatewayUnderTest.start(listen: "[::1]:0")
        let response = RawHTTPClient.request("GET", "/demo/echo", host: "::1", port: system.port)
        #expect(response.status == 200)
        let seen = try #require(response.json?["headers"] as? [[String]])
        #expect(seen.filter { $0[0] == "X-Forwarded-For" }.map { $0[1] } == ["::1"])
    }

    @Test func sigtermLetsInFlightExchangesFinishThenExitsZero() throws {
        let system = try GatewayUnderTest.start()
        let client = try RawHTTPClient.connect(port: system.port)
        client.sendRequest("GET", "/demo/slow?ms=800")
        usleep(200_000)
        system.gateway.signal(SIGTERM)
        let response = try #require(client.readResponse(timeout: 5))
        #expect(response.status == 200)
        #expect(response.header("connection")?.lowercased() == "close")
        #expect(system.gateway.waitForExit(timeout: 5) == 0)
        #expect((try? RawHTTPClient.connect(port: system.port, timeout: 1)) == nil, "still accepting after SIGTERM")
        #expect(!system.gateway.output.contains("ERROR"), "\(system.gateway.output)")
    }

    @Test func severalListenersServeAndAllDrain() throws {
        let backend = try PortcullisProcess.demoBackend()
        let gateway = try PortcullisProcess.serve(
            configYAML: """
                listen:
                  - address: "127.0.0.1:0"
                  - address: "127.0.0.2:0"
                upstream:
                  url: "http://127.0.0.1:\(backend.port())"
                """
        )
        #expect(gateway.urls.count == 2)
        for url in gateway.urls {
            let host = url.contains("127.0.0.2") ? "127.0.0.2" : "127.0.0.1"
            let port = try #require(PortcullisProcess.port(of: url))
            #expect(RawHTTPClient.request("GET", "/api/ListTenants", host: host, port: port).status == 200, "\(url)")
        }
        gateway.signal(SIGTERM)
        #expect(gateway.waitForExit(timeout: 5) == 0)
        #expect(!gateway.output.contains("ERROR"), "\(gateway.output)")
    }

    @Test func drainIsBoundedByDrainTimeout() throws {
        let system = try GatewayUnderTest.start("limits:\n  drain_timeout: 300ms")
        let client = try RawHTTPClient.connect(port: system.port)
        client.sendRequest("GET", "/demo/hang")
        usleep(100_000)
        let started = Date()
        system.gateway.signal(SIGTERM)
        #expect(system.gateway.waitForExit(timeout: 5) == 0)
        #expect(Date().timeIntervalSince(started) < 3)
    }
}

// MARK: - Socket helpers

/// A loopback port with nothing listening on it.
func closedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A listener with backlog 0 that never accepts, its queue filled so new SYNs are dropped.
func saturatedListener() throws -> (listener: Int32, port: Int, fillers: [Int32]) {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(listener, pointer, length)
            listen(listener, 0)
            return getsockname(listener, pointer, &length)
        }
    }
    let port = Int(UInt16(bigEndian: address.sin_port))
    var fillers: [Int32] = []
    for _ in 0..<4 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue), 0)
        var target = address
        _ = withUnsafeMutablePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        fillers.append(fd)
    }
    usleep(100_000)
    return (listener, port, fillers)
}

func ipv6LoopbackAvailable() -> Bool {
    let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in6()
    address.sin6_family = sa_family_t(AF_INET6)
    address.sin6_addr = in6addr_loopback
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
        }
    }
}
