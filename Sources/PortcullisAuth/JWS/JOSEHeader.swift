import PortcullisPolicy
/// The protected header of a compact JWS, reduced to what verification and callers use.
///
/// Parsing refuses, whatever the issuer allows:
/// - `alg` missing or not a string, `kid` or `typ` not strings;
/// - `alg: none` in any letter case, and algorithms this verifier does not implement;
/// - `crit` in any form: no extension is understood, so a non-empty list is unknown by
///   definition, and RFC 7515 section 4.1.11 forbids an empty one;
/// - `b64` other than `true` (RFC 7797 unencoded payloads);
/// - `jwk`, `jku`, `x5u`, `x5c`: a token never brings or points at its own key.
/// Other members are ignored.
public struct JOSEHeader: Sendable, Hashable {
    public let algorithm: JWSAlgorithm
    public let keyID: String?
    public let type: String?

    public init(algorithm: JWSAlgorithm, keyID: String? = nil, type: String? = nil) {
        self.algorithm = algorithm
        self.keyID = keyID
        self.type = type
    }

    /// Parses the decoded header JSON.
    init(json: [UInt8]) throws(JWSError) {
        guard case .object(let members)? = try? JSONValue.parse(json) else {
            throw JWSError(.malformed, reason: "header is not a strict JSON object")
        }
        guard case .string(let name)? = members["alg"] else {
            throw JWSError(.malformed, reason: "header has no string alg")
        }
        if Self.isNone(name) {
            throw JWSError(.algorithmNone, reason: "alg none is never accepted")
        }
        if members["jwk"] != nil || members["jku"] != nil || members["x5u"] != nil || members["x5c"] != nil {
            throw JWSError(.embeddedKey, reason: "header brings or points at a key (jwk, jku, x5u or x5c)")
        }
        if members["crit"] != nil {
            throw JWSError(.unsupportedCriticalHeader, reason: "header has crit; no extension is understood")
        }
        if let b64 = members["b64"], b64 != .bool(true) {
            throw JWSError(.unsupportedCriticalHeader, reason: "header has b64 other than true")
        }
        guard let algorithm = JWSAlgorithm(rawValue: name) else {
            throw JWSError(.unsupportedAlgorithm, reason: "header alg is not a supported JWS algorithm")
        }
        self.algorithm = algorithm
        self.keyID = try Self.optionalString(members, "kid")
        self.type = try Self.optionalString(members, "typ")
    }

    private static func optionalString(_ members: JSONObject, _ name: String) throws(JWSError) -> String? {
        switch members[name] {
        case nil: return nil
        case .string(let value)?: return value
        default: throw JWSError(.malformed, reason: "header kid or typ is not a string")
        }
    }

    private static func isNone(_ name: String) -> Bool {
        var utf8 = name.utf8.makeIterator()
        for expected in "none".utf8 {
            guard let byte = utf8.next(), byte | 0x20 == expected else { return false }
        }
        return utf8.next() == nil
    }
}
