import Crypto
import Testing

@testable import PortcullisAuth

@Suite struct JWKTests {
    private func code(_ json: String) -> JWKError.Code? {
        do {
            _ = try JWK(json: Array(json.utf8))
            return nil
        } catch {
            return error.code
        }
    }

    /// 2048 bits, odd, and 1 modulo every ROCA prime: the fingerprint without a real key.
    static let rocaModulus =
        "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABml-vtLJyxuBBYVZP4HaMg36sQvfLg8dnoAvzw"

    @Test func everySupportedKeyKindParses() throws {
        let rsa = try TestKeys.key(TestKeys.rsaJWK())
        #expect(rsa.keyType == .rsa && rsa.rsaModulusBits == 2048 && rsa.keyID == "rsa-1" && rsa.algorithm == .rs256)
        let ec = try TestKeys.key(TestKeys.p256JWK())
        #expect(ec.keyType == .ellipticCurve && ec.curve == "P-256")
        #expect(try TestKeys.key(TestKeys.p384JWK()).curve == "P-384")
        let ed = try TestKeys.key(TestKeys.ed25519JWK())
        #expect(ed.keyType == .octetKeyPair && ed.curve == "Ed25519")
        let oct = try TestKeys.key(TestKeys.octJWK())
        #expect(oct.keyType == .octetSequence && oct.algorithm == .hs256)
    }

