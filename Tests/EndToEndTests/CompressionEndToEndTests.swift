import Foundation
import Testing

/// A backend whose responses a test chooses by path and query: `/fixed` (Content-Length),
/// `/chunked` (`pieces` chunks, `gap` seconds apart) or `/cut` (half the body, then a close), `n` body bytes of JSON-like text,
/// `type` (`/` as `_`), `enc` (a Content-Encoding), `cc` (a Cache-Control).
func startCompressibleBackend() throws -> PythonBackend {
    try PythonBackend(
        "compressible",
        script: """
            import time
            def body(n):
                unit = b'{"id":1234,"displayName":"Contoso","defaultDomainName":"contoso.onmicrosoft.com"},'
                return (unit * (n // len(unit) + 1))[:n]
            def serve(conn):
                data = b""
                while True:
                    head, data = read_head(conn, data)
                    if head is None:
                        return conn.close()
                    method, target = head.split(b"\\r\\n")[0].decode().split(" ")[0:2]
                    path, _, query = target.partition("?")
                    q = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
                    n = int(q.get("n", "20000"))
                    b = body(n)
                    extra = b"Content-Type: " + q.get("type", "application_json").replace("_", "/").encode() + b"\\r\\n"
                    if "enc" in q: extra += b"Content-Encoding: " + q["enc"].encode() + b"\\r\\n"
                    if "cc" in q: extra += b"Cache-Control: " + q["cc"].encode() + b"\\r\\n"
                    extra += b"Vary: Origin\\r\\nETag: \\"v1\\"\\r\\n"
                    if path == "/chunked":
                        conn.sendall(b"HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n" + extra + b"\\r\\n")
                        if method == "HEAD":
                            continue
                        pieces = int(q.get("pieces", "4"))
                        step = max(1, (n + pieces - 1) // pieces)
                        for i in range(0, n, step):
                            part = b[i:i + step]
                            conn.sendall(b"%x\\r\\n%s\\r\\n" % (len(part), part))
                            time.sleep(float(q.get("gap", "0")))
                        conn.sendall(b"0\\r\\n\\r\\n")
                    elif path == "/cut":
                        conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n" % n + extra + b"\\r\\n" + b[:n // 2])
                        time.sleep(0.2)
                        return conn.close()
                    else:
                        conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n" % n + extra + b"\\r\\n"
                            + (b"" if method == "HEAD" else b))
            serve_forever(serve)
            """
    )
}

/// The bytes `startCompressibleBackend` sends for `n`.
func compressibleBody(_ n: Int) -> [UInt8] {
    let unit = Array(#"{"id":1234,"displayName":"Contoso","defaultDomainName":"contoso.onmicrosoft.com"},"#.utf8)
    var out: [UInt8] = []
    while out.count < n { out += unit }
    return Array(out.prefix(n))
}

/// Inflates with python3's zlib (`wbits` 47: gzip or zlib wrapper; `partial`: a stream that
/// has not ended yet, as far as it goes). Nil when it does not decode.
func pythonInflate(_ data: [UInt8], wbits: Int = 47, partial: Bool = false) -> [UInt8]? {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("inflate-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: file) }
    guard (try? Data(data).write(to: file)) != nil else { return nil }
    let script =
        partial
        ? "import sys,zlib; d=zlib.decompressobj(\(wbits)); sys.stdout.buffer.write(d.decompress(open(sys.argv[1],'rb').read()))"
        : "import sys,zlib; sys.stdout.buffer.write(zlib.decompress(open(sys.argv[1],'rb').read(), \(wbits)))"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, file.path]
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return nil }
    let bytes = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return process.terminationStatus == 0 ? Array(bytes) : nil
}

@Suite("Response compression", .serialized)
struct CompressionEndToEndTests {
    static let enabled = commandExists("python3")

    static func gateway(_ backend: PythonBackend, compression: String = "compression:\n  enabled: true\n") throws -> PortcullisProcess {
        try PortcullisProcess.serve(
            configYAML: """
                listen:
                  - address: "127.0.0.1:0"
                upstream:
                  url: "http://127.0.0.1:\(backend.port)"
                \(compression)
                """,
            environment: ["PORTCULLIS_THREADS": "1"]
        )
    }

    static func get(_ gateway: PortcullisProcess, _ path: String, method: String = "GET", acceptEncoding: String? = "gzip, deflate, br")
        -> HTTPTestResponse
    {
        RawHTTPClient.request(method, path, port: gateway.port(), headers: acceptEncoding.map { [("Accept-Encoding", $0)] } ?? [])
    }

