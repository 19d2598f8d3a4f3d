import NIOCore
import NIOHTTP1
import Testing

@testable import PortcullisProxy

/// `RequestParser` on its own: what it accepts, what it derives from the headers, and every
/// ambiguous form it refuses (the end-to-end tests replay the same forms through a gateway).
@Suite struct RequestParserTests {
    enum Parsed: Equatable {
        case head(method: String, uri: String)
        case body(String)
        case end
    }

    /// All events from `input`, fed in pieces of `split` bytes (0: all at once).
    static func parse(_ input: String, split: Int = 0, maxHeadBytes: Int = 65_536, maxFields: Int = 100) throws(RequestParseError)
        -> (events: [Parsed], heads: [ParsedRequestHead])
    {
        var parser = RequestParser(maxHeadBytes: maxHeadBytes, maxFields: maxFields)
        var events: [Parsed] = []
        var heads: [ParsedRequestHead] = []
        let bytes = Array(input.utf8)
        let step = split == 0 ? max(bytes.count, 1) : split
        var offset = 0
        while offset < bytes.count {
            var buffer = ByteBuffer(bytes: bytes[offset..<min(offset + step, bytes.count)])
            offset += step
            while let event = try parser.next(&buffer) {
                switch event {
                case .head(let head):
                    heads.append(head)
                    events.append(.head(method: head.method.rawValue, uri: head.uri))
                case .body(let body):
                    // Adjacent body pieces are joined: how a body is cut depends on the reads.
                    if case .body(let previous) = events.last {
                        events[events.count - 1] = .body(previous + String(buffer: body))
                    } else {
                        events.append(.body(String(buffer: body)))
                    }
                case .end:
                    events.append(.end)
                }
            }
            #expect(buffer.readableBytes == 0, "unconsumed bytes")
        }
        return (events, heads)
    }

    static func refusal(_ input: String) -> RequestParseError? {
        do throws(RequestParseError) {
            _ = try Self.parse(input)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [0, 1, 7])
    func aGetAPostWithABodyAndAChunkedPostInOneStream(split: Int) throws {
        let input =
            "GET /api/ListUsers?tenantFilter=a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n"
            + "POST /api/AddUser HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Type: application/json\r\n\r\nhello"
            + "PUT /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
            + "3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n"
        let (events, heads) = try Self.parse(input, split: split)
        #expect(
            events == [
                .head(method: "GET", uri: "/api/ListUsers?tenantFilter=a"), .end,
                .head(method: "POST", uri: "/api/AddUser"), .body("hello"), .end,
                .head(method: "PUT", uri: "/u"), .body("abcde"), .end,
            ])
        #expect(heads[0].authorization == "Bearer t" && heads[0].authorizationCount == 1)
        #expect(heads[0].fields.values("host") == ["x"])
        #expect(!heads[0].hasBody && heads[1].hasBody && heads[2].hasBody)
        #expect(heads[1].contentLength == 5 && heads[1].contentType == "application/json")
        #expect(heads[2].chunked && heads[2].contentLength == nil)
    }

