import Testing

@testable import PortcullisAuth

@Suite struct JWTClaimsTests {
    private func claims(_ json: String) throws -> JWTClaims {
        try JWTClaims(payload: Array(json.utf8))
    }

    private func parseCode(_ json: String) -> ClaimsError.Code? {
        do {
            _ = try JWTClaims(payload: Array(json.utf8))
            return nil
        } catch {
            return error.code
        }
    }

    @Test func registeredAndOtherClaimsAreRead() throws {
        let claims = try self.claims(
            #"{"iss":"https://sts.windows.net/t/","sub":"s","aud":"api://a","exp":1700000600,"nbf":1700000000,"iat":1700000000,"jti":"j","appid":"6cabf059","azp":"z","roles":["r"]}"#
        )
        #expect(claims.issuer == "https://sts.windows.net/t/")
        #expect(claims.subject == "s")
        #expect(claims.audience == ["api://a"])
        #expect(claims.expiresAt == 1_700_000_600)
        #expect(claims.notBefore == 1_700_000_000)
        #expect(claims.issuedAt == 1_700_000_000)
        #expect(claims.jwtID == "j")
        #expect(claims.string(named: "appid") == "6cabf059")
        #expect(claims.string(named: "azp") == "z")
        #expect(claims.string(named: "sub") == "s")
        #expect(claims.string(named: "roles") == nil)
        #expect(claims["roles"] == .array([.string("r")]))
        #expect(claims.string(named: "client_id") == nil)
    }

    @Test func audienceMayBeAStringOrAnArray() throws {
        #expect(try self.claims(#"{"aud":"a"}"#).audience == ["a"])
        #expect(try self.claims(#"{"aud":["a","b"]}"#).audience == ["a", "b"])
        #expect(try self.claims(#"{"aud":[]}"#).audience == [])
        #expect(try self.claims(#"{}"#).audience == nil)
        #expect(self.parseCode(#"{"aud":["a",1]}"#) == .invalidClaims)
        #expect(self.parseCode(#"{"aud":{"a":1}}"#) == .invalidClaims)
        #expect(self.parseCode(#"{"aud":null}"#) == .invalidClaims)
    }

    @Test func nonIntegerNumericDatesUseTheIntegerPart() throws {
        let claims = try self.claims(#"{"exp":1700000600.9,"nbf":1700000000.5,"iat":1.7e9}"#)
        #expect(claims.expiresAt == 1_700_000_600)
        #expect(claims.notBefore == 1_700_000_000)
        #expect(claims.issuedAt == 1_700_000_000)
        #expect(try self.claims(#"{"exp":-1.5}"#).expiresAt == -2)
    }

    @Test func badlyTypedRegisteredClaimsAreRefused() {
        for json in [
            #"{"exp":"1700000600"}"#, #"{"exp":true}"#, #"{"nbf":null}"#, #"{"iat":[1]}"#, #"{"iss":1}"#,
            #"{"sub":{}}"#, #"{"jti":2}"#, #"{"exp":1e300}"#, "[]", #""claims""#, "{", #"{"exp":1,"exp":2}"#,
        ] {
            #expect(self.parseCode(json) == .invalidClaims, "\(json)")
        }
    }
}

@Suite struct ClaimsPolicyTests {
    static let now: Int64 = 1_700_000_000
    let policy = ClaimsPolicy(issuer: "https://issuer.example", audiences: ["api://one", "api://two"], leeway: 60)

    private func code(_ json: String, now: Int64 = Self.now) -> ClaimsError? {
        do {
            try self.policy.validate(try JWTClaims(payload: Array(json.utf8)), now: now)
            return nil
        } catch {
            return error
        }
    }

