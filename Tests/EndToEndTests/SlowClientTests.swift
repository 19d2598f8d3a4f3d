import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A keep-alive backend that reads each request body as it comes and notes what happened to it
/// (`started PATH`, `complete PATH N`, `aborted PATH N/LENGTH` when the connection ended first);
/// `GET /events` answers the notes, one a line. Paths under `/stall` wait 3 s before reading
/// their body, like an upstream busy elsewhere.
func startBodyRecordingBackend() throws -> PythonBackend {
    try PythonBackend(
        "body-recorder",
        script: """
            import time
            events = []
            def serve(conn):
                data = b""
                while True:
                    head, data = read_head(conn, data)
                    if head is None:
                        return conn.close()
                    lines = head.split(b"\\r\\n")
                    path = lines[0].split(b" ")[1].decode()
                    if path == "/events":
                        body = "\\n".join(events).encode()
                        conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body))
                        continue
                    length = 0
                    for line in lines[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value.strip())
                    events.append("started %s" % path)
                    if path.startswith("/stall"):
                        time.sleep(3)
                    received = min(len(data), length)
                    data = data[received:]
                    while received < length:
                        chunk = conn.recv(min(65536, length - received))
                        if not chunk:
                            events.append("aborted %s %d/%d" % (path, received, length))
                            return conn.close()
                        received += len(chunk)
                    events.append("complete %s %d" % (path, received))
                    body = str(received).encode()
                    conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body))
            serve_forever(serve)
            """
    )
}

/// Slowloris heads, trickled bodies and clients that stop reading: each is cut by its timeout
/// (`client_header_timeout`, `client_body_timeout`, `send_timeout`), what waits meanwhile is
/// bounded per connection, and other clients are served all the while.
@Suite("Slow clients", .serialized)
struct SlowClientTests {
    static func gateway(in front: PythonBackend, limits: String) throws -> PortcullisProcess {
        try PortcullisProcess.serve(
            configYAML: """
                listen:
                  - address: "127.0.0.1:0"
                upstream:
                  url: "http://127.0.0.1:\(front.port)"
                limits:
                \(limits)
                """,
            environment: ["PORTCULLIS_THREADS": "1"]
        )
    }

    /// Whether the backend noted `event` within `timeout` seconds.
    static func backendNoted(_ backend: PythonBackend, _ event: String, timeout: Double = 3) -> Bool {
        let deadline = Deadline(seconds: timeout)
        repeat {
            let notes = RawHTTPClient.request("GET", "/events", port: backend.port, authorize: false).bodyString
            if notes.split(separator: "\n").contains(Substring(event)) { return true }
            usleep(50_000)
        } while deadline.remainingMilliseconds > 0
        return false
    }

    // MARK: Slow heads

