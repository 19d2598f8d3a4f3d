import NIOCore
import Testing

@testable import PortcullisProxy

@Suite struct UpstreamResponseParserTests {
    /// What a response parsed into: status, body bytes, whether it ended, or the error.
    struct Outcome {
        var heads: [UpstreamResponseHead] = []
        var body = ""
        var ended = false
        var error: String?
    }

    /// Feeds `text` in pieces of `step` bytes (all at once when nil), then the end of input
    /// when `eof` is set.
    static func parse(_ text: String, isHEAD: Bool = false, step: Int? = nil, eof: Bool = false) -> Outcome {
        var parser = UpstreamResponseParser()
        parser.expectResponse(toHEAD: isHEAD)
        var outcome = Outcome()
        let bytes = Array(text.utf8)
        let size = step ?? max(bytes.count, 1)
        do {
            var offset = 0
            while offset < bytes.count {
                var buffer = ByteBuffer(bytes: bytes[offset..<min(offset + size, bytes.count)])
                offset += size
                while let event = try parser.next(&buffer) {
                    Self.record(event, into: &outcome)
                }
                #expect(buffer.readableBytes == 0 || outcome.ended)
            }
            if eof, let event = try parser.endOfInput() {
                Self.record(event, into: &outcome)
            }
        } catch {
            outcome.error = error.description
        }
        return outcome
    }

    static func record(_ event: UpstreamResponseEvent, into outcome: inout Outcome) {
        switch event {
        case .head(let head): outcome.heads.append(head)
        case .body(let buffer): outcome.body += String(buffer: buffer)
        case .end: outcome.ended = true
        }
    }

    // MARK: - Framing

    @Test(arguments: [nil, 1, 3, 7])
    func contentLengthBody(step: Int?) {
        let outcome = Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello", step: step)
        #expect(outcome.error == nil)
        #expect(outcome.heads.map(\.status) == [200])
        #expect(outcome.heads.first?.contentLength == 5)
        #expect(outcome.body == "hello")
        #expect(outcome.ended)
    }

