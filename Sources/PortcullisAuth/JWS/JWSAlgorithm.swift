/// A JWS signature algorithm this verifier implements (RFC 7518 section 3, RFC 8037).
///
/// `none` is deliberately absent: there is no value for it, so it can never be pinned.
/// ES512 (P-521) is here because RFC 7520's ECDSA example uses it; an issuer only gets it by
/// listing it.
public enum JWSAlgorithm: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// RSASSA-PKCS1-v1_5 with SHA-2.
    case rs256 = "RS256"
    case rs384 = "RS384"
    case rs512 = "RS512"
    /// RSASSA-PSS with SHA-2, MGF1 with the same hash, salt as long as the hash.
    case ps256 = "PS256"
    case ps384 = "PS384"
    case ps512 = "PS512"
    /// ECDSA on P-256 / P-384 / P-521, signatures as raw `r || s`.
    case es256 = "ES256"
    case es384 = "ES384"
    case es512 = "ES512"
    /// Ed25519 only.
    case edDSA = "EdDSA"
    /// HMAC with SHA-2: only with `kty: oct` keys, never with a public key.
    case hs256 = "HS256"
    case hs384 = "HS384"
    case hs512 = "HS512"

    /// The algorithm named exactly `name` (names are case-sensitive), or nil.
    public init?(name: some StringProtocol) {
        self.init(rawValue: String(name))
    }

    /// The registered name, as written in the `alg` header.
    public var name: String { self.rawValue }

    public var description: String { self.rawValue }

    /// The kind of key the algorithm needs.
    public var keyType: JWK.KeyType {
        switch self {
        case .rs256, .rs384, .rs512, .ps256, .ps384, .ps512: return .rsa
        case .es256, .es384, .es512: return .ellipticCurve
        case .edDSA: return .octetKeyPair
        case .hs256, .hs384, .hs512: return .octetSequence
        }
    }

    /// True for the HMAC algorithms, whose key is a shared secret.
    public var isSymmetric: Bool { self.keyType == .octetSequence }

    /// The digest length in bytes: the HMAC tag length and the minimum HMAC key length
    /// (RFC 7518 section 3.2).
    var hashByteCount: Int {
        switch self {
        case .rs256, .ps256, .es256, .hs256: return 32
        case .rs384, .ps384, .es384, .hs384: return 48
        case .rs512, .ps512, .es512, .hs512, .edDSA: return 64
        }
    }
}
