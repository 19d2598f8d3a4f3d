import Foundation
import Testing

@testable import PortcullisAuth

/// Wycheproof's raw signature vectors, driven through `JWK.isValidSignature`, the same check the
/// verifier runs on a token: ES256 in JWS's `r || s` form, RS256, PS256 (MGF1-SHA256, 32-byte
/// salt) and Ed25519. The key of each group is its JWK (for the few ECDSA groups without one,
/// a JWK made from the uncompressed point).
@Suite struct WycheproofSignatureTests {
    @Test(
        .enabled(if: AuthFixtures.present, Comment(rawValue: AuthFixtures.missingMessage)),
        arguments: [
            ("ecdsa_secp256r1_sha256_p1363_test.json", JWSAlgorithm.es256),
            ("rsa_signature_2048_sha256_test.json", .rs256),
            ("rsa_pss_2048_sha256_mgf1_32_test.json", .ps256),
            ("ed25519_test.json", .edDSA),
        ])
    func everyVectorGetsTheExpectedVerdict(file: String, algorithm: JWSAlgorithm) throws {
        let document = try AuthFixtures.json("wycheproof", file)
        let groups = try #require(document["testGroups"] as? [[String: Any]])
        var total = 0
        var validAccepted = 0
        var invalidRefused = 0
        var acceptable: [String] = []
        for group in groups {
            if algorithm == .ps256 {
                #expect(group["sha"] as? String == "SHA-256" && group["mgfSha"] as? String == "SHA-256")
                #expect("\(group["sLen"] ?? "")" == "32")
            }
            let key = try JWK(json: AuthFixtures.bytes(try Self.jwk(of: group)))
            for test in try #require(group["tests"] as? [[String: Any]]) {
                total += 1
                let message = AuthFixtures.hex(test["msg"] as! String)
                let signature = AuthFixtures.hex(test["sig"] as! String)
                let accepted = signature.withUnsafeBytes { signatureBytes in
                    message.withUnsafeBytes { key.isValidSignature(signatureBytes, for: $0, algorithm: algorithm) }
                }
                let expected = test["result"] as! String
                let context = Comment(rawValue: "\(file) tcId \(test["tcId"]!) \(test["comment"] ?? "") [\(expected)]")
                switch expected {
                case "valid":
                    #expect(accepted, context)
                    validAccepted += accepted ? 1 : 0
                case "invalid":
                    #expect(!accepted, context)
                    invalidRefused += accepted ? 0 : 1
                default:
                    acceptable.append("\(context.rawValue) \(test["flags"] ?? ""): \(accepted ? "accepted" : "refused")")
                }
            }
        }
        #expect(total == document["numberOfTests"] as? Int)
        print(
            "wycheproof \(file) (\(algorithm)): \(total) vectors, \(validAccepted) valid accepted, "
                + "\(invalidRefused) invalid refused, \(acceptable.count) acceptable")
        for line in acceptable { print("  acceptable: \(line)") }
    }

    static func jwk(of group: [String: Any]) throws -> [String: Any] {
        if let jwk = (group["publicKeyJwk"] ?? group["keyJwk"]) as? [String: Any] {
            return jwk
        }
        let publicKey = try #require(group["publicKey"] as? [String: Any])
        let point = AuthFixtures.hex(try #require(publicKey["uncompressed"] as? String))
        try #require(publicKey["curve"] as? String == "secp256r1" && point.count == 65 && point[0] == 4)
        return [
            "kty": "EC", "crv": "P-256", "x": Base64URL.encode(point[1..<33]), "y": Base64URL.encode(point[33...]),
        ]
    }
}
