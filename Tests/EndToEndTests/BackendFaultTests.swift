import Foundation
import Testing

/// A raw-socket backend whose behaviour is chosen by the request path's first segment; the
/// second segment is a token that good answers repeat as their whole body (`<token><token>...`),
/// so a client can tell its own bytes from anyone else's. Every answer the backend completes
/// carries `X-Conn` (the number of the upstream connection, counted from 1); `/count` answers
/// `{"accepted": N, "faulted": [connection numbers that served a fault path]}`.
///
/// The first argument is the port to listen on (0: any).
func startBackendFaultBackend(port: Int = 0) throws -> PythonBackend {
    try PythonBackend(
        "faults",
        script: """
            import json, socket, struct, time
            lock = threading.Lock()
            state = {"accepted": 0, "faulted": []}

            def reset(conn):
                # SO_LINGER 0: close() sends RST, not FIN.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()

            def wait_for_close(conn):
                try:
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass
                conn.close()

            def token_body(token, size):
                unit = b"<" + token + b">"
                return (unit * (size // len(unit) + 1))[:size]

            def head(cid, framing):
                return b"HTTP/1.1 200 OK\\r\\n" + framing + b"X-Conn: %d\\r\\n\\r\\n" % cid

            def skip_body(conn, head_bytes, data):
                # Content-Length request bodies only: what the tests send.
                for line in head_bytes.split(b"\\r\\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        n = int(value.strip())
                        while len(data) < n:
                            chunk = conn.recv(65536)
                            if not chunk:
                                raise EOFError()
                            data += chunk
                        return data[n:]
                return data

            MALFORMED = {
                "bad-status": b"HTTP/1.1 2x0 OK\\r\\nContent-Length: 5\\r\\n\\r\\nFFFFF",
                "bad-version": b"HTTP/2.0 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\nFFFFF",
                "not-http": b"FFFFF FFFFF\\r\\n\\r\\n",
                "cl-and-te": b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n"
                    b"5\\r\\nFFFFF\\r\\n0\\r\\n\\r\\n",
                "two-cl": b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\nContent-Length: 6\\r\\n\\r\\nFFFFFF",
                "negative-cl": b"HTTP/1.1 200 OK\\r\\nContent-Length: -5\\r\\n\\r\\nFFFFF",
                "bad-chunk-at-once": b"HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\nzz\\r\\nFFFFF\\r\\n0\\r\\n\\r\\n",
            }

            def serve(conn, cid):
                data = b""
                try:
                    while True:
                        head_bytes, data = read_head(conn, data)
                        if head_bytes is None:
                            return conn.close()
                        data = skip_body(conn, head_bytes, data)
                        parts = head_bytes.split(b" ")[1].split(b"/")
                        kind = parts[1].decode()
                        token = parts[2] if len(parts) > 2 else b"-"
                        if kind not in ("ok", "slow-ok", "count"):
                            with lock:
                                state["faulted"].append(cid)
                        if kind == "ok":
                            body = token_body(token, 3000)
                            conn.sendall(head(cid, b"Content-Length: %d\\r\\n" % len(body)) + body)
                        elif kind == "slow-ok":
                            body = token_body(token, 3000)
                            conn.sendall(head(cid, b"Content-Length: %d\\r\\n" % len(body)))
                            for i in range(0, len(body), 500):
                                time.sleep(0.005)
                                conn.sendall(body[i:i + 500])
                        elif kind == "count":
                            with lock:
                                body = json.dumps(state).encode()
                            conn.sendall(head(cid, b"Content-Length: %d\\r\\n" % len(body)) + body)
                        elif kind == "reset":
                            return reset(conn)
                        elif kind == "half-body":
                            conn.sendall(head(cid, b"Content-Length: 4000\\r\\n") + b"F" * 2000)
                            time.sleep(0.1)
                            return reset(conn)
                        elif kind == "half-chunked":
                            conn.sendall(head(cid, b"Transfer-Encoding: chunked\\r\\n") + b"7d0\\r\\n" + b"F" * 2000 + b"\\r\\n")
                            time.sleep(0.1)
                            return reset(conn)
                        elif kind == "no-head":
                            return wait_for_close(conn)
                        elif kind == "late":
                            # The whole answer, with the caller's token, after the gateway gave up.
                            time.sleep(2.5)
                            body = token_body(token, 3000)
                            conn.sendall(head(cid, b"Content-Length: %d\\r\\n" % len(body)) + body)
                        elif kind == "never-ends":
                            conn.sendall(head(cid, b"Content-Length: 4000\\r\\n") + b"F" * 1000)
                            return wait_for_close(conn)
                        elif kind == "never-ends-chunked":
                            conn.sendall(head(cid, b"Transfer-Encoding: chunked\\r\\n") + b"3e8\\r\\n" + b"F" * 1000 + b"\\r\\n")
                            return wait_for_close(conn)
                        elif kind == "never-ends-eof":
                            conn.sendall(b"HTTP/1.1 200 OK\\r\\nConnection: close\\r\\n\\r\\n" + b"F" * 1000)
                            return wait_for_close(conn)
                        elif kind == "late-body":
                            # The rest of the body, with the caller's token, after the gateway gave up.
                            body = token_body(token, 3000)
                            conn.sendall(head(cid, b"Content-Length: %d\\r\\n" % len(body)) + body[:1000])
                            time.sleep(2.5)
                            conn.sendall(body[1000:])
                        elif kind == "bad-chunk":
                            conn.sendall(head(cid, b"Transfer-Encoding: chunked\\r\\n") + b"5\\r\\nFFFFF\\r\\n")
                            time.sleep(0.1)
                            conn.sendall(b"zz\\r\\nFFFFF\\r\\n0\\r\\n\\r\\n")
                        else:
                            conn.sendall(MALFORMED[kind])
                except (EOFError, OSError, KeyError, IndexError):
                    conn.close()

            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", int(sys.argv[1])))
            listener.listen(64)
            announce(listener.getsockname()[1])
            while True:
                conn, _ = listener.accept()
                with lock:
                    state["accepted"] += 1
                    cid = state["accepted"]
                threading.Thread(target=serve, args=(conn, cid), daemon=True).start()
            """,
        arguments: ["\(port)"]
    )
}

