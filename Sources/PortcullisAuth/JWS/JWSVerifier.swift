#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Verifies compact JWS tokens against a key set, with the algorithms pinned per issuer.
///
/// Built once per issuer at config (re)load and called synchronously on the event loop for
/// tokens the verified-token cache does not hold. The token header never chooses anything the
/// configuration did not allow. In order:
/// 1. at most ``maximumTokenBytes`` (before any parsing);
/// 2. exactly three `.`-separated parts, each strict base64url (see ``Base64URL``);
/// 3. the header rules of ``JOSEHeader`` (`none`, `crit`, embedded keys, ...);
/// 4. `alg` in ``allowedAlgorithms``, and a non-empty signature;
/// 5. the key: with a `kid`, the set's key of that `kid` (none: ``JWSError/Code/unknownKeyID``)
///    and it must fit the algorithm, including its own `alg`; without a `kid`, the first
///    ``maximumKeysTriedWithoutKeyID`` keys that fit are tried in set order;
/// 6. the signature over the token's own ASCII bytes `header.payload`, never a re-encoding.
public struct JWSVerifier: Sendable {
    public static let defaultMaximumTokenBytes = 16 * 1024
    public static let defaultMaximumKeysTriedWithoutKeyID = 4

    /// The issuer's pinned algorithms.
    public let allowedAlgorithms: Set<JWSAlgorithm>
    public let maximumTokenBytes: Int
    /// Bounds the work a token without `kid` can cause.
    public let maximumKeysTriedWithoutKeyID: Int

    public init(
        allowedAlgorithms: some Sequence<JWSAlgorithm>,
        maximumTokenBytes: Int = JWSVerifier.defaultMaximumTokenBytes,
        maximumKeysTriedWithoutKeyID: Int = JWSVerifier.defaultMaximumKeysTriedWithoutKeyID
    ) {
        self.allowedAlgorithms = Set(allowedAlgorithms)
        self.maximumTokenBytes = maximumTokenBytes
        self.maximumKeysTriedWithoutKeyID = maximumKeysTriedWithoutKeyID
    }

    /// Verifies the compact token `token` (its bytes, e.g. a `Substring`'s `utf8`).
    public func verify<Bytes: Collection>(
        _ token: Bytes,
        keys: JWKSet
    ) throws(JWSError) -> VerifiedToken where Bytes.Element == UInt8 {
        var headers = JOSEHeaderMemo()
        return try self.verify(token, keys: keys, headers: &headers)
    }

    /// Verifies the compact token in `token`.
    public func verify(_ token: UnsafeRawBufferPointer, keys: JWKSet) throws(JWSError) -> VerifiedToken {
        var headers = JOSEHeaderMemo()
        return try self.verify(token, keys: keys, headers: &headers)
    }

