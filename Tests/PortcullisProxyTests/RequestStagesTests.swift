import Foundation
import NIOCore
import PortcullisAuth
import PortcullisPolicy
import Testing

@testable import PortcullisProxy

/// Each stage of the request path on its own: what it passes on, and what it answers.
@Suite struct RequestStagesTests {
    static func head(_ text: String) throws -> ParsedRequestHead {
        var parser = RequestParser(maxHeadBytes: 16 * 1024)
        var bytes = ByteBuffer(string: text)
        guard case .head(let head) = try parser.next(&bytes) else {
            throw TestFailure("no head in \(text)")
        }
        return head
    }

    struct TestFailure: Error {
        let text: String
        init(_ text: String) { self.text = text }
    }

    /// Settings with the built-in issuer and one client `c1` (rate 1/m, burst 1).
    static func settings() throws -> ProxySettings {
        try ClientConnectionHandlerTests.Harness.withClient(roleLimits: "{ rate: 1/m, burst: 1 }").loop.settings
    }

    static func token(_ settings: ProxySettings) throws -> String {
        try ClientConnectionHandlerTests.Harness.token(settings)
    }

    static func answer<Value>(_ step: RequestStages.Step<Value>) -> RequestStages.Answer? {
        if case .answer(let answer) = step { return answer }
        return nil
    }

    // MARK: - admit

    @Test func admitTakesAnOrdinaryRequest() throws {
        #expect(Self.answer(RequestStages.admit(try Self.head("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"), isDraining: false)) == nil)
    }

    @Test func admitAnswers503WhileDrainingAndCloses() throws {
        let answer = try #require(Self.answer(RequestStages.admit(try Self.head("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"), isDraining: true)))
        #expect(answer.response.status.code == 503)
        #expect(answer.close)
        #expect(answer.reason == .draining)
    }

    @Test func admitRefusesCONNECT() throws {
        let answer = try #require(Self.answer(RequestStages.admit(try Self.head("CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n"), isDraining: false)))
        #expect(answer.response.status.code == 400)
        #expect(answer.close)
        #expect(answer.reason == .badRequest)
    }

    // MARK: - canonicalise and screen

    @Test func canonicaliseGivesTheCanonicalTarget() throws {
        guard case .proceed(let target) = RequestStages.canonicalise(try Self.head("GET /a/./b/../c?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")) else {
            Issue.record("refused")
            return
        }
        #expect(target.path == "/a/c")
        #expect(target.uri == "/a/c?q=1")
    }

    @Test func canonicaliseRefusesAPathAboveTheRoot() throws {
        let answer = try #require(Self.answer(RequestStages.canonicalise(try Self.head("GET /../etc HTTP/1.1\r\nHost: x\r\n\r\n"))))
        #expect(answer.response.status.code == 400)
        #expect(answer.close)
        #expect(answer.reason == .badRequest)
    }