    @Test(arguments: [nil, 1, 2, 5])
    func chunkedBodyWithExtensionsAndTrailers(step: Int?) {
        let outcome = Self.parse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5;name=value\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Checksum: 1\r\n\r\n",
            step: step
        )
        #expect(outcome.error == nil)
        #expect(outcome.heads.first?.chunked == true)
        #expect(outcome.body == "hello, world!!!")
        #expect(outcome.ended)
    }

    @Test func eofFramedBodyEndsWithTheConnection() {
        let outcome = Self.parse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", eof: true)
        #expect(outcome.error == nil)
        #expect(outcome.body == "all of it")
        #expect(outcome.ended)
    }

    @Test func truncatedBodyIsAnError() {
        let outcome = Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", eof: true)
        #expect(outcome.error != nil)
        #expect(!outcome.ended)
    }

    @Test func answerToHEADHasNoBodyWhateverItsLength() {
        let outcome = Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", isHEAD: true)
        #expect(outcome.error == nil)
        #expect(outcome.heads.first?.contentLength == 1234)
        #expect(outcome.body.isEmpty)
        #expect(outcome.ended)
    }

    @Test(arguments: [204, 304])
    func noBodyStatuses(status: Int) {
        let outcome = Self.parse("HTTP/1.1 \(status) X\r\nContent-Length: 7\r\n\r\n")
        #expect(outcome.error == nil)
        #expect(outcome.body.isEmpty)
        #expect(outcome.ended)
    }

    @Test func interimResponsesAreSkipped() {
        let outcome = Self.parse(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            step: 4
        )
        #expect(outcome.error == nil)
        #expect(outcome.heads.map(\.status) == [201])
        #expect(outcome.body == "ok")
    }

    @Test func statusLineWithoutReasonPhrase() {
        let outcome = Self.parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")
        #expect(outcome.error == nil)
        #expect(outcome.ended)
    }

    @Test func bytesAfterTheResponseAreLeftForTheCaller() throws {
        var parser = UpstreamResponseParser()
        parser.expectResponse(toHEAD: false)
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA")
        var events = 0
        while let event = try parser.next(&buffer) {
            events += 1
            if case .end = event { break }
        }
        #expect(events == 3)
        #expect(String(buffer: buffer) == "EXTRA")
        #expect(parser.isIdle)
        #expect(throws: UpstreamProtocolError.self) { try parser.next(&buffer) }
    }

    // MARK: - Keep-alive

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false),
        ("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n", false),
        ("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        ("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true),
    ])
    func keepAlive(text: String, expected: Bool) {
        let outcome = Self.parse(text)
        #expect(outcome.heads.first?.isKeepAlive == expected)
    }

    @Test func connectionNamingHeadersIsNoted() {
        let outcome = Self.parse("HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nContent-Length: 0\r\n\r\n")
        #expect(outcome.heads.first?.connectionNamesHeaders == true)
    }

    // MARK: - Refused

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3 3\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",  // no CRLF CRLF at all: refused, not waited for
        "HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: a\u{0}b\r\n\r\n",
        // Past the first eight bytes of a value too (the scan takes eight at a time).
        "HTTP/1.1 200 OK\r\nX-A: abcdefghijklmno\u{7F}p\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: abcdefghijklmnop\u{1}\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: abcdefghijklmnop\nX-B: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX\u{1}A: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 600 High\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    ])
    func ambiguousOrMalformedHeadIsRefused(text: String) {
        let outcome = Self.parse(text)
        #expect(outcome.error != nil, "accepted: \(text.debugDescription)")
        #expect(!outcome.ended)
    }

    /// The end of the head is found from LF to LF: a bare LF anywhere, and the blank line,
    /// are seen whatever the reads' boundaries.
    @Test(arguments: [1, 2, 3, 5, 64])
    func endOfHeadAndBareLFsWhateverTheSplit(step: Int) {
        let good = Self.parse("HTTP/1.1 204 No Content\r\nX-A: 1\r\nX-B: 22\r\n\r\n", step: step)
        #expect(good.error == nil)
        #expect(good.heads.map(\.status) == [204])
        #expect(good.ended)
        for text in [
            "HTTP/1.1 204 No Content\nX-A: 1\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nX-A: 1\n\r\n",
            "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\n",
            "\nHTTP/1.1 204 No Content\r\n\r\n",
        ] {
            let outcome = Self.parse(text, step: step)
            #expect(outcome.error != nil, "accepted in pieces of \(step): \(text.debugDescription)")
            #expect(outcome.heads.isEmpty)
        }
    }

    @Test(arguments: [
        "0x5\r\nhello\r\n0\r\n\r\n",
        "-5\r\nhello\r\n0\r\n\r\n",
        "\r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "5\r\nhelloXX0\r\n\r\n",
        "1000000000000000\r\n",
        "5;\u{1}\r\nhello\r\n0\r\n\r\n",
        "5\r\nhello\r\n0\r\nX: 1\n\r\n",
    ])
    func malformedChunkingIsRefused(body: String) {
        let outcome = Self.parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        #expect(outcome.error != nil, "accepted: \(body.debugDescription)")
        #expect(!outcome.ended)
    }

    @Test func headLargerThanTheLimitIsRefused() {
        let filler = String(repeating: "X-Filler: " + String(repeating: "a", count: 1000) + "\r\n", count: 70)
        let outcome = Self.parse("HTTP/1.1 200 OK\r\n" + filler, step: 4096)
        #expect(outcome.error != nil)
    }

    // MARK: - Chunk-size lines

    @Test(arguments: [0, 1, 9, 10, 15, 16, 255, 4096, 65_535, 1 << 40])
    func sizeLineIsLowercaseHexWithoutLeadingZeros(size: Int) {
        let line = String(buffer: ChunkedFraming.sizeLine(size, allocator: ByteBufferAllocator()))
        #expect(line == String(size, radix: 16) + "\r\n")
    }

    @Test func headerValueEndsBeforeItsTrailingWhitespace() {
        let outcome = Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 2 \t \r\nX-A: a b\t\r\n\r\nok")
        #expect(outcome.error == nil)
        #expect(outcome.heads.first?.contentLength == 2)
        #expect(outcome.body == "ok")
        #expect(outcome.ended)
    }
}