    static func expectUncompressed(_ response: HTTPTestResponse, n: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.status == 200, "\(response)", sourceLocation: sourceLocation)
        #expect(response.header("Content-Encoding") == nil, "\(response)", sourceLocation: sourceLocation)
        #expect(!response.headerValues("Vary").contains { $0.lowercased().contains("accept-encoding") }, sourceLocation: sourceLocation)
        #expect(response.body == compressibleBody(n), sourceLocation: sourceLocation)
    }

    @Test(.enabled(if: enabled, "needs python3"))
    func largeJSONIsGzippedAndDecodes() throws {
        let backend = try startCompressibleBackend()
        let gateway = try Self.gateway(backend)
        let response = Self.get(gateway, "/fixed?n=200000")
        #expect(response.status == 200)
        #expect(response.header("Content-Encoding") == "gzip")
        #expect(response.header("Content-Length") == nil)
        #expect(response.header("Transfer-Encoding") == "chunked")
        #expect(response.headerValues("Vary").contains("Accept-Encoding"))
        #expect(response.headerValues("Vary").contains("Origin"))
        #expect(response.header("Content-Type") == "application/json")
        #expect(response.header("ETag") == "W/\"v1\"")
        #expect(response.body.count < 20000, "\(response.body.count) bytes")
        #expect(Array(response.body.prefix(2)) == [0x1F, 0x8B])
        #expect(pythonInflate(response.body, wbits: 31) == compressibleBody(200_000))
    }

    @Test(.enabled(if: enabled, "needs python3"))
    func deflateWhenThatIsWhatTheClientTakes() throws {
        let backend = try startCompressibleBackend()
        let gateway = try Self.gateway(backend)
        let response = Self.get(gateway, "/fixed?n=50000", acceptEncoding: "gzip;q=0, deflate")
        #expect(response.header("Content-Encoding") == "deflate")
        #expect(pythonInflate(response.body, wbits: 15) == compressibleBody(50000))
    }

    @Test(.enabled(if: enabled, "needs python3"))
    func chunkedUpstreamIsCompressedToo() throws {
        let backend = try startCompressibleBackend()
        let gateway = try Self.gateway(backend)
        let response = Self.get(gateway, "/chunked?n=100000&pieces=7&type=text_html", acceptEncoding: "gzip")
        #expect(response.header("Content-Encoding") == "gzip")
        #expect(pythonInflate(response.body) == compressibleBody(100_000))
        // A chunked answer too small for min_bytes has no length to tell: compressed as well.
        let small = Self.get(gateway, "/chunked?n=10&pieces=1", acceptEncoding: "gzip")
        #expect(small.header("Content-Encoding") == "gzip")
        #expect(pythonInflate(small.body) == compressibleBody(10))
    }

    @Test(.enabled(if: enabled, "needs python3"))
    func http10ClientGetsACompressedBodyEndingWithTheConnection() throws {
        let backend = try startCompressibleBackend()
        let gateway = try Self.gateway(backend)
        let client = try RawHTTPClient.connect(port: gateway.port())
        #expect(client.send(TestIdentity.authorizing(Array("GET /fixed?n=30000 HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n".utf8))))
        let raw = client.readUntilClose()
        let split = try #require(raw.firstRange(of: Array("\r\n\r\n".utf8)))
        let head = String(decoding: raw[..<split.lowerBound], as: UTF8.self).lowercased()
        #expect(head.hasPrefix("http/1.0 200"))
        #expect(head.contains("content-encoding: gzip"))
        #expect(!head.contains("content-length"))
        #expect(!head.contains("transfer-encoding"))
        #expect(pythonInflate(Array(raw[split.upperBound...])) == compressibleBody(30000))
    }

    @Test(.enabled(if: enabled, "needs python3"))
    func keepAliveConnectionCarriesCompressedAndPlainResponses() throws {
        let backend = try startCompressibleBackend()
        let gateway = try Self.gateway(backend)
        let client = try RawHTTPClient.connect(port: gateway.port())
        for (path, compressed) in [("/fixed?n=40000", true), ("/fixed?n=100", false), ("/chunked?n=40000", true), ("/fixed?n=5000", true)] {
            client.sendRequest("GET", path, headers: [("Accept-Encoding", "gzip")])
            let response = try #require(client.readResponse())
            let n = Int(path.split(separator: "=").last!)!
            if compressed {
                #expect(response.header("Content-Encoding") == "gzip", "\(path)")
                #expect(pythonInflate(response.body) == compressibleBody(n), "\(path)")
            } else {
                Self.expectUncompressed(response, n: n)
            }
        }
    }

    @Test(.enabled(if: enabled, "needs python3"))
    func streamingStillStreams() throws {
        let backend = try startCompressibleBackend()
        let gateway = try Self.gateway(backend)
        let client = try RawHTTPClient.connect(port: gateway.port())
        // Two pieces of 20000 bytes, 3 s apart: the first must be decodable long before the second.
        client.sendRequest("GET", "/chunked?n=40000&pieces=2&gap=3", headers: [("Accept-Encoding", "gzip")])
        let started = Date()
        var raw: [UInt8] = []
        var decoded: [UInt8] = []
        while Date().timeIntervalSince(started) < 2.5 && decoded.count < 20000 {
            if let bytes = client.receive(timeout: 0.2) { raw += bytes }
            guard let split = raw.firstRange(of: Array("\r\n\r\n".utf8)) else { continue }
            decoded = pythonInflate(Self.dechunk(Array(raw[split.upperBound...])), partial: true) ?? []
        }
        #expect(Date().timeIntervalSince(started) < 2.5)
        #expect(decoded == compressibleBody(20000), "\(decoded.count) bytes decoded")
    }

    /// The data of the complete chunks at the start of `bytes`.
    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while let lineEnd = bytes[index...].firstRange(of: Array("\r\n".utf8)) {
            guard let size = Int(String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self), radix: 16), size > 0,
                lineEnd.upperBound + size + 2 <= bytes.count
            else { break }
            out += bytes[lineEnd.upperBound..<(lineEnd.upperBound + size)]
            index = lineEnd.upperBound + size + 2
        }
        return out
    }

    @Test(.enabled(if: enabled, "needs python3"))
    func skippedWhereItShouldBe() throws {
        let backend = try startCompressibleBackend()
        let gateway = try Self.gateway(backend)
        // Below min_bytes (1024).
        Self.expectUncompressed(Self.get(gateway, "/fixed?n=1023"), n: 1023)
        // No Accept-Encoding, or one refusing both codings.
        Self.expectUncompressed(Self.get(gateway, "/fixed?n=50000", acceptEncoding: nil), n: 50000)
        Self.expectUncompressed(Self.get(gateway, "/fixed?n=50000", acceptEncoding: "br, gzip;q=0"), n: 50000)
        // A type not listed; never text/event-stream.
        Self.expectUncompressed(Self.get(gateway, "/fixed?n=50000&type=application_octet-stream"), n: 50000)
        Self.expectUncompressed(Self.get(gateway, "/chunked?n=50000&type=text_event-stream"), n: 50000)
        // Cache-Control: no-transform.
        Self.expectUncompressed(Self.get(gateway, "/fixed?n=50000&cc=no-transform"), n: 50000)
        // Already encoded upstream: passed through as it is, with its own Content-Encoding.
        let encoded = Self.get(gateway, "/fixed?n=50000&enc=br")
        #expect(encoded.header("Content-Encoding") == "br")
        #expect(encoded.header("Content-Length") == "50000")
        #expect(encoded.body == compressibleBody(50000))
        // HEAD: the upstream's head, length and all.
        let head = Self.get(gateway, "/fixed?n=50000", method: "HEAD")
        #expect(head.status == 200)
        #expect(head.header("Content-Encoding") == nil)
        #expect(head.header("Content-Length") == "50000")
        #expect(head.body.isEmpty)
    }

    @Test(.enabled(if: enabled, "needs python3"))
    func upstreamCutMidBodyCutsTheClientAndTheGatewayGoesOn() throws {
        let backend = try startCompressibleBackend()
        let gateway = try Self.gateway(backend)
        for _ in 0..<20 {
            let client = try RawHTTPClient.connect(port: gateway.port())
            client.sendRequest("GET", "/cut?n=100000", headers: [("Accept-Encoding", "gzip")])
            let raw = client.readUntilClose()
            #expect(String(decoding: raw.prefix(40), as: UTF8.self).hasPrefix("HTTP/1.1 200"))
            // No last chunk: the client can tell the body is incomplete.
            #expect(!raw.suffix(5).elementsEqual(Array("0\r\n\r\n".utf8)))
        }
        let response = Self.get(gateway, "/fixed?n=30000")
        #expect(pythonInflate(response.body) == compressibleBody(30000))
    }

    @Test(.enabled(if: enabled, "needs python3"))
    func offByDefault() throws {
        let backend = try startCompressibleBackend()
        let gateway = try Self.gateway(backend, compression: "")
        let response = Self.get(gateway, "/fixed?n=50000", acceptEncoding: "gzip")
        Self.expectUncompressed(response, n: 50000)
        #expect(response.header("Content-Length") == "50000")
        #expect(response.header("ETag") == "\"v1\"")
    }
}
