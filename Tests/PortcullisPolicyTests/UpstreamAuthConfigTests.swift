import Foundation
import Testing

@testable import PortcullisPolicy

/// `upstream.auth`: parsing, the errors with file:line and key, and credential files.
@Suite struct UpstreamAuthConfigTests {
    /// A fresh directory with `secret` and `key` files; the config "file" lives in it, so
    /// relative paths resolve there.
    struct Fixture {
        let directory: String
        var file: String { self.directory + "/gateway.yaml" }

        init(files: [String: String] = ["secret": "s3cr3t\n", "key": "function-key\r\n"]) throws {
            self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("upstream-auth-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
            for (name, contents) in files {
                try contents.write(toFile: self.directory + "/" + name, atomically: true, encoding: .utf8)
            }
        }

        func yaml(_ auth: String) -> String {
            """
            listen:
              - address: "127.0.0.1:8080"
            upstream:
              url: "https://cipp.example.net"
              auth:
            \(auth)
            """
        }

        func load(_ auth: String) throws(ConfigErrors) -> GatewayConfig {
            try ConfigLoader.load(sources: [(file: self.file, text: self.yaml(auth))], directory: self.directory)
        }

        func errors(_ auth: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [ConfigError] {
            do throws(ConfigErrors) {
                _ = try self.load(auth)
                Issue.record("configuration loaded but was expected to fail", sourceLocation: sourceLocation)
                return []
            } catch {
                return error.errors
            }
        }
    }

    @Test func clientCredentialsAreReadWithTheSecretFileResolved() throws {
        let fixture = try Fixture()
        let config = try fixture.load(
            """
                client_credentials:
                  token_url: "https://login.microsoftonline.com/TENANT/oauth2/v2.0/token"
                  client_id: "app-1"
                  client_secret_file: secret
                  scope: "api://APPID/.default"
            """
        )
        #expect(
            config.upstream.auth
                == .clientCredentials(
                    .init(
                        tokenURL: "https://login.microsoftonline.com/TENANT/oauth2/v2.0/token",
                        clientID: "app-1",
                        clientSecretFile: fixture.directory + "/secret",
                        scope: "api://APPID/.default"
                    )
                )
        )
        #expect(config.upstream.auth?.headerName == "authorization")
        #expect(config.upstream.authLocation?.line == 6)
    }

    @Test func headerIsReadAndScopeIsOptional() throws {
        let fixture = try Fixture()
        let header = try fixture.load(
            """
                header: {name: "x-functions-key", value_file: key}
            """
        )
        #expect(header.upstream.auth == .header(.init(name: "x-functions-key", valueFile: fixture.directory + "/key")))
        #expect(header.upstream.auth?.headerName == "x-functions-key")
        let noScope = try fixture.load(
            """
                client_credentials: {token_url: "http://127.0.0.1:9000/token", client_id: a, client_secret_file: secret}
            """
        )
        guard case .clientCredentials(let settings) = noScope.upstream.auth else {
            Issue.record("expected client_credentials")
            return
        }
        #expect(settings.scope == nil)
    }

    @Test func bothVariantsAtOnceAreRefused() throws {
        let fixture = try Fixture()
        let errors = fixture.errors(
            """
                header: {name: "x-functions-key", value_file: key}
                client_credentials: {token_url: "https://idp.example/token", client_id: a, client_secret_file: secret}
            """
        )
        #expect(errors.count == 1)
        #expect(errors.first?.key == "upstream.auth.client_credentials")
        #expect(errors.first?.location?.line == 7)
        #expect(errors.first?.location?.file == fixture.file)
        #expect(errors.first?.message.contains("not both") == true)
    }

    @Test func neitherVariantIsAnError() throws {
        let fixture = try Fixture()
        let errors = fixture.errors("    {}")
        #expect(errors.count == 1)
        #expect(errors.first?.key == "upstream.auth")
    }

