import Foundation
import PortcullisAuth

/// The tests' own IdP: an ES256 key made once per test process, a JWK Set file for the
/// gateway's `jwks_file`, and tokens for the client `e2e-client`. `PortcullisProcess.serve`
/// adds the issuer and client to configs that have none, and `RawHTTPClient` sends `token`
/// unless a test gives its own `Authorization` (or asks for none).
enum TestIdentity {
    static let issuer = "https://idp.e2e.invalid/"
    static let audience = "api://portcullis-e2e"
    static let clientID = "e2e-client"
    static let clientName = "E2E tests"
    static let jwksFileName = "e2e-jwks.json"

    static let signer = JWSSigner.generate(.es256, keyID: "e2e-1")!

    /// A token for `e2e-client`, valid for an hour.
    static let token = Self.token()

    static var authorizationHeader: (String, String) { ("Authorization", "Bearer \(Self.token)") }

    /// `Authorization: Bearer ...\r\n`, for tests that write requests by hand.
    static var authorizationLine: String { "Authorization: Bearer \(Self.token)\r\n" }

    /// Raw request bytes with the token line added after every request line (each line that
    /// ends `HTTP/1.0` or `HTTP/1.1` + CRLF), so hand-written and fixture requests authenticate
    /// and what is tested is what follows.
    static func authorizing(_ bytes: [UInt8]) -> [UInt8] {
        let markers = [Array("HTTP/1.1\r\n".utf8), Array("HTTP/1.0\r\n".utf8)]
        let line = Array(Self.authorizationLine.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + line.count * 2)
        var index = 0
        while index < bytes.count {
            if let marker = markers.first(where: { index + $0.count <= bytes.count && bytes[index..<(index + $0.count)].elementsEqual($0) }) {
                out += marker
                out += line
                index += marker.count
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }

    static func token(
        clientID: String = Self.clientID,
        issuer: String = Self.issuer,
        audience: String = Self.audience,
        expiresIn: Int = 3600,
        notBefore: Int? = nil,
        signer: JWSSigner = Self.signer
    ) -> String {
        let now = Int(Date().timeIntervalSince1970)
        var claims = #"{"iss":"\#(issuer)","aud":"\#(audience)","appid":"\#(clientID)","iat":\#(now - 5),"exp":\#(now + expiresIn)"#
        if let notBefore { claims += #","nbf":\#(now + notBefore)"# }
        claims += #","jti":"\#(UUID().uuidString)"}"#
        return try! signer.sign(claimsJSON: claims)
    }

    /// One `issuers:` entry for the tests' ES256 issuer, named `e2e`, indented as a list item
    /// under `issuers:` (for configs that write their own clients and roles).
    static let issuerEntryYAML = """
          - name: e2e
            issuer: "\(TestIdentity.issuer)"
            audiences: ["\(TestIdentity.audience)"]
            jwks_file: \(TestIdentity.jwksFileName)
            algorithms: [ES256]
            client_claim: appid
        """

    /// The `issuers:`, `clients:` and `roles:` sections for a config that has none: the tests'
    /// client may call anything (`e2e-all`), so what a test exercises is the proxy.
    static func configYAML(extraClients: String = "") -> String {
        """

        issuers:
          - name: e2e
            issuer: "\(Self.issuer)"
            audiences: ["\(Self.audience)"]
            jwks_file: \(Self.jwksFileName)
            algorithms: [ES256]
            client_claim: appid
            leeway: 5s
        clients:
          - id: \(Self.clientID)
            name: "\(Self.clientName)"
            issuer: e2e
            roles: [e2e-all]
        \(extraClients)
        roles:
          e2e-all:
            allow:
              - { paths: ["/**"] }
        """
    }
}
