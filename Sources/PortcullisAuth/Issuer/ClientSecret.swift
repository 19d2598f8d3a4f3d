import Crypto

/// The built-in issuer's client secrets: made here, shown once, stored only as their SHA-256.
public enum ClientSecret {
    /// A new secret: 32 random bytes (256 bits) from the system's CSPRNG, base64url without
    /// padding (43 URL-safe characters), so it can be pasted into a form body or `-u id:secret`.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = generator.next() }
        return Base64URL.encode(bytes)
    }

    /// What the clients file stores (`secret_sha256`): lowercase hex of SHA-256 of the secret's
    /// UTF-8 bytes.
    public static func sha256Hex(_ secret: some StringProtocol) -> String {
        let digest = SHA256.hash(data: Array(secret.utf8))
        return Self.hex(Array(digest))
    }

    /// Whether `secret` hashes to `sha256Hex`. The presented secret is always hashed and the
    /// two digests compared in constant time, so the time taken does not depend on where they
    /// differ; pass ``unknownClientHash`` for an unknown client to spend the same time.
    public static func matches(_ secret: some StringProtocol, sha256Hex expected: String) -> Bool {
        let presented = Array(Self.sha256Hex(secret).utf8)
        let stored = Array(expected.utf8)
        var difference = UInt8(presented.count == stored.count ? 0 : 1)
        for index in 0..<min(presented.count, stored.count) {
            difference |= presented[index] ^ stored[index]
        }
        return difference == 0
    }

    /// A hash no secret is known to have, compared against for an unknown client id.
    public static let unknownClientHash = String(repeating: "0", count: 64)

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension ClientSecret {
    /// The `cv` claim of the built-in issuer's tokens: 96 bits of a hash of the stored secret
    /// hash. A rotated secret has another, so its old tokens stop matching; the value reveals
    /// nothing usable about the secret.
    public static func credentialVersion(sha256Hex: String) -> String {
        let digest = SHA256.hash(data: Array(("portcullis credential version\0" + sha256Hex).utf8))
        return Base64URL.encode(Array(digest).prefix(12))
    }
}