    private func token(iss: String = "https://issuer.example", aud: String = #""api://one""#, exp: Int64? = now + 600, extra: String = "") -> String {
        var members = [#""iss":"\#(iss)""#, #""aud":\#(aud)"#]
        if let exp { members.append(#""exp":\#(exp)"#) }
        if !extra.isEmpty { members.append(extra) }
        return "{" + members.joined(separator: ",") + "}"
    }

    @Test func validClaimsPass() {
        #expect(self.code(self.token()) == nil)
        #expect(self.code(self.token(extra: #""nbf":\#(Self.now),"iat":\#(Self.now)"#)) == nil)
    }

    @Test func issuerMustMatchExactly() {
        #expect(self.code(self.token(iss: "https://issuer.example/"))?.code == .wrongIssuer)
        #expect(self.code(self.token(iss: "HTTPS://issuer.example"))?.code == .wrongIssuer)
        #expect(self.code(#"{"aud":"api://one","exp":\#(Self.now + 600)}"#)?.code == .missingClaim)
        #expect(self.code(#"{"aud":"api://one","exp":\#(Self.now + 600)}"#)?.claim == "iss")
    }

    @Test func audienceStringOrArrayMustNameAConfiguredAudience() {
        #expect(self.code(self.token(aud: #""api://two""#)) == nil)
        #expect(self.code(self.token(aud: #"["api://other","api://two"]"#)) == nil)
        #expect(self.code(self.token(aud: #""api://other""#))?.code == .wrongAudience)
        #expect(self.code(self.token(aud: #"["api://other"]"#))?.code == .wrongAudience)
        #expect(self.code(self.token(aud: "[]"))?.code == .wrongAudience)
        let missing = self.code(#"{"iss":"https://issuer.example","exp":\#(Self.now + 600)}"#)
        #expect(missing?.code == .missingClaim && missing?.claim == "aud")
        let nobody = ClaimsPolicy(issuer: "https://issuer.example", audiences: [])
        #expect(throws: ClaimsError(.wrongAudience, claim: nil, reason: "")) {
            try nobody.validate(try JWTClaims(payload: Array(self.token().utf8)), now: Self.now)
        }
    }

    @Test func expIsRequiredAndHonouredWithLeeway() {
        let missing = self.code(self.token(exp: nil))
        #expect(missing?.code == .missingClaim && missing?.claim == "exp")
        #expect(self.code(self.token(exp: Self.now - 59)) == nil)
        #expect(self.code(self.token(exp: Self.now - 60))?.code == .tokenExpired)
        #expect(self.code(self.token(exp: Self.now - 3600))?.code == .tokenExpired)
        let strict = ClaimsPolicy(issuer: "https://issuer.example", audiences: ["api://one"], leeway: 0)
        #expect(throws: ClaimsError(.tokenExpired, claim: "exp", reason: "")) {
            try strict.validate(try JWTClaims(payload: Array(self.token(exp: Self.now).utf8)), now: Self.now)
        }
    }

    @Test func nbfIsHonouredWithLeeway() {
        #expect(self.code(self.token(extra: #""nbf":\#(Self.now + 60)"#)) == nil)
        #expect(self.code(self.token(extra: #""nbf":\#(Self.now + 61)"#))?.code == .tokenNotYetValid)
    }

    @Test func iatInTheFutureBeyondTheLeewayIsRefused() {
        #expect(self.code(self.token(extra: #""iat":\#(Self.now + 60)"#)) == nil)
        let future = self.code(self.token(extra: #""iat":\#(Self.now + 61)"#))
        #expect(future?.code == .tokenNotYetValid && future?.claim == "iat")
        #expect(self.code(self.token(extra: #""iat":\#(Self.now - 86400)"#)) == nil)
    }

    @Test func reasonsHaveStableNamesForTheAccessLog() {
        let names = [ClaimsError.Code.tokenExpired, .tokenNotYetValid, .wrongIssuer, .wrongAudience, .missingClaim, .invalidClaims]
            .map(\.identifier)
        #expect(names == ["token_expired", "token_not_yet_valid", "wrong_issuer", "wrong_audience", "missing_claim", "invalid_claims"])
        #expect(ClaimsPolicy.defaultLeeway == 60)
    }
}
