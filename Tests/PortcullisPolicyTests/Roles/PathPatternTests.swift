import Testing

@testable import PortcullisPolicy

@Suite struct PathPatternTests {
    @Test func segmentsAreParsedIntoTheirKinds() throws {
        let pattern = try #require(PathPattern("/api/List*/*/**/x"))
        #expect(pattern.segments == [.literal(Array("api".utf8)), .glob(Array("List*".utf8)), .star, .doubleStar, .literal([UInt8(ascii: "x")])])
        #expect(pattern.text == "/api/List*/*/**/x")
        #expect(try #require(PathPattern("/")).segments.isEmpty)
    }

    @Test func escapesAreWrittenAsTheCanonicalPathHasThem() throws {
        // Unreserved characters decoded, other escapes upper-cased, non-ASCII encoded.
        #expect(try #require(PathPattern("/%7euser/%41")).segments == [.literal(Array("~user".utf8)), .literal(Array("A".utf8))])
        #expect(try #require(PathPattern("/a%3ab")).segments == [.literal(Array("a%3Ab".utf8))])
        #expect(try #require(PathPattern("/é")).segments == [.literal(Array("%C3%A9".utf8))])
        // Sub-delimiters, ':' and '@' are path characters.
        #expect(PathPattern("/a:b@c!$&'(),;=+") != nil)
    }

    @Test func repeatedDoubleStarsCollapse() throws {
        let collapsed = try #require(PathPattern("/a/**/**/b"))
        #expect(try collapsed.segments == #require(PathPattern("/a/**/b")).segments)
    }

    @Test func openAPITemplatesBecomeStars() throws {
        let pattern = try PathPattern.fromOpenAPIPath("/api/users/{id}/files/{name}.{ext}").get()
        #expect(pattern.text == "/api/users/{id}/files/{name}.{ext}")
        #expect(pattern.segments == [.literal(Array("api".utf8)), .literal(Array("users".utf8)), .star, .literal(Array("files".utf8)), .glob(Array("*.*".utf8))])
        // Two templates side by side are one `*`, never `**`.
        #expect(try PathPattern.fromOpenAPIPath("/x/{a}{b}").get().segments.last == .star)
        for bad in ["/x/{a", "/x/a}", "/x/{{a}}", "x/{a}", "/x/*"] {
            #expect((try? PathPattern.fromOpenAPIPath(bad).get()) == nil, "\(bad)")
        }
    }

    @Test(arguments: [
        ("", PathPatternError.Code.notAbsolute), ("x", .notAbsolute), ("//", .emptySegment), ("/a/", .emptySegment),
        ("/a//b", .emptySegment), ("/a/../b", .dotSegment), ("/.", .dotSegment), ("/a**", .doubleStarInSegment),
        ("/**b", .doubleStarInSegment), ("/a%2f", .neverMatches), ("/a%0A", .neverMatches), ("/a%g1", .invalidEscape),
        ("/a?b", .invalidCharacter), ("/{a}", .invalidCharacter), ("/a b", .invalidCharacter), ("/a\u{7f}", .invalidCharacter),
        ("/" + String(repeating: "a", count: 4096), .tooLong),
    ])
    func invalidPatternsAreRefused(text: String, code: PathPatternError.Code) {
        #expect(PathPattern(text) == nil)
        guard case .failure(let error) = PathPattern.validate(text) else {
            Issue.record("\(text) was accepted")
            return
        }
        #expect(error.code == code, "\(text): \(error)")
        #expect(!error.description.isEmpty)
    }

    @Test func permissionGlobsMatchAcrossDots() {
        #expect(PermissionSelection.glob("*.Read", matches: "Identity.User.Read"))
        #expect(!PermissionSelection.glob("*.Read", matches: "Identity.User.ReadWrite"))
        #expect(PermissionSelection.glob("CIPP.*", matches: "CIPP.SuperAdmin.ReadWrite"))
        #expect(PermissionSelection.glob("*", matches: "A"))
        #expect(PermissionSelection.glob("Exact.Name", matches: "Exact.Name"))
        #expect(PermissionSelection.glob("exact.name", matches: "Exact.Name"), "any letter case, as CIPP's -like")
        #expect(!PermissionSelection.glob("exact.name", matches: "Exact.Names"))
        let selection = PermissionSelection(include: ["*.Read", "Tenant.*"], exclude: ["Tenant.Administration.*"])
        #expect(selection.selects("Identity.User.Read"))
        #expect(selection.selects("Tenant.Directory.ReadWrite"))
        #expect(!selection.selects("Tenant.Administration.Read"))
        #expect(!selection.selects("Identity.User.ReadWrite"))
    }
}
