import PortcullisPolicy
import Crypto
import CryptoExtras

/// One JSON Web Key that can verify JWS signatures (RFC 7517, RFC 7518 section 6, RFC 8037).
///
/// The swift-crypto key object is built once, here, so verifying a token does no key parsing.
/// Only verification keys parse: a key marked for encryption (`use` other than `sig`, or
/// `key_ops` without `verify`) is refused, and so is a public-key JWK that carries its private
/// part, because a published private key verifies nothing.
///
/// Key rules, stricter than the RFCs where it matters:
/// - `RSA`: `n` and `e`; the modulus is at least 2048 bits (``minimumRSAModulusBits``; no test
///   vector needs less, and Wycheproof's 1024-bit key must be refused), `e` is odd, at least 3
///   and at most 32 bits, and moduli with the ROCA fingerprint are refused.
/// - `EC`: `crv` `P-256`, `P-384` or `P-521`, with `x` and `y` exactly the coordinate length and
///   the point on the curve.
/// - `OKP`: `crv` `Ed25519` with a 32-byte `x`.
/// - `oct`: a non-empty `k`; when the JWK names an HMAC `alg`, `k` is at least the hash length.
/// - `alg`, when present, must be one of ``JWSAlgorithm`` and fit the key type and curve.
public struct JWK: Sendable {
    /// The `kty` of a key.
    public enum KeyType: String, Sendable, Hashable {
        case rsa = "RSA"
        case ellipticCurve = "EC"
        case octetKeyPair = "OKP"
        case octetSequence = "oct"
    }

    public static let minimumRSAModulusBits = 2048

    public let keyType: KeyType
    /// `kid`: how a token header picks this key.
    public let keyID: String?
    /// `alg`: when present, the only algorithm this key verifies.
    public let algorithm: JWSAlgorithm?
    /// `use`, when present (always `sig` for a key that parsed).
    public let use: String?
    /// `key_ops`, when present (always containing `verify` for a key that parsed).
    public let keyOperations: [String]?

    let material: Material

    enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
        case hmac(SymmetricKey, byteCount: Int)
    }

    /// Parses one JWK from JSON text.
    public init<Bytes: Collection>(json: Bytes) throws(JWKError) where Bytes.Element == UInt8 {
        let value: JSONValue
        do {
            value = try JSONValue.parse(json)
        } catch {
            throw JWKError(.malformedJSON, reason: "JWK is not valid JSON: \(error)")
        }
        guard case .object(let members) = value else {
            throw JWKError(.notAKeySet, reason: "JWK is not a JSON object")
        }
        try self.init(members: members)
    }

    /// Builds a key from the members of an already parsed JWK object.
    public init(members: JSONObject) throws(JWKError) {
        let kty = try Self.string(members, "kty", required: true)!
        guard let keyType = KeyType(rawValue: kty) else {
            throw JWKError(.unsupportedKeyType, reason: "kty \"\(kty)\" is not RSA, EC, OKP or oct")
        }
        let use = try Self.string(members, "use")
        if let use, use != "sig" {
            throw JWKError(.notForSignatures, reason: "use is \"\(use)\", not \"sig\"")
        }
        var keyOperations: [String]?
        if let operations = members["key_ops"] {
            guard case .array(let elements) = operations else {
                throw JWKError(.invalidMember, reason: "key_ops is not an array of strings")
            }
            var names: [String] = []
            for element in elements {
                guard case .string(let name) = element else {
                    throw JWKError(.invalidMember, reason: "key_ops is not an array of strings")
                }
                names.append(name)
            }
            guard names.contains("verify") else {
                throw JWKError(.notForSignatures, reason: "key_ops \(names) does not include \"verify\"")
            }
            keyOperations = names
        }
        let keyID = try Self.string(members, "kid")
        var algorithm: JWSAlgorithm?
        if let name = try Self.string(members, "alg") {
            guard let named = JWSAlgorithm(name: name) else {
                throw JWKError(.unsupportedAlgorithm, reason: "alg \"\(name)\" is not a supported JWS algorithm")
            }
            guard named.keyType == keyType else {
                throw JWKError(.algorithmDoesNotFitKey, reason: "alg \(named) needs a \(named.keyType.rawValue) key, not \(kty)")
            }
            algorithm = named
        }

        let material: Material
        switch keyType {
        case .rsa:
            material = try Self.rsaMaterial(members)
        case .ellipticCurve:
            material = try Self.ellipticCurveMaterial(members, algorithm: algorithm)
        case .octetKeyPair:
            material = try Self.octetKeyPairMaterial(members)
        case .octetSequence:
            material = try Self.octetSequenceMaterial(members, algorithm: algorithm)
        }

        self.init(keyType: keyType, keyID: keyID, algorithm: algorithm, use: use, keyOperations: keyOperations, material: material)
    }

    init(keyType: KeyType, keyID: String?, algorithm: JWSAlgorithm?, use: String?, keyOperations: [String]?, material: Material) {
        self.keyType = keyType
        self.keyID = keyID
        self.algorithm = algorithm
        self.use = use
        self.keyOperations = keyOperations
        self.material = material
    }

    /// Whether this key may verify a token signed with `algorithm`: the key type and curve fit,
    /// an HMAC key is at least the hash length, and the JWK's own `alg`, if any, is `algorithm`.
    public func permits(_ algorithm: JWSAlgorithm) -> Bool {
        if let own = self.algorithm, own != algorithm {
            return false
        }
        switch (self.material, algorithm) {
        case (.rsa, .rs256), (.rsa, .rs384), (.rsa, .rs512), (.rsa, .ps256), (.rsa, .ps384), (.rsa, .ps512):
            return true
        case (.p256, .es256), (.p384, .es384), (.p521, .es512), (.ed25519, .edDSA):
            return true
        case (.hmac(_, let byteCount), .hs256), (.hmac(_, let byteCount), .hs384), (.hmac(_, let byteCount), .hs512):
            return byteCount >= algorithm.hashByteCount
        default:
            return false
        }
    }

    /// The RSA modulus size, or nil for other key types.
    public var rsaModulusBits: Int? {
        if case .rsa(let key) = self.material { return key.keySizeInBits }
        return nil
    }

    /// The `crv` of an EC or OKP key.
    public var curve: String? {
        switch self.material {
        case .p256: return "P-256"
        case .p384: return "P-384"
        case .p521: return "P-521"
        case .ed25519: return "Ed25519"
        case .rsa, .hmac: return nil
        }
    }
}

