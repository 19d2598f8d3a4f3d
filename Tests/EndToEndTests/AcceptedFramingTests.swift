import Foundation
import Testing

/// The other half of the smuggling checks (RequestFramingTests has the refused forms): every
/// request form the gateway accepts reaches a raw backend, which records the exact bytes it
/// receives, as exactly one request with exactly one framing header and the body the client
/// meant, whatever the client's spelling of the framing.
@Suite("Accepted framing reaches the backend unambiguously", .serialized)
struct AcceptedFramingTests {
    /// Reads requests strictly (Content-Length or chunked, as the head says) and writes one JSON
    /// line per request to the file named by its first argument: the head as received, how many
    /// framing headers it had, and the body decoded.
    static func recordingBackend() throws -> (PythonBackend, URL) {
        let record = FileManager.default.temporaryDirectory.appendingPathComponent("framing-\(UUID().uuidString).jsonl")
        FileManager.default.createFile(atPath: record.path, contents: nil)
        let backend = try PythonBackend(
            "recording",
            script: """
                import json, base64
                out = open(sys.argv[1], "a")
                lock = threading.Lock()
                def recv_exact(conn, data, n):
                    while len(data) < n:
                        chunk = conn.recv(65536)
                        if not chunk: raise EOFError()
                        data += chunk
                    return data[:n], data[n:]
                def recv_line(conn, data):
                    while b"\\r\\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk: raise EOFError()
                        data += chunk
                    line, rest = data.split(b"\\r\\n", 1)
                    return line, rest
                def serve(conn):
                    data = b""
                    try:
                        while True:
                            head, data = read_head(conn, data)
                            if head is None: return
                            lines = head.split(b"\\r\\n")[1:]
                            names = [l.split(b":", 1)[0].strip().lower() for l in lines]
                            values = {l.split(b":", 1)[0].strip().lower(): l.split(b":", 1)[1].strip() for l in lines}
                            framing = names.count(b"content-length") + names.count(b"transfer-encoding")
                            body = b""
                            if values.get(b"transfer-encoding", b"").lower() == b"chunked":
                                while True:
                                    line, data = recv_line(conn, data)
                                    size = int(line.split(b";")[0], 16)
                                    if size == 0:
                                        while True:
                                            line, data = recv_line(conn, data)
                                            if line == b"": break
                                        break
                                    piece, data = recv_exact(conn, data, size + 2)
                                    body += piece[:-2]
                            elif b"content-length" in values:
                                body, data = recv_exact(conn, data, int(values[b"content-length"]))
                            with lock:
                                out.write(json.dumps({"head": head.decode("latin-1"), "framing": framing,
                                                      "body": base64.b64encode(body).decode()}) + "\\n")
                                out.flush()
                            conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
                    except (EOFError, ValueError, ConnectionError):
                        conn.close()
                serve_forever(serve)
                """,
            arguments: [record.path]
        )
        return (backend, record)
    }

    struct Form: CustomTestStringConvertible, Sendable {
        var name: String
        var request: String
        var body: String
        /// Framing headers the backend must see: 1, or 0 for a request without a body.
        var framing = 1
        var testDescription: String { self.name }
    }

