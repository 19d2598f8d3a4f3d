import Crypto
import CryptoExtras
import Foundation
import PortcullisAuth

/// Signing keys made once per test process, and their public JWKs.
enum TestKeys {
    static let rsa = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let otherRSA = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let p256 = P256.Signing.PrivateKey()
    static let p384 = P384.Signing.PrivateKey()
    static let ed25519 = Curve25519.Signing.PrivateKey()
    static let hmacSecret = [UInt8]((0..<32).map { UInt8($0) &* 7 &+ 1 })

    static func rsaJWK(_ key: _RSA.Signing.PrivateKey = rsa, kid: String? = "rsa-1", alg: String? = "RS256", extra: String = "") -> String {
        let primitives = try! key.publicKey.getKeyPrimitives()
        return jwk(
            ["\"kty\":\"RSA\"", "\"n\":\"\(Base64URL.encode(Array(primitives.modulus)))\"",
             "\"e\":\"\(Base64URL.encode(Array(primitives.publicExponent)))\""],
            kid: kid, alg: alg, extra: extra)
    }

    static func p256JWK(kid: String? = "ec-1", alg: String? = "ES256", extra: String = "") -> String {
        let raw = Array(p256.publicKey.rawRepresentation)
        return jwk(
            ["\"kty\":\"EC\"", "\"crv\":\"P-256\"", "\"x\":\"\(Base64URL.encode(raw[0..<32]))\"",
             "\"y\":\"\(Base64URL.encode(raw[32...]))\""],
            kid: kid, alg: alg, extra: extra)
    }

    static func p384JWK(kid: String? = "ec-384", alg: String? = "ES384") -> String {
        let raw = Array(p384.publicKey.rawRepresentation)
        return jwk(
            ["\"kty\":\"EC\"", "\"crv\":\"P-384\"", "\"x\":\"\(Base64URL.encode(raw[0..<48]))\"",
             "\"y\":\"\(Base64URL.encode(raw[48...]))\""],
            kid: kid, alg: alg, extra: "")
    }

    static func ed25519JWK(kid: String? = "ed-1", alg: String? = "EdDSA") -> String {
        jwk(
            ["\"kty\":\"OKP\"", "\"crv\":\"Ed25519\"",
             "\"x\":\"\(Base64URL.encode(Array(ed25519.publicKey.rawRepresentation)))\""],
            kid: kid, alg: alg, extra: "")
    }

    static func octJWK(_ secret: [UInt8] = hmacSecret, kid: String? = "hmac-1", alg: String? = "HS256") -> String {
        jwk(["\"kty\":\"oct\"", "\"k\":\"\(Base64URL.encode(secret))\""], kid: kid, alg: alg, extra: "")
    }

    private static func jwk(_ members: [String], kid: String?, alg: String?, extra: String) -> String {
        var all = members
        if let kid { all.append("\"kid\":\"\(kid)\"") }
        if let alg { all.append("\"alg\":\"\(alg)\"") }
        if !extra.isEmpty { all.append(extra) }
        return "{" + all.joined(separator: ",") + "}"
    }

    static func key(_ json: String) throws -> JWK {
        try JWK(json: Array(json.utf8))
    }

    static func set(_ jsons: String...) throws -> JWKSet {
        try JWKSet(json: Array("{\"keys\":[\(jsons.joined(separator: ","))]}".utf8))
    }
}

/// Builds compact tokens from literal header and payload JSON, signed by a closure.
enum TestTokens {
    static func compact(header: String, payload: String, sign: ([UInt8]) throws -> [UInt8]) rethrows -> String {
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        return input + "." + Base64URL.encode(try sign(Array(input.utf8)))
    }

    static func rs256(_ input: [UInt8], key: _RSA.Signing.PrivateKey = TestKeys.rsa) -> [UInt8] {
        Array(try! key.signature(for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
    }

    static func ps256(_ input: [UInt8]) -> [UInt8] {
        Array(try! TestKeys.rsa.signature(for: SHA256.hash(data: input), padding: .PSS).rawRepresentation)
    }

    static func es256(_ input: [UInt8]) -> [UInt8] {
        Array(try! TestKeys.p256.signature(for: input).rawRepresentation)
    }

    static func edDSA(_ input: [UInt8]) -> [UInt8] {
        Array(try! TestKeys.ed25519.signature(for: input))
    }

    static func hs256(_ input: [UInt8], secret: [UInt8] = TestKeys.hmacSecret) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: secret)))
    }

    static let payload = #"{"iss":"https://issuer.example","aud":"api://portcullis","exp":4102444800,"sub":"client-1"}"#
}
