import Logging
import PortcullisPolicy
import Testing

@testable import PortcullisProxy

/// When the running snapshot must be compiled again for a secret that ended, and which
/// expiries are warned about, each once.
@Suite struct SecretExpiryWatchTests {
    static let created = "2026-12-04T10:00:00Z"
    static var createdSeconds: Int64 { UTCTime.seconds(Self.created)! }

    static func config() throws -> GatewayConfig {
        let hash = String(repeating: "a", count: 64)
        let old = String(repeating: "b", count: 64)
        return try ConfigLoader.load(
            sources: [
                (
                    file: "gateway.yaml",
                    text: """
                        listen:
                          - address: "127.0.0.1:8080"
                        upstream:
                          url: "http://127.0.0.1:8091"
                        issuers:
                          - name: local
                            builtin: true
                            signing_key_file: /dev/null
                            secret_lifetime: 40d
                        roles:
                          reader:
                            allow:
                              - { methods: [GET], paths: ["/**"] }
                        clients:
                          - id: rotated
                            issuer: local
                            roles: [reader]
                            secret_sha256: "\(hash)"
                            secret_created: "\(Self.created)"
                            retired_secrets:
                              - { secret_sha256: "\(old)", created: "\(Self.created)", until: "2026-12-04T11:00:00Z" }
                          - id: short
                            issuer: local
                            roles: [reader]
                            secret_sha256: "\(hash)"
                            secret_created: "\(Self.created)"
                            secret_lifetime: 8h
                          - id: ageless
                            issuer: local
                            roles: [reader]
                            secret_sha256: "\(hash)"
                        """
                )
            ],
            directory: "/etc/portcullis"
        )
    }

    @Test func theNextBoundaryIsTheEarliestSecretEnd() throws {
        let config = try Self.config()
        let start = Self.createdSeconds
        #expect(config.nextSecretBoundary(after: start) == start + 3600, "the grace of rotated's old secret")
        #expect(config.nextSecretBoundary(after: start + 3600) == start + 8 * 3600, "short's lifetime")
        #expect(config.nextSecretBoundary(after: start + 8 * 3600) == start + 40 * 86_400, "the issuer's lifetime")
        #expect(config.secretExpiries() == ["rotated": start + 40 * 86_400, "short": start + 8 * 3600])

        let watch = SecretExpiryWatch()
        watch.configApplied(config, now: start)
        #expect(!watch.boundaryPassed(now: start + 3599))
        #expect(watch.boundaryPassed(now: start + 3600))
    }

    @Test func anExpiryIsWarnedAboutOnceAheadOfIt() throws {
        let watch = SecretExpiryWatch()
        let start = Self.createdSeconds
        watch.configApplied(try Self.config(), now: start)
        // A quarter of the lifetime ahead: short 2h before its 8h, rotated 10 days before its 40.
        #expect(watch.takeWarnings(now: start + 6 * 3600 - 1).isEmpty)
        #expect(watch.takeWarnings(now: start + 6 * 3600).map(\.clientID) == ["short"])
        #expect(watch.takeWarnings(now: start + 7 * 3600).isEmpty, "once")
        #expect(watch.takeWarnings(now: start + 30 * 86_400 - 1).isEmpty)
        #expect(watch.takeWarnings(now: start + 30 * 86_400).map(\.clientID) == ["rotated"])
        // Applied again (a reload) with the same expiries: not warned again.
        watch.configApplied(try Self.config(), now: start + 30 * 86_400)
        #expect(watch.takeWarnings(now: start + 31 * 86_400).isEmpty)
    }
}
