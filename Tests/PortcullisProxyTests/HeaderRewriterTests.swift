import NIOCore
import NIOHTTP1
import Testing

@testable import PortcullisProxy

@Suite struct HeaderRewriterTests {
    static func forwarding(chunked: Bool = false) -> HeaderRewriter.Forwarding {
        HeaderRewriter.Forwarding(
            authority: "backend.internal:9000",
            proto: "https",
            forwardedFor: "203.0.113.5, 10.0.0.1",
            requestID: "0123456789abcdef0123456789abcdef",
            chunked: chunked,
            clientID: "psa-sync",
            clientName: "PSA ticket sync"
        )
    }

    static func upstream(
        _ pairs: [(String, String)],
        chunked: Bool = false,
        dropsUnderscoredNames: Bool = false,
        credentialHeaderName: String? = nil
    ) -> [(String, String)] {
        var out = ByteBuffer()
        var forwarding = Self.forwarding(chunked: chunked)
        forwarding.dropsUnderscoredNames = dropsUnderscoredNames
        forwarding.credentialHeaderName = credentialHeaderName
        HeaderRewriter.writeUpstreamHead(
            method: .GET,
            uri: "/api/ListUsers",
            fields: RequestFields(pairs),
            forwarding,
            into: &out
        )
        let (first, fields) = Self.fields(out)
        #expect(first == "GET /api/ListUsers HTTP/1.1")
        return fields
    }

    /// The first line and the header fields of a written head.
    static func fields(_ head: ByteBuffer) -> (String, [(String, String)]) {
        let text = String(buffer: head)
        #expect(text.hasSuffix("\r\n\r\n"), "\(text)")
        var lines = text.components(separatedBy: "\r\n")
        lines.removeLast(2)
        let first = lines.removeFirst()
        return (
            first,
            lines.map { line in
                let colon = line.firstIndex(of: ":")!
                return (String(line[..<colon]), String(line[line.index(after: colon)...].dropFirst()))
            }
        )
    }

    /// The headers Portcullis adds to every upstream request, after the caller's.
    static let added: [(String, String)] = [
        ("Host", "backend.internal:9000"),
        ("X-Forwarded-For", "203.0.113.5, 10.0.0.1"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "api.example.com"),
        ("X-Request-Id", "0123456789abcdef0123456789abcdef"),
        ("X-Portcullis-Client-Id", "psa-sync"),
        ("X-Portcullis-Client-Name", "PSA ticket sync"),
    ]