    @Test func unknownAndMissingKeysAreNamed() throws {
        let fixture = try Fixture()
        let errors = fixture.errors(
            """
                client_credentials:
                  token_url: "https://idp.example/token"
                  client_secrt_file: secret
            """
        )
        let keys = errors.map(\.key)
        #expect(keys.contains("upstream.auth.client_credentials.client_secrt_file"))
        #expect(errors.contains { $0.message.contains("did you mean 'client_secret_file'?") })
        #expect(errors.contains { $0.key == "upstream.auth.client_credentials" && $0.message.contains("missing client_id") })
        #expect(errors.contains { $0.message.contains("missing client_secret_file") })
        #expect(errors.allSatisfy { $0.location?.file == fixture.file && $0.location!.line >= 6 })

        let header = fixture.errors("    header: {name: x-functions-key, valu_file: key}")
        #expect(header.contains { $0.key == "upstream.auth.header.valu_file" })
        #expect(header.contains { $0.message.contains("missing value_file") })
        let outer = fixture.errors("    headers: {name: a, value_file: key}")
        #expect(outer.contains { $0.key == "upstream.auth.headers" && $0.message.contains("did you mean 'header'?") })
    }

    @Test func unreadableOrBadCredentialFilesAreErrorsWithoutTheirContents() throws {
        let fixture = try Fixture(files: ["empty": "\n", "twolines": "abc\ndef\n", "nul": "ab\u{0}c", "key": "ok\n"])
        for (file, expected) in [
            ("missing", "cannot read"), ("empty", "is empty"), ("twolines", "line break or NUL"), ("nul", "line break or NUL"),
        ] {
            let errors = fixture.errors("    header: {name: x-functions-key, value_file: \(file)}")
            #expect(errors.count == 1, "\(file): \(errors)")
            #expect(errors.first?.key == "upstream.auth.header.value_file")
            #expect(errors.first?.message.contains(expected) == true, "\(file): \(errors)")
            #expect(errors.first?.message.contains("def") == false)
        }
        let secret = fixture.errors(
            "    client_credentials: {token_url: \"https://idp.example/token\", client_id: a, client_secret_file: nope}"
        )
        #expect(secret.first?.key == "upstream.auth.client_credentials.client_secret_file")
    }

    @Test func tokenURLMustBeHTTPSOrLoopback() throws {
        let fixture = try Fixture()
        func error(_ url: String) -> ConfigError? {
            let errors = fixture.errors("    client_credentials: {token_url: \"\(url)\", client_id: a, client_secret_file: secret}")
            return errors.first
        }
        #expect(error("http://idp.example/token")?.message.contains("https://") == true)
        #expect(error("http://idp.example/token")?.key == "upstream.auth.client_credentials.token_url")
        #expect(error("ftp://idp.example/token") != nil)
        #expect(error("https://user@idp.example/token")?.message.contains("user info") == true)
        for good in ["http://127.0.0.1:9000/token", "http://localhost/token", "http://[::1]:9/t", "https://idp.example/t?x=1"] {
            #expect(throws: Never.self) {
                _ = try fixture.load("    client_credentials: {token_url: \"\(good)\", client_id: a, client_secret_file: secret}")
            }
        }
    }

    @Test func headerNamesTheGatewayOwnsAreRefused() throws {
        let fixture = try Fixture()
        for name in ["Host", "content-length", "X-Forwarded-For", "x-request-id", "X-Portcullis-Client-Id", "bad name", "x:y"] {
            let errors = fixture.errors("    header: {name: \"\(name)\", value_file: key}")
            #expect(errors.first?.key == "upstream.auth.header.name", "\(name): \(errors)")
        }
        #expect(throws: Never.self) { _ = try fixture.load("    header: {name: Authorization, value_file: key}") }
    }

    @Test func credentialFilesAreTrimmedOfTrailingLineEndsOnly() throws {
        let fixture = try Fixture(files: ["a": "value\r\n\n", "b": " spaced value ", "c": "tab\tok", "d": "bell\u{7}"])
        #expect(try UpstreamAuthConfig.readCredentialFile(fixture.directory + "/a").get() == "value")
        #expect(try UpstreamAuthConfig.readCredentialFile(fixture.directory + "/b").get() == " spaced value ")
        #expect(try UpstreamAuthConfig.readCredentialFile(fixture.directory + "/c").get() == "tab\tok")
        #expect(throws: CredentialFileError.self) { try UpstreamAuthConfig.readCredentialFile(fixture.directory + "/d").get() }
    }
}
