import Foundation
import NIOCore
import PortcullisAuth
import Testing

@testable import PortcullisProxy

/// The built-in issuer's routes on the connection handler: answered by the gateway itself,
/// their form body read whole and bounded.
@Suite struct LocalRouteTests {
    static let secret = ClientConnectionHandlerTests.Harness.clientSecret

    static func harness(timeout: String = "10m") throws -> ClientConnectionHandlerTests.Harness {
        try ClientConnectionHandlerTests.Harness.withClient(upstreamExtra: "  timeout: \(timeout)")
    }

    static func tokenRequest(_ body: String, contentLength: Int? = nil) -> String {
        "POST /oauth/token HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + "Content-Length: \(contentLength ?? body.utf8.count)\r\n\r\n" + body
    }

    @Test func aTokenRequestInTwoPiecesIsAnsweredWithoutTheUpstream() throws {
        let harness = try Self.harness()
        let body = "grant_type=client_credentials&client_id=c1&client_secret=\(Self.secret)"
        let request = Self.tokenRequest(body)
        let cut = request.index(request.endIndex, offsetBy: -10)
        try harness.send(String(request[..<cut]))
        #expect(try harness.written().isEmpty, "nothing is answered before the body is whole")
        try harness.send(String(request[cut...]))
        let response = try harness.response()
        #expect(response.statusLine == "HTTP/1.1 200 OK")
        #expect(response.header("cache-control") == ["no-store"])
        #expect(response.header("pragma") == ["no-cache"])
        #expect(response.header("connection").isEmpty, "the connection stays open")
        #expect(try response.json()["access_token"] is String)
        try harness.finish()
    }

    @Test func aDeclaredBodyAboveTheLimitIs413AndCloses() throws {
        let harness = try Self.harness()
        try harness.send(Self.tokenRequest("", contentLength: LocalRoute.maxBody + 1))
        let response = try harness.response()
        #expect(response.statusLine.hasPrefix("HTTP/1.1 413"))
        #expect(response.header("connection") == ["close"])
        try harness.finish()
    }

    @Test func aChunkedBodyAboveTheLimitIs413() throws {
        let harness = try Self.harness()
        let chunk = String(repeating: "a", count: 8192)
        var request = "POST /oauth/token HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
        for _ in 0..<3 { request += "2000\r\n\(chunk)\r\n" }
        try harness.send(request)
        let response = try harness.response()
        #expect(response.statusLine.hasPrefix("HTTP/1.1 413"))
        try harness.finish()
    }

    @Test func otherMethodsAre405WithAllow() throws {
        let harness = try Self.harness()
        try harness.send("GET /oauth/token HTTP/1.1\r\nHost: gw\r\n\r\n")
        let token = try harness.response()
        #expect(token.statusLine.hasPrefix("HTTP/1.1 405"))
        #expect(token.header("allow") == ["POST"])
        try harness.send("DELETE /.well-known/jwks.json HTTP/1.1\r\nHost: gw\r\n\r\n")
        let keys = try harness.response()
        #expect(keys.statusLine.hasPrefix("HTTP/1.1 405"))
        #expect(keys.header("allow") == ["GET, HEAD"])
        try harness.send("GET /.well-known/jwks.json HTTP/1.1\r\nHost: gw\r\n\r\n")
        let jwks = try harness.response()
        #expect(jwks.statusLine == "HTTP/1.1 200 OK")
        #expect(try jwks.json()["keys"] is [Any])
        try harness.finish()
    }

    @Test func aBodyThatNeverCompletesIs408AtTheExchangeTimeout() throws {
        let harness = try Self.harness(timeout: "2s")
        try harness.send(Self.tokenRequest("grant_type=client", contentLength: 100))
        harness.waitPast(.seconds(2))
        let response = try harness.response()
        #expect(response.statusLine.hasPrefix("HTTP/1.1 408"))
        try harness.finish()
    }

    @Test func withoutABuiltinIssuerThePathsNeedABearerToken() throws {
        let harness = try ClientConnectionHandlerTests.Harness()
        try harness.send("POST /oauth/token HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n")
        #expect(try harness.response().statusLine.hasPrefix("HTTP/1.1 401"))
        try harness.finish()
    }
}