// MARK: - Signature check

extension JWK {
    /// Whether `signature` is a valid `algorithm` signature or MAC of `message` under this key.
    ///
    /// The one signature check the verifier uses, also driven directly by the raw Wycheproof
    /// vectors. False whenever ``permits(_:)`` is false. ECDSA signatures are the JWS form,
    /// `r || s` of exactly twice the coordinate length, with neither half zero.
    func isValidSignature(
        _ signature: UnsafeRawBufferPointer,
        for message: UnsafeRawBufferPointer,
        algorithm: JWSAlgorithm
    ) -> Bool {
        guard self.permits(algorithm) else { return false }
        switch self.material {
        case .rsa(let key):
            let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
            switch algorithm {
            case .rs256: return key.isValidSignature(rsaSignature, for: Self.digest(SHA256.self, message), padding: .insecurePKCS1v1_5)
            case .rs384: return key.isValidSignature(rsaSignature, for: Self.digest(SHA384.self, message), padding: .insecurePKCS1v1_5)
            case .rs512: return key.isValidSignature(rsaSignature, for: Self.digest(SHA512.self, message), padding: .insecurePKCS1v1_5)
            case .ps256: return key.isValidSignature(rsaSignature, for: Self.digest(SHA256.self, message), padding: .PSS)
            case .ps384: return key.isValidSignature(rsaSignature, for: Self.digest(SHA384.self, message), padding: .PSS)
            case .ps512: return key.isValidSignature(rsaSignature, for: Self.digest(SHA512.self, message), padding: .PSS)
            default: return false
            }
        case .p256(let key):
            guard Self.isWellFormedECDSA(signature, coordinateBytes: 32),
                let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(ecdsa, for: Self.digest(SHA256.self, message))
        case .p384(let key):
            guard Self.isWellFormedECDSA(signature, coordinateBytes: 48),
                let ecdsa = try? P384.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(ecdsa, for: Self.digest(SHA384.self, message))
        case .p521(let key):
            guard Self.isWellFormedECDSA(signature, coordinateBytes: 66),
                let ecdsa = try? P521.Signing.ECDSASignature(rawRepresentation: signature)
            else { return false }
            return key.isValidSignature(ecdsa, for: Self.digest(SHA512.self, message))
        case .ed25519(let key):
            guard signature.count == 64 else { return false }
            return key.isValidSignature(signature, for: message)
        case .hmac(let key, _):
            guard signature.count == algorithm.hashByteCount else { return false }
            switch algorithm {
            case .hs256: return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: message, using: key)
            case .hs384: return HMAC<SHA384>.isValidAuthenticationCode(signature, authenticating: message, using: key)
            case .hs512: return HMAC<SHA512>.isValidAuthenticationCode(signature, authenticating: message, using: key)
            default: return false
            }
        }
    }

    @inline(__always)
    private static func digest<H: HashFunction>(_: H.Type, _ message: UnsafeRawBufferPointer) -> H.Digest {
        var hasher = H()
        hasher.update(bufferPointer: message)
        return hasher.finalize()
    }

    /// Exactly `r || s` at the curve's width, and neither zero (Wycheproof's r = s = 0 forgery).
    private static func isWellFormedECDSA(_ signature: UnsafeRawBufferPointer, coordinateBytes: Int) -> Bool {
        guard signature.count == 2 * coordinateBytes else { return false }
        var r: UInt8 = 0
        var s: UInt8 = 0
        for index in 0..<coordinateBytes {
            r |= signature[index]
            s |= signature[coordinateBytes + index]
        }
        return r != 0 && s != 0
    }
}

