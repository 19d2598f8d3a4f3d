import Testing

@testable import PortcullisPolicy

@Suite struct PathFirewallTests {
    /// The firewall's verdict on `target` as the request path runs it: canonical path first.
    static func check(_ target: String, _ firewall: PathFirewall = PathFirewall()) throws -> PathFirewall.Violation? {
        let canonical = try CanonicalPath.canonicalize(target).get()
        return firewall.check(canonical.path)
    }

    @Test(arguments: [
        ("/x/..;/admin/y", PathFirewall.Violation.semicolon),
        ("/admin;x/y", .semicolon),
        ("/admin;", .semicolon),
        ("/admin%3bx/y", .semicolon),
        ("/admin%3Bx/y", .semicolon),
        ("/%2561dmin/x", .encodedPercent),
        ("/a%25", .encodedPercent),
        ("/admin%C0%AF/x", .nonASCII),
        ("/admin%c0%af/x", .nonASCII),
        ("/caf%C3%A9", .nonASCII),
        ("/x%80", .nonASCII),
        ("/x%FF/y", .nonASCII),
        ("/admin./x", .trailingDot),
        ("/admin%2E/x", .trailingDot),
        ("/admin../x", .trailingDot),
        ("/.../x", .trailingDot),
        ("/api/x.", .trailingDot),
        ("/a/b./", .trailingDot),
    ])
    func formsBackendsReadDifferentlyAreRefusedByDefault(target: String, violation: PathFirewall.Violation) throws {
        #expect(try Self.check(target) == violation)
    }

    @Test(arguments: [
        "/", "/admin/x", "/api/ListUsers", "/.well-known/jwks.json", "/a..b/c", "/a.b/c.d", "/x/../admin/y",
        "/a/./b/.", "/a%20b", "/a%3Fb", "/~user/x-y_z", "/api/List?x=a;b%25%C0.", "/a%2A",
    ])
    func ordinaryPathsPass(target: String) throws {
        #expect(try Self.check(target) == nil)
    }

    @Test func rawBytesOutsideASCIIAreRefusedOnBytesTheCanonicaliserDidNotSee() {
        // The canonicaliser encodes raw bytes; a path handed over raw is still judged.
        #expect(PathFirewall().check(Substring("/caf\u{E9}")) == .nonASCII)
        #expect(PathFirewall(allowNonASCII: true).check(Substring("/caf\u{E9}")) == nil)
    }

    @Test func eachCheckHasItsOwnOptOut() throws {
        #expect(try Self.check("/admin;x/y", PathFirewall(allowSemicolon: true)) == nil)
        #expect(try Self.check("/admin%3Bx/y", PathFirewall(allowSemicolon: true)) == nil)
        #expect(try Self.check("/%2561dmin/x", PathFirewall(allowEncodedPercent: true)) == nil)
        #expect(try Self.check("/admin%C0%AF/x", PathFirewall(allowNonASCII: true)) == nil)
        #expect(try Self.check("/admin./x", PathFirewall(allowTrailingDot: true)) == nil)
        // One opt-out leaves the other checks on.
        #expect(try Self.check("/admin;x/y", PathFirewall(allowEncodedPercent: true, allowNonASCII: true, allowTrailingDot: true)) == .semicolon)
        #expect(try Self.check("/a%25/b./", PathFirewall(allowEncodedPercent: true)) == .trailingDot)
        #expect(try Self.check("/a./b;", PathFirewall(allowTrailingDot: true)) == .semicolon)
        let open = PathFirewall(allowSemicolon: true, allowEncodedPercent: true, allowNonASCII: true, allowTrailingDot: true)
        #expect(try Self.check("/x/..;/a%25%C0./;", open) == nil)
    }

    @Test func everyRefusalHasItsOwnReasonCode() {
        let all: [PathFirewall.Violation] = [.semicolon, .encodedPercent, .nonASCII, .trailingDot]
        #expect(all.map(\.reason) == ["path_semicolon", "path_encoded_percent", "path_non_ascii", "path_trailing_dot"])
        #expect(Set(all.map(\.description)).count == all.count)
    }

    // MARK: - Configuration

