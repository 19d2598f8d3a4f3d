import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import PortcullisPolicy
import Testing

@testable import PortcullisProxy

/// The connection handler on an `EmbeddedChannel`, in the pipeline `GatewayServer` builds.
///
/// Only paths that answer without the upstream can run here: leasing an upstream connection
/// builds a `ClientBootstrap`, which cannot run on an `EmbeddedEventLoop`.
@Suite struct ClientConnectionHandlerTests {
    struct Harness {
        let channel: EmbeddedChannel
        let loop: LoopContext

        /// `extra` is appended to the config (e.g. a built-in issuer); `builtin` gives the
        /// settings the built-in issuer's runtime, as `GatewayServer.start` does.
        /// `connector` opens the upstream connections (`FakeUpstreams` for in-memory ones).
        init(
            limits: String = "",
            extra: String = "",
            upstreamExtra: String = "",
            builtin: Bool = false,
            connector: any UpstreamConnector = SocketConnector()
        ) throws {
            let config: GatewayConfig
            do throws(ConfigErrors) {
                config = try ConfigLoader.load(
                    sources: [
                        (
                            file: "test.yaml",
                            text: """
                                listen:
                                  - address: "127.0.0.1:0"
                                upstream:
                                  url: "http://127.0.0.1:1"
                                  connect_timeout: 1s
                                \(upstreamExtra)
                                \(limits.isEmpty ? "" : "limits:\n" + limits)
                                \(extra)
                                """
                        )
                    ],
                    directory: "/tmp"
                )
            } catch {
                Issue.record("test config failed: \(error)")
                throw error
            }
            let runtime = builtin ? try BuiltinIssuerRuntime.make(config, logger: Logger(label: "test")) : nil
            let settings = try ProxySettings(config, builtin: runtime)

            let channel = EmbeddedChannel()
            channel.remoteAddress = try SocketAddress(ipAddress: "203.0.113.9", port: 40_000)
            try channel.connect(to: channel.remoteAddress!).wait()
            let loop = LoopContext(eventLoop: channel.embeddedEventLoop, settings: settings, connector: connector)
            try GatewayServer.addClientHandlers(to: channel.pipeline.syncOperations, loop: loop, peer: channel.remoteAddress, maxHeadBytes: config.limits.maxHeaderBytes)
            self.channel = channel
            self.loop = loop
        }

        func send(_ text: String) throws {
            try self.channel.writeInbound(ByteBuffer(string: text))
        }

        /// Everything written to the socket so far, as one string. Runs the loop's pending
        /// tasks first: on a busy loop a response that keeps the connection open is flushed at
        /// the end of the loop tick (`LoopContext.flushAtTickEnd`).
        func written() throws -> String {
            self.channel.embeddedEventLoop.run()
            var all = ByteBuffer()
            while let buffer = try self.channel.readOutbound(as: ByteBuffer.self) {
                all.writeImmutableBuffer(buffer)
            }
            return String(buffer: all)
        }

        func response() throws -> RawResponse {
            try RawResponse(try self.written())
        }

        /// The handler's timers run on the wall clock, so let it pass the deadline, then
        /// bring the embedded loop's clock up to it.
        /// Moves the loop's clock just past `amount`: timeouts are tested without sleeping.
        func waitPast(_ amount: TimeAmount) {
            self.channel.embeddedEventLoop.advanceTime(by: amount + .milliseconds(1))
        }

        func finish() throws {
            _ = try self.channel.finish(acceptAlreadyClosed: true)
        }

        /// The access-log reasons of the requests finished so far, with their counts.
        var reasons: [String: Int] {
            let snapshot = self.loop.metrics.snapshot(tokenCacheHits: 0, tokenCacheMisses: 0, upstreamConnections: 0)
            return snapshot.requests.reduce(into: [:]) { $0[$1.key.reason, default: 0] += $1.value }
        }
    }

    /// A response as the client reads it from the socket.
    struct RawResponse {
        var statusLine: String
        var headers: [(String, String)]
        var body: String
        var rest: String

