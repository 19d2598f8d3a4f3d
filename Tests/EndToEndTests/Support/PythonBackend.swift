import Foundation

/// A small backend written in Python for behaviour the demo backend does not have (TLS, a
/// connection that dies on its second request). The script calls `announce(port)` once it
/// listens; the process exits when this object goes away, even behind a wrapper.
final class PythonBackend {
    let process: Process
    let port: Int
    private let input = Pipe()

    /// Defines `announce(port)` (writes the port file, the last argument, and exits on stdin
    /// EOF), and for raw HTTP backends `read_head(conn, data)` and `serve_forever(serve)`, which
    /// counts connections in `accepted`.
    private static let prelude = """
        import os, sys, threading
        def announce(port):
            with open(sys.argv[-1] + ".tmp", "w") as f:
                f.write(str(port))
            os.rename(sys.argv[-1] + ".tmp", sys.argv[-1])
            threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()

        accepted = 0

        def read_head(conn, data):
            # (head, the bytes after it), or (None, b"") when the peer closed first.
            while b"\\r\\n\\r\\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return None, b""
                data += chunk
            head, rest = data.split(b"\\r\\n\\r\\n", 1)
            return head, rest

        def serve_forever(serve):
            # A plain TCP listener on loopback; serve(conn) runs on a thread per connection.
            global accepted
            import socket
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            announce(listener.getsockname()[1])
            while True:
                conn, _ = listener.accept()
                accepted += 1
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

        """

    init(_ name: String, script: String, arguments: [String] = []) throws {
        let portFile = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString).port").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.prelude + script] + arguments + [portFile]
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
            throw GatewayTestError("the \(name) backend did not start")
        }
        self.process = process
        self.port = port
    }

    deinit {
        try? self.input.fileHandleForWriting.close()
        self.process.terminate()
    }
}

extension PythonBackend {
    /// A gateway (one event loop, the tests' issuer) forwarding to this backend.
    func gatewayInFront() throws -> PortcullisProcess {
        try PortcullisProcess.serve(
            configYAML: """
                listen:
                  - address: "127.0.0.1:0"
                upstream:
                  url: "http://127.0.0.1:\(self.port)"
                """,
            environment: ["PORTCULLIS_THREADS": "1"]
        )
    }
}
