import Crypto
import CryptoExtras
import Foundation
import PortcullisPolicy

/// Portcullis's own token issuer (`issuers[]` with `builtin: true`): signs short-lived JWTs for
/// its clients after `POST /oauth/token`, publishes the public key at
/// `/.well-known/jwks.json`, and hands ``trustedIssuer`` to the ``TokenAuthenticator`` so its
/// tokens are verified by the same path as an outside IdP's.
///
/// Each token carries `jti` (for revocation) and `cv`, the client's credential version, derived
/// from its `secret_sha256`: rotating the secret changes `cv`, so every token issued under the
/// old secret is refused from the reload on.
public final class BuiltinIssuer: Sendable {
    /// Every token's `aud`: they are meant for this gateway only.
    public static let audience = "portcullis"
    /// The claim naming the client (RFC 9068 `client_id`).
    public static let clientClaim = "client_id"

    public let name: String
    /// The `iss` of its tokens.
    public let issuer: String
    public let signer: JWSSigner
    public let defaultLifetime: Int64
    public let maximumLifetime: Int64
    /// Seconds of clock difference tolerated (replicas sharing the key).
    public let leeway: Int64
    /// `GET /.well-known/jwks.json`.
    public let jwksDocument: String

    public init(name: String, issuer: String, signer: JWSSigner, defaultLifetime: Int64, maximumLifetime: Int64, leeway: Int64) {
        self.name = name
        self.issuer = issuer
        self.signer = signer
        self.defaultLifetime = defaultLifetime
        self.maximumLifetime = maximumLifetime
        self.leeway = leeway
        self.jwksDocument = signer.publicJWKSet
    }

    /// The issuer of a configuration, its key read from `signing_key_file`.
    public convenience init(_ config: IssuerConfig) throws(IssuerError) {
        guard let settings = config.builtinSettings else {
            throw IssuerError(.notBuiltin, reason: "issuers[\(config.name)] is not the built-in issuer")
        }
        let signer = try Self.loadSigningKey(path: settings.signingKeyFile)
        self.init(
            name: config.name,
            issuer: config.issuer,
            signer: signer,
            defaultLifetime: settings.tokenLifetime.nanoseconds / 1_000_000_000,
            maximumLifetime: settings.maxTokenLifetime.nanoseconds / 1_000_000_000,
            leeway: config.leeway.nanoseconds / 1_000_000_000
        )
    }

    /// What the ``TokenAuthenticator`` checks this issuer's tokens with: the one algorithm of
    /// its key, pinned.
    public var trustedIssuer: TrustedIssuer {
        TrustedIssuer(
            name: self.name,
            verifier: JWSVerifier(allowedAlgorithms: [self.signer.algorithm]),
            claims: ClaimsPolicy(issuer: self.issuer, audiences: [Self.audience], leeway: self.leeway),
            clientClaim: Self.clientClaim,
            keys: FixedKeys(try! JWKSet(json: Array(self.jwksDocument.utf8))),
            builtin: true
        )
    }

    /// A signed token.
    public struct IssuedToken: Sendable {
        public let token: String
        public let tokenID: String
        public let expiresIn: Int64
        public let expiresAt: Int64
    }

    /// Signs a token for `clientID` valid `lifetime` seconds from `now` (capped by the maximum).
    public func issue(clientID: String, credentialVersion: String, lifetime: Int64?, now: Int64) -> IssuedToken {
        let seconds = min(max(lifetime ?? self.defaultLifetime, 1), self.maximumLifetime)
        let tokenID = Self.newTokenID()
        let expiresAt = now + seconds
        var claims = "{\"iss\":"
        claims.appendJSONString(self.issuer)
        claims += ",\"sub\":"
        claims.appendJSONString(clientID)
        claims += ",\"client_id\":"
        claims.appendJSONString(clientID)
        claims += ",\"aud\":\"\(Self.audience)\",\"iat\":\(now),\"exp\":\(expiresAt),\"jti\":\"\(tokenID)\",\"cv\":\"\(credentialVersion)\"}"
        // Signing with a key we hold cannot fail but for memory exhaustion.
        let token = try! self.signer.sign(claimsJSON: claims)
        return IssuedToken(token: token, tokenID: tokenID, expiresIn: seconds, expiresAt: expiresAt)
    }