/// Backend faults: a real gateway in front of `startBackendFaultBackend`. A backend that
/// refuses, resets, stalls or answers malformed bytes costs the client a 502 or 504 with a JSON
/// body when no byte of a response was sent yet, else a connection cut before the response's
/// declared end; the faulty upstream connection is never used again; and clients served at the
/// same time get their own bytes and nothing else.
@Suite("Backend faults", .serialized)
struct BackendFaultTests {
    /// The gateway's `upstream.timeout`: short, so stalls are tested without long waits.
    static let exchangeTimeout = 1.5

    /// What the faulting client must see.
    enum Expected: Sendable {
        /// A response from the gateway itself: this status, this JSON `error`.
        case answer(Int, String)
        /// The 200 head, then the connection closed before the body's declared end.
        case cutAfterHead
    }

    struct Fault: CustomTestStringConvertible, Sendable {
        var name: String
        var method = "GET"
        var path: String
        var expected: Expected
        /// The fault only shows once the exchange timeout passes.
        var waitsForTimeout = false

        var testDescription: String { self.name }
    }

    static let faults: [Fault] = [
        Fault(name: "reset right after reading a GET", path: "/reset/victim", expected: .answer(502, "upstream_unavailable")),
        Fault(
            name: "reset right after reading a POST", method: "POST", path: "/reset/victim",
            expected: .answer(502, "upstream_unavailable")),
        Fault(name: "reset in the middle of a Content-Length body", path: "/half-body/victim", expected: .cutAfterHead),
        Fault(name: "reset in the middle of a chunked body", path: "/half-chunked/victim", expected: .cutAfterHead),
        Fault(
            name: "a response head that never comes", path: "/no-head/victim", expected: .answer(504, "upstream_timeout"),
            waitsForTimeout: true),
        Fault(
            name: "a response that comes after the timeout", path: "/late/victim",
            expected: .answer(504, "upstream_timeout"), waitsForTimeout: true),
        Fault(
            name: "a Content-Length body that never ends", path: "/never-ends/victim", expected: .cutAfterHead,
            waitsForTimeout: true),
        Fault(
            name: "a chunked body that never ends", path: "/never-ends-chunked/victim", expected: .cutAfterHead,
            waitsForTimeout: true),
        Fault(
            name: "a body framed by EOF that never ends", path: "/never-ends-eof/victim", expected: .cutAfterHead,
            waitsForTimeout: true),
        Fault(
            name: "the rest of a body after the timeout", path: "/late-body/victim", expected: .cutAfterHead,
            waitsForTimeout: true),
        Fault(name: "a bad status line", path: "/bad-status/victim", expected: .answer(502, "upstream_unavailable")),
        Fault(name: "an HTTP/2.0 status line", path: "/bad-version/victim", expected: .answer(502, "upstream_unavailable")),
        Fault(name: "no status line at all", path: "/not-http/victim", expected: .answer(502, "upstream_unavailable")),
        Fault(
            name: "Content-Length and Transfer-Encoding: chunked", path: "/cl-and-te/victim",
            expected: .answer(502, "upstream_unavailable")),
        Fault(name: "two differing Content-Length", path: "/two-cl/victim", expected: .answer(502, "upstream_unavailable")),
        Fault(name: "a negative Content-Length", path: "/negative-cl/victim", expected: .answer(502, "upstream_unavailable")),
        Fault(name: "a bad chunk size after the head was sent", path: "/bad-chunk/victim", expected: .cutAfterHead),
        Fault(
            name: "a bad chunk size in the head's packet", path: "/bad-chunk-at-once/victim",
            expected: .answer(502, "upstream_unavailable")),
    ]