    static func same(_ a: [(String, String)], _ b: [(String, String)]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    // MARK: - Upstream

    @Test func endToEndHeadersKeepTheirOrderAndGatewayHeadersAreAdded() {
        let kept: [(String, String)] = [
            ("Accept", "application/json"),
            ("User-Agent", "curl/8.5.0"),
            ("Content-Type", "application/json"),
            ("Content-Length", "17"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
            ("X-Custom", "kept"),
        ]
        let out = Self.upstream([("Host", "api.example.com")] + kept)
        let expected = kept + Self.added
        #expect(Self.same(out, expected), "\(out)")
    }

    @Test(arguments: [
        "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
        "Proxy-Authorization", "Authorization", "Expect", "X-Forwarded-For", "X-Forwarded-Proto",
        "X-Forwarded-Host", "Forwarded", "X-Real-IP", "X-Request-Id", "X-Portcullis-Client-Id",
        "X-Portcullis-Client-Name", "X-Portcullis-Anything", "x-ms-client-principal",
        "x-ms-client-principal-id", "x-ms-client-principal-name", "X-MS-CLIENT-PRINCIPAL-IDP",
        "X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method",
    ])
    func clientSentHeaderIsDropped(name: String) {
        for spelling in [name, name.lowercased(), name.uppercased()] {
            let out = Self.upstream([("Host", "api.example.com"), (spelling, "from-client"), ("Accept", "*/*")])
            #expect(!out.contains { $0.1 == "from-client" }, "\(spelling) survived: \(out)")
            #expect(Self.same(out, [("Accept", "*/*")] + Self.added), "\(out)")
        }
    }

    @Test(arguments: [
        "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Portcullis", "X-Portcullisx", "x-ms-client", "X-Request",
        "X-Real-IPs", "Authorization2", "Proxy-Authenticate", "Tea", "Host2", "Content-Length-X",
        "X-HTTP-Methods", "X-HTTP-Method-Overrides", "X-Method", "X-Method-Overrid", "X-HTTP-Method-Overrid",
    ])
    func lookalikeHeaderIsKept(name: String) {
        let out = Self.upstream([("Host", "api.example.com"), (name, "kept")])
        #expect(out.contains { $0.0 == name && $0.1 == "kept" }, "\(name) was dropped: \(out)")
    }

    /// CGI, WSGI, PHP and many frameworks read `_` and `-` alike (`HTTP_X_FORWARDED_FOR`).
    @Test(arguments: [
        "X_Forwarded_For", "x_forwarded_for", "X-Forwarded_For", "X_FORWARDED_PROTO", "X_Forwarded_Host",
        "X_Request_Id", "X_Real_IP", "X_Portcullis_Client_Id", "X_Portcullis_Client_Name", "x_portcullis-anything",
        "X_MS_CLIENT_PRINCIPAL", "x_ms_client_principal_id", "X_HTTP_Method_Override", "X_Method_Override",
        "X_HTTP_Method", "Proxy_Authorization", "Proxy_Connection", "Keep_Alive", "Transfer_Encoding",
    ])
    func aNameThatReadsAsADroppedHeaderWithUnderscoresIsDropped(name: String) {
        let out = Self.upstream([("Host", "api.example.com"), (name, "from-client"), ("Accept", "*/*")])
        #expect(!out.contains { $0.1 == "from-client" }, "\(name) survived: \(out)")
        #expect(Self.same(out, [("Accept", "*/*")] + Self.added), "\(out)")
    }

    @Test func aNameThatReadsAsTheUpstreamCredentialHeaderIsDropped() {
        let out = Self.upstream(
            [("Host", "api.example.com"), ("X_Functions_Key", "from-client"), ("x-functions_key", "from-client")],
            credentialHeaderName: "x-functions-key"
        )
        #expect(!out.contains { $0.1 == "from-client" }, "\(out)")
    }

    @Test(arguments: ["X_Custom_Trace", "Accept_Language", "X_Forwarded_Fore", "X_Portcullis", "Content_Type"])
    func otherNamesWithUnderscoresAreKeptUnlessAllAreDropped(name: String) {
        let kept = Self.upstream([("Host", "api.example.com"), (name, "kept"), ("X-Plain", "kept")])
        #expect(kept.contains { $0.0 == name && $0.1 == "kept" }, "\(name) was dropped: \(kept)")
        let dropped = Self.upstream([("Host", "api.example.com"), (name, "kept"), ("X-Plain", "kept")], dropsUnderscoredNames: true)
        #expect(!dropped.contains { $0.0 == name }, "\(name) survived: \(dropped)")
        #expect(Self.same(dropped, [("X-Plain", "kept")] + Self.added), "\(dropped)")
    }

    @Test func methodOverridesNeverReachTheBackendWhateverTheirCaseOrCount() {
        var out = ByteBuffer()
        HeaderRewriter.writeUpstreamHead(
            method: .GET,
            uri: "/api/ListUsers",
            fields: RequestFields([
                ("Host", "api.example.com"),
                ("X-HTTP-Method-Override", "DELETE"),
                ("x-http-method-override", "PUT"),
                ("X-METHOD-OVERRIDE", "DELETE"),
                ("x-Http-Method", "PATCH"),
                ("Accept", "*/*"),
            ]),
            Self.forwarding(),
            into: &out
        )
        let (first, fields) = Self.fields(out)
        #expect(first == "GET /api/ListUsers HTTP/1.1")
        #expect(Self.same(fields, [("Accept", "*/*")] + Self.added), "\(fields)")
    }

    @Test func headersNamedInConnectionAreRemovedCaseInsensitively() {
        let out = Self.upstream([
            ("Host", "api.example.com"),
            ("Connection", "X-Hop-One, x-HOP-two ,"),
            ("X-Hop-One", "1"),
            ("x-hop-two", "2"),
            ("X-HOP-TWO", "2b"),
            ("connection", "  x-hop-three\t"),
            ("X-Hop-Three", "3"),
            ("X-Hop-Four", "4"),
            ("Accept", "*/*"),
        ])
        #expect(Self.same(out, [("X-Hop-Four", "4"), ("Accept", "*/*")] + Self.added), "\(out)")
    }

    @Test func connectionTokensCannotRemoveFramingOrHost() {
        let out = Self.upstream([
            ("Host", "api.example.com"),
            ("Content-Length", "5"),
            ("Connection", "host, Content-Length, keep-alive, close, x-request-id, x-forwarded-for"),
        ])
        #expect(Self.same(out, [("Content-Length", "5")] + Self.added), "\(out)")
    }

    @Test func chunkedIsSetOnlyWhenAsked() {
        let headers: [(String, String)] = [("Host", "api.example.com"), ("Transfer-Encoding", "gzip, chunked")]
        let chunked = Self.upstream(headers, chunked: true)
        #expect(Self.same(chunked, [Self.added[0], ("Transfer-Encoding", "chunked")] + Self.added.dropFirst()), "\(chunked)")
        let plain = Self.upstream(headers, chunked: false)
        #expect(!plain.contains { $0.0.lowercased() == "transfer-encoding" }, "\(plain)")
    }

    @Test func withoutHostThereIsNoForwardedHost() {
        let out = Self.upstream([("Accept", "*/*")])
        #expect(out.contains { $0.0 == "Host" && $0.1 == "backend.internal:9000" }, "\(out)")
        #expect(!out.contains { $0.0 == "X-Forwarded-Host" }, "\(out)")
        #expect(out.filter { $0.0 == "Host" }.count == 1)
    }

    @Test func forwardedHostCarriesTheOriginalHostWithPort() {
        let out = Self.upstream([("host", "API.example.com:8443")])
        #expect(out.contains { $0.0 == "X-Forwarded-Host" && $0.1 == "API.example.com:8443" })
        #expect(out.filter { $0.0.lowercased() == "host" }.map(\.1) == ["backend.internal:9000"])
    }

    @Test func everyGatewayHeaderAppearsExactlyOnce() {
        let out = Self.upstream([
            ("Host", "api.example.com"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("x-forwarded-for", "7.7.7.7"),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Request-Id", "client-chosen"),
            ("X-Portcullis-Client-Id", "admin"),
        ])
        for name in [
            "host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "x-portcullis-client-id",
            "x-portcullis-client-name",
        ] {
            #expect(out.filter { $0.0.lowercased() == name }.count == 1, "\(name): \(out)")
        }
        // The client-sent copy is gone; the gateway's own names the authenticated client.
        #expect(out.first { $0.0.lowercased() == "x-portcullis-client-id" }?.1 == "psa-sync")
    }

    // MARK: - Downstream

    static func downstream(_ pairs: [(String, String)], close: Bool) -> [(String, String)] {
        var upstream = "HTTP/1.1 200 OK\r\n"
        for (name, value) in pairs { upstream += "\(name): \(value)\r\n" }
        upstream += "\r\n"
        let head: UpstreamResponseHead
        do {
            head = try UpstreamResponseParser.parseHead(ByteBuffer(string: upstream))
        } catch {
            Issue.record("upstream head rejected: \(error)")
            return []
        }
        var out = ByteBuffer()
        HeaderRewriter.writeDownstreamHead(
            head,
            http10: false,
            requestID: "ffffffffffffffffffffffffffffffff",
            chunked: head.chunked,
            close: close,
            into: &out
        )
        let (first, fields) = Self.fields(out)
        #expect(first == "HTTP/1.1 200 OK")
        return fields
    }

    @Test func downstreamRemovesHopByHopAndReplacesRequestID() {
        let out = Self.downstream(
            [
                ("Content-Type", "application/json"),
                ("Connection", "keep-alive, X-Backend-Hop"),
                ("Keep-Alive", "timeout=5"),
                ("Transfer-Encoding", "chunked"),
                ("Trailer", "X-Checksum"),
                ("TE", "trailers"),
                ("Upgrade", "h2c"),
                ("Proxy-Connection", "keep-alive"),
                ("Proxy-Authenticate", "Basic"),
                ("X-Backend-Hop", "1"),
                ("X-Request-Id", "from-backend"),
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
            ],
            close: false
        )
        // The body is re-chunked on this hop: its own Transfer-Encoding comes after the id.
        let expected: [(String, String)] = [
            ("Content-Type", "application/json"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("X-Request-Id", "ffffffffffffffffffffffffffffffff"),
            ("Transfer-Encoding", "chunked"),
        ]
        #expect(Self.same(out, expected), "\(out)")
    }

    @Test func downstreamAddsConnectionCloseWhenAsked() {
        let closing = Self.downstream([("Connection", "close"), ("Content-Length", "0")], close: true)
        #expect(
            Self.same(
                closing,
                [("Content-Length", "0"), ("X-Request-Id", "ffffffffffffffffffffffffffffffff"), ("Connection", "close")]
            ),
            "\(closing)"
        )
        // The backend closing its connection does not close the client's.
        let open = Self.downstream([("Connection", "close"), ("Content-Length", "0")], close: false)
        #expect(!open.contains { $0.0.lowercased() == "connection" }, "\(open)")
    }

    @Test func downstreamConnectionTokensCannotRemoveFraming() {
        let out = Self.downstream([("Connection", "Content-Length, X-Request-Id"), ("Content-Length", "3")], close: false)
        #expect(Self.same(out, [("Content-Length", "3"), ("X-Request-Id", "ffffffffffffffffffffffffffffffff")]), "\(out)")
    }
}
