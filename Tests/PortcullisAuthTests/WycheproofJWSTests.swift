import Foundation
import Testing

@testable import PortcullisAuth

/// Wycheproof's `json_web_signature_test.json` (401 compact JWS cases), each verified against its
/// group's JWK (the public one when the group has it, else the `oct` secret) with the JWK's own
/// `alg` as the pinned list (every algorithm when the JWK names none).
///
/// Six cases expect a verdict that contradicts the vectors themselves or this verifier's rules.
/// They are listed in `disagreements`, and the test checks the documented behaviour instead:
/// - 367 and 370 are byte-for-byte the valid case 357 (the padding their names promise is not in
///   the file), so they verify, as 357 does.
/// - 346/350 (RFC 7520 Figure 20) sign with PS384 while the JWK says `alg: PS256`, and 347/351
///   (Figure 27) sign with ES512 while the JWK says `alg: ES521`, which is no JWS algorithm.
///   The JWK's own `alg` is enforced, so they are refused; the test proves the signatures are
///   otherwise good by verifying them with the JWK's `alg` removed.
/// 372 and 373 carry a `?` inside base64url: refusing them is also right (fixtures README).
@Suite struct WycheproofJWSTests {
    static let present = AuthFixtures.present
    static let missing = Comment(rawValue: AuthFixtures.missingMessage)

    enum Disagreement {
        case identicalTo(Int)
        case jwkAlgorithmDiffers
    }

    static let disagreements: [Int: (comment: String, kind: Disagreement)] = [
        346: ("Figure20", .jwkAlgorithmDiffers),
        347: ("Figure27", .jwkAlgorithmDiffers),
        350: ("Figure20", .jwkAlgorithmDiffers),
        351: ("Figure27", .jwkAlgorithmDiffers),
        367: ("invalidBase64Padding", .identicalTo(357)),
        370: ("invalidBase64PaddingInPayload", .identicalTo(357)),
    ]
    static let mayBeRejected: Set<Int> = [372, 373]

    struct Case {
        var id: Int
        var comment: String
        var jws: String
        var result: String
        var jwk: [String: Any]
    }

    struct Outcome {
        var accepted: Bool
        var detail: String
    }

    static func verify(_ jws: String, jwk: [String: Any], allowing pinned: [JWSAlgorithm]? = nil) -> Outcome {
        let key: JWK
        do {
            key = try JWK(json: AuthFixtures.bytes(jwk))
        } catch {
            return Outcome(accepted: false, detail: "key refused: \(error)")
        }
        let allowed = pinned ?? key.algorithm.map { [$0] } ?? JWSAlgorithm.allCases
        do {
            let verified = try JWSVerifier(allowedAlgorithms: allowed).verify(Array(jws.utf8), keys: JWKSet(keys: [key]))
            return Outcome(accepted: true, detail: "accepted \(verified.header.algorithm)")
        } catch {
            return Outcome(accepted: false, detail: "\(error)")
        }
    }

    @Test(.enabled(if: present, missing))
    func everyCaseGetsTheExpectedVerdict() throws {
        let document = try AuthFixtures.json("wycheproof", "json_web_signature_test.json")
        let groups = try #require(document["testGroups"] as? [[String: Any]])
        var cases: [Case] = []
        for group in groups {
            let jwk = try #require((group["public"] ?? group["private"]) as? [String: Any])
            for test in try #require(group["tests"] as? [[String: Any]]) {
                cases.append(
                    Case(
                        id: test["tcId"] as! Int, comment: test["comment"] as! String, jws: test["jws"] as! String,
                        result: test["result"] as! String, jwk: jwk))
            }
        }
        let tokens = Dictionary(cases.map { ($0.id, $0.jws) }, uniquingKeysWith: { first, _ in first })

        var validAccepted = 0
        var invalidRefused = 0
        var acceptable: [String] = []
        var mayBeRejected: [String] = []
        var disagreements: [String] = []
        for testCase in cases {
            let outcome = Self.verify(testCase.jws, jwk: testCase.jwk)
            let context = Comment(rawValue: "tcId \(testCase.id) \(testCase.comment) [\(testCase.result)]: \(outcome.detail)")

            if let disagreement = Self.disagreements[testCase.id] {
                #expect(testCase.comment == disagreement.comment, "the fixture changed: \(context)")
                switch disagreement.kind {
                case .identicalTo(let twin):
                    #expect(testCase.jws == tokens[twin], "no longer identical to tcId \(twin): \(context)")
                    #expect(outcome.accepted, "\(context)")
                case .jwkAlgorithmDiffers:
                    #expect(!outcome.accepted, "\(context)")
                    var withoutAlg = testCase.jwk
                    #expect(withoutAlg.removeValue(forKey: "alg") != nil, "\(context)")
                    let relaxed = Self.verify(testCase.jws, jwk: withoutAlg)
                    #expect(relaxed.accepted, "the signature is not good even without the JWK's alg: \(relaxed.detail)")
                }
                disagreements.append("\(testCase.id) \(testCase.comment): expected \(testCase.result), \(outcome.detail)")
                continue
            }

            switch testCase.result {
            case "valid" where Self.mayBeRejected.contains(testCase.id):
                mayBeRejected.append("\(testCase.id) \(testCase.comment): \(outcome.accepted ? "accepted" : "refused")")
            case "valid":
                #expect(outcome.accepted, "\(context)")
                validAccepted += outcome.accepted ? 1 : 0
            case "invalid":
                #expect(!outcome.accepted, "\(context)")
                invalidRefused += outcome.accepted ? 0 : 1
            case "acceptable":
                acceptable.append("\(testCase.id) \(testCase.comment): \(outcome.accepted ? "accepted" : "refused")")
            default:
                Issue.record("unknown result: \(context)")
            }
        }

        #expect(cases.count == 401)
        print(
            "wycheproof JWS: \(cases.count) cases, \(validAccepted) valid accepted, \(invalidRefused) invalid refused, "
                + "\(acceptable.count) acceptable, \(mayBeRejected.count) valid-but-may-be-rejected, "
                + "\(disagreements.count) fixture disagreements")
        for line in mayBeRejected { print("  may be rejected: \(line)") }
        for line in acceptable { print("  acceptable: \(line)") }
        for line in disagreements { print("  disagreement: \(line)") }
    }
}
