import Foundation
import Testing

@testable import PortcullisAuth

/// RFC 7520's signature examples (and the Ed25519 one from its curve25519 folder): each
/// `output.compact` must verify with `input.key` and `input.alg` pinned, and yield the payload.
///
/// The cookbook gives private JWKs. This verifier refuses a public-key JWK that carries its
/// private part, so the test checks that refusal, then verifies with the public members only.
@Suite struct JOSECookbookTests {
    static let privateMembers: Set<String> = ["d", "p", "q", "dp", "dq", "qi", "oth"]

    @Test(.enabled(if: AuthFixtures.present, Comment(rawValue: AuthFixtures.missingMessage)))
    func everyExampleTokenVerifies() throws {
        let files = AuthFixtures.files("jose-cookbook")
        #expect(files.count >= 5)
        var verified: [String] = []
        for file in files {
            let example = try AuthFixtures.json("jose-cookbook", file)
            let input = try #require(example["input"] as? [String: Any], "\(file)")
            let output = try #require(example["output"] as? [String: Any], "\(file)")
            let alg = try #require(JWSAlgorithm(name: input["alg"] as? String ?? ""), "\(file)")
            let compact = try #require(output["compact"] as? String, "\(file)")
            let payload = try #require(input["payload"] as? String, "\(file)")
            let fullKey = try #require(input["key"] as? [String: Any], "\(file)")

            var publicKey = fullKey
            if fullKey["kty"] as? String != "oct" {
                #expect(throws: JWKError(.privateKeyMaterial, reason: ""), "\(file)") {
                    try JWK(json: AuthFixtures.bytes(fullKey))
                }
                for name in Self.privateMembers { publicKey.removeValue(forKey: name) }
            }
            let key = try JWK(json: AuthFixtures.bytes(publicKey))
            let token = try JWSVerifier(allowedAlgorithms: [alg]).verify(Array(compact.utf8), keys: JWKSet(keys: [key]))
            #expect(token.header.algorithm == alg, "\(file)")
            #expect(token.payload == Array(payload.utf8), "\(file)")

            var tampered = Array(compact.utf8)
            let last = tampered.count - 2
            tampered[last] = tampered[last] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(throws: JWSError.self, "\(file)") {
                try JWSVerifier(allowedAlgorithms: [alg]).verify(tampered, keys: JWKSet(keys: [key]))
            }
            verified.append("\(file) (\(alg))")
        }
        print("jose-cookbook: \(verified.count) of \(files.count) tokens verified: \(verified.joined(separator: ", "))")
        #expect(verified.count == files.count)
    }
}