    @Test func useAndKeyOpsAreKept() throws {
        let key = try TestKeys.key(TestKeys.p256JWK(extra: #""use":"sig","key_ops":["verify"]"#))
        #expect(key.use == "sig")
        #expect(key.keyOperations == ["verify"])
    }

    @Test func keysNotForSignaturesAreRefused() {
        #expect(self.code(TestKeys.p256JWK(extra: #""use":"enc""#)) == .notForSignatures)
        #expect(self.code(TestKeys.p256JWK(extra: #""key_ops":["encrypt"]"#)) == .notForSignatures)
        #expect(self.code(TestKeys.p256JWK(extra: #""key_ops":["sign"]"#)) == .notForSignatures)
        #expect(self.code(TestKeys.p256JWK(extra: #""key_ops":"verify""#)) == .invalidMember)
    }

    @Test func rsaModulusUnder2048BitsIsRefused() {
        let modulus1024 = Base64URL.encode([0xC5] + [UInt8](repeating: 0x5A, count: 126) + [0x01])
        #expect(self.code(#"{"kty":"RSA","n":"\#(modulus1024)","e":"AQAB"}"#) == .keyTooSmall)
        // A leading zero octet is tolerated but does not count towards the size.
        let padded = Base64URL.encode([0x00] + [0xC5] + [UInt8](repeating: 0x5A, count: 254) + [0x01])
        #expect(self.code(#"{"kty":"RSA","n":"\#(padded)","e":"AQAB"}"#) != .keyTooSmall)
    }

    @Test func rsaExponentMustBeOddAtLeastThreeAndSmall() throws {
        let primitives = try TestKeys.rsa.publicKey.getKeyPrimitives()
        let n = Base64URL.encode(Array(primitives.modulus))
        #expect(self.code(#"{"kty":"RSA","n":"\#(n)","e":"AQ"}"#) == .invalidKey)
        #expect(self.code(#"{"kty":"RSA","n":"\#(n)","e":"AAE"}"#) == .invalidKey)
        #expect(self.code(#"{"kty":"RSA","n":"\#(n)","e":"AQAA"}"#) == .invalidKey)
        #expect(self.code(#"{"kty":"RSA","n":"\#(n)","e":"AQAAAAE"}"#) == .invalidKey)
        #expect(self.code(#"{"kty":"RSA","n":"\#(n)","e":""}"#) == .invalidKey)
        #expect(self.code(#"{"kty":"RSA","n":"\#(n)","e":"AQAB"}"#) == nil)
    }

    @Test func rsaModulusWithTheROCAFingerprintIsRefused() throws {
        #expect(self.code(#"{"kty":"RSA","n":"\#(Self.rocaModulus)","e":"AQAB"}"#) == .weakKey)
        let genuine = try TestKeys.rsa.publicKey.getKeyPrimitives()
        #expect(!JWK.hasROCAFingerprint(modulus: Array(genuine.modulus)))
    }

    @Test func publishedPrivateKeysAreRefused() {
        #expect(self.code(TestKeys.rsaJWK(extra: #""d":"AQAB""#)) == .privateKeyMaterial)
        #expect(self.code(TestKeys.rsaJWK(extra: #""p":"AQAB""#)) == .privateKeyMaterial)
        #expect(self.code(TestKeys.p256JWK(extra: #""d":"AQAB""#)) == .privateKeyMaterial)
    }

    @Test func ellipticCurveKeysAreChecked() throws {
        let raw = Array(TestKeys.p256.publicKey.rawRepresentation)
        let x = Base64URL.encode(raw[0..<32])
        var offCurve = Array(raw[32...])
        offCurve[31] ^= 1
        let y = Base64URL.encode(raw[32...])
        #expect(self.code(#"{"kty":"EC","crv":"P-256","x":"\#(x)","y":"\#(Base64URL.encode(offCurve))"}"#) == .invalidKey)
        #expect(self.code(#"{"kty":"EC","crv":"P-256","x":"\#(Base64URL.encode(raw[1..<32]))","y":"\#(y)"}"#) == .invalidMember)
        #expect(self.code(#"{"kty":"EC","crv":"P-384","x":"\#(x)","y":"\#(y)"}"#) == .invalidMember)
        #expect(self.code(#"{"kty":"EC","crv":"secp256k1","x":"\#(x)","y":"\#(y)"}"#) == .unsupportedCurve)
        #expect(self.code(#"{"kty":"EC","x":"\#(x)","y":"\#(y)"}"#) == .missingMember)
        #expect(self.code(TestKeys.p256JWK(alg: "ES384")) == .algorithmDoesNotFitKey)
        #expect(self.code(TestKeys.p256JWK(alg: "ES521")) == .unsupportedAlgorithm)
        #expect(self.code(TestKeys.p256JWK(alg: "RS256")) == .algorithmDoesNotFitKey)
    }

    @Test func okpKeysAreEd25519Only() {
        let x = Base64URL.encode(Array(TestKeys.ed25519.publicKey.rawRepresentation))
        #expect(self.code(#"{"kty":"OKP","crv":"X25519","x":"\#(x)"}"#) == .unsupportedCurve)
        #expect(self.code(#"{"kty":"OKP","crv":"Ed448","x":"\#(x)"}"#) == .unsupportedCurve)
        #expect(self.code(#"{"kty":"OKP","crv":"Ed25519","x":"\#(Base64URL.encode([UInt8](repeating: 1, count: 31)))"}"#) == .invalidMember)
    }

    @Test func hmacKeysMustBeAtLeastTheHashLength() throws {
        #expect(self.code(TestKeys.octJWK([UInt8](repeating: 1, count: 31), alg: "HS256")) == .keyTooSmall)
        #expect(self.code(TestKeys.octJWK([UInt8](repeating: 1, count: 47), alg: "HS384")) == .keyTooSmall)
        #expect(self.code(#"{"kty":"oct","k":""}"#) == .keyTooSmall)
        let short = try TestKeys.key(TestKeys.octJWK([UInt8](repeating: 1, count: 16), alg: nil))
        #expect(!short.permits(.hs256))
        let long = try TestKeys.key(TestKeys.octJWK([UInt8](repeating: 1, count: 64), alg: nil))
        #expect(long.permits(.hs256) && long.permits(.hs512))
    }

    @Test func malformedMembersAreRefused() {
        #expect(self.code(#"{"n":"AQAB","e":"AQAB"}"#) == .missingMember)
        #expect(self.code(#"{"kty":"DSA"}"#) == .unsupportedKeyType)
        #expect(self.code(#"{"kty":"rsa"}"#) == .unsupportedKeyType)
        #expect(self.code(#"{"kty":1}"#) == .invalidMember)
        #expect(self.code(#"{"kty":"oct","k":"AQAB=="}"#) == .invalidMember)
        #expect(self.code(#"{"kty":"oct","k":"AQAB","kid":7}"#) == .invalidMember)
        #expect(self.code(#"{"kty":"oct","k":"AQAB","alg":"none"}"#) == .unsupportedAlgorithm)
        #expect(self.code(#"["kty"]"#) == .notAKeySet)
        #expect(self.code(#"{"kty":"oct","kty":"RSA"}"#) == .malformedJSON)
    }

    @Test func permitsFollowsTypeCurveAndOwnAlg() throws {
        let rsaWithoutAlg = try TestKeys.key(TestKeys.rsaJWK(alg: nil))
        for algorithm in JWSAlgorithm.allCases {
            #expect(rsaWithoutAlg.permits(algorithm) == (algorithm.keyType == .rsa))
        }
        let rs256Only = try TestKeys.key(TestKeys.rsaJWK(alg: "RS256"))
        #expect(rs256Only.permits(.rs256) && !rs256Only.permits(.ps256) && !rs256Only.permits(.hs256))
        let ec = try TestKeys.key(TestKeys.p256JWK(alg: nil))
        #expect(ec.permits(.es256) && !ec.permits(.es384) && !ec.permits(.hs256))
        let ed = try TestKeys.key(TestKeys.ed25519JWK(alg: nil))
        #expect(ed.permits(.edDSA) && !ed.permits(.hs256))
    }
}

@Suite struct JWKSetTests {
    @Test func keysAreFoundByKid() throws {
        let set = try TestKeys.set(TestKeys.rsaJWK(), TestKeys.p256JWK(), TestKeys.ed25519JWK())
        #expect(set.keys.count == 3 && set.skipped.isEmpty)
        #expect(set.key(withID: "ec-1")?.curve == "P-256")
        #expect(set.key(withID: "rsa-1")?.keyType == .rsa)
        #expect(set.key(withID: "nope") == nil)
    }

    @Test func aBadKeyIsSkippedAndReportedWhileTheOthersStay() throws {
        let set = try TestKeys.set(
            TestKeys.rsaJWK(), #"{"kty":"EC","crv":"P-256","kid":"broken","x":"AA","y":"AA"}"#, "17",
            TestKeys.p256JWK(extra: #""use":"enc""#).replacingOccurrences(of: "ec-1", with: "enc-1"),
            TestKeys.ed25519JWK())
        #expect(set.keys.map(\.keyID) == ["rsa-1", "ed-1"])
        #expect(set.skipped.map(\.index) == [1, 2, 3])
        #expect(set.skipped.map(\.keyID) == ["broken", nil, "enc-1"])
        #expect(set.skipped.map(\.error.code) == [.invalidMember, .invalidMember, .notForSignatures])
    }

    @Test func malformedSetIsAnError() {
        for document in [#"{"keys":[}"#, #"{"keys":{}}"#, #"[]"#, #"{"key":[]}"#, "", #"{"keys":[],"keys":[]}"#] {
            #expect(throws: JWKError.self) { try JWKSet(json: Array(document.utf8)) }
        }
        #expect(throws: JWKError(.notAKeySet, reason: "")) { try JWKSet(json: Array(#"{"key":[]}"#.utf8)) }
        #expect(throws: JWKError(.malformedJSON, reason: "")) { try JWKSet(json: Array(#"{"keys":[}"#.utf8)) }
    }

    @Test func emptySetIsValidAndEmpty() throws {
        let set = try JWKSet(json: Array(#"{"keys":[]}"#.utf8))
        #expect(set.isEmpty)
    }

    @Test func duplicateKidsAreAllSkipped() throws {
        let set = try TestKeys.set(TestKeys.rsaJWK(kid: "same"), TestKeys.p256JWK(kid: "same"), TestKeys.ed25519JWK())
        #expect(set.keys.map(\.keyID) == ["ed-1"])
        #expect(set.key(withID: "same") == nil)
        #expect(set.skipped.map(\.error.code) == [.duplicateKeyID, .duplicateKeyID])
    }

    @Test func aBrokenKeySharingAKidStillMakesItAmbiguous() throws {
        let set = try TestKeys.set(TestKeys.rsaJWK(kid: "k"), #"{"kty":"EC","crv":"P-256","kid":"k","x":"AA","y":"AA"}"#)
        #expect(set.key(withID: "k") == nil)
        #expect(set.skipped.map(\.error.code) == [.duplicateKeyID, .invalidMember])
    }

    @Test func anEncryptionKeySharingAKidDoesNotCountAsADuplicate() throws {
        let set = try TestKeys.set(TestKeys.rsaJWK(kid: "k"), TestKeys.p256JWK(kid: "k", extra: #""use":"enc""#))
        #expect(set.key(withID: "k")?.keyType == .rsa)
        #expect(set.skipped.map(\.error.code) == [.notForSignatures])
    }

    @Test func symmetricKeysAmongPublicKeysAreSkipped() throws {
        let mixed = try TestKeys.set(TestKeys.octJWK(), TestKeys.p256JWK())
        #expect(mixed.keys.map(\.keyID) == ["ec-1"])
        #expect(mixed.skipped.map(\.error.code) == [.symmetricKeyAmongPublicKeys])
        let secretsOnly = try TestKeys.set(TestKeys.octJWK(), TestKeys.octJWK(kid: "hmac-2"))
        #expect(secretsOnly.keys.count == 2)
    }
}
