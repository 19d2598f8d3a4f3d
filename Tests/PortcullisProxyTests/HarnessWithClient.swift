import Foundation
import NIOCore
import PortcullisAuth
import Testing

@testable import PortcullisProxy

extension ClientConnectionHandlerTests.Harness {
    static let clientSecret = "harness-client-secret-0123456789abcdefgh"

    /// A harness whose config has the built-in issuer and one client, `c1`, allowed every path
    /// (with `roleLimits` as its role's limits, when given).
    static func withClient(
        roleLimits: String? = nil,
        limits: String = "",
        upstreamExtra: String = "",
        connector: any UpstreamConnector = SocketConnector()
    ) throws -> Self {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("harness-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let key = directory + "/signing.pem"
        try BuiltinIssuer.newSigningKeyPEM().write(toFile: key, atomically: true, encoding: .utf8)
        return try Self(
            limits: limits,
            extra: """
                issuers:
                  - name: local
                    builtin: true
                    signing_key_file: "\(key)"
                    state_file: "\(directory)/state.json"
                roles:
                  r:
                    allow:
                      - { paths: ["/**"] }
                \(roleLimits.map { "    limits: \($0)" } ?? "")
                clients:
                  - id: "c1"
                    issuer: "local"
                    roles: ["r"]
                    secret_sha256: "\(ClientSecret.sha256Hex(Self.clientSecret))"
                """,
            upstreamExtra: upstreamExtra,
            builtin: true,
            connector: connector
        )
    }

    /// An access token of `c1` from the built-in issuer.
    func token() throws -> String {
        try Self.token(self.loop.settings)
    }

    static func token(_ settings: ProxySettings) throws -> String {
        let service = try #require(settings.tokenService)
        let form = "grant_type=client_credentials&client_id=c1&client_secret=\(Self.clientSecret)"
        let request = TokenService.Request(
            contentType: "application/x-www-form-urlencoded",
            authorization: nil,
            body: Array(form.utf8),
            address: .v4(0)
        )
        let result = service.token(request, now: Int64(Date().timeIntervalSince1970))
        let body = try #require(result.body)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        return try #require(json["access_token"] as? String)
    }
}
