import Foundation
import Testing

/// A connection's memory is returned when it closes: tens of thousands of connections through
/// one event loop leave the gateway's RSS where it was after a warm-up.
@Suite("Memory across connections", .serialized)
struct ConnectionMemoryTests {
    /// `PORTCULLIS_MEMORY_TEST_CONNECTIONS` sets how many connections each test measures; by
    /// default 100,000 without a byte and 20,000 with a request each, sized for a debug-built
    /// gateway on two busy cores (about 0.3 ms of its CPU a connection, 0.7 ms with a request).
    static let connectionsOverride = ProcessInfo.processInfo.environment["PORTCULLIS_MEMORY_TEST_CONNECTIONS"].flatMap { Int($0) }
    /// The leak this guards against was 1.5 KB a connection: 29 MB over 20,000 connections.
    /// A growth under this is the allocator's noise (0.1-0.2 MB measured).
    static let allowedGrowthKiB = 4 * 1024

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func connectionsThatSendNothingLeaveNoMemoryBehind() throws {
        // Nothing is forwarded: no backend is needed.
        let gateway = try PortcullisProcess.serve(
            configYAML: """
                listen:
                  - address: "127.0.0.1:0"
                upstream:
                  url: "http://127.0.0.1:9"
                """,
            environment: ["PORTCULLIS_THREADS": "1"]
        )
        let churn = ConnectionChurn(port: gateway.port(), requests: [""])
        try Self.expectFlatMemory(gateway, churn, connections: 100_000, label: "connections without a byte") { result in
            #expect(result.statuses.isEmpty, "\(result.statuses)")
        }
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func connectionsWithARequestEachLeaveNoMemoryBehind() throws {
        let system = try GatewayUnderTest.start(threads: 1)
        let host = "Host: 127.0.0.1:\(system.port)\r\n"
        let unauthorized = "GET /api/ListUsers HTTP/1.1\r\n\(host)\r\n"
        let unauthorizedPost = "POST /api/ExecResetPass HTTP/1.1\r\n\(host)Content-Length: 0\r\n\r\n"
        let forwarded = "GET /demo HTTP/1.1\r\n\(host)\(TestIdentity.authorizationLine)\r\n"
        // Both framings at once: the gateway answers 400 and closes first.
        let malformed = "GET /api/ListUsers HTTP/1.1\r\n\(host)Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        // Mostly 401s (no backend involved, the cheapest for a debug build); a 200 and a 400 in eight.
        let requests: [(String, Int)] = [
            (unauthorized, 401), (forwarded, 200), (unauthorizedPost, 401), (unauthorized, 401),
            (malformed, 400), (unauthorizedPost, 401), (unauthorized, 401), (unauthorizedPost, 401),
        ]
        let churn = ConnectionChurn(port: system.port, requests: requests.map(\.0))
        try Self.expectFlatMemory(system.gateway, churn, connections: 20_000, label: "connections with a request each", backendPort: system.backendPort) { result in
            var expected: [Int: Int] = [:]
            for index in 0..<result.connections { expected[requests[index % requests.count].1, default: 0] += 1 }
            #expect(result.statuses == expected, "\(result.statuses)")
        }
    }

    /// Idle keep-alive connections, each after one forwarded request, held open: the gateway's
    /// own memory (anonymous RSS, not the executable's pages) grows by what one connection keeps
    /// between requests. About 4.1 KiB in a release build (`Benchmarks/RESULTS-memory.md`): NIO's
    /// channel and its 1 KiB receive buffer, the handler, and nothing of the exchange before it.
    @Test func anIdleConnectionKeepsLittleMemory() throws {
        let system = try GatewayUnderTest.start(threads: 1)
        let host = "Host: 127.0.0.1:\(system.port)\r\n"
        let request = "GET /demo HTTP/1.1\r\n\(host)\(TestIdentity.authorizationLine)\r\n"
        func openIdle(_ count: Int) throws -> [RawHTTPClient] {
            try (0..<count).map { _ in
                let client = try RawHTTPClient.connect(port: system.port)
                #expect(client.send(request))
                #expect(client.readResponse()?.status == 200)
                return client
            }
        }
        // The upstream pool and the loop's first allocations come first; few, so that the memory
        // they free is not much of what the measured connections reuse.
        for client in try openIdle(10) { client.close() }
        let anonymousBefore = try #require(system.gateway.anonymousKiB)
        // Room for the clients beside the other suites' sockets, whatever this process's soft
        // limit on descriptors (often 1,024).
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < 4096 {
            limit.rlim_cur = min(limit.rlim_max, 4096)
            _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        let count = 600
        let idle = try openIdle(count)
        defer { for client in idle { client.close() } }
        let anonymousWith = try #require(system.gateway.anonymousKiB)
        let perConnection = Double(anonymousWith - anonymousBefore) * 1024 / Double(count)
        print("\(count) idle connections: gateway anonymous RSS \(anonymousBefore) -> \(anonymousWith) KiB, \(Int(perConnection)) bytes a connection")
        #expect(perConnection < Self.idleConnectionBytes, "\(Int(perConnection)) bytes a connection")
    }

    /// 1.5 times the release build's 4.1 KiB; the connection was 6.3 KiB before the receive
    /// buffer, the timers, the log line and the head builder were made smaller.
    static let idleConnectionBytes = 6.2 * 1024

    /// A warm-up of a fifth as many connections (the allocator's arenas and caches reach their
    /// working size), RSS, the measured connections, RSS again: the growth must stay under
    /// `allowedGrowthKiB`. `check` looks at each run's responses.
    private static func expectFlatMemory(
        _ gateway: PortcullisProcess,
        _ churn: ConnectionChurn,
        connections: Int,
        label: String,
        backendPort: Int? = nil,
        check: (ConnectionChurn.Result) -> Void
    ) throws {
        let measuredCount = Self.connectionsOverride ?? connections
        let warmUpCount = max(2_000, measuredCount / 5)
        let warmUp = try churn.run(warmUpCount)
        #expect(warmUp.connections == warmUpCount && warmUp.errors == 0, "warm-up: \(warmUp)")
        check(warmUp)
        let before = try #require(gateway.rssKiB)
        // Pooled upstream connections (up to `max_idle_connections` a loop) come and go with the
        // load, so they are not counted: what must not stay is the client connections.
        func descriptors() -> Int {
            (gateway.openDescriptors ?? -1) - (backendPort.map { gateway.connections(toPort: $0) } ?? 0)
        }
        let descriptorsBefore = descriptors()
        let cpuBefore = gateway.cpuSeconds
        let measured = try churn.run(measuredCount)
        let after = try #require(gateway.rssKiB)
        // Every connection the churn opened is closed by now (it waits for each): none may stay.
        let margin = 8
        let deadline = Date().addingTimeInterval(10)
        var descriptorsAfter = descriptors()
        while descriptorsAfter > descriptorsBefore + margin && Date() < deadline {
            usleep(50_000)
            descriptorsAfter = descriptors()
        }
        // The pool itself is bounded: at most `max_idle_connections` (128) on the one loop.
        if let backendPort {
            let pooled = gateway.connections(toPort: backendPort)
            #expect(pooled <= 128, "\(pooled) upstream connections open after \(label)")
        }
        #expect(descriptorsAfter <= descriptorsBefore + margin, "open descriptors \(descriptorsBefore) before, \(descriptorsAfter) after \(label)")
        let cpu = gateway.cpuSeconds - cpuBefore
        #expect(measured.connections == measuredCount && measured.errors == 0, "\(measured)")
        check(measured)
        let growth = after - before
        print(
            "\(measuredCount) \(label) after \(warmUpCount) to warm up: gateway RSS \(before) KiB before, "
                + "\(after) KiB after (\(growth) KiB, \(growth * 1024 / measuredCount) bytes a connection); "
                + "warm-up \(String(format: "%.1f", warmUp.seconds)) s, measured \(String(format: "%.1f", measured.seconds)) s, "
                + "gateway CPU \(String(format: "%.1f", cpu)) s"
        )
        #expect(growth < Self.allowedGrowthKiB, "gateway RSS grew \(growth) KiB over \(measuredCount) \(label)")
    }
}