    static let forms: [Form] = [
        Form(name: "no body", request: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", body: "", framing: 0),
        Form(name: "Content-Length: 0", request: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", body: ""),
        Form(name: "Content-Length", request: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", body: "hello"),
        Form(name: "Content-Length with OWS", request: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: \t5 \r\n\r\nhello", body: "hello"),
        Form(name: "HTTP/1.0 with Content-Length", request: "POST /a HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", body: "hello"),
        Form(
            name: "chunked",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            body: "hello world"),
        Form(
            name: "chunked, any case, OWS",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tCHUNKED  \r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            body: "hello"),
        Form(
            name: "chunk extensions",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=1;b=\"q;x\"\r\nhello\r\n0;end\r\n\r\n",
            body: "hello"),
        Form(
            name: "upper-case hex and leading zeros in chunk sizes",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n00A\r\n0123456789\r\n000\r\n\r\n",
            body: "0123456789"),
        Form(
            name: "trailers",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n",
            body: "hello"),
        // Issue 8's smuggling audit: OWS around a framing value is not part of it (RFC 9112 5.1).
        Form(
            name: "Transfer-Encoding with a leading space",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            body: "hello"),
        Form(
            name: "Transfer-Encoding with a trailing space",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            body: "hello"),
        Form(
            name: "Transfer-Encoding with a tab before the value",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            body: "hello"),
        Form(
            name: "Transfer-Encoding with no space after the colon",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            body: "hello"),
        Form(
            name: "framing header names in any case",
            request: "POST /a HTTP/1.1\r\nHost: x\r\ntRaNsFeR-eNcOdInG: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            body: "hello"),
        Form(
            name: "Content-Length with no space after the colon",
            request: "POST /a HTTP/1.1\r\nHost: x\r\ncontent-length:5\r\n\r\nhello",
            body: "hello"),
        // Hop-by-hop tricks: a Connection header naming the framing must not strip it upstream.
        Form(
            name: "Connection naming Content-Length",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello",
            body: "hello"),
        Form(
            name: "Connection naming Transfer-Encoding",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            body: "hello"),
        Form(
            name: "a chunked body smuggling a second request",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n",
            body: "GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"),
        Form(
            name: "a body smuggling a second request",
            request: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 38\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\nxxxxxx",
            body: "GET /admin HTTP/1.1\r\nHost: x\r\n\r\nxxxxxx"),
    ]

    @Test(.enabled(if: commandExists("python3"), "needs python3"), arguments: forms)
    func theBackendSeesOneRequestWithOneFraming(form: Form) throws {
        let (backend, record) = try Self.recordingBackend()
        defer { try? FileManager.default.removeItem(at: record) }
        let gateway = try backend.gatewayInFront()
        let client = try RawHTTPClient.connect(port: gateway.port())
        defer { client.close() }
        // The token goes after the request line only: a body may contain what looks like one.
        let request = form.request.replacingOccurrences(
            of: "\r\n", with: "\r\n" + TestIdentity.authorizationLine, options: [], range: form.request.range(of: "\r\n"))
        #expect(client.send(request))
        let response = client.readResponse()
        #expect(response?.status == 200, "\(response.map { "\($0)" } ?? client.lastFailure ?? "no response")")

        // The gateway answers after the backend has recorded the request.
        let lines = ((try? String(contentsOf: record, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(lines.count == 1, "the backend saw \(lines.count) requests")
        guard let line = lines.first,
            let seen = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { return }
        let head = seen["head"] as? String ?? ""
        let body = (seen["body"] as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
        #expect(body == form.body)
        #expect(seen["framing"] as? Int == form.framing, "\(head)")
        // The one framing header is the gateway's own spelling: `Transfer-Encoding: chunked`, or
        // a plain length equal to the body's.
        let framingLines = head.split(separator: "\r\n").dropFirst().filter {
            let name = $0.split(separator: ":", maxSplits: 1).first?.lowercased() ?? ""
            return name == "content-length" || name == "transfer-encoding"
        }
        for line in framingLines {
            let value = line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
            let isLength = line.lowercased().hasPrefix("content-length:") && value == "\(form.body.utf8.count)"
            #expect(line == "Transfer-Encoding: chunked" || isLength, "framing sent upstream: \(line)")
        }
        #expect(head.hasPrefix("\(form.request.hasPrefix("GET") ? "GET" : "POST") /a HTTP/1.1\r\n"))
        // What the gateway drops or replaces never arrives as the client sent it.
        #expect(!head.lowercased().contains("authorization:"))
        #expect(!head.contains("CHUNKED"))
    }
}
