import Crypto
import CryptoExtras
import PortcullisPolicy
import Testing

@testable import PortcullisAuth

@Suite struct JWSVerifierTests {
    static let payload = TestTokens.payload

    private func code(_ token: String, keys: JWKSet, allowing algorithms: [JWSAlgorithm]) -> JWSError.Code? {
        do {
            _ = try JWSVerifier(allowedAlgorithms: algorithms).verify(Array(token.utf8), keys: keys)
            return nil
        } catch {
            return error.code
        }
    }

    private func rs256Token(header: String = #"{"alg":"RS256","kid":"rsa-1"}"#, payload: String = Self.payload) -> String {
        TestTokens.compact(header: header, payload: payload) { TestTokens.rs256($0) }
    }

    // MARK: Accepted

    @Test func validTokensOfEveryKeyKindVerify() throws {
        let keys = try TestKeys.set(
            TestKeys.rsaJWK(alg: nil), TestKeys.p256JWK(), TestKeys.ed25519JWK())
        let cases: [(String, JWSAlgorithm, ([UInt8]) -> [UInt8])] = [
            (#"{"alg":"RS256","kid":"rsa-1","typ":"JWT"}"#, .rs256, { TestTokens.rs256($0) }),
            (#"{"alg":"PS256","kid":"rsa-1","typ":"JWT"}"#, .ps256, TestTokens.ps256),
            (#"{"alg":"ES256","kid":"ec-1","typ":"JWT"}"#, .es256, TestTokens.es256),
            (#"{"alg":"EdDSA","kid":"ed-1","typ":"JWT"}"#, .edDSA, TestTokens.edDSA),
        ]
        for (header, algorithm, sign) in cases {
            let token = TestTokens.compact(header: header, payload: Self.payload, sign: sign)
            let verified = try JWSVerifier(allowedAlgorithms: [algorithm]).verify(Array(token.utf8), keys: keys)
            #expect(verified.header.algorithm == algorithm)
            #expect(verified.header.type == "JWT")
            #expect(verified.payload == Array(Self.payload.utf8))
        }
    }

    @Test func hmacTokenVerifiesWithAnOctKey() throws {
        let keys = try TestKeys.set(TestKeys.octJWK())
        let token = TestTokens.compact(header: #"{"alg":"HS256","kid":"hmac-1"}"#, payload: Self.payload) { TestTokens.hs256($0) }
        let verified = try JWSVerifier(allowedAlgorithms: [.hs256]).verify(Array(token.utf8), keys: keys)
        #expect(verified.header.keyID == "hmac-1")
    }

    @Test func substringAndBufferInputsVerifyAlike() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK())
        let header = "Bearer " + self.rs256Token()
        let token = try #require(BearerToken.extract(from: header))
        let verifier = JWSVerifier(allowedAlgorithms: [.rs256])
        #expect(try verifier.verify(token.utf8, keys: keys).header.keyID == "rsa-1")
        let bytes = Array(token.utf8)
        #expect(try bytes.withUnsafeBytes { try verifier.verify($0, keys: keys) }.payload == Array(Self.payload.utf8))
    }

    @Test func theSigningInputIsTheTokensOwnBytes() throws {
        // Whitespace in the header JSON is signed as sent; nothing is re-encoded.
        let keys = try TestKeys.set(TestKeys.rsaJWK())
        let token = self.rs256Token(header: "{ \"alg\" : \"RS256\",\n\t\"kid\" : \"rsa-1\" }")
        #expect(self.code(token, keys: keys, allowing: [.rs256]) == nil)
    }

    // MARK: Size and shape

    @Test func sizeLimitIsCheckedFirst() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK())
        let verifier = JWSVerifier(allowedAlgorithms: [.rs256], maximumTokenBytes: 64)
        #expect(throws: JWSError(.tokenTooLarge, reason: "")) {
            try verifier.verify(Array(repeating: UInt8(ascii: "."), count: 65), keys: keys)
        }
        #expect(JWSVerifier.defaultMaximumTokenBytes == 16 * 1024)
        let padded = self.rs256Token(payload: "{\"pad\":\"" + String(repeating: "x", count: 16 * 1024) + "\"}")
        #expect(self.code(padded, keys: keys, allowing: [.rs256]) == .tokenTooLarge)
    }

