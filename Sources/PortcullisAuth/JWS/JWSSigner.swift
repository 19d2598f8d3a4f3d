import Crypto

/// Signs compact JWS tokens: the built-in issuer's tokens (ES256 or EdDSA), the demo's tokens,
/// and the tests'. The header is written here; the caller gives the claims as JSON text.
public struct JWSSigner: Sendable {
    enum Key: Sendable {
        case p256(P256.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
    }

    let key: Key
    public let keyID: String

    public var algorithm: JWSAlgorithm {
        switch self.key {
        case .p256: return .es256
        case .ed25519: return .edDSA
        }
    }

    public init(p256 key: P256.Signing.PrivateKey, keyID: String) {
        self.key = .p256(key)
        self.keyID = keyID
    }

    public init(ed25519 key: Curve25519.Signing.PrivateKey, keyID: String) {
        self.key = .ed25519(key)
        self.keyID = keyID
    }

    /// A new random key: `ES256` (P-256) or `EdDSA` (Ed25519).
    public static func generate(_ algorithm: JWSAlgorithm, keyID: String) -> JWSSigner? {
        switch algorithm {
        case .es256: return JWSSigner(p256: P256.Signing.PrivateKey(), keyID: keyID)
        case .edDSA: return JWSSigner(ed25519: Curve25519.Signing.PrivateKey(), keyID: keyID)
        default: return nil
        }
    }

    /// The public key as a JWK Set document (`{"keys":[...]}`), with `kid`, `alg` and `use`.
    public var publicJWKSet: String {
        "{\"keys\":[\(self.publicJWK)]}"
    }

    public var publicJWK: String {
        switch self.key {
        case .p256(let key):
            let point = key.publicKey.x963Representation  // 0x04 || x || y
            let x = Base64URL.encode(point.dropFirst().prefix(32))
            let y = Base64URL.encode(point.dropFirst(33))
            return #"{"kty":"EC","crv":"P-256","kid":"\#(self.keyID)","alg":"ES256","use":"sig","x":"\#(x)","y":"\#(y)"}"#
        case .ed25519(let key):
            let x = Base64URL.encode(key.publicKey.rawRepresentation)
            return #"{"kty":"OKP","crv":"Ed25519","kid":"\#(self.keyID)","alg":"EdDSA","use":"sig","x":"\#(x)"}"#
        }
    }

    /// `base64url(header).base64url(claims).base64url(signature)`; `claimsJSON` must be a JSON
    /// object (it is signed as given).
    public func sign(claimsJSON: String) throws -> String {
        let header = #"{"alg":"\#(self.algorithm.name)","typ":"JWT","kid":"\#(self.keyID)"}"#
        let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(claimsJSON.utf8))
        let input = Array(signingInput.utf8)
        let signature: [UInt8]
        switch self.key {
        case .p256(let key):
            signature = Array(try key.signature(for: input).rawRepresentation)
        case .ed25519(let key):
            signature = Array(try key.signature(for: input))
        }
        return signingInput + "." + Base64URL.encode(signature)
    }
}
