import Foundation
import Testing

/// A keep-alive backend that answers each request with a canned raw response chosen by path,
/// so the gateway's response parser meets exactly the bytes a test names. `/count` answers
/// with the number of connections accepted so far.
func startCannedResponseBackend() throws -> PythonBackend {
    try PythonBackend(
        "canned",
        script: """
            CANNED = {
                "/head-length": b"HTTP/1.1 200 OK\\r\\nContent-Length: 1234\\r\\nX-Kind: head\\r\\n\\r\\n",
                "/chunked": b"HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\nTrailer: X-Sum\\r\\n\\r\\n"
                    b"5;ext=1\\r\\nhello\\r\\n7\\r\\n, world\\r\\n0\\r\\nX-Sum: 12\\r\\n\\r\\n",
                "/interim": b"HTTP/1.1 103 Early Hints\\r\\nLink: </style.css>\\r\\n\\r\\n"
                    b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok",
                "/connection-named": b"HTTP/1.1 200 OK\\r\\nConnection: X-Hop\\r\\nX-Hop: secret\\r\\n"
                    b"X-Keep: 1\\r\\nContent-Length: 2\\r\\n\\r\\nok",
                "/te-and-cl": b"HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n"
                    b"5\\r\\nhello\\r\\n0\\r\\n\\r\\n",
                "/bare-lf": b"HTTP/1.1 200 OK\\nContent-Length: 2\\n\\nok",
                "/extra-bytes": b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nokHTTP/1.1 200 OK\\r\\n\\r\\n",
            }
            def serve(conn):
                data = b""
                while True:
                    head, data = read_head(conn, data)
                    if head is None:
                        return conn.close()
                    path = head.split(b" ")[1].decode()
                    if path == "/count":
                        body = str(accepted).encode()
                        conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body))
                    else:
                        conn.sendall(CANNED[path])
            serve_forever(serve)
            """
    )
}

@Suite("Upstream response framing", .serialized)
struct UpstreamResponseFramingTests {
    static func gateway(for backend: PythonBackend) throws -> PortcullisProcess {
        try backend.gatewayInFront()
    }

    static func connectionsAccepted(_ client: RawHTTPClient) -> Int? {
        client.sendRequest("GET", "/count")
        return client.readResponse().flatMap { Int($0.bodyString) }
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func answerToHEADKeepsItsLengthAndHasNoBody() throws {
        let backend = try startCannedResponseBackend()
        let gateway = try Self.gateway(for: backend)
        let client = try RawHTTPClient.connect(port: gateway.port())
        client.sendRequest("HEAD", "/head-length")
        let head = try #require(client.readResponse(requestMethod: "HEAD"))
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "1234")
        #expect(head.header("X-Kind") == "head")
        // Nothing followed the head: the next response on the connection parses cleanly.
        #expect(Self.connectionsAccepted(client) == 1)
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func chunkedResponseIsReframedForHTTP11AndEndsWithTheConnectionForHTTP10() throws {
        let backend = try startCannedResponseBackend()
        let gateway = try Self.gateway(for: backend)
        let client = try RawHTTPClient.connect(port: gateway.port())
        client.sendRequest("GET", "/chunked")
        let response = try #require(client.readResponse())
        #expect(response.bodyString == "hello, world")
        #expect(response.header("Transfer-Encoding") == "chunked")
        #expect(response.header("Trailer") == nil)
        #expect(response.trailers.isEmpty)

        let old = try RawHTTPClient.connect(port: gateway.port())
        #expect(old.send(TestIdentity.authorizing(Array("GET /chunked HTTP/1.0\r\nHost: x\r\n\r\n".utf8))))
        let text = String(decoding: old.readUntilClose(), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.0 200 OK\r\n"), "\(text)")
        #expect(!text.lowercased().contains("transfer-encoding"), "\(text)")
        #expect(text.hasSuffix("\r\n\r\nhello, world"), "\(text)")
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func interimResponsesAreNotForwarded() throws {
        let backend = try startCannedResponseBackend()
        let gateway = try Self.gateway(for: backend)
        let response = RawHTTPClient.request("GET", "/interim", port: gateway.port())
        #expect(response.status == 200)
        #expect(response.bodyString == "ok")
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func headersNamedInTheUpstreamConnectionHeaderAreRemoved() throws {
        let backend = try startCannedResponseBackend()
        let gateway = try Self.gateway(for: backend)
        let response = RawHTTPClient.request("GET", "/connection-named", port: gateway.port())
        #expect(response.status == 200)
        #expect(response.header("X-Hop") == nil)
        #expect(response.header("X-Keep") == "1")
        #expect(response.header("Connection") == nil)
    }

    @Test(
        .enabled(if: commandExists("python3"), "needs python3"),
        arguments: ["/te-and-cl", "/bare-lf"]
    )
    func ambiguousUpstreamResponseIs502(path: String) throws {
        let backend = try startCannedResponseBackend()
        let gateway = try Self.gateway(for: backend)
        let response = RawHTTPClient.request("GET", path, port: gateway.port())
        #expect(response.status == 502)
        #expect(!response.bodyString.contains("hello"))
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func bytesBeyondAResponseRetireTheUpstreamConnection() throws {
        let backend = try startCannedResponseBackend()
        let gateway = try Self.gateway(for: backend)
        let client = try RawHTTPClient.connect(port: gateway.port())
        client.sendRequest("GET", "/extra-bytes")
        let response = try #require(client.readResponse())
        #expect(response.status == 200)
        #expect(response.bodyString == "ok")
        // The stray bytes were not taken for the next response: a new connection served it.
        #expect(Self.connectionsAccepted(client) == 2)
    }
}
