import Foundation
import Testing

/// A backend that answers the first request of each connection and silently closes the
/// connection on the second: what a pooled connection looks like when the upstream's own
/// keep-alive timeout has just closed it.
func startOneShotKeepAliveBackend() throws -> PythonBackend {
    try PythonBackend(
        "oneshot",
        script: """
            def serve(conn):
                head, _ = read_head(conn, b"")
                if head is None:
                    return conn.close()
                conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
                conn.recv(65536)   # the second request on this connection
                conn.close()       # ... is never answered
            serve_forever(serve)
            """
    )
}

/// A backend that answers `GET /first` with 200 and keeps the connection; on that same
/// connection it then answers the next request with `answer` (an interim or switching response)
/// and keeps the connection open or closes it. It records every request line it receives, in
/// the file named by its first argument, before it answers.
func startInterimAnswerBackend(answer: String, thenClose: Bool) throws -> (backend: PythonBackend, record: URL) {
    let record = FileManager.default.temporaryDirectory.appendingPathComponent("interim-\(UUID().uuidString).log")
    _ = FileManager.default.createFile(atPath: record.path, contents: nil)
    let backend = try PythonBackend(
        "interim",
        script: """
            out = open(sys.argv[1], "a")
            lock = threading.Lock()
            def serve(conn):
                data = b""
                while True:
                    head, data = read_head(conn, data)
                    if head is None:
                        return conn.close()
                    line = head.split(b"\\r\\n")[0]
                    with lock:
                        out.write(line.decode("latin-1") + "\\n")
                        out.flush()
                    if line.startswith(b"GET /first "):
                        conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
                        continue
                    conn.sendall(b"\(answer)")
                    if \(thenClose ? "True" : "False"):
                        return conn.close()
                    while conn.recv(65536):
                        pass
                    return conn.close()
            serve_forever(serve)
            """,
        arguments: [record.path]
    )
    return (backend, record)
}

@Suite("Upstream retry", .serialized)
struct UpstreamRetryTests {
    static func gateway(for backend: PythonBackend) throws -> PortcullisProcess {
        try backend.gatewayInFront()
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func anIdempotentRequestOnADeadPooledConnectionIsRetriedOnce() throws {
        let backend = try startOneShotKeepAliveBackend()
        let gateway = try Self.gateway(for: backend)
        #expect(RawHTTPClient.request("GET", "/first", port: gateway.port()).status == 200)
        // The pooled connection is closed by the backend when it sees this request.
        let second = RawHTTPClient.request("GET", "/second", port: gateway.port())
        #expect(second.status == 200)
        #expect(second.bodyString == "ok")
    }

    /// A backend that switches protocols on a pooled connection has read the request: it is
    /// not sent again, and the client gets 502.
    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func aRequestAnsweredWith101IsNeverSentAgain() throws {
        let (backend, record) = try startInterimAnswerBackend(
            answer: "HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n",
            thenClose: false
        )
        defer { try? FileManager.default.removeItem(at: record) }
        let gateway = try Self.gateway(for: backend)
        #expect(RawHTTPClient.request("GET", "/first", port: gateway.port()).status == 200)
        #expect(RawHTTPClient.request("GET", "/second", port: gateway.port()).status == 502)
        // The 502 left after the only send and its line was written before the 101.
        #expect(Self.lines(record) == ["GET /first HTTP/1.1", "GET /second HTTP/1.1"])
    }

    /// An interim response proves the request arrived: a close after it is no reason to resend.
    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func aRequestAnsweredWithAnInterimResponseThenAClosedConnectionIsNeverSentAgain() throws {
        let (backend, record) = try startInterimAnswerBackend(answer: "HTTP/1.1 100 Continue\\r\\n\\r\\n", thenClose: true)
        defer { try? FileManager.default.removeItem(at: record) }
        let gateway = try Self.gateway(for: backend)
        #expect(RawHTTPClient.request("GET", "/first", port: gateway.port()).status == 200)
        #expect(RawHTTPClient.request("GET", "/second", port: gateway.port()).status == 502)
        #expect(Self.lines(record) == ["GET /first HTTP/1.1", "GET /second HTTP/1.1"])
    }

    static func lines(_ file: URL) -> [String] {
        ((try? String(contentsOf: file, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func aNonIdempotentRequestIsNeverRetried() throws {
        let backend = try startOneShotKeepAliveBackend()
        let gateway = try Self.gateway(for: backend)
        #expect(RawHTTPClient.request("GET", "/first", port: gateway.port()).status == 200)
        let post = RawHTTPClient.request("POST", "/api/ExecResetPass", port: gateway.port(), body: Array("{}".utf8))
        #expect(post.status == 502)
    }
}
