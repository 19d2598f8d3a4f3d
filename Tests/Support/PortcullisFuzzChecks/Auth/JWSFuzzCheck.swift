import Crypto
import PortcullisAuth
import PortcullisPolicy

/// The properties of `JWSVerifier` (and claims parsing) that the `jws` fuzz target checks, and
/// the regression tests with it.
///
/// The keys are fixed fuzzing-only keys, made here from constants (nothing secret): an HS256
/// key in a set of its own (a set mixing `oct` with public keys skips the `oct`), and a public
/// set of ES256, EdDSA and RSA keys (the RSA private half was thrown away). Per input:
/// - the input verified as a token against both sets; a success must carry the token's own
///   decoded payload and an allowed algorithm, and the generic entry (non-contiguous bytes)
///   must agree with the buffer entry;
/// - the input's `header.payload` re-signed with HMAC-SHA256 under the HS256 key: never
///   `invalid_signature` against the HS256 set (on success the alg is HS256 and the payload the
///   input's), never accepted by the public set;
/// - the input's payload (or the whole input when it has no `.`) signed as claims by the EdDSA
///   signer: must verify with exactly those bytes, and must fail once a signature byte changes;
/// - every payload that parses as claims and passes the claims policy really has its `iss`,
///   an `aud` of the policy and an unexpired `exp`.
public enum JWSFuzzCheck {
    static let now: Int64 = 1_700_000_000
    static let hmacKey = SymmetricKey(data: Array(SHA256.hash(data: Array("portcullis fuzz hs256".utf8))))

    struct Fixture {
        let verifier = JWSVerifier(allowedAlgorithms: JWSAlgorithm.allCases)
        let publicKeys: JWKSet
        let sharedKeys: JWKSet
        let signer: JWSSigner
        let policy = ClaimsPolicy(issuer: "https://issuer.fuzz.example", audiences: ["fuzz-api"])
    }

    static let fixture: Fixture = {
        let edSeed = Array(SHA256.hash(data: Array("portcullis fuzz eddsa".utf8)))
        let ecSeed = Array(SHA256.hash(data: Array("portcullis fuzz es256".utf8)))
        let signer = JWSSigner(ed25519: try! Curve25519.Signing.PrivateKey(rawRepresentation: edSeed), keyID: "fuzz-eddsa")
        let ecSigner = JWSSigner(p256: try! P256.Signing.PrivateKey(rawRepresentation: ecSeed), keyID: "fuzz-es256")
        let rsa = #"{"kty":"RSA","kid":"fuzz-rsa","use":"sig","e":"AQAB","n":"\#(rsaModulus)"}"#
        let publicJSON = #"{"keys":[\#(ecSigner.publicJWK),\#(signer.publicJWK),\#(rsa)]}"#
        let secret = hmacKey.withUnsafeBytes { Base64URL.encode(Array($0)) }
        let sharedJSON = #"{"keys":[{"kty":"oct","kid":"fuzz-hs256","alg":"HS256","k":"\#(secret)"}]}"#
        let publicKeys = try! JWKSet(json: Array(publicJSON.utf8))
        let sharedKeys = try! JWKSet(json: Array(sharedJSON.utf8))
        // A fixture that lost a key would make every check below pass vacuously.
        precondition(publicKeys.keys.count == 3 && publicKeys.skipped.isEmpty, "public fuzz keys: \(publicKeys.skipped)")
        precondition(sharedKeys.keys.count == 1 && sharedKeys.skipped.isEmpty, "shared fuzz key: \(sharedKeys.skipped)")
        return Fixture(publicKeys: publicKeys, sharedKeys: sharedKeys, signer: signer)
    }()

    /// Whether `input` is a token that verifies under one of the fixed sets (the seeds must).
    public static func verifies(_ input: [UInt8]) -> Bool {
        let fixture = Self.fixture
        return [fixture.publicKeys, fixture.sharedKeys].contains { (try? fixture.verifier.verify(input, keys: $0)) != nil }
    }