    /// Verifies the compact token `token`, reading its header from `headers` when it is the
    /// header parsed last (an issuer signs its tokens under a handful of headers).
    public func verify<Bytes: Collection>(
        _ token: Bytes,
        keys: JWKSet,
        headers: inout JOSEHeaderMemo
    ) throws(JWSError) -> VerifiedToken where Bytes.Element == UInt8 {
        guard token.count <= self.maximumTokenBytes else {
            throw JWSError(.tokenTooLarge, reason: "token is longer than the limit")
        }
        let result = token.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JWSError) -> VerifiedToken in
                try self.verify(UnsafeRawBufferPointer(buffer), keys: keys, headers: &headers)
            }
        }
        if let result {
            return try result.get()
        }
        let copy = Array(token)
        let copied = copy.withUnsafeBytes { buffer in
            Result { () throws(JWSError) -> VerifiedToken in try self.verify(buffer, keys: keys, headers: &headers) }
        }
        return try copied.get()
    }

    /// Verifies the compact token in `token`; `headers` as above.
    public func verify(_ token: UnsafeRawBufferPointer, keys: JWKSet, headers: inout JOSEHeaderMemo) throws(JWSError) -> VerifiedToken {
        guard token.count <= self.maximumTokenBytes else {
            throw JWSError(.tokenTooLarge, reason: "token is longer than the limit")
        }
        guard let firstDot = Self.dot(in: token, from: 0), let secondDot = Self.dot(in: token, from: firstDot + 1) else {
            throw JWSError(.malformed, reason: "fewer than three parts")
        }
        guard Self.dot(in: token, from: secondDot + 1) == nil else {
            throw JWSError(.malformed, reason: "more than three parts")
        }
        let encodedHeader = UnsafeRawBufferPointer(rebasing: token[0..<firstDot])
        let encodedPayload = UnsafeRawBufferPointer(rebasing: token[(firstDot + 1)..<secondDot])
        let encodedSignature = UnsafeRawBufferPointer(rebasing: token[(secondDot + 1)...])
        let signingInput = UnsafeRawBufferPointer(rebasing: token[0..<secondDot])

        // The checks keep their order whether or not the header is remembered: a remembered
        // header was strict base64url and an acceptable JOSE header when it was parsed.
        let remembered = headers.header(for: encodedHeader)
        var headerJSON: [UInt8] = []
        if remembered == nil {
            guard let decoded = Base64URL.decode(encodedHeader) else {
                throw JWSError(.malformed, reason: "header is not strict base64url")
            }
            headerJSON = decoded
        }
        guard let payload = Base64URL.decode(encodedPayload) else {
            throw JWSError(.malformed, reason: "payload is not strict base64url")
        }
        guard let signature = Base64URL.decode(encodedSignature) else {
            throw JWSError(.malformed, reason: "signature is not strict base64url")
        }
        let header: JOSEHeader
        if let remembered {
            header = remembered
        } else {
            header = try JOSEHeader(json: headerJSON)
            headers.remember(header, for: encodedHeader)
        }
        guard self.allowedAlgorithms.contains(header.algorithm) else {
            throw JWSError(.algorithmNotAllowed, reason: "alg is not in the issuer's pinned list")
        }
        guard !signature.isEmpty else {
            throw JWSError(.malformed, reason: "signature is empty")
        }

        let algorithm = header.algorithm
        if let keyID = header.keyID {
            guard let key = keys.key(withID: keyID) else {
                throw JWSError(.unknownKeyID, reason: "kid names no key of the set")
            }
            guard key.permits(algorithm) else {
                throw JWSError(.keyDoesNotFitAlgorithm, reason: "the kid's key does not fit alg (type, curve, length or its own alg)")
            }
            let valid = signature.withUnsafeBytes { key.isValidSignature($0, for: signingInput, algorithm: algorithm) }
            guard valid else {
                throw JWSError(.invalidSignature, reason: "signature does not verify under the kid's key")
            }
        } else {
            var tried = 0
            var valid = false
            for key in keys.keys where key.permits(algorithm) {
                guard tried < self.maximumKeysTriedWithoutKeyID else { break }
                tried += 1
                if signature.withUnsafeBytes({ key.isValidSignature($0, for: signingInput, algorithm: algorithm) }) {
                    valid = true
                    break
                }
            }
            guard tried > 0 else {
                throw JWSError(.noSuitableKey, reason: "no kid, and no key of the set fits alg")
            }
            guard valid else {
                throw JWSError(.invalidSignature, reason: "no kid, and the signature verifies under none of the keys tried")
            }
        }
        return VerifiedToken(header: header, payload: payload)
    }

    /// The offset of the first `.` at or after `start` (libc's vectorised `memchr`: a token is
    /// hundreds of bytes, read once per cache miss).
    private static func dot(in token: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < token.count, let base = token.baseAddress,
            let found = memchr(base + start, Int32(UInt8(ascii: ".")), token.count - start)
        else { return nil }
        return UnsafeRawPointer(found) - base
    }
}

/// A token whose signature verified: its header and payload bytes. Claims are not checked yet;
/// see ``JWTClaims`` and ``ClaimsPolicy``.
public struct VerifiedToken: Sendable {
    public let header: JOSEHeader
    /// The decoded payload (for a JWT, the claims JSON).
    public let payload: [UInt8]

    public init(header: JOSEHeader, payload: [UInt8]) {
        self.header = header
        self.payload = payload
    }
}

/// The last JOSE header a verifier parsed, by its exact base64url text: an issuer signs its
/// tokens under a handful of headers, so most tokens skip the header's base64 and JSON. Kept
/// per event loop (`VerifiedTokenCache`), never shared between threads.
public struct JOSEHeaderMemo: Sendable {
    private var encoded: [UInt8] = []
    private var parsed: JOSEHeader?

    public init() {}

    /// The header parsed from exactly these bytes, if it is the one remembered.
    func header(for encodedHeader: UnsafeRawBufferPointer) -> JOSEHeader? {
        guard let parsed = self.parsed, self.encoded.count == encodedHeader.count else { return nil }
        let same = self.encoded.withUnsafeBytes { remembered in
            memcmp(remembered.baseAddress!, encodedHeader.baseAddress!, encodedHeader.count) == 0
        }
        return same ? parsed : nil
    }

    /// Remembers a header that parsed and passed `JOSEHeader`'s rules.
    mutating func remember(_ header: JOSEHeader, for encodedHeader: UnsafeRawBufferPointer) {
        guard encodedHeader.count > 0, encodedHeader.count <= Self.maximumBytes else { return }
        self.encoded = Array(encodedHeader)
        self.parsed = header
    }

    /// Headers longer than this are parsed every time rather than kept.
    static let maximumBytes = 1024
}