        init(_ text: String) throws {
            let split = try #require(text.range(of: "\r\n\r\n"), "no complete head in \(text.debugDescription)")
            var lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
            self.statusLine = lines.removeFirst()
            self.headers = lines.map { line in
                let colon = line.firstIndex(of: ":") ?? line.endIndex
                return (
                    String(line[..<colon]),
                    String(line[colon...].dropFirst()).trimmingCharacters(in: .whitespaces)
                )
            }
            let remainder = text[split.upperBound...]
            let length = Int(self.headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "") ?? 0
            let body = remainder.utf8.prefix(length)
            self.body = String(decoding: body, as: UTF8.self)
            self.rest = String(decoding: remainder.utf8.dropFirst(length), as: UTF8.self)
        }

        func header(_ name: String) -> [String] {
            self.headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
        }

        func json() throws -> [String: Any] {
            let object = try JSONSerialization.jsonObject(with: Data(self.body.utf8))
            return try #require(object as? [String: Any])
        }

        /// The shape every answer of the gateway has: JSON error, request id in body and header.
        func expectGatewayError(
            _ status: String,
            error: String,
            close: Bool = true,
            allowingBytesAfter: Bool = false,
            sourceLocation: Testing.SourceLocation = #_sourceLocation
        ) throws {
            #expect(self.statusLine == "HTTP/1.1 \(status)", sourceLocation: sourceLocation)
            let object = try self.json()
            #expect(object["error"] as? String == error, "\(self.body)", sourceLocation: sourceLocation)
            #expect(object["error_description"] is String, sourceLocation: sourceLocation)
            let id = try #require(object["request_id"] as? String, sourceLocation: sourceLocation)
            #expect(id.count == 32, sourceLocation: sourceLocation)
            #expect(self.header("X-Request-Id") == [id], sourceLocation: sourceLocation)
            #expect(self.header("Content-Type") == ["application/json"], sourceLocation: sourceLocation)
            #expect(self.header("Content-Length") == [String(self.body.utf8.count)], sourceLocation: sourceLocation)
            #expect(self.header("Connection") == (close ? ["close"] : []), sourceLocation: sourceLocation)
            #expect(allowingBytesAfter || self.rest.isEmpty, "bytes after the response: \(self.rest.debugDescription)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - Requests refused before the upstream

    @Test(arguments: ["/../etc/passwd", "/api/../../etc/passwd", "/a/%2e%2e/%2E%2E/b", "/.."])
    func pathClimbingAboveRootIs400AndCloses(path: String) throws {
        let harness = try Harness()
        try harness.send("GET \(path) HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        let response = try harness.response()
        try response.expectGatewayError("400 Bad Request", error: "bad_request")
        #expect(try response.json()["error_description"] as? String == "path climbs above /")
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    // MARK: - Path firewall (before the bearer token: no token needed to be refused)

    @Test(arguments: [
        ("/x/..;/admin/y", "path_semicolon", "';' in path"),
        ("/admin;x/y", "path_semicolon", "';' in path"),
        ("/admin%3Bx/y", "path_semicolon", "';' in path"),
        ("/%2561dmin/x", "path_encoded_percent", "encoded '%' (%25) in path"),
        ("/admin%C0%AF/x", "path_non_ascii", "byte outside ASCII in path"),
        ("/admin./x", "path_trailing_dot", "path segment ending in '.'"),
        ("/admin%2e/x?q=1", "path_trailing_dot", "path segment ending in '.'"),
    ])
    func aPathFormBackendsReadDifferentlyIs400WithItsOwnReason(path: String, reason: String, description: String) throws {
        let harness = try Harness()
        try harness.send("GET \(path) HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        let response = try harness.response()
        try response.expectGatewayError("400 Bad Request", error: "bad_request")
        #expect(try response.json()["error_description"] as? String == description)
        #expect(!harness.channel.isActive)
        #expect(harness.reasons == [reason: 1])
        try harness.finish()
    }

    @Test(arguments: [
        ("allow_semicolon", "/x/..;/admin/y"),
        ("allow_encoded_percent", "/%2561dmin/x"),
        ("allow_non_ascii", "/caf%C3%A9"),
        ("allow_trailing_dot", "/admin./x"),
    ])
    func anOptedOutFormGoesOnToTheBearerToken(key: String, path: String) throws {
        let harness = try Harness(extra: "path_firewall:\n  \(key): true\n")
        try harness.send("GET \(path) HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        try harness.response().expectGatewayError("401 Unauthorized", error: "unauthorized", close: false)
        #expect(harness.reasons == ["missing_token": 1])
        try harness.finish()
    }

    // MARK: - Header count

    @Test func moreHeaderFieldsThanTheLimitIs431() throws {
        let harness = try Harness(limits: "  max_header_count: 10\n")
        let fields = (0..<10).map { "X-F\($0): v\r\n" }.joined()
        try harness.send("GET /api/ListUsers HTTP/1.1\r\nHost: api.example.com\r\n\(fields)\r\n")
        let response = try harness.response()
        try response.expectGatewayError("431 Request Header Fields Too Large", error: "request_header_too_large")
        #expect(!harness.channel.isActive)
        #expect(harness.reasons == ["too_many_headers": 1])
        try harness.finish()
    }

    @Test func headerFieldsUpToTheLimitAreRead() throws {
        let harness = try Harness(limits: "  max_header_count: 10\n")
        let fields = (0..<9).map { "X-F\($0): v\r\n" }.joined()
        try harness.send("GET /api/ListUsers HTTP/1.1\r\nHost: api.example.com\r\n\(fields)\r\n")
        try harness.response().expectGatewayError("401 Unauthorized", error: "unauthorized", close: false)
        try harness.finish()
    }

    @Test func theDefaultHeaderCountLimitIsAHundred() throws {
        let harness = try Harness()
        let fields = (0..<100).map { "X-F\($0): v\r\n" }.joined()
        try harness.send("GET /api/ListUsers HTTP/1.1\r\nHost: api.example.com\r\n\(fields)\r\n")
        try harness.response().expectGatewayError("431 Request Header Fields Too Large", error: "request_header_too_large")
        try harness.finish()
    }

    // MARK: - Bearer tokens (the harness config has no issuer: no token can pass)

    @Test func noTokenIs401WithTheBareChallengeAndTheConnectionStaysOpen() throws {
        let harness = try Harness()
        try harness.send("GET /api/ListUsers HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        let response = try harness.response()
        try response.expectGatewayError("401 Unauthorized", error: "unauthorized", close: false)
        #expect(response.header("WWW-Authenticate") == [#"Bearer realm="portcullis""#])
        #expect(harness.channel.isActive)
        // The next request on the same connection is read and answered too.
        try harness.send("HEAD /api/ListUsers HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer abc.def.ghi\r\n\r\n")
        let second = try harness.written()
        #expect(second.hasPrefix("HTTP/1.1 401 Unauthorized\r\n"), "\(second)")
        #expect(second.contains(#"WWW-Authenticate: Bearer realm="portcullis", error="invalid_token""#), "\(second)")
        #expect(second.hasSuffix("\r\n\r\n"), "an answer to HEAD has no body: \(second)")
        try harness.finish()
    }

    /// A response finished in the tick a graceful stop begins in is still flushed at the end of
    /// the tick: the idle connection it leaves must not be closed with the response unsent.
    @Test func aDrainRightAfterAResponseStillSendsIt() throws {
        let harness = try Harness()
        // A busy loop, whose flushes wait for the end of the tick (a quiet one flushes at once).
        harness.loop.averageFlushRequests = 8 * LoopContext.batchingThreshold
        try harness.send("GET /api/ListUsers HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        // Same tick: the response's flush has not run yet when the drain closes idle connections.
        _ = harness.loop.startDraining()
        let response = try harness.response()
        try response.expectGatewayError("401 Unauthorized", error: "unauthorized", close: false)
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test(arguments: ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "bearer\ttoken"])
    func aCredentialThatIsNoBearerTokenIs401InvalidToken(value: String) throws {
        let harness = try Harness()
        try harness.send("GET /api/ListUsers HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: \(value)\r\n\r\n")
        let response = try harness.response()
        try response.expectGatewayError("401 Unauthorized", error: "invalid_token", close: false)
        try harness.finish()
    }

    @Test func relativeRequestTargetIs400() throws {
        let harness = try Harness()
        try harness.send("GET api/ListUsers HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        try harness.response().expectGatewayError("400 Bad Request", error: "bad_request")
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test(arguments: ["gzip, chunked", "identity", "GZIP ,  chunked"])
    func transferEncodingOtherThanChunkedIs400(encoding: String) throws {
        let harness = try Harness()
        try harness.send(
            "POST /api/ExecResetPass HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: \(encoding)\r\n\r\n0\r\n\r\n"
        )
        let response = try harness.response()
        try response.expectGatewayError("400 Bad Request", error: "bad_request")
        #expect(try response.json()["error_description"] as? String == "only Transfer-Encoding: chunked is accepted", "\(response.body)")
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test(arguments: ["chunked, chunked", "chunked, gzip", "Chunked, gzip, chunked"])
    func transferEncodingTheParserRefusesIs400(encoding: String) throws {
        let harness = try Harness()
        try harness.send(
            "POST /api/ExecResetPass HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: \(encoding)\r\n\r\n0\r\n\r\n"
        )
        try harness.response().expectGatewayError("400 Bad Request", error: "bad_request")
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test func twoTransferEncodingHeadersAre400() throws {
        let harness = try Harness()
        try harness.send(
            "POST /api/x HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        try harness.response().expectGatewayError("400 Bad Request", error: "bad_request")
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test func transferEncodingInHTTP10Is400() throws {
        let harness = try Harness()
        try harness.send("POST /api/x HTTP/1.0\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        let written = try harness.written()
        // Either llhttp refuses it or the gateway does; both must answer 400 and close.
        #expect(written.hasPrefix("HTTP/1.0 400 Bad Request\r\n") || written.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(written)")
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test(arguments: ["something", "100-continue, something", "200-ok"])
    func unsupportedExpectationIs417(expect: String) throws {
        let harness = try Harness()
        try harness.send(
            "POST /api/x HTTP/1.1\r\nHost: api.example.com\r\nExpect: \(expect)\r\nContent-Length: 2\r\n\r\n{}"
        )
        let response = try harness.response()
        try response.expectGatewayError("417 Expectation Failed", error: "expectation_failed")
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test func garbageIs400() throws {
        let harness = try Harness()
        try harness.send("GARBAGE\r\n\r\n")
        let response = try harness.response()
        try response.expectGatewayError("400 Bad Request", error: "bad_request")
        #expect(try response.json()["error_description"] as? String == "malformed method")
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test func contentLengthWithChunkedIs400() throws {
        let harness = try Harness()
        try harness.send(
            "POST /api/x HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        let response = try harness.response()
        try response.expectGatewayError("400 Bad Request", error: "bad_request")
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test func overlongHeaderBlockIs431() throws {
        let harness = try Harness(limits: "  max_header_bytes: 1024\n")
        let filler = (0..<40).map { "X-Filler-\($0): \(String(repeating: "a", count: 40))\r\n" }.joined()
        try harness.send("GET /api/ListUsers HTTP/1.1\r\nHost: api.example.com\r\n\(filler)\r\n")
        let response = try harness.response()
        try response.expectGatewayError("431 Request Header Fields Too Large", error: "request_header_too_large")
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test func overlongSingleHeaderIs431() throws {
        let harness = try Harness(limits: "  max_header_bytes: 1024\n")
        try harness.send("GET / HTTP/1.1\r\nHost: api.example.com\r\nCookie: \(String(repeating: "c", count: 2000))\r\n\r\n")
        try harness.response().expectGatewayError("431 Request Header Fields Too Large", error: "request_header_too_large")
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test func requestHeadArrivingInPiecesIsStillAnswered() throws {
        let harness = try Harness()
        for piece in ["GET /../x HT", "TP/1.1\r\nHo", "st: api.example.com\r", "\n\r\n"] {
            try harness.send(piece)
        }
        try harness.response().expectGatewayError("400 Bad Request", error: "bad_request")
        try harness.finish()
    }

    @Test func eachLocalAnswerHasItsOwnRequestID() throws {
        var ids: Set<String> = []
        for _ in 0..<3 {
            let harness = try Harness()
            try harness.send("GET /.. HTTP/1.1\r\nHost: x\r\n\r\n")
            ids.formUnion(try harness.response().header("X-Request-Id"))
            try harness.finish()
        }
        #expect(ids.count == 3)
    }

    @Test func drainingClosesAnIdleConnectionAtOnce() throws {
        let harness = try Harness()
        let drained = harness.loop.startDraining()
        harness.channel.embeddedEventLoop.run()
        #expect(!harness.channel.isActive)
        #expect(try harness.written().isEmpty)
        try drained.wait()
        try harness.finish()
    }

    @Test func http10RequestIsAnsweredInHTTP10() throws {
        let harness = try Harness()
        try harness.send("GET /.. HTTP/1.0\r\nHost: api.example.com\r\n\r\n")
        let response = try harness.response()
        #expect(response.statusLine == "HTTP/1.0 400 Bad Request")
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    // MARK: - Header timeout

    @Test func idleConnectionIsClosedQuietlyAfterTheHeaderTimeout() throws {
        let harness = try Harness(limits: "  client_header_timeout: 50ms\n")
        harness.channel.embeddedEventLoop.run()
        #expect(harness.channel.isActive)
        harness.waitPast(.milliseconds(50))
        #expect(!harness.channel.isActive)
        #expect(try harness.written().isEmpty)
        try harness.finish()
    }

    /// The loop keeps every connection's deadline in one heap behind one task: each closes at
    /// its own deadline, and one that leaves early takes only its own with it.
    @Test func connectionsOfOneLoopCloseEachAtItsOwnDeadline() throws {
        let harness = try Harness(limits: "  client_header_timeout: 10s\n")
        let loop = harness.channel.embeddedEventLoop
        func connect() throws -> EmbeddedChannel {
            let channel = EmbeddedChannel(loop: loop)
            channel.remoteAddress = try SocketAddress(ipAddress: "203.0.113.10", port: 40_001)
            try channel.connect(to: channel.remoteAddress!).wait()
            try GatewayServer.addClientHandlers(to: channel.pipeline.syncOperations, loop: harness.loop, peer: channel.remoteAddress, maxHeadBytes: 8192)
            return channel
        }
        loop.advanceTime(by: .seconds(4))
        let second = try connect()
        loop.advanceTime(by: .seconds(2))
        let third = try connect()
        _ = try third.close().wait()
        loop.advanceTime(by: .seconds(4) - .milliseconds(1))
        #expect(harness.channel.isActive && second.isActive)
        loop.advanceTime(by: .milliseconds(2))
        #expect(!harness.channel.isActive, "the first closes 10 s after its accept")
        #expect(second.isActive)
        loop.advanceTime(by: .seconds(4) - .milliseconds(2))
        #expect(second.isActive)
        loop.advanceTime(by: .milliseconds(2))
        #expect(!second.isActive, "the second closes 10 s after its own accept")
        _ = try second.finish(acceptAlreadyClosed: true)
        try harness.finish()
    }

    @Test func connectionIsNotClosedBeforeTheHeaderTimeout() throws {
        let harness = try Harness(limits: "  client_header_timeout: 10s\n")
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(harness.channel.isActive)
        harness.waitPast(.seconds(1))
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test func partialRequestHeadIs408AfterTheHeaderTimeout() throws {
        let harness = try Harness(limits: "  client_header_timeout: 50ms\n")
        try harness.send("GET /api/ListUsers HTTP/1.1\r\nHost: api.exa")
        #expect(try harness.written().isEmpty)
        #expect(harness.channel.isActive)
        harness.waitPast(.milliseconds(50))
        // EmbeddedChannel keeps writes made after close (a socket drops them): on close the
        // decoder reports the cut-off head, and the handler answers that too. Only the first
        // response is what a client can see.
        let response = try harness.response()
        try response.expectGatewayError("408 Request Timeout", error: "request_timeout", allowingBytesAfter: true)
        #expect(!harness.channel.isActive)
        try harness.finish()
    }

    @Test func partialRequestLineIs408AfterTheHeaderTimeout() throws {
        let harness = try Harness(limits: "  client_header_timeout: 50ms\n")
        try harness.send("G")
        harness.waitPast(.milliseconds(50))
        try harness.response().expectGatewayError("408 Request Timeout", error: "request_timeout", allowingBytesAfter: true)
        #expect(!harness.channel.isActive)
        try harness.finish()
    }
}