// MARK: - Parsing key material

extension JWK {
    private static let rsaPrivateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth"]

    private static func rsaMaterial(_ members: JSONObject) throws(JWKError) -> Material {
        for name in Self.rsaPrivateMembers where members[name] != nil {
            throw JWKError(.privateKeyMaterial, reason: "RSA JWK carries the private member \"\(name)\"")
        }
        let modulus = Self.withoutLeadingZeros(try Self.bytes(members, "n"))
        let exponent = Self.withoutLeadingZeros(try Self.bytes(members, "e"))
        let modulusBits = Self.bitCount(modulus)
        guard modulusBits >= Self.minimumRSAModulusBits else {
            throw JWKError(.keyTooSmall, reason: "RSA modulus is \(modulusBits) bits; at least \(Self.minimumRSAModulusBits) are required")
        }
        guard modulus.last! & 1 == 1 else {
            throw JWKError(.invalidKey, reason: "RSA modulus is even")
        }
        guard !exponent.isEmpty, exponent.count <= 4, exponent.last! & 1 == 1, exponent != [1] else {
            throw JWKError(.invalidKey, reason: "RSA exponent must be odd, at least 3 and at most 32 bits")
        }
        guard !Self.hasROCAFingerprint(modulus: modulus) else {
            throw JWKError(.weakKey, reason: "RSA modulus has the ROCA fingerprint (CVE-2017-15361)")
        }
        do {
            return .rsa(try _RSA.Signing.PublicKey(n: modulus, e: exponent))
        } catch {
            throw JWKError(.invalidKey, reason: "RSA key refused by swift-crypto: \(error)")
        }
    }

    private static func ellipticCurveMaterial(
        _ members: JSONObject,
        algorithm: JWSAlgorithm?
    ) throws(JWKError) -> Material {
        if members["d"] != nil {
            throw JWKError(.privateKeyMaterial, reason: "EC JWK carries the private member \"d\"")
        }
        let curve = try Self.string(members, "crv", required: true)!
        let coordinateBytes: Int
        let fittingAlgorithm: JWSAlgorithm
        switch curve {
        case "P-256": (coordinateBytes, fittingAlgorithm) = (32, .es256)
        case "P-384": (coordinateBytes, fittingAlgorithm) = (48, .es384)
        case "P-521": (coordinateBytes, fittingAlgorithm) = (66, .es512)
        default: throw JWKError(.unsupportedCurve, reason: "EC crv \"\(curve)\" is not P-256, P-384 or P-521")
        }
        if let algorithm, algorithm != fittingAlgorithm {
            throw JWKError(.algorithmDoesNotFitKey, reason: "alg \(algorithm) does not fit curve \(curve) (needs \(fittingAlgorithm))")
        }
        let x = try Self.bytes(members, "x")
        let y = try Self.bytes(members, "y")
        guard x.count == coordinateBytes, y.count == coordinateBytes else {
            throw JWKError(.invalidMember, reason: "\(curve) coordinates must be \(coordinateBytes) bytes each, not \(x.count) and \(y.count)")
        }
        let raw = x + y
        do {
            switch fittingAlgorithm {
            case .es256: return .p256(try P256.Signing.PublicKey(rawRepresentation: raw))
            case .es384: return .p384(try P384.Signing.PublicKey(rawRepresentation: raw))
            default: return .p521(try P521.Signing.PublicKey(rawRepresentation: raw))
            }
        } catch {
            throw JWKError(.invalidKey, reason: "\(curve) point refused by swift-crypto: \(error)")
        }
    }