    @Test func emptyLinesBeforeARequestAreSkipped() throws {
        let (events, _) = try Self.parse("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(events == [.head(method: "GET", uri: "/"), .end])
    }

    @Test func valuesAreTrimmedOfOptionalWhitespace() throws {
        let (_, heads) = try Self.parse("GET / HTTP/1.1\r\nHost:\t x \t\r\nX-Empty:\r\nContent-Length:  0 \r\n\r\n")
        #expect(heads[0].fields.values("host") == ["x"])
        #expect(heads[0].fields.values("x-empty") == [""])
        #expect(heads[0].contentLength == 0 && !heads[0].hasBody)
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade,\tCLOSE\r\n\r\n", false),
        ("GET / HTTP/1.0\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
    ])
    func keepAliveFollowsVersionAndConnection(input: String, keepAlive: Bool) throws {
        #expect(try Self.parse(input).heads[0].keepAlive == keepAlive)
    }

    @Test func expectationsAreSorted() throws {
        let ok = try Self.parse("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx").heads[0]
        #expect(ok.expectsContinue && !ok.hasUnsupportedExpectation)
        let other = try Self.parse("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, x\r\n\r\n").heads[0]
        #expect(other.hasUnsupportedExpectation)
    }

    @Test func aHeadOverTheLimitIsTooLargeEvenBeforeItEnds() throws {
        let long = "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + String(repeating: "a", count: 2000)
        for input in [long, long + "\r\n\r\n"] {
            do throws(RequestParseError) {
                _ = try Self.parse(input, split: 100, maxHeadBytes: 1024)
                Issue.record("accepted")
            } catch {
                #expect(error.kind == .headTooLarge)
            }
        }
    }

    /// A head with `Host` and `extra` more fields, all well under the byte limit.
    static func head(fields extra: Int) -> String {
        "GET / HTTP/1.1\r\nHost: x\r\n" + (0..<extra).map { "X-F\($0): v\r\n" }.joined() + "\r\n"
    }

    @Test(arguments: [0, 1, 7])
    func headerFieldsUpToTheLimitAreAccepted(split: Int) throws {
        let parsed = try Self.parse(Self.head(fields: 99), split: split, maxFields: 100)
        #expect(parsed.heads.count == 1)
        #expect(parsed.heads.first?.fields.count == 100)
    }

    @Test(arguments: [0, 1, 7])
    func oneHeaderFieldOverTheLimitIsTooManyFields(split: Int) throws {
        for (extra, limit) in [(100, 100), (5_000, 100), (3, 3)] {
            do throws(RequestParseError) {
                _ = try Self.parse(Self.head(fields: extra), split: split, maxFields: limit)
                Issue.record("\(extra + 1) fields accepted with a limit of \(limit)")
            } catch {
                #expect(error.kind == .tooManyFields, "\(error)")
            }
        }
    }

    @Test func theDefaultLimitIsAHundredFields() throws {
        var parser = RequestParser(maxHeadBytes: 65_536)
        var buffer = ByteBuffer(string: Self.head(fields: 100))
        do throws(RequestParseError) {
            _ = try parser.next(&buffer)
            Issue.record("101 fields accepted by default")
        } catch {
            #expect(error.kind == .tooManyFields)
        }
    }

    static let refused: [(String, String)] = [
        // request line
        ("lowercase method", "get / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("unknown method", "FOO / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("two spaces", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("tab separator", "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("space in target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("non-ASCII target", "GET /\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n"),
        ("HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
        ("space after version", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n"),
        ("no version", "GET /\r\nHost: x\r\n\r\n"),
        // line endings and bytes
        ("bare LF", "GET / HTTP/1.1\nHost: x\n\n"),
        ("bare CR in a value", "GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n"),
        ("bare CR ending the head", "GET / HTTP/1.1\r\nHost: x\r\n\rX\r\n\r\n"),
        ("NUL in a value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\u{0}b\r\n\r\n"),
        ("NUL in a name", "GET / HTTP/1.1\r\nHost: x\r\nX\u{0}Y: a\r\n\r\n"),
        ("vertical tab in a value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\u{0b}\r\n\r\n"),
        ("obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"),
        ("whitespace before the first header", "GET / HTTP/1.1\r\n Host: x\r\n\r\n"),
        ("space before the colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
        ("no colon", "GET / HTTP/1.1\r\nHost: x\r\nX\r\n\r\n"),
        ("empty name", "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n"),
        // Host
        ("no Host", "GET / HTTP/1.1\r\n\r\n"),
        ("two Host", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"),
        // Content-Length
        ("CL with plus", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx"),
        ("CL negative", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
        ("CL leading zero", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 01\r\n\r\nx"),
        ("CL list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\nx"),
        ("CL inner space", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 1\r\n\r\nx"),
        ("CL hex", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x1\r\n\r\nx"),
        ("CL empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n"),
        ("CL overflow", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"),
        ("CL twice, equal", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"),
        // Transfer-Encoding
        ("TE xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"),
        ("TE chunked, identity", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n"),
        ("TE gzip, chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        ("TE vertical tab", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\u{0b}chunked\r\n\r\n"),
        ("TE twice", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("TE and CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
        ("CL and TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("TE name with space", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"),
        // chunks
        ("chunk size with plus", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n+1\r\nx\r\n0\r\n\r\n"),
        ("chunk size with 0x", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\nx\r\n0\r\n\r\n"),
        ("chunk size negative", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n"),
        ("chunk size overflow", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n0\r\n\r\n"),
        ("chunk size, space", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n"),
        ("chunk size, space, extension", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1 ;a\r\nx\r\n0\r\n\r\n"),
        ("chunk size empty", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\nx\r\n0\r\n\r\n"),
        ("chunk size, bare LF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n"),
        ("chunk longer than its size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n"),
        ("extension with a control byte", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;a\u{0}\r\nx\r\n0\r\n\r\n"),
        ("obs-fold in trailers", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\n b\r\n\r\n"),
    ]

    @Test(arguments: refused)
    func ambiguousFormsAreRefused(name: String, input: String) {
        let error = Self.refusal(input)
        #expect(error?.kind == .malformed, "\(name): \(error.map { "\($0)" } ?? "accepted")")
    }

    static let invalidHosts = [
        "", "a b", "a\tb", "a@b", "user:pass@b", "@b", "x/y", "/x", "x?y", "x#y", "x%41", "a,b", "a;b", "a=b",
        "a'b", "a\"b", "a\\b", "a:", "a:0", "a:080", "a:65536", "a:123456", "a:8o", "a:-1", "a: 80", "a:80:81",
        ":80", "[::1", "[::1]x", "[::1]:", "[1]", "[]", "[::g]", "[::1%25eth0]", "[v1.x]", "a]",
        "\u{e9}.example",
    ]

    @Test(arguments: invalidHosts)
    func aHostThatIsNotAPlainAuthorityIsRefused(host: String) {
        let error = Self.refusal("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")
        #expect(error?.kind == .malformed, "\(host.debugDescription): \(error.map { "\($0)" } ?? "accepted")")
        #expect(Self.refusal("GET / HTTP/1.0\r\nHost: \(host)\r\n\r\n")?.kind == .malformed, "HTTP/1.0 \(host.debugDescription)")
    }

    @Test(arguments: [
        "x", "api.example.com", "API.Example.COM.", "a-b_c~d", "127.0.0.1", "127.0.0.1:8080", "example.com:1",
        "example.com:65535", "[::1]", "[::1]:8443", "[2001:DB8::ffff:192.0.2.1]:443", "xn--bcher-kva.example",
    ])
    func aPlainAuthorityIsAccepted(host: String) throws {
        let (_, heads) = try Self.parse("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")
        #expect(heads.first?.fields.values("Host") == [host])
    }

    /// The parser reads targets as bytes; absolute and authority forms are left to the
    /// canonical path, which refuses them (see the handler tests).
    @Test func absoluteFormTargetsAreReadAsTheyCame() throws {
        let (events, _) = try Self.parse("GET http://evil/x HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(events.first == .head(method: "GET", uri: "http://evil/x"))
    }
}

extension RequestParserTests {
    /// A head whose end has not come is refused as soon as no ending could make it valid
    /// (llhttp does the same), not after the header timeout.
    @Test(arguments: [
        "GET / HTTP/5.6",
        "GET / HTTP/1.1\r\n Host: foo",
        "GET / HTTP/1.1\r\nHost: x\rZ",
        "get / HT",
        "GET /\u{1} HT",
        "GET / HTTP/1.12",
        "GET / HTTP/1.1\r\nHost: x\nY",
    ])
    func anIncompleteHeadThatCannotBeValidIsRefusedAtOnce(input: String) {
        #expect(Self.refusal(input)?.kind == .malformed, "\(input.debugDescription) was not refused")
    }

    @Test(arguments: ["GET / HTTP/1.", "GET /a?b=c HT", "GET / HTTP/1.1\r\nHost: x\r", "\r\n", "POST"])
    func anIncompleteHeadThatMayStillBeValidWaits(input: String) throws {
        #expect(try Self.parse(input).events.isEmpty)
    }
}

extension RequestParser {
    /// The next event, the head's field memory from a pool of its own (a gateway passes its
    /// loop's, `LoopContext.fieldsPool`).
    mutating func next(_ buffer: inout ByteBuffer) throws(RequestParseError) -> Event? {
        try self.next(&buffer, fields: RequestFieldsPool())
    }
}
