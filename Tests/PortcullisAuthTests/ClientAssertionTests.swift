import Crypto
import Foundation
import Logging
import PortcullisAuth
import PortcullisPolicy
import Testing
import _CryptoExtras

@Suite("private_key_jwt: client keys and assertions")
struct ClientAssertionTests {
    static let now: Int64 = 1_800_000_000
    static let audience = "urn:portcullis:local"

    static func assertion(
        _ signer: JWSSigner,
        iss: String = "cert-sync",
        sub: String = "cert-sync",
        aud: String = Self.audience,
        exp: Int64 = Self.now + 120,
        jti: String? = UUID().uuidString
    ) throws -> String {
        let jtiMember = jti.map { #","jti":"\#($0)""# } ?? ""
        return try signer.sign(claimsJSON: #"{"iss":"\#(iss)","sub":"\#(sub)","aud":"\#(aud)","exp":\#(exp),"iat":\#(Self.now)\#(jtiMember)}"#)
    }

    static func verify(_ assertion: String, key: ClientKey, verifier: ClientAssertionVerifier = ClientAssertionVerifier()) -> String? {
        switch verifier.verify(assertion, clientID: "cert-sync", key: key, audiences: [Self.audience], leeway: 5, now: Self.now) {
        case .success: return nil
        case .failure(let refusal): return refusal.reason
        }
    }

    @Test func keysAreReadFromPEMAndJWKAndSymmetricOrWeakKeysAreRefused() throws {
        let p256 = P256.Signing.PrivateKey()
        #expect(try ClientKey(text: p256.publicKey.pemRepresentation).algorithms == [.es256])
        let ed = Curve25519.Signing.PrivateKey()
        let edPEM = "-----BEGIN PUBLIC KEY-----\n"
            + Data([0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00] + ed.publicKey.rawRepresentation).base64EncodedString()
            + "\n-----END PUBLIC KEY-----"
        #expect(try ClientKey(text: edPEM).algorithms == [.edDSA])
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        #expect(try ClientKey(text: rsa.publicKey.pemRepresentation).algorithms.contains(.rs256))
        let signer = JWSSigner(p256: p256, keyID: "k1")
        #expect(try ClientKey(text: signer.publicJWK).algorithms == [.es256])
        #expect(throws: JWKError.self) { try ClientKey(text: #"{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}"#) }
        #expect(throws: JWKError.self) { try ClientKey(text: "ssh-ed25519 AAAA") }
        let weak = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        #expect(throws: JWKError.self) { try ClientKey(text: weak.publicKey.pemRepresentation) }
    }

    @Test func anAssertionIsAcceptedOnceAndEveryBrokenRuleIsRefused() throws {
        let signer = JWSSigner(p256: P256.Signing.PrivateKey(), keyID: "laptop-2026")
        // Registered as PEM (no kid): the assertion's own kid does not stop it.
        let key = try ClientKey(text: P256.Signing.PublicKey(x963Representation: Self.x963(signer)).pemRepresentation)
        let verifier = ClientAssertionVerifier()
        let good = try Self.assertion(signer)
        #expect(Self.verify(good, key: key, verifier: verifier) == nil)
        #expect(Self.verify(good, key: key, verifier: verifier) == "assertion_replayed")
        let stranger = JWSSigner(p256: P256.Signing.PrivateKey(), keyID: "laptop-2026")
        #expect(Self.verify(try Self.assertion(stranger), key: key) == "assertion_invalid", "another key's signature")
        #expect(Self.verify(try Self.assertion(signer, aud: "https://elsewhere/token"), key: key) == "assertion_invalid")
        #expect(Self.verify(try Self.assertion(signer, iss: "other"), key: key) == "assertion_invalid")
        #expect(Self.verify(try Self.assertion(signer, sub: "other"), key: key) == "assertion_invalid")
        #expect(Self.verify(try Self.assertion(signer, exp: Self.now - 60), key: key) == "assertion_expired")
        #expect(Self.verify(try Self.assertion(signer, exp: Self.now + 3_600), key: key) == "assertion_invalid", "too long-lived to remember")
        #expect(Self.verify(try Self.assertion(signer, jti: nil), key: key) == "assertion_invalid", "no jti: replay could not be told")
    }

    @Test func theTokenEndpointIssuesAKeyClientATokenAndRefusesSecretsAndReplays() throws {
        let signer = JWSSigner(p256: P256.Signing.PrivateKey(), keyID: "k1")
        let issuer = BuiltinIssuer(
            name: "local",
            issuer: Self.audience,
            signer: JWSSigner.generate(.es256, keyID: "issuer")!,
            defaultLifetime: 900,
            maximumLifetime: 3600,
            leeway: 5
        )
        let service = TokenService(
            issuer: issuer,
            clients: [.init(id: "cert-sync", enabled: true, key: try ClientKey(text: signer.publicJWK), keyText: signer.publicJWK, tokenLifetime: nil)],
            limiter: FailedAuthLimiter(),
            maxFailedAuth: 5,
            maxFailedAuthPerAddress: 50,
            failureWindow: 300,
            state: try IssuerState(path: nil, now: Self.now),
            logger: Logger(label: "test")
        )
        func post(_ form: String) -> TokenEndpointResult {
            service.token(
                TokenService.Request(
                    contentType: "application/x-www-form-urlencoded",
                    authorization: nil,
                    body: Array(form.utf8),
                    address: IPAddress(parsing: "192.0.2.1")!
                ),
                now: Self.now
            )
        }
        let type = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
        let assertion = try Self.assertion(signer)
        let issued = post("grant_type=client_credentials&client_assertion_type=\(type)&client_assertion=\(assertion)")
        #expect(issued.status == 200, "\(issued.description)")
        #expect(issued.clientID == "cert-sync")
        let replayed = post("grant_type=client_credentials&client_assertion_type=\(type)&client_assertion=\(assertion)")
        #expect(replayed.status == 401)
        #expect(replayed.reason == "assertion_replayed")
        #expect(post("grant_type=client_credentials&client_id=cert-sync&client_secret=anything").status == 401, "a key client has no secret")
        let both = post("grant_type=client_credentials&client_assertion_type=\(type)&client_assertion=\(try Self.assertion(signer))&client_secret=x")
        #expect(both.status == 400, "two methods are ambiguous")
        #expect(post("grant_type=client_credentials&client_assertion_type=other&client_assertion=\(try Self.assertion(signer))").status == 400)
    }

    static func x963(_ signer: JWSSigner) throws -> Data {
        // The signer's public JWK holds x and y; rebuild the point 0x04 || x || y.
        let jwk = try #require(try JSONSerialization.jsonObject(with: Data(signer.publicJWK.utf8)) as? [String: Any])
        let x = try #require(Base64URL.decode((jwk["x"] as! String).utf8))
        let y = try #require(Base64URL.decode((jwk["y"] as! String).utf8))
        return Data([0x04] + x + y)
    }
}
