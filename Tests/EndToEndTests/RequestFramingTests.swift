import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The project's own framing and request-line cases, sent raw over loopback to a real gateway in
/// front of a real demo backend (no fixtures needed). Every malformed or ambiguous request gets
/// a 400 with a JSON error body (431 for an oversized head), the connection is closed, and
/// nothing reaches the backend — checked on the backend's own request counter, with an idle
/// pooled upstream connection on every gateway loop, so a head forwarded before the request
/// was judged would show.
@Suite("RequestFramingTests", .serialized, RawRequestSuiteProcesses.Scope())
struct RequestFramingTests {
    /// One request that must be refused.
    struct Refused: CustomTestStringConvertible, Sendable {
        var name: String
        var bytes: [UInt8]
        var status = 400

        init(_ name: String, _ text: String, status: Int = 400) {
            self.name = name
            self.bytes = Array(text.utf8)
            self.status = status
        }

        var testDescription: String { self.name }
    }

    static let refused: [Refused] = [
        // Content-Length and Transfer-Encoding together, in both orders.
        Refused(
            "Content-Length then Transfer-Encoding",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
        Refused(
            "Transfer-Encoding then Content-Length",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
        // Content-Length that is not one plain number.
        Refused(
            "two differing Content-Length",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
        Refused(
            "two equal Content-Length headers",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
        Refused("Content-Length +5", "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello"),
        Refused("Content-Length -5", "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello"),
        // RFC 9110 lets a recipient collapse "5, 5"; NIO (llhttp) refuses any list, and so do we.
        Refused(
            "Content-Length list 5, 5", "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello"),
        Refused(
            "Content-Length list 5, 6", "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!"),
        Refused(
            "Content-Length overflow",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 184467440737095516160\r\n\r\nhello"),
        // Transfer-Encoding other than exactly `chunked`.
        Refused(
            "Transfer-Encoding chunked, identity",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
        Refused(
            "Transfer-Encoding identity, chunked",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
        Refused(
            "Transfer-Encoding gzip, chunked",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "Transfer-Encoding xchunked",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "Transfer-Encoding twice",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
        Refused(
            "Transfer-Encoding with a vertical tab before the value",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \u{0B}chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "Transfer-Encoding with a vertical tab after the value",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\u{0B}\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        // llhttp (strict) refuses a trailing tab, though a trailing space passes.
        Refused(
            "Transfer-Encoding with a tab after the value",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "Transfer-Encoding with a space before the colon",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "Transfer-Encoding on HTTP/1.0",
            "POST /demo/upload HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        // Chunk sizes that are not plain hex.
        Refused(
            "chunk size 0x5",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "chunk size +5",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "chunk size -5",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "chunk size overflow",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n"
        ),
        Refused(
            "chunk size with a space before it",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "chunk data longer than its size",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n"),
        // Bare LF.
        Refused("bare LF line endings", "GET /demo/echo HTTP/1.1\nHost: x\n\n"),
        Refused("bare LF after the request line", "GET /demo/echo HTTP/1.1\nHost: x\r\n\r\n"),
        Refused("bare LF after a header", "GET /demo/echo HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n"),
        Refused("bare LF ending the head", "GET /demo/echo HTTP/1.1\r\nHost: x\r\n\n"),
        Refused(
            "bare LF after a chunk size",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
        Refused("bare CR in a header value", "GET /demo/echo HTTP/1.1\r\nHost: x\r\nX-A: 1\rX-B: 2\r\n\r\n"),
        // Control bytes in header names and values.
        Refused("NUL in a header name", "GET /demo/echo HTTP/1.1\r\nHost: x\r\nX-A\u{0}B: 1\r\n\r\n"),
        Refused("NUL in a header value", "GET /demo/echo HTTP/1.1\r\nHost: x\r\nX-A: 1\u{0}2\r\n\r\n"),
        Refused("SOH in a header name", "GET /demo/echo HTTP/1.1\r\nHost: x\r\nX-A\u{1}: 1\r\n\r\n"),
        Refused("ESC in a header value", "GET /demo/echo HTTP/1.1\r\nHost: x\r\nX-A: 1\u{1B}[0m\r\n\r\n"),
        Refused("DEL in a header value", "GET /demo/echo HTTP/1.1\r\nHost: x\r\nX-A: 1\u{7F}\r\n\r\n"),
        Refused("space inside a header name", "GET /demo/echo HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n"),
        // obs-fold.
        Refused("obs-fold with a space", "GET /demo/echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n"),
        Refused("obs-fold with a tab", "GET /demo/echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tfolded\r\n\r\n"),
        Refused("first header line starting with a space", "GET /demo/echo HTTP/1.1\r\n Host: x\r\n\r\n"),
        // Targets.
        Refused("path climbing above / (/../etc)", "GET /../etc HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("path climbing above / (encoded dots)", "GET /a/%2e%2e/%2e%2e/b HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("path climbing above / (mixed)", "GET /demo/%2E%2e/../x HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("encoded slash in the path", "GET /demo%2Fecho HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("absolute-form target", "GET http://evil/ HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("asterisk-form target", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"),
        // Issue 8's smuggling audit: the forms the tables above did not name yet.
        Refused("Content-Length 005", "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhello"),
        Refused("Content-Length 5 5", "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5 5\r\n\r\nhello"),
        Refused("Content-Length 5<tab>5", "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\t5\r\n\r\nhello"),
        Refused("Content-Length empty", "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\nhello"),
        Refused("Content-Length 0x5", "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello"),
        Refused("Content-Length 5,", "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5,\r\n\r\nhello"),
        Refused(
            "Content-Length with a vertical tab", "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: \u{0B}5\r\n\r\nhello"),
        Refused(
            "Content-Length then Transfer-Encoding with OWS",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding:  chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
        Refused(
            "Transfer-Encoding chunked then Transfer-Encoding identity",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
        Refused(
            "Transfer-Encoding identity then Transfer-Encoding chunked",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
        Refused(
            "Transfer-Encoding chunked, chunked",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "Transfer-Encoding quoted",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "Transfer-Encoding with a parameter",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "Transfer-Encoding empty",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "Transfer-Encoding with a tab before the colon",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\t: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "Transfer-Encoding obs-folded",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "Transfer-Encoding with a NUL in the value",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\u{0}\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "chunk size with a trailing space",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"),
        Refused(
            "chunk size with a tab before its extension",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\t;a=1\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "chunk size missing",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n;a=1\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "chunk extension with a bare LF",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=1\nhello\r\n0\r\n\r\n"),
        Refused(
            "chunk extension with a bare CR",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=1\rb\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "chunk extension with a NUL",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\u{0}\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "chunk extension with a control byte in a quoted value",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"\u{1}\"\r\nhello\r\n0\r\n\r\n"),
        Refused(
            "chunk data ended by a bare CR",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r0\r\n\r\n"),
        Refused(
            "trailer ended by a bare LF",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\n\r\n"),
        Refused("bare CR ending the request line", "GET /demo/echo HTTP/1.1\rHost: x\r\n\r\n"),
        Refused("bare CR in a header name", "GET /demo/echo HTTP/1.1\r\nHost: x\r\nX-\rA: 1\r\n\r\n"),
        Refused("NUL in the request target", "GET /demo/echo\u{0} HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("tab before a colon", "GET /demo/echo HTTP/1.1\r\nHost: x\r\nX-A\t: 1\r\n\r\n"),
        Refused("header line without a colon", "GET /demo/echo HTTP/1.1\r\nHost: x\r\nX-A 1\r\n\r\n"),
        Refused("header line with an empty name", "GET /demo/echo HTTP/1.1\r\nHost: x\r\n: 1\r\n\r\n"),
        // Request lines.
        Refused("authority-form target", "GET example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n"),
        Refused("absolute-form target with https", "GET https://x/demo/echo HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("two spaces after the method", "GET  /demo/echo HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("two spaces before the version", "GET /demo/echo  HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("tab after the method", "GET\t/demo/echo HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("tab before the version", "GET /demo/echo\tHTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("space after the version", "GET /demo/echo HTTP/1.1 \r\nHost: x\r\n\r\n"),
        Refused("space before the method", " GET /demo/echo HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("HTTP/0.9 request line", "GET /demo/echo\r\n\r\n"),
        Refused("HTTP/2.0 request line", "GET /demo/echo HTTP/2.0\r\nHost: x\r\n\r\n"),
        Refused("HTTP/1.2 request line", "GET /demo/echo HTTP/1.2\r\nHost: x\r\n\r\n"),
        Refused("lower-case version", "GET /demo/echo http/1.1\r\nHost: x\r\n\r\n"),
        Refused("lower-case method", "get /demo/echo HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused("unknown method", "GETX /demo/echo HTTP/1.1\r\nHost: x\r\n\r\n"),
        Refused(
            "Expect other than 100-continue",
            "POST /demo/upload HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 0\r\n\r\n", status: 417),
    ]

    @Test(arguments: refused)
    func malformedRequestIsRefusedAndNeverReachesTheBackend(_ request: Refused) throws {
        let processes = try RawRequestSuiteProcesses.current()
        let outcome = try processes.replay(request.bytes, expectedResponses: 1)
        let context = Comment(rawValue: "\(request.name): \(Self.printable(request.bytes))\n\(outcome)")
        #expect(outcome.gatewaySurvived, "the gateway crashed: \(context)")
        let response = try #require(outcome.responses.first, "no response: \(context)")
        #expect(response.status == request.status, "\(context)")
        #expect(response.json?["error"] is String, "no JSON error body: \(context)")
        #expect(response.header("X-Request-Id") != nil, "no X-Request-Id: \(context)")
        #expect(outcome.closedByGateway, "the connection stayed open: \(context)")
        #expect(outcome.leakedToBackend == 0, "the request reached the backend: \(context)")
        #expect(processes.gatewayAnswersGoodRequest(), "no 200 for a good request afterwards: \(context)")
    }

    /// The gateway does not tunnel: CONNECT is a 400 with its JSON body, and the connection closes.
    @Test func connectIsRefused() throws {
        let processes = try RawRequestSuiteProcesses.current()
        let outcome = try processes.replay(
            Array("CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n".utf8), expectedResponses: 1)
        let response = try #require(outcome.responses.first, "\(outcome)")
        #expect(response.status == 400)
        #expect(response.json?["error"] is String, "\(outcome)")
        #expect(outcome.closedByGateway && outcome.leakedToBackend == 0, "\(outcome)")
    }

    @Test func headerBlockOverTheLimitGets431() throws {
        let processes = try RawRequestSuiteProcesses.current()
        // 70 lines of 1,000 bytes: 70,000 bytes against the default max_header_bytes of 65,536.
        var head = "GET /demo/echo HTTP/1.1\r\nHost: x\r\n"
        for index in 0..<70 {
            let name = "X-Filler-\(index): "
            head += name + String(repeating: "a", count: 1000 - name.utf8.count - 2) + "\r\n"
        }
        head += "\r\n"
        let outcome = try processes.replay(Array(head.utf8), expectedResponses: 1)
        let response = try #require(outcome.responses.first, "\(outcome)")
        #expect(response.status == 431, "\(outcome)")
        #expect(response.json?["error"] is String, "\(outcome)")
        #expect(outcome.closedByGateway, "\(outcome)")
        #expect(outcome.leakedToBackend == 0, "\(outcome)")

        // Just under the limit passes.
        var small = "GET /demo/echo HTTP/1.1\r\nHost: x\r\n"
        for index in 0..<60 {
            let name = "X-Filler-\(index): "
            small += name + String(repeating: "a", count: 1000 - name.utf8.count - 2) + "\r\n"
        }
        small += "\r\n"
        let fine = try processes.replay(Array(small.utf8), expectedResponses: 1, waitForClose: false)
        #expect(fine.responses.first?.status == 200, "60,000 bytes of headers: \(fine)")
    }

    @Test func goodRequestOnAFreshConnectionGets200() throws {
        let processes = try RawRequestSuiteProcesses.current()
        let response = RawHTTPClient.request("GET", "/demo/echo/fresh", port: try processes.gatewayPort(), timeout: 3)
        #expect(response.status == 200, "\(response)")
        #expect(response.json?["uri"] as? String == "/demo/echo/fresh")
    }

    /// Optional whitespace around the value is allowed (RFC 9112 5.1): these are chunked, and the
    /// backend must see exactly that framing (one `Transfer-Encoding: chunked`, no length).
    @Test(arguments: [
        ("two spaces", "Transfer-Encoding:  chunked"),
        ("tab before", "Transfer-Encoding:\tchunked"),
        ("space after", "Transfer-Encoding: chunked "),
        ("upper case", "Transfer-Encoding: CHUNKED"),
    ])
    func transferEncodingWithOptionalWhitespaceIsChunked(_ variant: (String, String)) throws {
        let processes = try RawRequestSuiteProcesses.current()
        let request =
            "POST /demo/echo/te HTTP/1.1\r\nHost: x\r\n\(variant.1)\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"
        let outcome = try processes.replay(Array(request.utf8), expectedResponses: 1, waitForClose: false)
        let response = try #require(outcome.responses.first, "\(variant.0): \(outcome)")
        #expect(response.status == 200, "\(variant.0): \(outcome)")
        let json = try #require(response.json, "\(variant.0): \(outcome)")
        #expect(json["body_bytes"] as? Int == 8, "\(variant.0): \(outcome)")
        let headers = (json["headers"] as? [[String]]) ?? []
        let framing = headers.filter { ["transfer-encoding", "content-length"].contains($0.first?.lowercased()) }
        #expect(framing.map { $0.last?.lowercased() } == ["chunked"], "\(variant.0): upstream framing \(framing)")
        #expect(outcome.leakedToBackend == 1, "\(variant.0): \(outcome)")
    }

    @Test func chunkedUploadPassesWithTheRightByteCount() throws {
        let processes = try RawRequestSuiteProcesses.current()
        let client = try RawHTTPClient.connect(port: try processes.gatewayPort(), timeout: 3)
        let total = 100_000
        let body = TestBodyPattern.bytes(offset: 0, length: total)
        var bytes = RawHTTPClient.requestHead(
            "POST", "/demo/upload", authority: client.authority, headers: [("Transfer-Encoding", "chunked")])
        // Chunks of uneven sizes, one with an extension, and a trailer.
        var offset = 0
        var sizes = [1, 17, 4096, 65536]
        while offset < total {
            let size = min(sizes.first ?? 9000, total - offset)
            if !sizes.isEmpty { sizes.removeFirst() }
            bytes += Array(String(size, radix: 16).utf8) + (offset == 1 ? Array(";name=value".utf8) : []) + [13, 10]
            bytes += body[offset..<(offset + size)] + [13, 10]
            offset += size
        }
        bytes += Array("0\r\nX-Trailer: done\r\n\r\n".utf8)
        #expect(client.send(bytes, timeout: 3))
        let response = try #require(client.readResponse(timeout: 3), "\(client.lastFailure ?? "")")
        #expect(response.status == 200, "\(response)")
        #expect(response.json?["bytes"] as? Int == total, "\(response)")
        #expect(response.json?["fnv1a"] as? String == TestBodyPattern.fnv1aHex(totalBytes: total), "\(response)")
        // The connection stays usable.
        client.sendRequest("GET", "/demo/echo/after-upload")
        #expect(client.readResponse(timeout: 3)?.json?["uri"] as? String == "/demo/echo/after-upload")
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let processes = try RawRequestSuiteProcesses.current()
        let client = try RawHTTPClient.connect(port: try processes.gatewayPort(), timeout: 3)
        let paths = ["/demo/echo/first", "/demo/echo/second", "/demo/echo/third"]
        var bytes: [UInt8] = []
        for path in paths { bytes += RawHTTPClient.requestHead("GET", path, authority: client.authority) }
        #expect(client.send(bytes, timeout: 3))  // one write: all three arrive together
        var seen: [String] = []
        for _ in paths {
            guard let response = client.readResponse(timeout: 3) else {
                seen.append("no response (\(client.lastFailure ?? "?"))")
                break
            }
            seen.append(response.json?["uri"] as? String ?? "status \(response.status)")
        }
        #expect(seen == paths)
        #expect(!client.isClosedByPeer(timeout: 0.2), "the connection closed after the pipelined requests")
        client.close()
        usleep(100_000)
        #expect(processes.gatewayIsRunning, "the gateway died: \(processes.gatewayOutputTail)")
        #expect(processes.gatewayAnswersGoodRequest())
    }

    /// A bad request pipelined behind a good one: the good one is answered, then the 400 and the
    /// close, and only the good one reaches the backend.
    @Test(arguments: [
        ("NUL in a header", "GET /demo/echo/second HTTP/1.1\r\nHost: x\r\nX-A\u{0}: b\r\n\r\n"),
        ("path climbing above /", "GET /../etc HTTP/1.1\r\nHost: x\r\n\r\n"),
        (
            "Content-Length and Transfer-Encoding",
            "POST /demo/echo/second HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
    ])
    func malformedRequestPipelinedBehindAGoodOne(_ variant: (String, String)) throws {
        let processes = try RawRequestSuiteProcesses.current()
        let good = "POST /demo/echo/first HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        let outcome = try processes.replay(Array((good + variant.1).utf8), expectedResponses: 2)
        let context = Comment(rawValue: "\(variant.0):\n\(outcome)")
        #expect(outcome.gatewaySurvived, "\(context)")
        #expect(outcome.responses.map(\.status) == [200, 400], "\(context)")
        #expect(outcome.responses.first?.json?["uri"] as? String == "/demo/echo/first", "\(context)")
        #expect(outcome.responses.last?.json?["error"] is String, "\(context)")
        #expect(outcome.closedByGateway, "\(context)")
        #expect(outcome.leakedToBackend == 1, "only the good request may reach the backend: \(context)")
    }

    /// After a request with `Connection: close`, bytes that follow are not served (RFC 9112 9.6).
    @Test func nothingIsServedAfterConnectionClose() throws {
        let processes = try RawRequestSuiteProcesses.current()
        let bytes =
            "GET /demo/echo/first HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            + "GET /demo/echo/second HTTP/1.1\r\nHost: x\r\n\r\n"
        let outcome = try processes.replay(Array(bytes.utf8), expectedResponses: 2)
        let first = try #require(outcome.responses.first, "\(outcome)")
        #expect(first.json?["uri"] as? String == "/demo/echo/first", "\(outcome)")
        #expect(first.header("Connection")?.lowercased() == "close", "\(outcome)")
        #expect(!outcome.responses.contains { $0.json?["uri"] as? String == "/demo/echo/second" }, "\(outcome)")
        #expect(outcome.closedByGateway, "\(outcome)")
        #expect(outcome.leakedToBackend == 1, "\(outcome)")
    }

    static func printable(_ bytes: [UInt8]) -> String {
        var out = ""
        for byte in bytes.prefix(300) {
            switch byte {
            case 0x0D: out += "\\r"
            case 0x0A: out += "\\n"
            case 0x09: out += "\\t"
            case 0x20..<0x7F: out += String(UnicodeScalar(byte))
            default: out += String(format: "\\x%02x", byte)
            }
        }
        return bytes.count > 300 ? out + "... (\(bytes.count) bytes)" : out
    }
}

// MARK: - Processes shared by the suite

/// The suite's demo backend and gateway: started on first use inside the suite's scope, stopped
/// when the suite ends. A gateway that dies is recorded and restarted, so one crashing case does
/// not hide the others.
final class RawRequestSuiteProcesses: @unchecked Sendable {
    @TaskLocal static var scoped: RawRequestSuiteProcesses?

    /// The scope's instance (or a fresh one outside any scope, e.g. a filtered run without the suite).
    static func current() throws -> RawRequestSuiteProcesses {
        let processes = self.scoped ?? RawRequestSuiteProcesses()
        try processes.startIfNeeded()
        return processes
    }

    struct Scope: SuiteTrait, TestScoping {
        var isRecursive: Bool { false }

        func provideScope(
            for test: Test,
            testCase: Test.Case?,
            performing function: @Sendable () async throws -> Void
        ) async throws {
            let processes = RawRequestSuiteProcesses()
            do {
                try await RawRequestSuiteProcesses.$scoped.withValue(processes) { try await function() }
            } catch {
                processes.stop()
                throw error
            }
            processes.stop()
        }
    }

    private let lock = NSLock()
    private var backend: PortcullisProcess?
    private var gateway: PortcullisProcess?

    var backendPort: Int { self.lock.withLock { self.backend?.port() ?? 0 } }

    private func startIfNeeded() throws {
        try self.lock.withLock {
            if self.backend == nil {
                self.backend = try PortcullisProcess.demoBackend()
            }
            if self.gateway?.isRunning != true {
                let port = self.backend!.port()
                // keepalive_timeout is long so no pooled connection expires during the run.
                self.gateway = try PortcullisProcess.serve(
                    configYAML: """
                        listen:
                          - address: "127.0.0.1:0"
                        upstream:
                          url: "http://127.0.0.1:\(port)"
                          keepalive_timeout: 10m
                        limits:
                          client_header_timeout: 2s
                        """,
                    // A crash ends the process at once (the runtime's message stays in the output)
                    // instead of after seconds of backtracing with the listener still open.
                    environment: ["SWIFT_BACKTRACE": "enable=no"]
                )
            }
        }
    }

    /// The gateway's port; a gateway that died is restarted first.
    func gatewayPort() throws -> Int {
        try self.startIfNeeded()
        return self.lock.withLock { self.gateway?.port() ?? 0 }
    }

    var gatewayIsRunning: Bool { self.lock.withLock { self.gateway?.isRunning ?? false } }

    /// The tail of the gateway's output, for messages after a crash.
    var gatewayOutputTail: String {
        let output = self.lock.withLock { self.gateway?.output ?? "" }
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        let interesting = lines.filter {
            $0.contains("Fatal") || $0.contains("rash") || $0.contains("Precondition") || $0.contains("error")
        }
        return interesting.prefix(6).joined(separator: "\n")
    }

    func stop() {
        self.lock.withLock {
            self.gateway?.terminate(grace: 2)
            self.backend?.terminate(grace: 2)
            self.gateway = nil
            self.backend = nil
        }
    }

    func resetBackend() {
        _ = RawHTTPClient.request("GET", "/demo/stats/reset", port: self.backendPort, timeout: 3)
    }

    /// The backend's request counter; the call itself counts as one request.
    func backendRequestCount() -> Int? {
        RawHTTPClient.request("GET", "/demo/stats", port: self.backendPort, timeout: 3).json?["requests"] as? Int
    }

    func gatewayAnswersGoodRequest() -> Bool {
        guard let port = try? self.gatewayPort() else { return false }
        return RawHTTPClient.request("GET", "/demo/echo/alive", port: port, timeout: 3).status == 200
    }

    struct Outcome: CustomStringConvertible {
        var responses: [HTTPTestResponse] = []
        var failure: String?
        var closedByGateway = false
        var gatewaySurvived = true
        var crashOutput = ""
        /// Requests the backend counted while the case ran, the test's own excluded.
        var leakedToBackend: Int?
        /// Requests the test itself caused at the backend (warm-ups, stats calls).
        var ownBackendRequests = 0

        var firstErrorDescription: String? {
            self.responses.first { $0.status >= 400 }?.json?["error_description"] as? String
        }

        var description: String {
            var parts = self.responses.map { "  response: \($0)" }
            if let failure { parts.append("  read: \(failure)") }
            parts.append(
                "  closed: \(self.closedByGateway), backend requests: \(self.leakedToBackend.map(String.init) ?? "?")")
            if !self.gatewaySurvived { parts.append("  gateway output:\n\(self.crashOutput)") }
            return parts.joined(separator: "\n")
        }
    }

    /// Sends `bytes` on a fresh connection after warming every loop's upstream pool, reads up to
    /// `expectedResponses` responses (stopping after an error response that closes), and (with
    /// `waitForClose`) waits up to 2 s for the gateway to close; then counts what the backend saw.
    func replay(
        _ bytes: [UInt8],
        expectedResponses: Int,
        waitForClose: Bool = true,
        readTimeout: Double = 3,
        requestMethod: String = "GET",
        authorize: Bool = true
    ) throws -> Outcome {
        let port = try self.gatewayPort()
        var outcome = Outcome()
        // Two good requests on fresh connections: NIO hands accepted connections to its loops
        // in turn, so each of the gateway's two loops ends with an idle upstream connection.
        for _ in 0..<2 {
            let warm = RawHTTPClient.request("GET", "/demo/echo/warm-up", port: port, timeout: 3)
            if warm.status == 200 { outcome.ownBackendRequests += 1 }
        }
        let before = self.backendRequestCount()
        outcome.ownBackendRequests += 1

        let client = try RawHTTPClient.connect(port: port, timeout: 3)
        _ = client.send(authorize ? TestIdentity.authorizing(bytes) : bytes, timeout: 3)
        while outcome.responses.count < expectedResponses {
            guard let response = client.readResponse(timeout: readTimeout, requestMethod: requestMethod) else {
                outcome.failure = client.lastFailure
                break
            }
            outcome.responses.append(response)
            if response.status >= 400 && response.header("Connection")?.lowercased() == "close" { break }
        }
        outcome.closedByGateway = client.peerClosed || (waitForClose && client.isClosedByPeer(timeout: 2))
        client.close()

        // Let a head written upstream just before the answer arrive before counting.
        usleep(30_000)
        let after = self.backendRequestCount()
        outcome.ownBackendRequests += 1
        if let before, let after { outcome.leakedToBackend = after - before - 1 }
        if outcome.responses.count < expectedResponses {
            // No answer may mean a crash still in progress.
            _ = self.lock.withLock { self.gateway }?.waitForExit(timeout: 0.3)
        }
        outcome.gatewaySurvived = self.gatewayIsRunning
        if !outcome.gatewaySurvived {
            usleep(200_000)
            outcome.crashOutput = self.gatewayOutputTail
        }
        return outcome
    }
}
