import PortcullisPolicy
/// The claim checks of one issuer: `iss` exact, `aud` containing one of ``audiences``, `exp`
/// required, `nbf` and `iat` honoured, all times with ``leeway``.
///
/// With `now` in seconds since the epoch and `L` the leeway, a token is refused when
/// - `iss` is missing (``ClaimsError/Code/missingClaim``) or differs (`wrong_issuer`);
/// - `aud` is missing (`missing_claim`) or names none of the audiences (`wrong_audience`; an
///   empty ``audiences`` accepts no token);
/// - `exp` is missing (`missing_claim`) or `now >= exp + L` (`token_expired`);
/// - `nbf` is present and `now + L < nbf` (`token_not_yet_valid`);
/// - `iat` is present and `iat > now + L`: issued in the future (`token_not_yet_valid`).
public struct ClaimsPolicy: Sendable {
    public static let defaultLeeway: Int64 = 60

    public let issuer: String
    public let audiences: Set<String>
    /// Seconds of clock skew allowed on every time check.
    public let leeway: Int64

    public init(issuer: String, audiences: some Sequence<String>, leeway: Int64 = ClaimsPolicy.defaultLeeway) {
        precondition(leeway >= 0, "leeway must not be negative")
        self.issuer = issuer
        self.audiences = Set(audiences)
        self.leeway = leeway
    }

    /// Throws the first rule `claims` breaks at `now` (seconds since the epoch).
    public func validate(_ claims: JWTClaims, now: Int64) throws(ClaimsError) {
        guard let issuer = claims.issuer else {
            throw ClaimsError(.missingClaim, claim: "iss", reason: "token has no iss")
        }
        guard issuer == self.issuer else {
            throw ClaimsError(.wrongIssuer, claim: "iss", reason: "iss is not the issuer's")
        }
        guard let audience = claims.audience else {
            throw ClaimsError(.missingClaim, claim: "aud", reason: "token has no aud")
        }
        guard audience.contains(where: self.audiences.contains) else {
            throw ClaimsError(.wrongAudience, claim: "aud", reason: "aud names none of the issuer's audiences")
        }
        guard let expiresAt = claims.expiresAt else {
            throw ClaimsError(.missingClaim, claim: "exp", reason: "token has no exp")
        }
        guard now < expiresAt + self.leeway else {
            throw ClaimsError(.tokenExpired, claim: "exp", reason: "exp is past, leeway included")
        }
        if let notBefore = claims.notBefore, now + self.leeway < notBefore {
            throw ClaimsError(.tokenNotYetValid, claim: "nbf", reason: "nbf is ahead, leeway included")
        }
        if let issuedAt = claims.issuedAt, issuedAt > now + self.leeway {
            throw ClaimsError(.tokenNotYetValid, claim: "iat", reason: "iat is in the future, leeway included")
        }
    }
}

/// Why a token's claims were refused.
///
/// ``Code/identifier`` is the stable name for the access log's `reason` field
/// (`token_expired`, `token_not_yet_valid`, `wrong_issuer`, `wrong_audience`, `missing_claim`,
/// `invalid_claims`). Errors compare equal when their codes do.
public struct ClaimsError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case tokenExpired
            case tokenNotYetValid
            case wrongIssuer
            case wrongAudience
            case missingClaim
            case invalidClaims
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        public static let tokenExpired = Code(.tokenExpired)
        /// `nbf` ahead of now, or `iat` in the future, beyond the leeway.
        public static let tokenNotYetValid = Code(.tokenNotYetValid)
        public static let wrongIssuer = Code(.wrongIssuer)
        public static let wrongAudience = Code(.wrongAudience)
        /// `iss`, `aud` or `exp` absent; ``ClaimsError/claim`` says which.
        public static let missingClaim = Code(.missingClaim)
        /// The payload is not a JSON object, or a registered claim has the wrong type.
        public static let invalidClaims = Code(.invalidClaims)

        public var identifier: String {
            switch self.backing {
            case .tokenExpired: return "token_expired"
            case .tokenNotYetValid: return "token_not_yet_valid"
            case .wrongIssuer: return "wrong_issuer"
            case .wrongAudience: return "wrong_audience"
            case .missingClaim: return "missing_claim"
            case .invalidClaims: return "invalid_claims"
            }
        }

        public var description: String { self.identifier }
    }

    public let code: Code
    /// The claim at fault, when there is one.
    public let claim: String?
    public let reason: String
    public let file: String
    public let line: UInt

    public init(_ code: Code, claim: String?, reason: String, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.claim = claim
        self.reason = reason
        self.file = file
        self.line = line
    }

    public var description: String {
        let claim = self.claim.map { " [\($0)]" } ?? ""
        return "\(self.code.identifier)\(claim): \(self.reason)"
    }

}
