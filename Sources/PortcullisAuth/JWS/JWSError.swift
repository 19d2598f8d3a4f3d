import PortcullisPolicy
/// Why a compact JWS was refused.
///
/// ``Code/identifier`` is a stable snake_case name for access logs and metrics; `description`
/// adds the detail and the throw site. Reasons are string literals, so refusing a token
/// allocates nothing. Errors compare equal when their codes do.
public struct JWSError: CodedError, Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case tokenTooLarge
            case malformed
            case algorithmNone
            case unsupportedAlgorithm
            case algorithmNotAllowed
            case unsupportedCriticalHeader
            case embeddedKey
            case unknownKeyID
            case noSuitableKey
            case keyDoesNotFitAlgorithm
            case invalidSignature
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// Longer than the verifier's limit; checked before anything else.
        public static let tokenTooLarge = Code(.tokenTooLarge)
        /// Not three parts, not strict base64url, or a header that is not a JSON object with a
        /// string `alg` (and string `kid`/`typ` when present).
        public static let malformed = Code(.malformed)
        /// `alg: none`, in any letter case.
        public static let algorithmNone = Code(.algorithmNone)
        /// An `alg` this verifier does not implement.
        public static let unsupportedAlgorithm = Code(.unsupportedAlgorithm)
        /// An `alg` outside the issuer's pinned list.
        public static let algorithmNotAllowed = Code(.algorithmNotAllowed)
        /// A `crit` header (no extension is understood), or `b64` other than `true`.
        public static let unsupportedCriticalHeader = Code(.unsupportedCriticalHeader)
        /// `jwk`, `jku`, `x5u` or `x5c` in the header: keys come from configuration only.
        public static let embeddedKey = Code(.embeddedKey)
        /// The `kid` names no key of the set: the caller may refresh the set (rate-limited).
        public static let unknownKeyID = Code(.unknownKeyID)
        /// No `kid`, and no key of the set fits the algorithm.
        public static let noSuitableKey = Code(.noSuitableKey)
        /// The `kid`'s key is of another type or curve, too short for the HMAC, or its own `alg`
        /// differs: HS256 with an RSA key lands here.
        public static let keyDoesNotFitAlgorithm = Code(.keyDoesNotFitAlgorithm)
        public static let invalidSignature = Code(.invalidSignature)

        /// A stable snake_case name, e.g. `bad_signature`.
        public var identifier: String {
            switch self.backing {
            case .tokenTooLarge: return "token_too_large"
            case .malformed: return "malformed_token"
            case .algorithmNone: return "alg_none"
            case .unsupportedAlgorithm: return "unsupported_alg"
            case .algorithmNotAllowed: return "alg_not_allowed"
            case .unsupportedCriticalHeader: return "unsupported_crit"
            case .embeddedKey: return "embedded_key"
            case .unknownKeyID: return "unknown_kid"
            case .noSuitableKey: return "no_suitable_key"
            case .keyDoesNotFitAlgorithm: return "key_alg_mismatch"
            case .invalidSignature: return "bad_signature"
            }
        }

        public var description: String { self.identifier }
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

    public var description: String { "\(self.code.identifier): \(self.reason) (\(self.file):\(self.line))" }

}
