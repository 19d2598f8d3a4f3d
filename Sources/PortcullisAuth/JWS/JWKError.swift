import PortcullisPolicy
/// Why a JWK or a JWK Set was refused, worded for an operator reading a config or refresh log.
///
/// Errors compare equal when their codes do.
public struct JWKError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case malformedJSON
            case notAKeySet
            case missingMember
            case invalidMember
            case unsupportedKeyType
            case unsupportedCurve
            case unsupportedAlgorithm
            case algorithmDoesNotFitKey
            case notForSignatures
            case privateKeyMaterial
            case invalidKey
            case keyTooSmall
            case weakKey
            case duplicateKeyID
            case symmetricKeyAmongPublicKeys
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// The document is not strict JSON; for a set this fails the whole set.
        public static let malformedJSON = Code(.malformedJSON)
        /// The document is not an object with a `keys` array (or, for one key, not an object).
        public static let notAKeySet = Code(.notAKeySet)
        public static let missingMember = Code(.missingMember)
        /// A member of the wrong JSON type, or not canonical base64url, or the wrong length.
        public static let invalidMember = Code(.invalidMember)
        public static let unsupportedKeyType = Code(.unsupportedKeyType)
        public static let unsupportedCurve = Code(.unsupportedCurve)
        /// An `alg` that is not a JWS algorithm this verifier implements (`ES521`, `A256GCM`...).
        public static let unsupportedAlgorithm = Code(.unsupportedAlgorithm)
        /// An `alg` for another kind of key or curve (`ES256` on a P-384 key).
        public static let algorithmDoesNotFitKey = Code(.algorithmDoesNotFitKey)
        /// `use` other than `sig`, or `key_ops` without `verify`.
        public static let notForSignatures = Code(.notForSignatures)
        /// A public-key JWK that carries its private part (`d`, `p`, ...): the key is exposed.
        public static let privateKeyMaterial = Code(.privateKeyMaterial)
        /// swift-crypto refused the key (a point off the curve, an RSA exponent of 1, ...).
        public static let invalidKey = Code(.invalidKey)
        /// An RSA modulus under 2048 bits, or an HMAC key shorter than its hash.
        public static let keyTooSmall = Code(.keyTooSmall)
        /// An RSA modulus with the ROCA fingerprint (CVE-2017-15361): its factors are recoverable.
        public static let weakKey = Code(.weakKey)
        /// Two signature keys of one set share a `kid`: neither is used.
        public static let duplicateKeyID = Code(.duplicateKeyID)
        /// An `oct` key in a set that also holds public keys: the secret is not used.
        public static let symmetricKeyAmongPublicKeys = Code(.symmetricKeyAmongPublicKeys)

        public var description: String { "\(self.backing)" }
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: UInt

    public init(_ code: Code, reason: String, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    public var description: String { self.reason }

}
