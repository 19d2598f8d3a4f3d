import PortcullisPolicy
/// The verification keys of one issuer, parsed once per JWKS fetch or file load (RFC 7517 §5).
///
/// A set whose JSON is malformed, or that has no `keys` array, is an error: the caller keeps
/// its last good set. A bad key inside a good set is skipped and reported in ``skipped``, so
/// one odd key never takes the issuer's other keys down with it. Beyond each key's own rules
/// (see ``JWK``):
/// - Keys sharing a `kid` are all skipped: the token's `kid` would not say which key it means
///   (Wycheproof `jws_duplicate_kid`). A key that failed to parse still counts, since the issuer
///   may sign with it; a key marked for encryption (`use`/`key_ops`) does not.
/// - `oct` keys in a set that also holds public keys are skipped: a published JWKS never holds
///   shared secrets, and mixing them invites HMAC/public-key confusion (Wycheproof
///   `jws_mixedSymmetryKeyset`).
///
/// Immutable and `Sendable`: a refresh builds a new set and swaps it in.
public struct JWKSet: Sendable {
    /// A key of the document that is not used, and why.
    public struct SkippedKey: Sendable, CustomStringConvertible {
        /// Position in the document's `keys` array.
        public let index: Int
        public let keyID: String?
        public let error: JWKError

        public var description: String {
            let name = self.keyID.map { "kid \"\($0)\"" } ?? "no kid"
            return "keys[\(self.index)] (\(name)): \(self.error)"
        }
    }

    /// The keys used for verification, in document order.
    public let keys: [JWK]
    /// The keys not used, in document order.
    public let skipped: [SkippedKey]
    private let indexByKeyID: [String: Int]

    /// Parses a JWK Set document.
    public init<Bytes: Collection>(json: Bytes) throws(JWKError) where Bytes.Element == UInt8 {
        let value: JSONValue
        do {
            value = try JSONValue.parse(json)
        } catch {
            throw JWKError(.malformedJSON, reason: "JWK Set is not valid JSON: \(error)")
        }
        guard case .object(let document) = value, case .array(let elements)? = document["keys"] else {
            throw JWKError(.notAKeySet, reason: "JWK Set is not an object with a \"keys\" array")
        }
        var parsed: [(index: Int, key: JWK)] = []
        var skipped: [SkippedKey] = []
        var brokenKeyIDs: [String] = []
        for (index, element) in elements.enumerated() {
            guard case .object(let members) = element else {
                skipped.append(SkippedKey(index: index, keyID: nil, error: JWKError(.invalidMember, reason: "not a JSON object")))
                continue
            }
            do {
                parsed.append((index, try JWK(members: members)))
            } catch {
                let keyID = members["kid"]?.stringValue
                skipped.append(SkippedKey(index: index, keyID: keyID, error: error))
                if let keyID, error.code != .notForSignatures {
                    brokenKeyIDs.append(keyID)
                }
            }
        }
        self.init(parsed: parsed, skipped: skipped, brokenKeyIDs: brokenKeyIDs)
    }

    /// A set of already parsed keys; the set rules above still apply.
    public init(keys: [JWK]) {
        self.init(parsed: keys.enumerated().map { ($0.offset, $0.element) }, skipped: [], brokenKeyIDs: [])
    }

    private init(parsed: [(index: Int, key: JWK)], skipped: [SkippedKey], brokenKeyIDs: [String]) {
        var skipped = skipped
        var uses: [String: Int] = [:]
        for keyID in brokenKeyIDs {
            uses[keyID, default: 0] += 1
        }
        for candidate in parsed {
            if let keyID = candidate.key.keyID {
                uses[keyID, default: 0] += 1
            }
        }
        var candidates = parsed
        if candidates.contains(where: { $0.key.keyType != .octetSequence }) {
            candidates.removeAll { candidate in
                guard candidate.key.keyType == .octetSequence else { return false }
                skipped.append(
                    SkippedKey(
                        index: candidate.index,
                        keyID: candidate.key.keyID,
                        error: JWKError(.symmetricKeyAmongPublicKeys, reason: "oct key in a set of public keys is not used")
                    )
                )
                return true
            }
        }
        candidates.removeAll { candidate in
            guard let keyID = candidate.key.keyID, uses[keyID]! > 1 else { return false }
            skipped.append(
                SkippedKey(
                    index: candidate.index,
                    keyID: keyID,
                    error: JWKError(.duplicateKeyID, reason: "kid \"\(keyID)\" names \(uses[keyID]!) keys; none of them is used")
                )
            )
            return true
        }
        self.keys = candidates.map(\.key)
        self.skipped = skipped.sorted { $0.index < $1.index }
        var indexByKeyID: [String: Int] = [:]
        for (position, key) in self.keys.enumerated() {
            if let keyID = key.keyID {
                indexByKeyID[keyID] = position
            }
        }
        self.indexByKeyID = indexByKeyID
    }

    /// The key whose `kid` is `keyID`, if the set has exactly one.
    public func key(withID keyID: String) -> JWK? {
        self.indexByKeyID[keyID].map { self.keys[$0] }
    }

    public var isEmpty: Bool { self.keys.isEmpty }
}
