import NIOCore
import Testing

@testable import PortcullisProxy

/// `RequestFields`: the parser's byte form of a request's header fields, and the upstream head
/// written from it.
@Suite struct RequestFieldsTests {
    @Test func eachFieldIsOneNormalizedLineInOrder() throws {
        let (_, heads) = try RequestParserTests.parse(
            "GET / HTTP/1.1\r\nHost: x\r\nX-A:a  \r\nx-b: \t b c\t\r\nX-Empty:\r\nx-a: second\r\n\r\n"
        )
        let fields = try #require(heads.first).fields
        #expect(String(buffer: fields.lines) == "Host: x\r\nX-A: a\r\nx-b: b c\r\nX-Empty: \r\nx-a: second\r\n")
        #expect(fields.count == 5)
        #expect(fields.pairs.map(\.name) == ["Host", "X-A", "x-b", "X-Empty", "x-a"])
        #expect(fields.values("X-A") == ["a", "second"])
        #expect(fields.values("x-empty") == [""])
        #expect(fields.values("x-missing") == [])
    }

    /// The parser reuses one head's memory for the next: a head still held (a pipelined
    /// request, an inspected body) keeps its own fields.
    @Test(arguments: [0, 1, 5])
    func aHeadKeptWhileTheNextIsParsedKeepsItsFields(split: Int) throws {
        let (_, heads) = try RequestParserTests.parse(
            "GET /1 HTTP/1.1\r\nHost: one\r\nX-N: 1\r\n\r\n"
                + "GET /2 HTTP/1.1\r\nHost: two\r\nX-N: 2\r\nX-More: yes\r\n\r\n"
                + "GET /3 HTTP/1.1\r\nHost: three\r\n\r\n",
            split: split
        )
        #expect(heads.map { $0.fields.pairs.map { "\($0.name)=\($0.value)" } } == [
            ["Host=one", "X-N=1"],
            ["Host=two", "X-N=2", "X-More=yes"],
            ["Host=three"],
        ])
    }

    @Test func memoryIsReusedWhenSmallAndDroppedWhenLarge() {
        let pool = RequestFieldsPool()
        var fields = RequestFields([("Host", "x")])
        let small = fields.lines.capacity
        pool.give(fields)
        fields = pool.take()
        #expect(fields.isEmpty && fields.lines.readableBytes == 0)
        #expect(fields.lines.capacity == small)
        #expect(pool.count == 0)

        let big = String(repeating: "v", count: 10_000)
        fields = RequestFields([("X-Big", big)])
        #expect(fields.lines.capacity > 4096)
        pool.give(fields)
        #expect(pool.count == 0, "a large head's memory is not kept")
        #expect(fields.values("x-big") == [big], "the fields themselves are untouched")
        for _ in 0..<(RequestFieldsPool.maxKept + 5) { pool.give(RequestFields([("Host", "x")])) }
        #expect(pool.count == RequestFieldsPool.maxKept)
    }

    /// A connection between requests holds no field memory: the parser gives it to the
    /// loop's pool when the request ends, and the next head takes it from there.
    @Test(arguments: ["", "Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n"])
    func fieldMemoryGoesBackToThePoolWhenTheRequestEnds(framing: String) throws {
        let body = framing.isEmpty ? "" : framing.hasPrefix("Content") ? "abc" : "3\r\nabc\r\n0\r\n\r\n"
        let pool = RequestFieldsPool()
        var parser = RequestParser(maxHeadBytes: 8192)
        var bytes = ByteBuffer(string: "POST /1 HTTP/1.1\r\nHost: one\r\n\(framing)X-N: 1\r\n\r\n\(body)")
        var head: ParsedRequestHead?
        while let event = try parser.next(&bytes, fields: pool) {
            switch event {
            case .head(let parsed):
                head = parsed
                #expect(pool.count == 0, "the head's fields are in use")
            case .body: #expect(pool.count == 0)
            case .end: break
            }
        }
        #expect(pool.count == 1)
        #expect(try #require(head).fields.values("x-n") == ["1"])
        bytes = ByteBuffer(string: "GET /2 HTTP/1.1\r\nHost: two\r\n\r\n")
        let next = try parser.next(&bytes, fields: pool)
        guard case .head(let second) = next else { Issue.record("\(String(describing: next))"); return }
        #expect(pool.count == 0, "the next head took it")
        #expect(second.fields.pairs.map(\.name) == ["Host"])
        #expect(try #require(head).fields.values("x-n") == ["1"], "a head still held keeps its own fields")
    }

    /// Kept lines are copied in runs; a dropped field between two kept ones must not leak
    /// into the run, nor a kept field after 64 of them be lost.
    @Test func droppedFieldsBetweenKeptOnesAndPastSixtyFour() {
        var pairs: [(String, String)] = [("Host", "client.example"), ("X-A", "1"), ("Authorization", "Bearer secret"), ("X-B", "2")]
        for index in 0..<70 { pairs.append(("X-\(index)", "\(index)")) }
        pairs.append(("X-Forwarded-For", "6.6.6.6"))
        pairs.append(("X-Last", "z"))
        var out = ByteBuffer()
        HeaderRewriter.writeUpstreamHead(
            method: .GET, uri: "/", fields: RequestFields(pairs), HeaderRewriterTests.forwarding(), into: &out
        )
        let head = String(buffer: out)
        #expect(!head.contains("secret"))
        #expect(!head.contains("6.6.6.6"))
        #expect(head.contains("X-A: 1\r\nX-B: 2\r\nX-0: 0\r\n"))
        #expect(head.contains("X-69: 69\r\nX-Last: z\r\n"))
        #expect(head.contains("X-Forwarded-Host: client.example\r\n"))
    }
}