    @Test func theFirewallIsOnByDefaultAndEachCheckCanBeTurnedOff() throws {
        #expect(try ConfigLoaderTests.load(ConfigLoaderTests.minimal).pathFirewall == PathFirewall())
        let config = try ConfigLoaderTests.load(
            ConfigLoaderTests.minimal + """

                path_firewall:
                  allow_semicolon: true
                  allow_encoded_percent: true
                  allow_non_ascii: true
                  allow_trailing_dot: false
                """
        )
        #expect(config.pathFirewall == PathFirewall(allowSemicolon: true, allowEncodedPercent: true, allowNonASCII: true))
    }

    @Test func aBadFirewallSwitchNamesFileLineAndKey() throws {
        let error = try ConfigLoaderTests.onlyError(
            ConfigLoaderTests.minimal + "\npath_firewall:\n  allow_semicolon: sometimes\n",
            key: "path_firewall.allow_semicolon"
        )
        #expect(error.location?.file == "gateway.yaml")
        #expect(error.location?.line == 6)
        #expect(error.message.contains("true or false"), "\(error)")
        let misspelled = try ConfigLoaderTests.onlyError(ConfigLoaderTests.minimal + "\npath_firewall:\n  allow_semicolons: true\n", key: "path_firewall.allow_semicolons")
        #expect(misspelled.location?.line == 6)
        #expect(misspelled.message.contains("allow_semicolon"), "\(misspelled)")
    }

    @Test func caseInsensitivePathsIsOffByDefaultAndImpliedByTheCIPPProfile() throws {
        let upstream = "listen:\n  - address: \"127.0.0.1:8080\"\nupstream:\n  url: \"http://127.0.0.1:8091\"\n"
        let plain = try ConfigLoaderTests.load(upstream)
        #expect(!plain.upstream.pathsAreCaseInsensitive && !plain.policy.caseInsensitivePaths)
        let set = try ConfigLoaderTests.load(upstream + "  case_insensitive_paths: true\n")
        #expect(set.upstream.pathsAreCaseInsensitive && set.policy.caseInsensitivePaths)
        let cipp = try ConfigLoaderTests.load(upstream + "  profile: cipp\n")
        #expect(cipp.upstream.pathsAreCaseInsensitive && cipp.policy.caseInsensitivePaths)
        let both = try ConfigLoaderTests.load(upstream + "  profile: cipp\n  case_insensitive_paths: true\n")
        #expect(both.policy.caseInsensitivePaths)
    }

    @Test func theCIPPProfileCannotBeMadeCaseSensitive() throws {
        let upstream = "listen:\n  - address: \"127.0.0.1:8080\"\nupstream:\n  url: \"http://127.0.0.1:8091\"\n"
        let error = try ConfigLoaderTests.onlyError(
            upstream + "  case_insensitive_paths: false\n  profile: cipp\n",
            key: "upstream.case_insensitive_paths"
        )
        #expect(error.location?.line == 5)
        #expect(error.message.contains("cipp"), "\(error)")
        let notABool = try ConfigLoaderTests.onlyError(upstream + "  case_insensitive_paths: maybe\n", key: "upstream.case_insensitive_paths")
        #expect(notABool.location?.line == 5)
    }

    @Test func dropHeadersWithUnderscoresIsOffByDefault() throws {
        let upstream = "listen:\n  - address: \"127.0.0.1:8080\"\nupstream:\n  url: \"http://127.0.0.1:8091\"\n"
        #expect(try !ConfigLoaderTests.load(upstream).upstream.dropHeadersWithUnderscores)
        #expect(try ConfigLoaderTests.load(upstream + "  drop_headers_with_underscores: true\n").upstream.dropHeadersWithUnderscores)
        let error = try ConfigLoaderTests.onlyError(upstream + "  drop_headers_with_underscores: 1x\n", key: "upstream.drop_headers_with_underscores")
        #expect(error.location?.line == 5)
    }

    @Test func maxHeaderCountDefaultsToAHundredAndIsAWholeNumber() throws {
        #expect(try ConfigLoaderTests.load(ConfigLoaderTests.minimal).limits.maxHeaderCount == 100)
        #expect(try ConfigLoaderTests.load(ConfigLoaderTests.minimal + "\nlimits:\n  max_header_count: 20\n").limits.maxHeaderCount == 20)
        for bad in ["0", "-1", "many", "10001"] {
            let error = try ConfigLoaderTests.onlyError(ConfigLoaderTests.minimal + "\nlimits:\n  max_header_count: \(bad)\n", key: "limits.max_header_count")
            #expect(error.location?.file == "gateway.yaml")
            #expect(error.location?.line == 6)
            #expect(error.message.contains("1...10000"), "\(error)")
        }
    }
}
