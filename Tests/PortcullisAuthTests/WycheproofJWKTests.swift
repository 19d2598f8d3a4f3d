import Foundation
import Testing

@testable import PortcullisAuth

/// Wycheproof's `json_web_key_test.json`: each group's key set (public when present) parsed as a
/// JWK Set, then its tokens verified with every algorithm allowed, so only the key and set rules
/// decide. Duplicate kids, mixed secret and public keys, short HMAC keys, a 1024-bit RSA key, an
/// RSA exponent of 1, a ROCA modulus, bad points, curves and algorithms must all end in a refusal.
@Suite struct WycheproofJWKTests {
    @Test(.enabled(if: AuthFixtures.present, Comment(rawValue: AuthFixtures.missingMessage)))
    func everyKeySetCaseGetsTheExpectedVerdict() throws {
        let document = try AuthFixtures.json("wycheproof", "json_web_key_test.json")
        let groups = try #require(document["testGroups"] as? [[String: Any]])
        var total = 0
        var validAccepted = 0
        var invalidRefused = 0
        var reasons: [String] = []
        for group in groups {
            let keySet = try #require((group["public"] ?? group["private"]) as? [String: Any])
            let comment = group["comment"] as? String ?? "?"
            let set: JWKSet?
            do {
                set = try JWKSet(json: AuthFixtures.bytes(keySet))
            } catch {
                set = nil
                reasons.append("\(comment): set refused: \(error)")
            }
            for skipped in set?.skipped ?? [] {
                reasons.append("\(comment): \(skipped)")
            }
            for test in try #require(group["tests"] as? [[String: Any]]) {
                total += 1
                let id = test["tcId"] as! Int
                let expected = test["result"] as! String
                var accepted = false
                var detail = "no key set"
                if let set {
                    do {
                        _ = try JWSVerifier(allowedAlgorithms: JWSAlgorithm.allCases).verify(Array((test["jws"] as! String).utf8), keys: set)
                        accepted = true
                        detail = "accepted"
                    } catch {
                        detail = "\(error)"
                    }
                }
                let context = Comment(rawValue: "tcId \(id) \(comment) \(test["comment"] ?? "") [\(expected)]: \(detail)")
                switch expected {
                case "valid":
                    #expect(accepted, context)
                    validAccepted += accepted ? 1 : 0
                case "invalid":
                    #expect(!accepted, context)
                    invalidRefused += accepted ? 0 : 1
                default:
                    print("  acceptable: \(context.rawValue)")
                }
            }
        }
        #expect(total == 26)
        print("wycheproof JWK: \(total) cases, \(validAccepted) valid accepted, \(invalidRefused) invalid refused")
        for reason in reasons { print("  \(reason)") }
    }
}
