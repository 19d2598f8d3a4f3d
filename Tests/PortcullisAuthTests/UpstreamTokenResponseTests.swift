import Testing

@testable import PortcullisAuth

/// The token endpoint's answer, the form body sent to it, and the refresh schedule.
@Suite struct UpstreamTokenResponseTests {
    static func parse(_ json: String) throws(UpstreamCredentialError) -> UpstreamTokenResponse {
        try UpstreamTokenResponse.parse(Array(json.utf8))
    }

    @Test func entraStyleAnswerIsParsed() throws {
        let response = try Self.parse(#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0.eyJ1.sig"}"#)
        #expect(response == UpstreamTokenResponse(accessToken: "eyJ0.eyJ1.sig", expiresIn: 3599))
    }

    @Test func expiresInMayBeAStringOrMissing() throws {
        #expect(try Self.parse(#"{"access_token":"t","expires_in":"120"}"#).expiresIn == 120)
        #expect(try Self.parse(#"{"access_token":"t","token_type":"bearer"}"#).expiresIn == UpstreamTokenResponse.defaultExpiresIn)
    }

    @Test func unusableAnswersAreRefusedWithoutQuotingTheToken() {
        let bad = [
            "not json",
            "[]",
            #"{"expires_in":3600}"#,
            #"{"access_token":"","expires_in":3600}"#,
            #"{"access_token":"has space","expires_in":3600}"#,
            #"{"access_token":"line\r\nX-Injected: 1","expires_in":3600}"#,
            #"{"access_token":"t","token_type":"mac","expires_in":3600}"#,
            #"{"access_token":"t","expires_in":0}"#,
            #"{"access_token":"t","expires_in":-5}"#,
            #"{"access_token":"t","expires_in":1.5}"#,
            #"{"access_token":"t","expires_in":"soon"}"#,
            #"{"access_token":7,"expires_in":3600}"#,
        ]
        for body in bad {
            do throws(UpstreamCredentialError) {
                _ = try Self.parse(body)
                Issue.record("accepted: \(body)")
            } catch {
                #expect(error.code == .invalidTokenResponse)
                #expect(!error.reason.contains("line"), "\(error.reason)")
            }
        }
    }

    @Test func errorCodeIsTakenOnlyWhenPlain() {
        #expect(UpstreamTokenResponse.errorCode(Array(#"{"error":"invalid_client","error_description":"AADSTS7000215"}"#.utf8)) == "invalid_client")
        #expect(UpstreamTokenResponse.errorCode(Array(#"{"error":"a b <script>"}"#.utf8)) == nil)
        #expect(UpstreamTokenResponse.errorCode(Array("<html>".utf8)) == nil)
    }

    @Test func formBodyEncodesEveryReservedCharacter() {
        let body = UpstreamTokenResponse.requestBody(clientID: "app 1", clientSecret: "a+b/c=d&e~f.g_h-i%", scope: "api://APPID/.default")
        #expect(
            body
                == "grant_type=client_credentials&client_id=app%201&client_secret=a%2Bb%2Fc%3Dd%26e~f.g_h-i%25&scope=api%3A%2F%2FAPPID%2F.default"
        )
        #expect(UpstreamTokenResponse.requestBody(clientID: "a", clientSecret: "é", scope: nil) == "grant_type=client_credentials&client_id=a&client_secret=%C3%A9")
    }

    @Test func refreshHappensBeforeExpiryButNotBackToBack() {
        let schedule = TokenRefreshSchedule()
        let second: Int64 = 1_000_000_000
        // 80% of an hour (2880 s) is earlier than a minute before expiry (3540 s).
        #expect(schedule.refreshDelay(lifetime: 3600) == 2880 * second)
        // A minute before expiry is earlier than 80% of 10 minutes.
        #expect(schedule.refreshDelay(lifetime: 600) == 480 * second)
        #expect(schedule.refreshDelay(lifetime: 120) == 60 * second)
        // Short tokens: never before half the lifetime.
        #expect(schedule.refreshDelay(lifetime: 3) == 1_500_000_000)
        #expect(schedule.refreshDelay(lifetime: 60) == 30 * second)
    }

    @Test func retriesBackOffUpToTheMaximum() {
        let schedule = TokenRefreshSchedule(minimumRetryDelay: .milliseconds(500), maximumRetryDelay: .seconds(4))
        #expect((1...6).map { schedule.retryDelay(afterFailures: $0) } == [500, 1000, 2000, 4000, 4000, 4000].map { Int64($0) * 1_000_000 })
        #expect(schedule.retryDelay(afterFailures: 1000) == 4_000_000_000)
    }

    @Test func credentialServesItsLineUntilItExpires() {
        let credential = UpstreamCredential(config: .clientCredentials(.init(tokenURL: "https://i/t", clientID: "a", clientSecretFile: "/s")))
        #expect(credential.headerLine(atUptimeNanoseconds: 1) == nil)
        credential.publish(bearer: "tok", validUntil: 1_000)
        #expect(credential.headerLine(atUptimeNanoseconds: 999).map { String(decoding: $0, as: UTF8.self) } == "Authorization: Bearer tok\r\n")
        #expect(credential.headerLine(atUptimeNanoseconds: 1_000) == nil)
        #expect(credential.headerName == "authorization")
    }
}
