import Crypto
import CryptoExtras
import Foundation
import PortcullisAuth
import Testing

/// An RS256 IdP for the tests: RSA keys, its JWK Set served over HTTP on loopback by a real
/// server process (python3 `http.server` on a directory the test rewrites), tokens signed here.
final class RSAIdentityProvider {
    struct Key {
        let id: String
        let privateKey: _RSA.Signing.PrivateKey
        var jwk: String {
            let primitives = try! self.privateKey.publicKey.getKeyPrimitives()
            let n = Base64URL.encode(Array(primitives.modulus))
            let e = Base64URL.encode(Array(primitives.publicExponent))
            return #"{"kty":"RSA","kid":"\#(self.id)","alg":"RS256","use":"sig","n":"\#(n)","e":"\#(e)"}"#
        }
    }

    static let issuer = "https://idp.rsa.invalid/"
    static let audience = "api://portcullis-rsa"

    let directory: URL
    private(set) var server: PythonBackend?
    let port: Int

    init() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        self.server = try Self.startServer(directory: self.directory, port: 0)
        self.port = self.server!.port
    }

    deinit {
        try? FileManager.default.removeItem(at: self.directory)
    }

    private static func startServer(directory: URL, port: Int) throws -> PythonBackend {
        try PythonBackend(
            "jwks",
            script: """
                import http.server, functools
                class Quiet(http.server.SimpleHTTPRequestHandler):
                    def log_message(self, *args): pass
                handler = functools.partial(Quiet, directory=sys.argv[1])
                server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), handler)
                announce(server.server_address[1])
                server.serve_forever()
                """,
            arguments: [directory.path, String(port)]
        )
    }

    static func makeKey(_ id: String) throws -> Key {
        Key(id: id, privateKey: try _RSA.Signing.PrivateKey(keySize: .bits2048))
    }

    func publish(_ keys: [Key]) throws {
        let document = #"{"keys":[\#(keys.map(\.jwk).joined(separator: ","))]}"#
        let temporary = self.directory.appendingPathComponent("jwks.json.tmp")
        try document.write(to: temporary, atomically: false, encoding: .utf8)
        _ = rename(temporary.path, self.directory.appendingPathComponent("jwks.json").path)
    }

    func stopServer() {
        self.server = nil
    }

    var jwksURL: String { "http://127.0.0.1:\(self.port)/jwks.json" }

    static func claims(client: String = TestIdentity.clientID, expiresIn: Int = 3600, notBefore: Int? = nil,
                       issuer: String = RSAIdentityProvider.issuer, audience: String = RSAIdentityProvider.audience) -> String {
        let now = Int(Date().timeIntervalSince1970)
        var claims = #"{"iss":"\#(issuer)","aud":"\#(audience)","appid":"\#(client)","iat":\#(now - 5),"exp":\#(now + expiresIn)"#
        if let notBefore { claims += #","nbf":\#(now + notBefore)"# }
        return claims + "}"
    }

    /// A compact JWS with exactly this header and these claims, RS256-signed by `key`.
    static func sign(header: String, claims: String, key: Key) throws -> String {
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(claims.utf8))
        let signature = try key.privateKey.signature(for: SHA256.hash(data: Array(input.utf8)), padding: .insecurePKCS1v1_5)
        return input + "." + Base64URL.encode(Array(signature.rawRepresentation))
    }

    static func token(_ key: Key, claims: String = RSAIdentityProvider.claims()) throws -> String {
        try Self.sign(header: #"{"alg":"RS256","typ":"JWT","kid":"\#(key.id)"}"#, claims: claims, key: key)
    }
}

@Suite("Bearer tokens end to end", .serialized)
struct BearerTokenEndToEndTests {
    /// The gateway with two issuers: the RSA IdP behind a JWKS URL, and the tests' ES256 issuer.
    static func gateway(idp: RSAIdentityProvider, disabledClient: Bool = true) throws -> GatewayUnderTest {
        try GatewayUnderTest.start(
            """
            issuers:
              - name: rsa
                issuer: "\(RSAIdentityProvider.issuer)"
                audiences: ["\(RSAIdentityProvider.audience)"]
                jwks_url: "\(idp.jwksURL)"
                jwks_refresh: 10m
                algorithms: [RS256]
                client_claim: appid
                leeway: 5s
            \(TestIdentity.issuerEntryYAML)
            clients:
              - id: \(TestIdentity.clientID)
                name: "\(TestIdentity.clientName)"
                issuer: rsa
                roles: [everything]
              - id: es-client
                issuer: e2e
                roles: [everything]
              - id: switched-off
                issuer: rsa
                enabled: \(!disabledClient)
                roles: [everything]
            roles:
              everything:
                allow:
                  - { paths: ["/**"] }
            """
        )
    }