    @Test func screenRefusesWhatThePathFirewallRefusesAndUnknownExpectations() throws {
        let settings = try Self.settings()
        let semicolon = try Self.head("GET /a;b HTTP/1.1\r\nHost: x\r\n\r\n")
        guard case .proceed(let target) = RequestStages.canonicalise(semicolon) else { Issue.record("refused"); return }
        let refused = try #require(Self.answer(RequestStages.screen(target, semicolon, firewall: settings.pathFirewall)))
        #expect(refused.reason == .pathFirewall(.semicolon))
        #expect(refused.reason.code == "path_semicolon")
        #expect(refused.response.status.code == 400)

        let expect = try Self.head("GET /a HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n")
        guard case .proceed(let plain) = RequestStages.canonicalise(expect) else { Issue.record("refused"); return }
        let unmet = try #require(Self.answer(RequestStages.screen(plain, expect, firewall: settings.pathFirewall)))
        #expect(unmet.response.status.code == 417)
        #expect(unmet.reason == .expectationFailed)
        let ordinary = try Self.head("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(Self.answer(RequestStages.screen(plain, ordinary, firewall: settings.pathFirewall)) == nil)
    }

    // MARK: - client address

    @Test func theClientAddressIsThePeerUnlessATrustedProxyForwardedOne() throws {
        let head = try Self.head("GET /a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n")
        let peer = try #require(IPAddress(parsing: "10.0.0.2"))
        let untrusted = RequestStages.clientAddress(head, peer: peer, peerText: "10.0.0.2", trusted: nil)
        #expect(untrusted.address == peer)
        #expect(untrusted.forwardedFor == "10.0.0.2")
        let trusted = RequestStages.clientAddress(head, peer: peer, peerText: "10.0.0.2", trusted: CIDRSet([try #require(CIDRPrefix(parsing: "10.0.0.0/8"))]))
        #expect(trusted.address == IPAddress(parsing: "198.51.100.7"))
    }

    // MARK: - local routes

    @Test func localRoutesAnswerTheKeySetAndReadTokenRequests() throws {
        let service = try #require(try Self.settings().tokenService)
        let jwks = try #require(Self.answer(RequestStages.localRoute(.jwks, service: service, try Self.head("GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n\r\n"), address: .v4(0))))
        #expect(jwks.response.status.code == 200)
        #expect(jwks.reason == .jwks)
        #expect(!jwks.close)

        let wrongMethod = try #require(Self.answer(RequestStages.localRoute(.token, service: service, try Self.head("GET /oauth/token HTTP/1.1\r\nHost: x\r\n\r\n"), address: .v4(0))))
        #expect(wrongMethod.response.status.code == 405)
        #expect(wrongMethod.reason == .methodNotAllowed)

        let large = try Self.head("POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: \(LocalRoute.maxBody + 1)\r\n\r\n")
        let tooLarge = try #require(Self.answer(RequestStages.localRoute(.token, service: service, large, address: .v4(0))))
        #expect(tooLarge.response.status.code == 413)
        #expect(tooLarge.close)

        let post = try Self.head("POST /oauth/revoke HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YTpi\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\n")
        guard case .proceed(let request) = RequestStages.localRoute(.revoke, service: service, post, address: .v4(7)) else {
            Issue.record("a revocation request was answered before its body"); return
        }
        #expect(request.authorization == "Basic YTpi")
        #expect(request.contentType == "application/x-www-form-urlencoded")
        #expect(request.address == .v4(7))
    }

    // MARK: - authenticate

    @Test func authenticateAnswers401WithoutAUsableBearerToken() throws {
        let settings = try Self.settings()
        var cache = VerifiedTokenCache(capacity: 16)
        var tokenID: String?
        let notBearer = AuthFailure.malformedCredential.description
        let badToken = "the token's signature or header is not acceptable"
        let cases: [(String, String, String)] = [
            ("", "missing_token", "a bearer token is required"),
            ("Authorization: Basic YTpi\r\n", "malformed_token", notBearer),
            ("Authorization: Bearer a.b.c\r\nAuthorization: Bearer a.b.c\r\n", "malformed_token", notBearer),
            // Not a b64token: not a bearer credential, whatever the JWS check says.
            ("Authorization: Bearer a.b.c!\r\n", "malformed_token", notBearer),
            ("Authorization: Bearer =abc\r\n", "malformed_token", notBearer),
            ("Authorization: Bearer eyJhbGciOiJub25lIn0.e30.c2ln*\r\n", "malformed_token", notBearer),
            // A b64token that is no acceptable JWS: the JWS check's reason.
            ("Authorization: Bearer a.b.c\r\n", "malformed_token", badToken),
            ("Authorization: Bearer eyJhbGciOiJub25lIn0.e30.c2ln\r\n", "alg_none", badToken),
        ]
        for (fields, code, description) in cases {
            let head = try Self.head("GET /a HTTP/1.1\r\nHost: x\r\n\(fields)\r\n")
            let answer = try #require(
                Self.answer(RequestStages.authenticate(head, authenticator: settings.authenticator, cache: &cache, now: 0, tokenID: &tokenID))
            )
            #expect(answer.response.status.code == 401)
            #expect(!answer.close, "a 401 keeps the connection")
            #expect(answer.reason == .unauthenticated(code))
            #expect(answer.reason.code == code)
            #expect(answer.response.description == description, "\(fields)")
        }
    }

    @Test func authenticateFindsTheClientThenServesTheSameTokenFromTheCache() throws {
        let settings = try Self.settings()
        let token = try Self.token(settings)
        let head = try Self.head("GET /a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\r\n")
        var cache = VerifiedTokenCache(capacity: 16)
        var tokenID: String?
        let now = Int64(Date().timeIntervalSince1970)
        for round in 0..<2 {
            guard case .proceed(let client) = RequestStages.authenticate(head, authenticator: settings.authenticator, cache: &cache, now: now, tokenID: &tokenID) else {
                Issue.record("a valid token was refused"); return
            }
            #expect(client.id == "c1")
            #expect(cache.hits == round)
            #expect(tokenID?.isEmpty == false, "the token's jti goes to the log, from the cache too")
            tokenID = nil
        }
    }

    // MARK: - limits

    @Test func admitLimitsAdmitsWithinTheRateThenAnswers429() throws {
        let settings = try Self.settings()
        let token = try Self.token(settings)
        var cache = VerifiedTokenCache(capacity: 16)
        var tokenID: String?
        let head = try Self.head("GET /a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\r\n")
        let now = Int64(Date().timeIntervalSince1970)
        guard case .proceed(let client) = RequestStages.authenticate(head, authenticator: settings.authenticator, cache: &cache, now: now, tokenID: &tokenID) else {
            Issue.record("a valid token was refused"); return
        }
        guard case .proceed(let admission) = RequestStages.admitLimits(client, cost: 1, settings: settings, nowNanos: 1_000_000_000, nowSeconds: now) else {
            Issue.record("the first request is within the burst"); return
        }
        #expect(admission.heldLimit == nil, "no concurrency limit: no slot held")
        #expect(admission.rateLimitLines?.hasPrefix("RateLimit-Policy:") == true)
        let refused = try #require(Self.answer(RequestStages.admitLimits(client, cost: 1, settings: settings, nowNanos: 1_000_000_000, nowSeconds: now)))
        #expect(refused.response.status.code == 429)
        #expect(refused.reason == .rateLimited)
        #expect(!refused.close)
    }

    // MARK: - upstream credential and head

    @Test func withoutUpstreamAuthThereIsNoCredentialLine() throws {
        guard case .proceed(let line) = RequestStages.upstreamCredential(try Self.settings(), nowNanos: 0) else {
            Issue.record("answered without upstream.auth"); return
        }
        #expect(line == nil)
    }

    @Test func theUpstreamHeadCarriesTheCanonicalTargetAndTheGatewaysFields() throws {
        let settings = try Self.settings()
        let token = try Self.token(settings)
        var cache = VerifiedTokenCache(capacity: 16)
        var tokenID: String?
        let head = try Self.head("GET /a/../b?x=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nAccept: */*\r\n\r\n")
        guard case .proceed(let target) = RequestStages.canonicalise(head),
            case .proceed(let client) = RequestStages.authenticate(head, authenticator: settings.authenticator, cache: &cache, now: Int64(Date().timeIntervalSince1970), tokenID: &tokenID)
        else { Issue.record("refused"); return }
        let address = ClientAddress(address: .v4(0x0A00_0002), forwardedFor: "10.0.0.2")
        let bytes = RequestStages.upstreamHead(
            head,
            target: target,
            client: client,
            address: address,
            credentialLine: Array("X-Api-Key: k\r\n".utf8),
            requestID: "req-1",
            newParentID: 1,
            forwardedProto: "https",
            settings: settings,
            allocator: ByteBufferAllocator()
        )
        let text = String(buffer: bytes).lowercased()
        #expect(text.hasPrefix("get /b?x=1 http/1.1\r\n"))
        #expect(text.contains("accept: */*\r\n"))
        #expect(text.contains("x-api-key: k\r\n"))
        #expect(text.contains("x-request-id: req-1\r\n"))
        #expect(text.contains("x-forwarded-for: 10.0.0.2\r\n"))
        #expect(text.contains("x-forwarded-proto: https\r\n"))
        #expect(!text.contains("authorization:"), "the client's bearer token does not go upstream")
        #expect(text.hasSuffix("\r\n\r\n"))
    }
}