    static func gateway(upstreamPort: Int) throws -> PortcullisProcess {
        // One event loop: one upstream pool, so which connection serves a request is known.
        try PortcullisProcess.serve(
            configYAML: """
                listen:
                  - address: "127.0.0.1:0"
                upstream:
                  url: "http://127.0.0.1:\(upstreamPort)"
                  timeout: \(Int(Self.exchangeTimeout * 1000))ms
                  keepalive_timeout: 1m
                """,
            environment: ["PORTCULLIS_THREADS": "1", "SWIFT_BACKTRACE": "enable=no"]
        )
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"), arguments: faults)
    func faultIsContainedAndTheNextRequestUsesANewUpstreamConnection(_ fault: Fault) throws {
        let backend = try startBackendFaultBackend()
        let gateway = try Self.gateway(upstreamPort: backend.port)
        let port = gateway.port()

        // A good exchange first leaves one idle pooled connection: the fault is served on it.
        let client = try RawHTTPClient.connect(port: port)
        let first = try #require(Self.good(client, token: "first"), "\(client.lastFailure ?? "")")
        let firstConnection = try #require(first.connection)

        let started = Date()
        let outcome = Self.runFault(fault, port: port, client: client)
        let elapsed = Date().timeIntervalSince(started)
        Self.check(outcome, of: fault, elapsed: elapsed)
        client.close()

        // The gateway still serves, over an upstream connection newer than every faulted one.
        let counts = try #require(Self.backendCounts(backend.port))
        #expect(counts.faulted.contains(firstConnection), "the fault did not run on the pooled connection: \(counts)")
        let next = try RawHTTPClient.connect(port: port)
        let after = try #require(Self.good(next, token: "next"), "no good answer after the fault: \(next.lastFailure ?? "")")
        let afterConnection = try #require(after.connection)
        #expect(afterConnection > (counts.faulted.max() ?? 0), "\(fault.name): reused a faulted connection: \(counts)")
        #expect(gateway.isRunning, "the gateway died: \(gateway.output.suffix(2000))")
    }

    /// The fault runs on two client connections while four others make good requests with their
    /// own tokens: each good response is exactly its own bytes, the faulting clients see the
    /// expected outcome and no good client's bytes.
    @Test(.enabled(if: commandExists("python3"), "needs python3"), arguments: faults)
    func concurrentClientsGetOnlyTheirOwnBytes(_ fault: Fault) throws {
        let backend = try startBackendFaultBackend()
        let gateway = try Self.gateway(upstreamPort: backend.port)
        let port = gateway.port()
        let goodClients = 4
        let faultingClients = 2

        final class Shared: @unchecked Sendable {
            let lock = NSLock()
            var problems: [String] = []
            var faultOutcomes: [(FaultOutcome, Double)] = []
            var faultsDone = 0
        }
        let shared = Shared()
        let lock = shared.lock
        // A thread per client (concurrentPerform would run only as many at once as there are cores).
        let group = DispatchGroup()
        let clientBody: @Sendable (Int) -> Void = { index in
            if index >= goodClients {
                let started = Date()
                let outcome: FaultOutcome
                if let client = try? RawHTTPClient.connect(port: port) {
                    outcome = Self.runFault(fault, port: port, client: client)
                    client.close()
                } else {
                    outcome = FaultOutcome(bytes: [], response: nil, closed: false, failure: "no connection")
                }
                lock.withLock {
                    shared.faultOutcomes.append((outcome, Date().timeIntervalSince(started)))
                    shared.faultsDone += 1
                }
                return
            }
            guard let client = try? RawHTTPClient.connect(port: port) else {
                lock.withLock { shared.problems.append("good client \(index): no connection") }
                return
            }
            defer { client.close() }
            // Good requests go on while the faults run and for a few rounds after them, when a
            // faulted upstream connection, had it gone back to the pool, would be handed out.
            var roundsAfterFaults = 0
            for round in 0..<400 {
                if lock.withLock({ shared.faultsDone == faultingClients }) {
                    roundsAfterFaults += 1
                    if roundsAfterFaults > 8 { break }
                }
                let token = "good\(index)r\(round)"
                client.sendRequest("GET", "/slow-ok/\(token)")
                guard let response = client.readResponse(timeout: 5) else {
                    lock.withLock { shared.problems.append("\(token): no response (\(client.lastFailure ?? "?"))") }
                    return
                }
                if response.status != 200 || response.body != Self.tokenBody(token) {
                    lock.withLock { shared.problems.append("\(token): got \(response)") }
                    return
                }
            }
        }
        for index in 0..<(goodClients + faultingClients) {
            group.enter()
            Thread.detachNewThread {
                clientBody(index)
                group.leave()
            }
        }
        group.wait()
        #expect(shared.problems.isEmpty, "\(fault.name): \(shared.problems)")
        #expect(shared.faultOutcomes.count == faultingClients)
        for (outcome, elapsed) in shared.faultOutcomes {
            Self.check(outcome, of: fault, elapsed: elapsed)
            let text = String(decoding: outcome.bytes, as: UTF8.self)
            #expect(!text.contains("<good"), "\(fault.name): a faulting client got a good client's bytes: \(text.prefix(300))")
        }
        let next = try RawHTTPClient.connect(port: port)
        #expect(Self.good(next, token: "next") != nil, "no good answer after the faults: \(next.lastFailure ?? "")")
        #expect(gateway.isRunning, "the gateway died: \(gateway.output.suffix(2000))")
    }

    /// Nothing listens on the upstream port: 502 at once; once a backend listens there, the
    /// next request is served.
    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func refusedUpstreamConnectionGives502ThenTheNextRequestWorks() throws {
        let upstreamPort = try closedPort()
        let gateway = try Self.gateway(upstreamPort: upstreamPort)
        let client = try RawHTTPClient.connect(port: gateway.port())
        client.sendRequest("GET", "/ok/refused")
        let refused = try #require(client.readResponse(timeout: 3), "\(client.lastFailure ?? "")")
        #expect(refused.status == 502)
        #expect(refused.json?["error"] as? String == "upstream_unavailable")
        #expect(refused.header("X-Request-Id") != nil)
        #expect(!refused.bodyString.contains("<refused>"))

        let backend = try startBackendFaultBackend(port: upstreamPort)
        #expect(backend.port == upstreamPort)
        // The same client connection: a 502 for a complete request keeps it open.
        let after = try #require(Self.good(client, token: "after"), "\(client.lastFailure ?? "")")
        #expect(after.connection == 1)
    }

    // MARK: - Helpers

    struct FaultOutcome {
        /// Everything the client received (the connection read to its end for cut responses).
        var bytes: [UInt8]
        /// The response, when one was read whole.
        var response: HTTPTestResponse?
        var closed: Bool
        var failure: String?
    }

    static func tokenBody(_ token: String, size: Int = 3000) -> [UInt8] {
        let unit = Array("<\(token)>".utf8)
        return Array((0..<size).map { unit[$0 % unit.count] })
    }

    /// One good request on `client`: its response (and the upstream connection that served it)
    /// when it is exactly the token's body, else nil.
    static func good(_ client: RawHTTPClient, token: String) -> (response: HTTPTestResponse, connection: Int?)? {
        guard client.sendRequest("GET", "/ok/\(token)"), let response = client.readResponse(timeout: 5) else { return nil }
        guard response.status == 200, response.body == Self.tokenBody(token) else {
            Issue.record("good request \(token): \(response)")
            return nil
        }
        return (response, response.header("X-Conn").flatMap { Int($0) })
    }

    static func backendCounts(_ port: Int) -> (accepted: Int, faulted: [Int])? {
        let json = RawHTTPClient.request("GET", "/count", port: port, authorize: false).json
        guard let accepted = json?["accepted"] as? Int, let faulted = json?["faulted"] as? [Int] else { return nil }
        return (accepted, faulted)
    }

    static func runFault(_ fault: Fault, port: Int, client: RawHTTPClient) -> FaultOutcome {
        let body: [UInt8]? = fault.method == "POST" ? Array("{\"a\":1}".utf8) : nil
        guard client.sendRequest(fault.method, fault.path, body: body) else {
            return FaultOutcome(bytes: [], response: nil, closed: client.peerClosed, failure: "send failed")
        }
        switch fault.expected {
        case .answer:
            let response = client.readResponse(timeout: 5)
            return FaultOutcome(
                bytes: response?.body ?? [], response: response, closed: client.peerClosed, failure: client.lastFailure)
        case .cutAfterHead:
            // Read to the end: a cut response must end in a close, not a hang.
            let bytes = client.readUntilClose(timeout: 5)
            return FaultOutcome(bytes: bytes, response: nil, closed: client.peerClosed, failure: nil)
        }
    }

    static func check(_ outcome: FaultOutcome, of fault: Fault, elapsed: Double) {
        let text = String(decoding: outcome.bytes, as: UTF8.self)
        let context = Comment(rawValue: "\(fault.name): \(outcome.response.map { "\($0)" } ?? text.prefix(400).description)")
        if fault.waitsForTimeout {
            // Ended by the exchange timeout (plus slack for a loaded machine), never a hang.
            #expect(elapsed >= Self.exchangeTimeout - 0.1, "ended before the timeout (\(elapsed)s): \(context)")
            #expect(elapsed < Self.exchangeTimeout + 2, "took \(elapsed)s: \(context)")
        } else {
            // Ended by the fault itself, not by the timeout that would end it anyway.
            #expect(elapsed < Self.exchangeTimeout - 0.3, "took \(elapsed)s: \(context)")
        }
        switch fault.expected {
        case .answer(let status, let error):
            let response = outcome.response
            #expect(response?.status == status, "\(context) \(outcome.failure ?? "")")
            #expect(response?.json?["error"] as? String == error, "\(context)")
            #expect(response?.header("X-Request-Id") != nil, "\(context)")
            // Nothing of the upstream's bytes (malformed or late) reached the client.
            #expect(response.map { !$0.bodyString.contains("FF") && !$0.bodyString.contains("<victim") } ?? true, "\(context)")
        case .cutAfterHead:
            #expect(outcome.closed, "the connection was not closed: \(context)")
            #expect(text.hasPrefix("HTTP/1.1 200 "), "no head before the cut: \(context)")
            #expect(!Self.looksComplete(outcome.bytes), "the cut response looks complete: \(context)")
        }
    }

    /// The bytes hold a whole response as its head frames it: the declared length of body, or a
    /// last chunk; a body framed by EOF never looks complete (its end is what a cut looks like,
    /// which is why the gateway re-frames such bodies chunked for HTTP/1.1 clients).
    static func looksComplete(_ bytes: [UInt8]) -> Bool {
        let separator = Array("\r\n\r\n".utf8)
        guard let end = (0...(max(bytes.count - 4, 0))).first(where: { bytes.count >= 4 && Array(bytes[$0..<$0 + 4]) == separator })
        else { return false }
        let head = String(decoding: bytes[0..<end], as: UTF8.self).lowercased()
        let body = bytes[(end + 4)...]
        for line in head.split(separator: "\r\n") {
            if line.hasPrefix("content-length:"), let length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) {
                return body.count >= length
            }
            if line.hasPrefix("transfer-encoding:") && line.contains("chunked") {
                return String(decoding: body, as: UTF8.self).contains("\r\n0\r\n\r\n") || body.starts(with: Array("0\r\n\r\n".utf8))
            }
        }
        return false
    }
}