    @Test func exactlyThreePartsAreRequired() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK())
        let token = self.rs256Token()
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        for broken in ["", ".", "..", "...", "a.b", String(parts[0]) + "." + String(parts[1]), token + ".", token + "." + parts[2], "." + token] {
            #expect(self.code(broken, keys: keys, allowing: [.rs256]) == .malformed, "\(broken.prefix(40))")
        }
    }

    @Test func everyPartMustBeStrictBase64URL() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK())
        let parts = self.rs256Token().split(separator: ".").map(String.init)
        for index in 0..<3 {
            for damage in ["=", " ", "+", "/", "?", "\n"] {
                var broken = parts
                broken[index] += damage
                #expect(self.code(broken.joined(separator: "."), keys: keys, allowing: [.rs256]) == .malformed)
            }
        }
        var emptySignature = parts
        emptySignature[2] = ""
        #expect(self.code(emptySignature.joined(separator: "."), keys: keys, allowing: [.rs256]) == .malformed)
    }

    @Test func theHeaderMustBeAJSONObjectWithStringMembers() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK())
        for header in [
            #"["RS256"]"#, #""RS256""#, #"{"alg":"RS256""#, #"{"kid":"rsa-1"}"#, #"{"alg":256}"#,
            #"{"alg":"RS256","kid":1}"#, #"{"alg":"RS256","typ":null}"#, #"{"alg":"RS256","alg":"RS256"}"#,
            #"{"alg":"RS256"} "x""#, "",
        ] {
            #expect(self.code(self.rs256Token(header: header), keys: keys, allowing: [.rs256]) == .malformed, "\(header)")
        }
    }

    // MARK: Algorithms

    @Test func algOutsideThePinnedListIsRefused() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK(alg: nil))
        let ps256 = TestTokens.compact(header: #"{"alg":"PS256","kid":"rsa-1"}"#, payload: Self.payload, sign: TestTokens.ps256)
        #expect(self.code(ps256, keys: keys, allowing: [.rs256]) == .algorithmNotAllowed)
        #expect(self.code(ps256, keys: keys, allowing: [.ps256]) == nil)
        #expect(self.code(self.rs256Token(), keys: keys, allowing: []) == .algorithmNotAllowed)
    }

    @Test func algNoneIsAlwaysRefused() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK())
        for name in ["none", "NONE", "None", "nOnE"] {
            let header = Base64URL.encode(Array(#"{"alg":"\#(name)","kid":"rsa-1"}"#.utf8))
            let body = Base64URL.encode(Array(Self.payload.utf8))
            for token in [header + "." + body + ".", header + "." + body + ".AAAA"] {
                #expect(self.code(token, keys: keys, allowing: JWSAlgorithm.allCases) == .algorithmNone, "\(name)")
            }
        }
    }

    @Test func unknownAlgorithmsAreRefused() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK(alg: nil))
        for name in ["ES521", "rs256", "RS1", "HS1", "RSA-OAEP", "", "ES256K"] {
            let token = self.rs256Token(header: #"{"alg":"\#(name)","kid":"rsa-1"}"#)
            #expect(self.code(token, keys: keys, allowing: JWSAlgorithm.allCases) == .unsupportedAlgorithm, "\(name)")
        }
    }

    @Test func algorithmNamesRoundTrip() {
        for algorithm in JWSAlgorithm.allCases {
            #expect(JWSAlgorithm(name: algorithm.name) == algorithm)
        }
        #expect(JWSAlgorithm(name: "none") == nil)
        #expect(JWSAlgorithm(name: "hs256") == nil)
        #expect(JWSAlgorithm.hs256.isSymmetric && !JWSAlgorithm.rs256.isSymmetric)
    }

    // MARK: Header extensions and embedded keys

    @Test func anyCritIsRefused() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK())
        for crit in [#""crit":["exp"],"exp":1"#, #""crit":[]"#, #""crit":["b64"],"b64":false"#, #""crit":"b64""#] {
            let token = self.rs256Token(header: #"{"alg":"RS256","kid":"rsa-1",\#(crit)}"#)
            #expect(self.code(token, keys: keys, allowing: [.rs256]) == .unsupportedCriticalHeader, "\(crit)")
        }
    }

    @Test func unencodedPayloadIsRefused() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK())
        let unencoded = self.rs256Token(header: #"{"alg":"RS256","kid":"rsa-1","b64":false}"#)
        #expect(self.code(unencoded, keys: keys, allowing: [.rs256]) == .unsupportedCriticalHeader)
        let explicit = self.rs256Token(header: #"{"alg":"RS256","kid":"rsa-1","b64":true}"#)
        #expect(self.code(explicit, keys: keys, allowing: [.rs256]) == nil)
    }

    @Test(arguments: ["jwk", "jku", "x5u", "x5c"])
    func headerKeysAndKeyURLsAreRefusedEvenWhenTheSignatureIsGood(member: String) throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK())
        let values = [
            "jwk": TestKeys.rsaJWK(), "jku": #""https://attacker.example/jwks.json""#,
            "x5u": #""https://attacker.example/cert.pem""#, "x5c": #"["MIIB"]"#,
        ]
        let token = self.rs256Token(header: #"{"alg":"RS256","kid":"rsa-1","\#(member)":\#(values[member]!)}"#)
        #expect(self.code(token, keys: keys, allowing: [.rs256]) == .embeddedKey)
    }

    // MARK: Keys

    @Test func kidSelectsTheKey() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK(TestKeys.otherRSA, kid: "old"), TestKeys.rsaJWK(kid: "new"))
        #expect(self.code(self.rs256Token(header: #"{"alg":"RS256","kid":"new"}"#), keys: keys, allowing: [.rs256]) == nil)
        #expect(self.code(self.rs256Token(header: #"{"alg":"RS256","kid":"old"}"#), keys: keys, allowing: [.rs256]) == .invalidSignature)
        #expect(self.code(self.rs256Token(header: #"{"alg":"RS256","kid":"gone"}"#), keys: keys, allowing: [.rs256]) == .unknownKeyID)
    }

    @Test func withoutKidTheFittingKeysAreTriedUpToTheBound() throws {
        var jwks = (0..<4).map { _ in TestKeys.rsaJWK(try! _RSA.Signing.PrivateKey(keySize: .bits2048), kid: nil) }
        jwks.insert(TestKeys.p256JWK(kid: nil), at: 0)
        jwks.append(TestKeys.rsaJWK(kid: nil))
        let keys = try JWKSet(json: Array("{\"keys\":[\(jwks.joined(separator: ","))]}".utf8))
        let token = self.rs256Token(header: #"{"alg":"RS256"}"#)
        // The signer's key is the fifth RSA key: one too many for the default bound of four.
        #expect(self.code(token, keys: keys, allowing: [.rs256]) == .invalidSignature)
        let generous = JWSVerifier(allowedAlgorithms: [.rs256], maximumKeysTriedWithoutKeyID: 5)
        #expect(try generous.verify(Array(token.utf8), keys: keys).header.keyID == nil)
        let ec = TestTokens.compact(header: #"{"alg":"ES256"}"#, payload: Self.payload, sign: TestTokens.es256)
        #expect(self.code(ec, keys: keys, allowing: [.es256]) == nil)
        let ed = TestTokens.compact(header: #"{"alg":"EdDSA"}"#, payload: Self.payload, sign: TestTokens.edDSA)
        #expect(self.code(ed, keys: keys, allowing: [.edDSA]) == .noSuitableKey)
    }

    @Test func hs256SignedWithTheRSAPublicKeyIsRefused() throws {
        // The classic confusion: the attacker MACs with the bytes of the published public key.
        let keys = try TestKeys.set(TestKeys.rsaJWK(alg: nil))
        let primitives = try TestKeys.rsa.publicKey.getKeyPrimitives()
        let publicBytes = [Array(primitives.modulus), Array(TestKeys.rsaJWK(alg: nil).utf8), Array(TestKeys.rsa.publicKey.derRepresentation)]
        for secret in publicBytes {
            let withKid = TestTokens.compact(header: #"{"alg":"HS256","kid":"rsa-1"}"#, payload: Self.payload) { TestTokens.hs256($0, secret: secret) }
            #expect(self.code(withKid, keys: keys, allowing: [.rs256, .hs256]) == .keyDoesNotFitAlgorithm)
            #expect(self.code(withKid, keys: keys, allowing: [.rs256]) == .algorithmNotAllowed)
            let withoutKid = TestTokens.compact(header: #"{"alg":"HS256"}"#, payload: Self.payload) { TestTokens.hs256($0, secret: secret) }
            #expect(self.code(withoutKid, keys: keys, allowing: [.rs256, .hs256]) == .noSuitableKey)
        }
        let ecKeys = try TestKeys.set(TestKeys.p256JWK(alg: nil))
        let ecConfusion = TestTokens.compact(header: #"{"alg":"HS256","kid":"ec-1"}"#, payload: Self.payload) {
            TestTokens.hs256($0, secret: Array(TestKeys.p256.publicKey.x963Representation))
        }
        #expect(self.code(ecConfusion, keys: ecKeys, allowing: JWSAlgorithm.allCases) == .keyDoesNotFitAlgorithm)
    }

    @Test func theJWKsOwnAlgMustMatch() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK(alg: "RS256"))
        let ps256 = TestTokens.compact(header: #"{"alg":"PS256","kid":"rsa-1"}"#, payload: Self.payload, sign: TestTokens.ps256)
        #expect(self.code(ps256, keys: keys, allowing: [.rs256, .ps256]) == .keyDoesNotFitAlgorithm)
        let ecKeys = try TestKeys.set(TestKeys.p384JWK(kid: "ec-1", alg: nil))
        let es256 = TestTokens.compact(header: #"{"alg":"ES256","kid":"ec-1"}"#, payload: Self.payload, sign: TestTokens.es256)
        #expect(self.code(es256, keys: ecKeys, allowing: [.es256, .es384]) == .keyDoesNotFitAlgorithm)
    }

    @Test func hmacKeyShorterThanTheHashDoesNotFit() throws {
        let short = [UInt8](repeating: 9, count: 20)
        let keys = try TestKeys.set(TestKeys.octJWK(short, alg: nil))
        let token = TestTokens.compact(header: #"{"alg":"HS256","kid":"hmac-1"}"#, payload: Self.payload) { TestTokens.hs256($0, secret: short) }
        #expect(self.code(token, keys: keys, allowing: [.hs256]) == .keyDoesNotFitAlgorithm)
    }

    // MARK: Signatures

    @Test func tamperedPayloadOrHeaderIsRefused() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK(alg: nil), TestKeys.p256JWK())
        for token in [self.rs256Token(), TestTokens.compact(header: #"{"alg":"ES256","kid":"ec-1"}"#, payload: Self.payload, sign: TestTokens.es256)] {
            var parts = token.split(separator: ".").map(String.init)
            parts[1] = Base64URL.encode(Array(Self.payload.replacingOccurrences(of: "client-1", with: "client-2").utf8))
            #expect(self.code(parts.joined(separator: "."), keys: keys, allowing: [.rs256, .es256]) == .invalidSignature)
        }
        let typ = self.rs256Token().split(separator: ".").map(String.init)
        let retyped = [Base64URL.encode(Array(#"{"alg":"RS256","kid":"rsa-1","typ":"JWT"}"#.utf8)), typ[1], typ[2]]
        #expect(self.code(retyped.joined(separator: "."), keys: keys, allowing: [.rs256]) == .invalidSignature)
    }

    @Test func ecdsaWithZeroROrSIsRefused() throws {
        let keys = try TestKeys.set(TestKeys.p256JWK())
        let good = TestTokens.compact(header: #"{"alg":"ES256","kid":"ec-1"}"#, payload: Self.payload, sign: TestTokens.es256)
        let parts = good.split(separator: ".").map(String.init)
        let signature = try #require(Base64URL.decode(Array(parts[2].utf8)))
        let zero = [UInt8](repeating: 0, count: 32)
        for forged in [zero + zero, zero + signature[32...], Array(signature[..<32]) + zero] {
            let token = parts[0] + "." + parts[1] + "." + Base64URL.encode(forged)
            #expect(self.code(token, keys: keys, allowing: [.es256]) == .invalidSignature)
        }
    }

    @Test func ecdsaSignatureMustBeRawRAndSOfExactLength() throws {
        let keys = try TestKeys.set(TestKeys.p256JWK())
        let input = Array((Base64URL.encode(Array(#"{"alg":"ES256","kid":"ec-1"}"#.utf8)) + "." + Base64URL.encode(Array(Self.payload.utf8))).utf8)
        let signature = try TestKeys.p256.signature(for: input)
        let prefix = String(decoding: input, as: UTF8.self) + "."
        let der = prefix + Base64URL.encode(Array(signature.derRepresentation))
        #expect(self.code(der, keys: keys, allowing: [.es256]) == .invalidSignature)
        let raw = Array(signature.rawRepresentation)
        #expect(self.code(prefix + Base64URL.encode(raw), keys: keys, allowing: [.es256]) == nil)
        #expect(self.code(prefix + Base64URL.encode([0] + raw), keys: keys, allowing: [.es256]) == .invalidSignature)
        #expect(self.code(prefix + Base64URL.encode(raw + [0]), keys: keys, allowing: [.es256]) == .invalidSignature)
        #expect(self.code(prefix + Base64URL.encode(raw.dropLast()), keys: keys, allowing: [.es256]) == .invalidSignature)
    }

    // MARK: The remembered header

    /// A verifier reading headers through a memo (one per event loop) answers every token as
    /// one that parses each header afresh, whatever the memo holds: each token of a corpus of
    /// good and refused ones, after every other token of it.
    @Test func aRememberedHeaderChangesNoVerdict() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK(alg: nil), TestKeys.p256JWK())
        let good = self.rs256Token()
        let parts = good.split(separator: ".").map(String.init)
        func with(_ index: Int, _ text: String) -> String {
            var copy = parts
            copy[index] = text
            return copy.joined(separator: ".")
        }
        func header(_ json: String) -> String { Base64URL.encode(Array(json.utf8)) }
        let corpus = [
            good,
            self.rs256Token(header: #"{"alg":"RS256","kid":"rsa-1","typ":"JWT"}"#),
            TestTokens.compact(header: #"{"alg":"ES256","kid":"ec-1"}"#, payload: Self.payload, sign: TestTokens.es256),
            TestTokens.compact(header: #"{"alg":"PS256","kid":"rsa-1"}"#, payload: Self.payload, sign: TestTokens.ps256),
            with(1, Base64URL.encode(Array(Self.payload.replacingOccurrences(of: "client-1", with: "client-2").utf8))),
            with(1, parts[1] + "="), with(2, parts[2] + "+"), with(2, ""), with(0, parts[0] + "="),
            with(0, header(#"{"alg":"none","kid":"rsa-1"}"#)), with(0, header(#"{"alg":"RS256","kid":"rsa-1","crit":["b64"]}"#)),
            with(0, header(#"{"alg":"RS256","kid":"rsa-2"}"#)), with(0, header(#"{"alg":"RS256","kid":"rsa-1","jwk":{}}"#)),
            with(0, header(#"{"alg":"RS256","kid":"rsa-1"} "#)), with(0, String(parts[0].dropLast())),
            parts[0] + "." + parts[1], good + ".x",
        ]
        let verifier = JWSVerifier(allowedAlgorithms: [.rs256, .es256])
        func code(_ token: String, _ headers: inout JOSEHeaderMemo) -> JWSError.Code? {
            do {
                _ = try verifier.verify(Array(token.utf8), keys: keys, headers: &headers)
                return nil
            } catch {
                return error.code
            }
        }
        var fresh = JOSEHeaderMemo()
        let expected = corpus.map { token -> JWSError.Code? in
            fresh = JOSEHeaderMemo()
            return code(token, &fresh)
        }
        #expect(expected[0] == nil && expected[2] == nil && expected[4] == .invalidSignature && expected[9] == .algorithmNone)
        for (before, primer) in corpus.enumerated() {
            for (index, token) in corpus.enumerated() {
                var shared = JOSEHeaderMemo()
                _ = code(primer, &shared)
                #expect(code(token, &shared) == expected[index], "token \(index) after token \(before)")
            }
        }
    }

    @Test func theMemoHoldsTheLastAcceptableHeaderByItsExactText() throws {
        let keys = try TestKeys.set(TestKeys.rsaJWK(alg: nil))
        let token = self.rs256Token()
        let encodedHeader = Array(token.split(separator: ".")[0].utf8)
        var headers = JOSEHeaderMemo()
        _ = try JWSVerifier(allowedAlgorithms: [.rs256]).verify(Array(token.utf8), keys: keys, headers: &headers)
        let remembered = encodedHeader.withUnsafeBytes { headers.header(for: $0) }
        #expect(remembered == JOSEHeader(algorithm: .rs256, keyID: "rsa-1"))
        let longer = (encodedHeader + Array("AA".utf8)).withUnsafeBytes { headers.header(for: $0) }
        #expect(longer == nil)
        // A refused header is not remembered: the last acceptable one stays.
        let none = Base64URL.encode(Array(#"{"alg":"none"}"#.utf8)) + "." + token.split(separator: ".")[1] + "."
        #expect(throws: JWSError.self) { try JWSVerifier(allowedAlgorithms: [.rs256]).verify(Array(none.utf8), keys: keys, headers: &headers) }
        #expect(encodedHeader.withUnsafeBytes { headers.header(for: $0) } != nil)
    }

    @Test func errorsCompareOnCodeAndNameThemselvesForLogs() {
        let a = JWSError(.invalidSignature, reason: "one")
        let b = JWSError(.invalidSignature, reason: "two")
        #expect(a == b)
        #expect(a != JWSError(.malformed, reason: "one"))
        #expect(a.code.identifier == "bad_signature")
        #expect("\(a)".contains("JWSVerifierTests.swift"))
    }
}
