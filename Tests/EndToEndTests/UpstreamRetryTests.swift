import Foundation
import Testing

/// A backend process that answers the first request of each connection and silently closes
/// the connection on the second: what a pooled connection looks like when the upstream's own
/// keep-alive timeout has just closed it.
final class OneShotKeepAliveBackend {
    let process: Process
    let port: Int
    private let input = Pipe()

    init() throws {
        let script = """
            import os, socket, sys, threading
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            with open(sys.argv[1] + ".tmp", "w") as f:
                f.write(str(listener.getsockname()[1]))
            os.rename(sys.argv[1] + ".tmp", sys.argv[1])
            threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
            def serve(conn):
                data = b""
                while b"\\r\\n\\r\\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return conn.close()
                    data += chunk
                conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
                conn.recv(65536)   # the second request on this connection
                conn.close()       # ... is never answered
            while True:
                conn, _ = listener.accept()
                threading.Thread(target=serve, args=(conn,), daemon=True).start()
            """
        let portFile = FileManager.default.temporaryDirectory.appendingPathComponent("oneshot-\(UUID().uuidString)").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, portFile]
        process.standardInput = self.input
        try process.run()
        var port: Int?
        let deadline = Date().addingTimeInterval(10)
        while port == nil && Date() < deadline && process.isRunning {
            port = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0) }
            if port == nil { usleep(20_000) }
        }
        guard let port else {
            process.terminate()
            throw GatewayTestError("the one-shot backend did not start")
        }
        self.process = process
        self.port = port
    }

    deinit {
        try? self.input.fileHandleForWriting.close()
        self.process.terminate()
    }
}

@Suite("Upstream retry", .serialized)
struct UpstreamRetryTests {
    static func gateway(for backend: OneShotKeepAliveBackend) throws -> PortcullisProcess {
        try PortcullisProcess.serve(
            configYAML: """
                listen:
                  - address: "127.0.0.1:0"
                upstream:
                  url: "http://127.0.0.1:\(backend.port)"
                """,
            environment: ["PORTCULLIS_THREADS": "1"]
        )
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func anIdempotentRequestOnADeadPooledConnectionIsRetriedOnce() throws {
        let backend = try OneShotKeepAliveBackend()
        let gateway = try Self.gateway(for: backend)
        #expect(RawHTTPClient.request("GET", "/first", port: gateway.port()).status == 200)
        // The pooled connection is closed by the backend when it sees this request.
        let second = RawHTTPClient.request("GET", "/second", port: gateway.port())
        #expect(second.status == 200)
        #expect(second.bodyString == "ok")
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func aNonIdempotentRequestIsNeverRetried() throws {
        let backend = try OneShotKeepAliveBackend()
        let gateway = try Self.gateway(for: backend)
        #expect(RawHTTPClient.request("GET", "/first", port: gateway.port()).status == 200)
        let post = RawHTTPClient.request("POST", "/api/ExecResetPass", port: gateway.port(), body: Array("{}".utf8))
        #expect(post.status == 502)
    }
}