    /// The properties `input` breaks; empty when all hold.
    public static func failures(_ input: [UInt8]) -> [String] {
        let fixture = Self.fixture
        var failures: [String] = []
        let parts = input.split(separator: UInt8(ascii: "."), maxSplits: 2, omittingEmptySubsequences: false)

        for (name, keys) in [("public", fixture.publicKeys), ("shared", fixture.sharedKeys)] {
            let buffered = input.withUnsafeBytes { buffer in
                Result { () throws(JWSError) -> VerifiedToken in try fixture.verifier.verify(buffer, keys: keys) }
            }
            let generic = Result { () throws(JWSError) -> VerifiedToken in
                try fixture.verifier.verify(input.lazy.map { $0 }, keys: keys)
            }
            switch (buffered, generic) {
            case (.success(let token), .success(let other)):
                if parts.count == 3, token.payload != Base64URL.decode(parts[1]) {
                    failures.append("\(name) set: verified payload is not the token's own")
                }
                if token.payload != other.payload || token.header != other.header {
                    failures.append("\(name) set: the generic entry verified a different token")
                }
                failures += claimsFailures(token.payload)
            case (.failure(let error), .failure(let other)):
                if error.code != other.code { failures.append("\(name) set: entries disagree: \(error.code) vs \(other.code)") }
                if error.code == .tokenTooLarge, input.count <= fixture.verifier.maximumTokenBytes {
                    failures.append("\(name) set: a \(input.count)-byte token called too large")
                }
            default:
                failures.append("\(name) set: one entry accepts the token and the other refuses it")
            }
        }

        if parts.count >= 2 {
            let signingInput = Array(parts[0]) + [UInt8(ascii: ".")] + Array(parts[1])
            let mac = HMAC<SHA256>.authenticationCode(for: signingInput, using: hmacKey)
            let token = signingInput + [UInt8(ascii: ".")] + Base64URL.encodedBytes(Array(mac))
            do {
                let verified = try fixture.verifier.verify(token, keys: fixture.sharedKeys)
                if verified.header.algorithm != .hs256 { failures.append("HMAC-SHA256 token verified as \(verified.header.algorithm)") }
                if verified.payload != Base64URL.decode(parts[1]) { failures.append("HMAC-SHA256 token: payload is not its own") }
            } catch {
                if error.code == .invalidSignature {
                    failures.append("a token HMAC-SHA256-signed with the set's only key was refused as invalid_signature")
                }
            }
            if (try? fixture.verifier.verify(token, keys: fixture.publicKeys)) != nil {
                failures.append("an HMAC-signed token was accepted by the public key set")
            }
        }

        let claims = parts.count >= 2 ? Base64URL.decode(parts[1]) : input
        if let claims, let claimsJSON = String(validating: claims, as: UTF8.self) {
            failures += signedClaimsFailures(claims, claimsJSON, fixture)
            failures += claimsFailures(claims)
        }
        return failures
    }

    private static func signedClaimsFailures(_ claims: [UInt8], _ claimsJSON: String, _ fixture: Fixture) -> [String] {
        guard let token = try? fixture.signer.sign(claimsJSON: claimsJSON) else {
            return ["the EdDSA signer refused claims \(claims.count) bytes long"]
        }
        var bytes = Array(token.utf8)
        var failures: [String] = []
        do {
            let verified = try fixture.verifier.verify(bytes, keys: fixture.publicKeys)
            if verified.payload != claims { failures.append("EdDSA token verified with a different payload") }
            if verified.header.algorithm != .edDSA || verified.header.keyID != "fuzz-eddsa" {
                failures.append("EdDSA token verified with header \(verified.header)")
            }
        } catch {
            if error.code != .tokenTooLarge { failures.append("a token the EdDSA signer made was refused: \(error)") }
            return failures
        }
        // Change the first signature character to another base64url character of the same
        // top bits' position: the decoded signature differs, the encoding stays strict.
        guard let dot = bytes.lastIndex(of: UInt8(ascii: ".")), dot + 1 < bytes.count else {
            return failures + ["EdDSA token has no signature part"]
        }
        bytes[dot + 1] = bytes[dot + 1] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        if (try? fixture.verifier.verify(bytes, keys: fixture.publicKeys)) != nil {
            failures.append("an EdDSA token with a changed signature still verified")
        }
        return failures
    }

    private static func claimsFailures(_ payload: [UInt8]) -> [String] {
        guard let claims = try? JWTClaims(payload: payload) else { return [] }
        let policy = Self.fixture.policy
        guard (try? policy.validate(claims, now: now)) != nil else { return [] }
        var failures: [String] = []
        if claims.issuer != policy.issuer { failures.append("claims passed with iss \(String(describing: claims.issuer))") }
        if !(claims.audience ?? []).contains(where: policy.audiences.contains) { failures.append("claims passed without a matching aud") }
        if let expiresAt = claims.expiresAt {
            if now >= expiresAt + policy.leeway { failures.append("claims passed with exp \(expiresAt) past") }
        } else {
            failures.append("claims passed without exp")
        }
        return failures
    }

    /// A throwaway 2048-bit RSA modulus (e = 65537) whose private half no longer exists.
    static let rsaModulus =
        "xD6e-m_t4bWR7kIruNic_I2Eotwzw8kcZmRgWrudy3AV7pfliJVsMKhTrQg0myUW2vO88VdIOF5sPnDG8W_Z4TXAVHolq4cyK9ONffDK"
        + "LQfLqH31bZEOBJj51htvD9OLWw9yBt1aCOMypZ1DF0BQUtBsBUbOjDlyZrH5HLLDj3LZqdFmJ9fbv0HJr0A6YmTSqNvjAhFESq7Pgo"
        + "RqZIa-Mc1btEwvejD7D-2zx0H36my7x2Wkn4WOMDcx7QJ_uweUlcSFehExeQr7CManbpknpMsX-sBY_tMIjuWArdG8yLDvtA3TF6g1F9"
        + "SQTvW8tRxPl6Lmzv6pBg74CXx-Rt8QqQ"
}
