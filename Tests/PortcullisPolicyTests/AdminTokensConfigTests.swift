import Testing

@testable import PortcullisPolicy

/// `admin.tokens`: named admin tokens beside the single `admin.token_file`.
@Suite struct AdminTokensConfigTests {
    static let hash = String(repeating: "ab", count: 32)

    @Test func namedTokensLoadWithTheirHashOrFile() throws {
        let config = try ConfigLoaderTests.load(
            ConfigLoaderTests.minimal + """

                admin:
                  token_file: admin-token
                  tokens:
                    - { name: "ops-alice", token_sha256: "\(Self.hash)" }
                    - { name: "pipeline", token_file: pipeline-token }
                """
        )
        // Resolved against the directory of the file that names them (here a bare file name).
        #expect(config.admin.tokenFile == "admin-token")
        #expect(config.admin.tokens == [
            AdminTokenConfig(name: "ops-alice", tokenSHA256: Self.hash),
            AdminTokenConfig(name: "pipeline", tokenFile: "pipeline-token"),
        ])
    }

    @Test(arguments: [
        ("- { token_sha256: \"\(hash)\" }", "missing name"),
        ("- { name: a, token_sha256: \"ABC\" }", "64 lowercase hex digits"),
        ("- { name: a }", "exactly one of token_sha256 and token_file"),
        ("- { name: a, token_sha256: \"\(hash)\", token_file: f }", "exactly one of token_sha256 and token_file"),
        ("- { name: a, token_sha256: \"\(hash)\" }\n    - { name: a, token_file: f }", "used twice"),
    ])
    func badTokensSayWhatIsExpected(entry: String, message: String) {
        let errors = ConfigLoaderTests.errors(ConfigLoaderTests.minimal + "\nadmin:\n  tokens:\n    \(entry)\n")
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.message.contains(message) == true, "\(errors)")
        #expect(errors.first?.location?.line != nil)
    }
}