    @Test func slowlorisHeadGets408AtClientHeaderTimeoutWhileBytesKeepComing() throws {
        let system = try GatewayUnderTest.start("limits:\n  client_header_timeout: 1s")
        let client = try RawHTTPClient.connect(port: system.port)
        let started = Date()
        #expect(client.send("GET /api/ListTenants HTTP/1.1\r\nHost: gw\r\n"))
        var received: [UInt8] = []
        var linesSent = 0
        // A header line every 100 ms, never the blank line that ends the head.
        while Date().timeIntervalSince(started) < 5 && !received.contains(UInt8(ascii: "\n")) {
            guard client.send("X-Slow-\(linesSent): x\r\n") else { break }
            linesSent += 1
            if let bytes = client.receive(timeout: 0.1) { received += bytes }
        }
        let answeredAfter = Date().timeIntervalSince(started)
        let text = String(decoding: received, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 408"), "\(text)")
        #expect(answeredAfter >= 0.9 && answeredAfter < 2.5, "408 after \(answeredAfter) s")
        #expect(linesSent >= 8, "bytes kept coming until the 408 (\(linesSent) lines)")
        #expect(client.isClosedByPeer(timeout: 2))
    }

    @Test func legitimateClientIsServedWhile200SlowlorisConnectionsAreOpen() throws {
        let system = try GatewayUnderTest.start("limits:\n  client_header_timeout: 3s")
        var slowloris: [RawHTTPClient] = []
        for _ in 0..<200 {
            let connection = try RawHTTPClient.connect(port: system.port)
            #expect(connection.send("GET /api/ListTenants HTTP/1.1\r\nHost: gw\r\n"))
            slowloris.append(connection)
        }
        let opened = Date()
        var latencies: [Double] = []
        var round = 0
        while Date().timeIntervalSince(opened) < 2 {
            for connection in slowloris { connection.send("X-Round-\(round): y\r\n") }
            round += 1
            let sent = Date()
            let response = RawHTTPClient.request("GET", "/api/ListTenants", port: system.port)
            latencies.append(Date().timeIntervalSince(sent))
            #expect(response.status == 200, "\(response)")
            usleep(50_000)
        }
        latencies.sort()
        print("legitimate requests under 200 slowloris connections: \(latencies.count), median \(latencies[latencies.count / 2] * 1000) ms, max \(latencies.last! * 1000) ms")
        #expect(latencies.count >= 5)
        #expect(latencies.last! < 1, "slowest legitimate request \(latencies.last!) s")

        // And every slowloris connection is answered 408 and closed at its header timeout.
        let deadline = Deadline(seconds: 5)
        var timedOut = 0
        for connection in slowloris {
            let response = connection.readResponse(timeout: max(0.01, deadline.remainingSeconds))
            if response?.status == 408 && connection.isClosedByPeer(timeout: max(0.01, deadline.remainingSeconds)) {
                timedOut += 1
            }
        }
        #expect(timedOut == 200, "\(timedOut) of 200 slowloris connections got 408 and were closed")
    }

    // MARK: Slow bodies

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func bodyWithAGapLongerThanClientBodyTimeoutGets408AndTheUpstreamRequestIsAborted() throws {
        let backend = try startBodyRecordingBackend()
        let gateway = try Self.gateway(in: backend, limits: "  client_body_timeout: 1s")
        let client = try RawHTTPClient.connect(port: gateway.port())
        let head = RawHTTPClient.requestHead("POST", "/upload", authority: client.authority, bodyLength: 100)
        #expect(client.send(head + Array(repeating: UInt8(ascii: "a"), count: 10)))  // then nothing
        let lastByte = Date()
        #expect(Self.backendNoted(backend, "started /upload"), "the request went upstream")
        let response = try #require(client.readResponse(timeout: 5))
        let waited = Date().timeIntervalSince(lastByte)
        #expect(response.status == 408)
        #expect(response.json?["error"] as? String == "request_timeout")
        #expect(response.header("X-Request-Id") != nil)
        #expect(waited >= 0.9 && waited < 2.5, "408 after \(waited) s")
        #expect(client.isClosedByPeer(timeout: 2))
        #expect(Self.backendNoted(backend, "aborted /upload 10/100"), "the upstream connection with the partial request was closed")
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func bodyWithGapsShorterThanTheTimeoutPassesThoughItTakesLongerThanIt() throws {
        let backend = try startBodyRecordingBackend()
        let gateway = try Self.gateway(in: backend, limits: "  client_body_timeout: 1s")
        let client = try RawHTTPClient.connect(port: gateway.port())
        let started = Date()
        #expect(client.send(RawHTTPClient.requestHead("POST", "/upload", authority: client.authority, bodyLength: 50)))
        for _ in 0..<10 {
            usleep(400_000)
            #expect(client.send("12345"))
        }
        let response = try #require(client.readResponse(timeout: 5))
        #expect(Date().timeIntervalSince(started) > 3, "the body took longer than the timeout in all")
        #expect(response.status == 200, "\(response)")
        #expect(response.bodyString == "50")
        #expect(Self.backendNoted(backend, "complete /upload 50"))
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func bodyHeldBackByABusyUpstreamIsNotTheClientsGapAndWaitsInBoundedMemory() throws {
        let backend = try startBodyRecordingBackend()
        let gateway = try Self.gateway(in: backend, limits: "  client_body_timeout: 1s")
        let size = 64 << 20
        let baseline = try #require(gateway.rssKiB)
        let port = gateway.port()
        let result = ResultBox()
        let uploader = Thread {
            result.response = RawHTTPClient.streamUpload(port: port, path: "/stall", totalBytes: size)
            result.done.signal()
        }
        uploader.start()
        // The upstream takes nothing for 3 s: the client's body waits in the gateway meanwhile.
        var peak = baseline
        while result.done.wait(timeout: .now() + .milliseconds(50)) == .timedOut {
            peak = max(peak, gateway.rssKiB ?? 0)
        }
        let response = try #require(result.response)
        print("64 MiB upload to a stalled upstream: gateway RSS \(baseline / 1024) MiB before, \(peak / 1024) MiB peak")
        #expect(response.status == 200, "\(response)")
        #expect(response.bodyString == "\(size)")
        #expect(peak - baseline < 24 * 1024, "gateway RSS grew \(peak - baseline) KiB while the upstream stalled")
    }

    // MARK: Slow readers

    @Test func clientThatStopsReadingADownloadIsClosedAtSendTimeoutAndMemoryStaysBounded() throws {
        let system = try GatewayUnderTest.start("limits:\n  send_timeout: 2s")
        #expect(system.backendStats()["connections_open"] == 1, "only the stats request's own connection")
        let baseline = try #require(system.gateway.rssKiB)
        let client = try RawHTTPClient.connect(port: system.port)
        #expect(client.sendRequest("GET", "/demo/stream?bytes=\(1 << 30)"))
        let first = try #require(client.receive(timeout: 5))
        #expect(String(decoding: first.prefix(12), as: UTF8.self) == "HTTP/1.1 200")
        // From here on the client reads nothing.
        let stopped = Date()
        var peak = baseline
        var upstreamClosedAfter: Double?
        while Date().timeIntervalSince(stopped) < 6 {
            peak = max(peak, system.gateway.rssKiB ?? 0)
            if system.backendStats()["connections_open"] == 1 {
                upstreamClosedAfter = Date().timeIntervalSince(stopped)
                break
            }
            usleep(100_000)
        }
        print("client not reading a 1 GiB download: gateway RSS \(baseline / 1024) MiB before, \(peak / 1024) MiB peak; upstream closed after \(upstreamClosedAfter.map { "\($0) s" } ?? "-")")
        #expect(peak - baseline < 24 * 1024, "gateway RSS grew \(peak - baseline) KiB while the client did not read")
        let closedAfter = try #require(upstreamClosedAfter, "the upstream connection was not closed within 6 s")
        #expect(closedAfter >= 1.5 && closedAfter < 5, "closed after \(closedAfter) s")
        // The client connection was closed too: what was in flight, then the end.
        let rest = client.readUntilClose(timeout: 5)
        #expect(client.isClosedByPeer(timeout: 0.5))
        #expect(first.count + rest.count < 64 << 20, "\(first.count + rest.count) bytes reached the client")
    }
}

extension SlowClientTests {
    /// What `ss` says of the kernel buffers of the host's established TCP sockets that `filter`
    /// selects (`sport = :N` or `dport = :N`): per socket, the bytes queued to send (Send-Q),
    /// the send buffer's size (`tb`) and the receive buffer's size (`rb`).
    static func socketBuffers(_ filter: String) -> [(sendQueue: Int, sendBuffer: Int, receiveBuffer: Int)] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ss -tmnH state established '( \(filter) )'"]
        let out = Pipe()
        process.standardOutput = out
        guard (try? process.run()) != nil else { return [] }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // One socket: "RecvQ SendQ local peer" then, on its own line, "skmem:(r0,rb..,t0,tb..,...)".
        var sockets: [(Int, Int, Int)] = []
        var sendQueue: Int?
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if let skmem = fields.first(where: { $0.hasPrefix("skmem:(") }) {
                let parts = skmem.dropFirst(7).dropLast().split(separator: ",")
                func value(_ name: String) -> Int {
                    parts.first { $0.hasPrefix(name) && Int($0.dropFirst(name.count)) != nil }
                        .flatMap { Int($0.dropFirst(name.count)) } ?? -1
                }
                sockets.append((sendQueue ?? -1, value("tb"), value("rb")))
                sendQueue = nil
            } else if fields.count >= 2, let queued = Int(fields[1]) {
                sendQueue = queued
            }
        }
        return sockets
    }

    /// A client that stops reading a download: the gateway's socket to it holds at most its
    /// configured send buffer (`limits.client_send_buffer`), and the upstream socket the
    /// exchange stalls on at most `upstream.receive_buffer`, instead of autotuned megabytes
    /// each (1,000 such clients filled the host's tcp_mem and slowed every other connection).
    @Test(.enabled(if: commandExists("ss"), "needs ss (iproute2)"))
    func aClientThatStopsReadingHoldsOnlyTheConfiguredKernelBuffers() throws {
        let system = try GatewayUnderTest.start(
            "limits:\n  send_timeout: 30s\n  client_send_buffer: 65536",
            upstreamExtra: "  receive_buffer: 131072"
        )
        let client = try RawHTTPClient.connect(port: system.port)
        #expect(client.sendRequest("GET", "/demo/stream?bytes=\(1 << 30)"))
        let first = try #require(client.receive(timeout: 5))
        #expect(String(decoding: first.prefix(12), as: UTF8.self) == "HTTP/1.1 200")
        // The client reads nothing more; give the kernel time to grow what autotuning would.
        usleep(1_500_000)
        let toClient = Self.socketBuffers("sport = :\(system.port)")
        let fromUpstream = Self.socketBuffers("dport = :\(system.backendPort)")
        print("client not reading: gateway→client sockets \(toClient), gateway←upstream sockets \(fromUpstream)")
        // The kernel doubles SO_SNDBUF / SO_RCVBUF for its bookkeeping.
        #expect(toClient.count == 1)
        for socket in toClient {
            #expect(socket.sendBuffer > 0 && socket.sendBuffer <= 2 * 65_536, "\(socket)")
            // Send-Q counts the bytes not yet acknowledged, which the kernel lets run a little
            // past the buffer (its skb accounting); autotuned it is megabytes.
            #expect(socket.sendQueue <= 4 * 65_536, "\(socket)")
        }
        #expect(!fromUpstream.isEmpty)
        for socket in fromUpstream {
            #expect(socket.receiveBuffer > 0 && socket.receiveBuffer <= 2 * 131_072, "\(socket)")
        }
    }
}

/// The result of a request made on another thread.
private final class ResultBox: @unchecked Sendable {
    var response: HTTPTestResponse?
    let done = DispatchSemaphore(value: 0)
}