    private static func octetKeyPairMaterial(_ members: JSONObject) throws(JWKError) -> Material {
        if members["d"] != nil {
            throw JWKError(.privateKeyMaterial, reason: "OKP JWK carries the private member \"d\"")
        }
        let curve = try Self.string(members, "crv", required: true)!
        guard curve == "Ed25519" else {
            throw JWKError(.unsupportedCurve, reason: "OKP crv \"\(curve)\" is not Ed25519")
        }
        let x = try Self.bytes(members, "x")
        guard x.count == 32 else {
            throw JWKError(.invalidMember, reason: "Ed25519 x must be 32 bytes, not \(x.count)")
        }
        do {
            return .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: x))
        } catch {
            throw JWKError(.invalidKey, reason: "Ed25519 key refused by swift-crypto: \(error)")
        }
    }

    private static func octetSequenceMaterial(
        _ members: JSONObject,
        algorithm: JWSAlgorithm?
    ) throws(JWKError) -> Material {
        let secret = try Self.bytes(members, "k")
        guard !secret.isEmpty else {
            throw JWKError(.keyTooSmall, reason: "oct key k is empty")
        }
        if let algorithm, secret.count < algorithm.hashByteCount {
            throw JWKError(.keyTooSmall, reason: "\(algorithm) key is \(secret.count) bytes; at least \(algorithm.hashByteCount) are required")
        }
        return .hmac(SymmetricKey(data: secret), byteCount: secret.count)
    }

    /// The string member `name`; nil when absent and not `required`.
    private static func string(
        _ members: JSONObject,
        _ name: String,
        required: Bool = false
    ) throws(JWKError) -> String? {
        switch members[name] {
        case .string(let value)?:
            return value
        case nil:
            if required {
                throw JWKError(.missingMember, reason: "JWK has no \"\(name)\"")
            }
            return nil
        default:
            throw JWKError(.invalidMember, reason: "JWK member \"\(name)\" is not a string")
        }
    }

    /// The bytes of the required base64url member `name`.
    private static func bytes(_ members: JSONObject, _ name: String) throws(JWKError) -> [UInt8] {
        let text = try Self.string(members, name, required: true)!
        guard let bytes = Base64URL.decode(text.utf8) else {
            throw JWKError(.invalidMember, reason: "JWK member \"\(name)\" is not canonical unpadded base64url")
        }
        return bytes
    }

    // Some producers prefix a zero octet to n (RFC 7518 section 6.3.1.1 says not to); tolerated.
    private static func withoutLeadingZeros(_ bytes: [UInt8]) -> [UInt8] {
        guard let first = bytes.firstIndex(where: { $0 != 0 }) else { return [] }
        return Array(bytes[first...])
    }

    private static func bitCount(_ bytes: [UInt8]) -> Int {
        guard let first = bytes.first else { return 0 }
        return (bytes.count - 1) * 8 + (8 - first.leadingZeroBitCount)
    }

    /// The small primes of the ROCA test (Nemec et al., CCS 2017).
    private static let rocaPrimes: [UInt32] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
        101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ]

    /// Whether `n mod p` lies in the subgroup generated by 65537 for every ROCA prime `p`: true
    /// for every modulus from the vulnerable Infineon generator, and for a random modulus with
    /// negligible probability.
    static func hasROCAFingerprint(modulus: [UInt8]) -> Bool {
        for prime in Self.rocaPrimes {
            var remainder: UInt32 = 0
            for byte in modulus {
                remainder = (remainder << 8 | UInt32(byte)) % prime
            }
            let generator = 65537 % prime
            var element: UInt32 = 1
            var inSubgroup = false
            repeat {
                if element == remainder {
                    inSubgroup = true
                    break
                }
                element = element * generator % prime
            } while element != 1
            if !inSubgroup {
                return false
            }
        }
        return true
    }
}