    static func status(_ gateway: GatewayUnderTest, token: String?) -> HTTPTestResponse {
        RawHTTPClient.request(
            "GET",
            "/demo/echo",
            port: gateway.port,
            headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [],
            authorize: false
        )
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func validTokensPassAndEveryBadOneIs401() throws {
        let idp = try RSAIdentityProvider()
        let key = try RSAIdentityProvider.makeKey("rsa-1")
        try idp.publish([key])
        let gateway = try Self.gateway(idp: idp)

        let good = Self.status(gateway, token: try RSAIdentityProvider.token(key))
        #expect(good.status == 200, "\(good)")
        let es = Self.status(gateway, token: TestIdentity.token(clientID: "es-client"))
        #expect(es.status == 200, "\(es)")

        let noToken = Self.status(gateway, token: nil)
        #expect(noToken.status == 401)
        #expect(noToken.header("WWW-Authenticate") == #"Bearer realm="portcullis""#)
        #expect(noToken.json?["error"] as? String == "unauthorized")
        #expect(noToken.json?["request_id"] as? String == noToken.header("X-Request-Id"))

        // The public key in the DER form HAProxy and friends would load: "HS256 keyed with it".
        let publicDER = Array(key.privateKey.publicKey.derRepresentation)
        let hsInput = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT","kid":"rsa-1"}"#.utf8)) + "."
            + Base64URL.encode(Array(RSAIdentityProvider.claims().utf8))
        let hsMAC = HMAC<SHA256>.authenticationCode(for: Array(hsInput.utf8), using: SymmetricKey(data: publicDER))
        let hsToken = hsInput + "." + Base64URL.encode(Array(hsMAC))

        let valid = try RSAIdentityProvider.token(key)
        let parts = valid.split(separator: ".").map(String.init)
        let tamperedClaims = RSAIdentityProvider.claims(client: "switched-off")
        let tampered = parts[0] + "." + Base64URL.encode(Array(tamperedClaims.utf8)) + "." + parts[2]
        let noneToken = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "."
            + Base64URL.encode(Array(RSAIdentityProvider.claims().utf8)) + "."
        // ES256 with r = s = 0 under the ES256 issuer's kid.
        let zeroES = Base64URL.encode(Array(#"{"alg":"ES256","typ":"JWT","kid":"e2e-1"}"#.utf8)) + "."
            + Base64URL.encode(Array(#"{"iss":"\#(TestIdentity.issuer)","aud":"\#(TestIdentity.audience)","appid":"es-client","exp":\#(Int(Date().timeIntervalSince1970) + 600)}"#.utf8))
            + "." + Base64URL.encode([UInt8](repeating: 0, count: 64))
        let other = try RSAIdentityProvider.makeKey("rsa-1")  // same kid, a key the IdP never published

        let cases: [(String, String)] = [
            ("expired", try RSAIdentityProvider.token(key, claims: RSAIdentityProvider.claims(expiresIn: -60))),
            ("not yet valid", try RSAIdentityProvider.token(key, claims: RSAIdentityProvider.claims(notBefore: 300))),
            ("wrong iss", try RSAIdentityProvider.token(key, claims: RSAIdentityProvider.claims(issuer: "https://evil.invalid/"))),
            ("wrong aud", try RSAIdentityProvider.token(key, claims: RSAIdentityProvider.claims(audience: "api://other"))),
            ("alg none", noneToken),
            ("HS256 keyed with the RSA public key", hsToken),
            ("tampered payload", tampered),
            ("ES256 r=s=0", zeroES),
            ("signed by another key", try RSAIdentityProvider.token(other)),
            ("unknown kid", try RSAIdentityProvider.token(try RSAIdentityProvider.makeKey("never-published"))),
            ("unknown client", try RSAIdentityProvider.token(key, claims: RSAIdentityProvider.claims(client: "nobody"))),
            ("disabled client", try RSAIdentityProvider.token(key, claims: RSAIdentityProvider.claims(client: "switched-off"))),
            ("client of the other issuer", try RSAIdentityProvider.token(key, claims: RSAIdentityProvider.claims(client: "es-client"))),
            ("not a JWS", "abc.def"),
        ]
        for (name, token) in cases {
            let response = Self.status(gateway, token: token)
            #expect(response.status == 401, "\(name): \(response)")
            #expect(
                response.header("WWW-Authenticate") == #"Bearer realm="portcullis", error="invalid_token""#,
                "\(name)"
            )
            #expect(response.json?["error"] as? String == "invalid_token", "\(name)")
        }
        // Denied requests never reached the backend: only the two good ones did (the stats
        // request counts itself).
        #expect(gateway.backendStats()["requests"] == 3, "\(gateway.backendStats())")
        let echoed = try #require(good.json?["headers"] as? [[String]])
        #expect(echoed.contains(["X-Portcullis-Client-Id", TestIdentity.clientID]), "\(echoed)")
        #expect(!echoed.contains { $0[0].lowercased() == "authorization" }, "\(echoed)")

        // Not a bearer credential at all, and two of them.
        let basic = RawHTTPClient.request(
            "GET", "/api/ListUsers", port: gateway.port, headers: [("Authorization", "Basic YTpi")], authorize: false)
        #expect(basic.status == 401)
        let twice = RawHTTPClient.request(
            "GET", "/api/ListUsers", port: gateway.port,
            headers: [("Authorization", "Bearer \(valid)"), ("Authorization", "Bearer \(valid)")], authorize: false)
        #expect(twice.status == 401)
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func aRotatedKeyIsFetchedWithoutRestartAndKnownKeysOutliveTheIdP() throws {
        let idp = try RSAIdentityProvider()
        let first = try RSAIdentityProvider.makeKey("rsa-1")
        try idp.publish([first])
        let gateway = try Self.gateway(idp: idp)
        #expect(Self.status(gateway, token: try RSAIdentityProvider.token(first)).status == 200)

        // The IdP rotates: a new kid appears at the JWKS URL. The first token naming it makes
        // the gateway fetch at once (not at the 10m schedule).
        let second = try RSAIdentityProvider.makeKey("rsa-2")
        try idp.publish([first, second])
        let rotated = try RSAIdentityProvider.token(second)
        var status = 0
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            status = Self.status(gateway, token: rotated).status
            if status == 200 { break }
            usleep(50_000)
        }
        #expect(status == 200, "a token under the new kid was not accepted within 5 s")

        // The IdP goes away: the keys already fetched keep working (new tokens, not the cache).
        idp.stopServer()
        usleep(200_000)
        #expect(Self.status(gateway, token: try RSAIdentityProvider.token(first)).status == 200)
        #expect(Self.status(gateway, token: try RSAIdentityProvider.token(second)).status == 200)
        #expect(Self.status(gateway, token: try RSAIdentityProvider.token(try RSAIdentityProvider.makeKey("rsa-3"))).status == 401)
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func anExchangeThatOutlivesItsTokenIsNotCut() throws {
        let idp = try RSAIdentityProvider()
        let key = try RSAIdentityProvider.makeKey("rsa-1")
        try idp.publish([key])
        let gateway = try Self.gateway(idp: idp)
        // Valid for 3 s more (leeway 5 s: accepted until exp + 5 s; room for a loaded machine);
        // the backend takes 1.5 s beyond that. The check is at the start of the request.
        let token = try RSAIdentityProvider.token(key, claims: RSAIdentityProvider.claims(expiresIn: -2))
        let response = RawHTTPClient.request(
            "GET", "/demo/slow?ms=4500", port: gateway.port, headers: [("Authorization", "Bearer \(token)")],
            authorize: false)
        #expect(response.status == 200, "\(response)")
        // Sent now, the same token is refused.
        #expect(Self.status(gateway, token: token).status == 401)
    }

    @Test(.enabled(if: commandExists("python3"), "needs python3"))
    func disablingAClientByReloadRefusesItsCachedToken() throws {
        let idp = try RSAIdentityProvider()
        let key = try RSAIdentityProvider.makeKey("rsa-1")
        try idp.publish([key])
        let gateway = try Self.gateway(idp: idp, disabledClient: false)
        let token = try RSAIdentityProvider.token(key, claims: RSAIdentityProvider.claims(client: "switched-off"))
        #expect(Self.status(gateway, token: token).status == 200)
        #expect(Self.status(gateway, token: token).status == 200)  // now from the cache

        try gateway.rewriteConfig { $0.replacingOccurrences(of: "enabled: true", with: "enabled: false") }
        gateway.gateway.signal(SIGHUP)
        var status = 0
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            status = Self.status(gateway, token: token).status
            if status == 401 { break }
            usleep(50_000)
        }
        #expect(status == 401, "the disabled client's token still passed after the reload")
    }
}
