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

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func aNonIdempotentRequestIsNeverRetried() throws {
        let backend = try startOneShotKeepAliveBackend()
        let gateway = try Self.gateway(for: backend)
        #expect(RawHTTPClient.request("GET", "/first", port: gateway.port()).status == 200)
        let post = RawHTTPClient.request("POST", "/api/ExecResetPass", port: gateway.port(), body: Array("{}".utf8))
        #expect(post.status == 502)
    }
}
