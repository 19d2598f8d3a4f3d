import Testing

@testable import PortcullisAuth

@Suite struct TokenAuthenticatorTests {
    static let now: Int64 = 1_800_000_000

    struct Issuer {
        let signer: JWSSigner
        let iss: String
        let trusted: TrustedIssuer

        init(name: String, iss: String, audience: String = "api://gw", claim: String = "appid") throws {
            self.signer = JWSSigner.generate(.es256, keyID: "\(name)-1")!
            self.iss = iss
            let keys = try JWKSet(json: Array(self.signer.publicJWKSet.utf8))
            self.trusted = TrustedIssuer(
                name: name,
                verifier: JWSVerifier(allowedAlgorithms: [.es256]),
                claims: ClaimsPolicy(issuer: iss, audiences: [audience], leeway: 30),
                clientClaim: claim,
                keys: FixedKeys(keys)
            )
        }

        func token(client: String, exp: Int64 = TokenAuthenticatorTests.now + 600, aud: String = "api://gw") throws -> Substring {
            Substring(try self.signer.sign(claimsJSON: #"{"iss":"\#(self.iss)","aud":"\#(aud)","appid":"\#(client)","exp":\#(exp)}"#))
        }
    }

    static func authenticator(_ issuers: [Issuer], clients: [ClientRecord]) -> TokenAuthenticator {
        TokenAuthenticator(issuers: issuers.map { ($0.iss, $0.trusted) }, clients: clients)
    }

    @Test func theTokensIssPicksTheIssuerAndTheClientMustBelongToIt() throws {
        let a = try Issuer(name: "a", iss: "https://a.invalid/")
        let b = try Issuer(name: "b", iss: "https://b.invalid/")
        let auth = Self.authenticator(
            [a, b],
            clients: [
                ClientRecord(id: "one", name: "One", enabled: true, issuer: "a"),
                ClientRecord(id: "two", name: "Two", enabled: true, issuer: "b"),
                ClientRecord(id: "off", name: "Off", enabled: false, issuer: "a"),
            ]
        )
        let identity = try auth.verify(try a.token(client: "one"), now: Self.now).get()
        #expect(identity == VerifiedIdentity(issuer: "a", clientID: "one", validUntil: Self.now + 600 + 30))
        #expect(try auth.client(for: identity).get().name == "One")
        #expect(try auth.client(for: try auth.verify(try b.token(client: "two"), now: Self.now).get()).get().id == "two")

        // b's key cannot sign for a: the iss picks a, whose key does not verify it.
        let forged = Substring(try b.signer.sign(claimsJSON: #"{"iss":"https://a.invalid/","aud":"api://gw","appid":"one","exp":\#(Self.now + 600)}"#))
        #expect(Self.reason(auth.verify(forged, now: Self.now)) == "invalid_signature" || Self.reason(auth.verify(forged, now: Self.now)) == "unknown_kid")

        func clientReason(_ token: Substring) throws -> String? {
            let identity = try auth.verify(token, now: Self.now).get()
            if case .failure(let failure) = auth.client(for: identity) { return failure.reason }
            return nil
        }
        #expect(try clientReason(try a.token(client: "two")) == "unknown_client")  // two is b's
        #expect(try clientReason(try a.token(client: "nobody")) == "unknown_client")
        #expect(try clientReason(try a.token(client: "off")) == "client_disabled")
    }

    static func reason(_ result: Result<VerifiedIdentity, AuthFailure>) -> String? {
        if case .failure(let failure) = result { return failure.reason }
        return nil
    }

    @Test func claimsFailuresKeepTheirStableReasons() throws {
        let a = try Issuer(name: "a", iss: "https://a.invalid/")
        let auth = Self.authenticator([a], clients: [])
        #expect(Self.reason(auth.verify(try a.token(client: "x", exp: Self.now - 31), now: Self.now)) == "token_expired")
        #expect(Self.reason(auth.verify(try a.token(client: "x", exp: Self.now - 29), now: Self.now)) == nil)  // leeway
        #expect(Self.reason(auth.verify(try a.token(client: "x", aud: "api://other"), now: Self.now)) == "wrong_audience")
        let noClaim = Substring(try a.signer.sign(claimsJSON: #"{"iss":"https://a.invalid/","aud":"api://gw","exp":\#(Self.now + 60)}"#))
        #expect(Self.reason(auth.verify(noClaim, now: Self.now)) == "missing_claim")
    }

    @Test func withSeveralIssuersAnUnknownIssIsRefusedBeforeAnySignatureWork() throws {
        let a = try Issuer(name: "a", iss: "https://a.invalid/")
        let b = try Issuer(name: "b", iss: "https://b.invalid/")
        let c = try Issuer(name: "c", iss: "https://c.invalid/")
        let auth = Self.authenticator([a, b], clients: [])
        #expect(Self.reason(auth.verify(try c.token(client: "x"), now: Self.now)) == "unknown_issuer")
        #expect(Self.reason(auth.verify("not.a.token", now: Self.now)) == "unknown_issuer")
    }

    @Test func noIssuersMeansNoTokenIsValid() throws {
        let a = try Issuer(name: "a", iss: "https://a.invalid/")
        let auth = Self.authenticator([], clients: [])
        #expect(!auth.hasIssuers)
        #expect(Self.reason(auth.verify(try a.token(client: "x"), now: Self.now)) == "unknown_issuer")
    }

    // MARK: - Bearer credentials

    @Test(arguments: [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER a-b_c~d+e/f==", "a-b_c~d+e/f=="),
    ])
    func wellFormedBearerCredentials(header: String, token: String) {
        #expect(BearerToken.extract(from: header).map(String.init) == token)
    }

    @Test(arguments: ["Bearer", "Bearer ", "Bearer  ", "Basic abc", "Bearer abc def", "Bearer =abc", "Bearer a=b", "Bearer a\u{7F}", "Bearerabc"])
    func malformedBearerCredentials(header: String) {
        #expect(BearerToken.extract(from: header) == nil)
    }
}

@Suite struct VerifiedTokenCacheTests {
    static let identity = VerifiedIdentity(issuer: "a", clientID: "one", validUntil: 1_000)

    @Test func aHitNeedsTheSameBytesAndAnUnexpiredEntry() {
        var cache = VerifiedTokenCache(capacity: 4)
        let token: Substring = "header.payload.signature-0123456789abcdef"
        #expect(cache.lookup(token, now: 10) == nil)
        cache.insert(token, Self.identity)
        #expect(cache.lookup(Substring(String(token)), now: 10) == Self.identity)  // another String, same bytes
        // Same length and same last 16 bytes (the digest), different elsewhere: not a hit.
        #expect(cache.lookup("HEADER.payload.signature-0123456789abcdef", now: 10) == nil)
        #expect(cache.lookup(token, now: 1_000) == nil)  // expired: dropped
        #expect(cache.count == 0)
        #expect(cache.hits == 1)
        #expect(cache.misses == 3)
    }

    @Test func whenFullATokenIsAdmittedOnItsSecondMissAndTheOldestEntryGoes() {
        var cache = VerifiedTokenCache(capacity: 3)
        let tokens: [Substring] = (0..<5).map { Substring("header.payload.signature-bytes-of-token-\($0)") }
        for token in tokens[0..<3] { cache.insert(token, Self.identity) }
        #expect(cache.count == 3)
        // Full: a first miss only knocks at the door; the same token again gets in.
        cache.insert(tokens[3], Self.identity)
        #expect(cache.lookup(tokens[3], now: 0) == nil)
        #expect(cache.lookup(tokens[0], now: 0) != nil)
        cache.insert(tokens[3], Self.identity)
        #expect(cache.lookup(tokens[3], now: 0) != nil)
        #expect(cache.lookup(tokens[0], now: 0) == nil)  // the oldest went
        #expect(cache.count == 3)
        // Inserting a token already held takes no slot and needs no second knock.
        cache.insert(tokens[1], Self.identity)
        #expect(cache.lookup(tokens[1], now: 0) != nil)
        #expect(cache.lookup(tokens[2], now: 0) != nil)
    }

    @Test func aCycleOfMoreTokensThanSlotsStillHits() {
        // 10 tokens round-robin through 4 slots: plain FIFO would never hit. (Each ends in its
        // own bytes, as real tokens end in their signatures: the digest reads the last 16.)
        var cache = VerifiedTokenCache(capacity: 4)
        let tokens: [Substring] = (0..<10).map { Substring("header.payload.rotated-signature-number-\($0)") }
        for _ in 0..<20 {
            for token in tokens where cache.lookup(token, now: 0) == nil {
                cache.insert(token, Self.identity)
            }
        }
        #expect(cache.hits > 0, "hits \(cache.hits), misses \(cache.misses)")
    }

    @Test func zeroCapacityRemembersNothingAndRemoveAllForgets() {
        var off = VerifiedTokenCache(capacity: 0)
        off.insert("a-token-that-will-not-be-kept", Self.identity)
        #expect(off.count == 0)
        var cache = VerifiedTokenCache(capacity: 2)
        cache.insert("a-token-that-will-be-forgotten", Self.identity)
        cache.removeAll()
        #expect(cache.lookup("a-token-that-will-be-forgotten", now: 0) == nil)
    }
}
