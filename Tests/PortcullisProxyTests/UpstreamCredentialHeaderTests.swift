import NIOCore
import NIOHTTP1
import Testing

@testable import PortcullisProxy

/// `upstream.auth` in the upstream head: the credential line is written as given, the caller's
/// `Authorization` and every client-sent copy of a configured header are dropped.
@Suite struct UpstreamCredentialHeaderTests {
    static func upstream(_ pairs: [(String, String)], line: String, dropping name: String?) -> [(String, String)] {
        var forwarding = HeaderRewriterTests.forwarding()
        forwarding.credentialLine = Array(line.utf8)
        forwarding.credentialHeaderName = name
        var out = ByteBuffer()
        HeaderRewriter.writeUpstreamHead(method: .GET, uri: "/api/ListUsers", fields: RequestFields(pairs), forwarding, into: &out)
        return HeaderRewriterTests.fields(out).1
    }

    @Test func bearerReplacesTheCallersAuthorization() {
        let fields = Self.upstream(
            [("Host", "api.example.com"), ("Authorization", "Bearer caller"), ("Accept", "*/*")],
            line: "Authorization: Bearer gateway\r\n",
            dropping: nil
        )
        #expect(fields.filter { $0.0.lowercased() == "authorization" }.map(\.1) == ["Bearer gateway"])
        #expect(fields.contains { $0 == ("Accept", "*/*") })
    }

    @Test func clientCopiesOfTheConfiguredHeaderAreDroppedInAnyCase() {
        let fields = Self.upstream(
            [("Host", "api.example.com"), ("X-Functions-Key", "forged"), ("x-functions-KEY", "forged-2"), ("x-functions-keys", "kept")],
            line: "x-functions-key: real\r\n",
            dropping: "x-functions-key"
        )
        #expect(fields.filter { $0.0.lowercased() == "x-functions-key" }.map(\.1) == ["real"])
        #expect(fields.contains { $0 == ("x-functions-keys", "kept") })
    }
}