    /// 128 random bits, base64url.
    static func newTokenID() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in bytes.indices { bytes[index] = generator.next() }
        return Base64URL.encode(bytes)
    }

    /// Reads a PEM private key: Ed25519 (PKCS#8) gives EdDSA tokens, P-256 (PKCS#8 or SEC1)
    /// ES256. The `kid` is the key's RFC 7638 thumbprint, so replicas sharing the file agree.
    public static func loadSigningKey(path: String) throws(IssuerError) -> JWSSigner {
        guard let data = FileManager.default.contents(atPath: path), let pem = String(data: data, encoding: .utf8) else {
            throw IssuerError(.unreadableSigningKey, reason: "cannot read the signing key file \(path)")
        }
        if let key = try? P256.Signing.PrivateKey(pemRepresentation: pem) {
            let point = key.publicKey.x963Representation
            let x = Base64URL.encode(point.dropFirst().prefix(32))
            let y = Base64URL.encode(point.dropFirst(33))
            let thumbprint = #"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#
            return JWSSigner(p256: key, keyID: Self.thumbprint(thumbprint))
        }
        if let key = try? Curve25519.Signing.PrivateKey(pemRepresentation: pem) {
            let x = Base64URL.encode(key.publicKey.rawRepresentation)
            let thumbprint = #"{"crv":"Ed25519","kty":"OKP","x":"\#(x)"}"#
            return JWSSigner(ed25519: key, keyID: Self.thumbprint(thumbprint))
        }
        throw IssuerError(
            .invalidSigningKey,
            reason: "\(path) is not a PEM Ed25519 or P-256 private key (make one with: openssl genpkey -algorithm ed25519 -out \((path as NSString).lastPathComponent))"
        )
    }

    /// A new P-256 signing key as PKCS#8 PEM, for `signing_key_file` (`portcullis demo` makes
    /// one per run).
    public static func newSigningKeyPEM() -> String {
        P256.Signing.PrivateKey().pemRepresentation + "\n"
    }

    private static func thumbprint(_ canonicalJWK: String) -> String {
        Base64URL.encode(Array(SHA256.hash(data: Array(canonicalJWK.utf8))))
    }
}

/// A built-in issuer that cannot be set up: its configuration, its signing key or its state file.
///
/// `description` is the reason alone (the operator reads it in a config or reload error);
/// `debugDescription` adds the code and the throw site. Errors compare equal when their codes do.
public struct IssuerError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case notBuiltin
            case unreadableSigningKey
            case invalidSigningKey
            case invalidStateFile
            case io
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// The issuer's configuration is not the built-in kind.
        public static let notBuiltin = Code(.notBuiltin)
        /// `signing_key_file` cannot be read.
        public static let unreadableSigningKey = Code(.unreadableSigningKey)
        /// `signing_key_file` is not a PEM Ed25519 or P-256 private key.
        public static let invalidSigningKey = Code(.invalidSigningKey)
        /// `state_file` is not a Portcullis issuer state file.
        public static let invalidStateFile = Code(.invalidStateFile)
        /// Writing `state_file` failed (write, fsync or rename).
        public static let io = Code(.io)

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

extension String {
    /// Appends a JSON string literal (quotes, backslashes and control characters escaped).
    mutating func appendJSONString(_ value: String) {
        self.append("\"")
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": self.append("\\\"")
            case "\\": self.append("\\\\")
            case "\n": self.append("\\n")
            case "\r": self.append("\\r")
            case "\t": self.append("\\t")
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                self.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: self.unicodeScalars.append(scalar)
            }
        }
        self.append("\"")
    }
}
