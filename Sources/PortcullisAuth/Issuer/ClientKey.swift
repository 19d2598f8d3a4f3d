import Crypto
import Foundation
import _CryptoExtras

/// A `private_key_jwt` client's registered public key (RFC 7523 client authentication, as
/// Entra's certificate credentials): a PEM `PUBLIC KEY` (RSA of 2048 bits or more, P-256,
/// P-384, Ed25519) or a JWK. Symmetric keys are refused: the point is that no shared secret
/// exists.
public struct ClientKey: Sendable {
    public let key: JWK
    /// The algorithms its assertions may use: the key's own `alg`, or those its type fits.
    public let algorithms: [JWSAlgorithm]

    public init(text: String) throws(JWKError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let key: JWK
        if trimmed.hasPrefix("{") {
            key = try JWK(json: Array(trimmed.utf8))
        } else if trimmed.hasPrefix("-----BEGIN PUBLIC KEY-----") {
            key = try Self.fromPEM(trimmed)
        } else {
            throw JWKError(.invalidMember, reason: "expected a PEM public key (-----BEGIN PUBLIC KEY-----) or a JWK object")
        }
        let asymmetric: [JWSAlgorithm] = [.rs256, .rs384, .rs512, .ps256, .ps384, .ps512, .es256, .es384, .es512, .edDSA]
        self.algorithms = asymmetric.filter(key.permits)
        guard !self.algorithms.isEmpty else {
            throw JWKError(.unsupportedKeyType, reason: "a client key must be RSA, EC or Ed25519; a symmetric key would be a shared secret")
        }
        self.key = key
    }

    /// The `cv` of a key client's tokens: a new key ends the old key's tokens, as a new secret does.
    public static func credentialVersion(_ keyText: String) -> String {
        ClientSecret.credentialVersion(sha256Hex: ClientSecret.sha256Hex(keyText.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// Ed25519's SubjectPublicKeyInfo: this prefix, then the 32-byte key (RFC 8410).
    private static let ed25519Prefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]

    private static func fromPEM(_ pem: String) throws(JWKError) -> JWK {
        if let key = try? P256.Signing.PublicKey(pemRepresentation: pem) {
            return JWK(material: .p256(key), keyType: .ellipticCurve)
        }
        if let key = try? P384.Signing.PublicKey(pemRepresentation: pem) {
            return JWK(material: .p384(key), keyType: .ellipticCurve)
        }
        if let key = try? _RSA.Signing.PublicKey(pemRepresentation: pem) {
            guard key.keySizeInBits >= JWK.minimumRSAModulusBits else {
                throw JWKError(.weakKey, reason: "the RSA key has \(key.keySizeInBits) bits; at least \(JWK.minimumRSAModulusBits) are required")
            }
            return JWK(material: .rsa(key), keyType: .rsa)
        }
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        if let der = Data(base64Encoded: body).map(Array.init), der.count == 44, Array(der.prefix(12)) == Self.ed25519Prefix,
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: der.suffix(32))
        {
            return JWK(material: .ed25519(key), keyType: .octetKeyPair)
        }
        throw JWKError(.invalidMember, reason: "the PEM is not an RSA, P-256, P-384 or Ed25519 public key")
    }
}

extension JWK {
    /// A key read from elsewhere than a JWK (a PEM): no `kid`, `alg`, `use` or `key_ops`.
    init(material: Material, keyType: KeyType) {
        self.init(keyType: keyType, keyID: nil, algorithm: nil, use: nil, keyOperations: nil, material: material)
    }

    /// The same key under `keyID`: a registered key without `kid` verifies an assertion whose
    /// header names one (the client's own label for its key).
    func named(_ keyID: String) -> JWK {
        JWK(keyType: self.keyType, keyID: keyID, algorithm: self.algorithm, use: self.use, keyOperations: self.keyOperations, material: self.material)
    }
}
