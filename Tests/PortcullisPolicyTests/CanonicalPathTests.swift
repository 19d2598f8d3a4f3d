import SharedTestData
import Testing

@testable import PortcullisPolicy

@Suite struct CanonicalPathTests {
    @Test(arguments: [
        "/",
        "/api/ListUsers",
        "/api/",
        "/api/List.Users",
        "/a-b_c~d/e:f@g!$&'()*+,;=",
        "/.well-known/jwks.json",
        "/api/x.",
        "/a..b/c",
    ])
    func canonicalPathIsReturnedUnchanged(target: String) throws {
        let canonical = try CanonicalPath.canonicalize(target).get()
        #expect(canonical.path == target)
        #expect(canonical.query == nil)
        #expect(canonical.uri == target)
        #expect(!canonical.isRewritten)
    }

    @Test(arguments: [
        ("/a/%2e%2E/b", "/b"),
        ("/a/%2E/b", "/a/b"),
        ("/%41pi/List%55sers", "/Api/ListUsers"),
        ("/%7e", "/~"),
        ("/%7E%2d%2E%5f%30%7a", "/~-._0z"),
        ("/%e2%82%ac", "/%E2%82%AC"),
        ("/a%20b", "/a%20b"),
        ("/a%3fb", "/a%3Fb"),
        ("/a%25b", "/a%25b"),
        ("/a%252e", "/a%252e"),
        ("/a%2a%c3%a9", "/a%2A%C3%A9"),
        ("/a//b///c", "/a/b/c"),
        ("//a", "/a"),
        ("///", "/"),
        ("/a/./b/.", "/a/b/"),
        ("/api/.", "/api/"),
        ("/api/", "/api/"),
        ("/api//", "/api/"),
        ("/a/b/..", "/a/"),
        ("/a/..", "/"),
        ("/a/b/../c", "/a/c"),
        ("/a/b/../../c/", "/c/"),
        ("/./a", "/a"),
        ("/.", "/"),
        ("/a/.b/..c/...", "/a/.b/..c/..."),
        ("/a//../b", "/b"),
        ("/a b", "/a%20b"),
        ("/caf\u{e9}", "/caf%C3%A9"),
        ("/a\"{}|^`<>", "/a%22%7B%7D%7C%5E%60%3C%3E"),
    ])
    func pathIsCanonicalised(target: String, expected: String) {
        let result = CanonicalPath.canonicalize(target)
        guard case .success(let canonical) = result else {
            Issue.record("\(target) refused: \(result)")
            return
        }
        #expect(canonical.path == expected)
        #expect(canonical.uri == expected)
        #expect(canonical.query == nil)
        #expect(canonical.isRewritten == (expected != target))
    }

    @Test(arguments: [
        ("/..", PathError.climbsAboveRoot),
        ("/../a", .climbsAboveRoot),
        ("/a/../../b", .climbsAboveRoot),
        ("/a/../..", .climbsAboveRoot),
        ("/%2e%2e", .climbsAboveRoot),
        ("/a/.%2e/.%2E/b", .climbsAboveRoot),
        ("/a/%2e%2e%2f", .encodedSlash),
        ("/a%2fb", .encodedSlash),
        ("/a%2Fb", .encodedSlash),
        ("/a%5cb", .encodedSlash),
        ("/a%5Cb", .encodedSlash),
        ("/a\\b", .backslash),
        ("/a%00b", .controlCharacter),
        ("/a%0a", .controlCharacter),
        ("/a%1F", .controlCharacter),
        ("/a%7f", .controlCharacter),
        ("/a\u{0}b", .controlCharacter),
        ("/a\tb", .controlCharacter),
        ("/a\u{7f}", .controlCharacter),
        ("/a%", .invalidPercentEncoding),
        ("/a%4", .invalidPercentEncoding),
        ("/a%4?x=1", .invalidPercentEncoding),
        ("/a%zz", .invalidPercentEncoding),
        ("/a%g0", .invalidPercentEncoding),
        ("/a#frag", .fragment),
        ("/a?x=1#frag", .fragment),
        ("/#", .fragment),
        ("", .notOriginForm),
        ("*", .notOriginForm),
        ("http://example.com/a", .notOriginForm),
        ("example.com:443", .notOriginForm),
        ("a/b", .notOriginForm),
        ("?x=1", .notOriginForm),
    ])
    func unsafeTargetIsRefused(target: String, error: PathError) {
        #expect(CanonicalPath.canonicalize(target) == .failure(error))
    }

    @Test func queryIsKeptExactlyAsSent() throws {
        let canonical = try CanonicalPath.canonicalize("/a?x=%2F&y=../..").get()
        #expect(canonical.path == "/a")
        #expect(canonical.query == "x=%2F&y=../..")
        #expect(canonical.uri == "/a?x=%2F&y=../..")
        #expect(!canonical.isRewritten)
    }

    @Test func queryIsKeptWhenThePathIsRewritten() throws {
        let canonical = try CanonicalPath.canonicalize("/api//%4cist?tenantFilter=a%2eb&x=%zz\\").get()
        #expect(canonical.path == "/api/List")
        // Escapes in the query are left alone; bytes not allowed there raw are encoded.
        #expect(canonical.query == "tenantFilter=a%2eb&x=%zz%5C")
        #expect(canonical.uri == "/api/List?tenantFilter=a%2eb&x=%zz%5C")
        #expect(canonical.isRewritten)
    }

    @Test func queryBytesTheUpstreamClientRefusesAreEncoded() throws {
        let canonical = try CanonicalPath.canonicalize("/api/List?filter={\"a\"|b}^`").get()
        #expect(canonical.path == "/api/List")
        #expect(canonical.uri == "/api/List?filter=%7B%22a%22%7Cb%7D%5E%60")
        #expect(CanonicalPath.canonicalize("/api/List?a=\u{7F}") == .failure(.controlCharacter))
    }

    @Test func emptyQueryKeepsItsQuestionMark() throws {
        let canonical = try CanonicalPath.canonicalize("/a?").get()
        #expect(canonical.path == "/a")
        #expect(canonical.query == "")
        #expect(canonical.uri == "/a?")
        let rewritten = try CanonicalPath.canonicalize("/a/./?").get()
        #expect(rewritten.uri == "/a/?")
    }

    @Test func slowPathThatChangesNothingReusesTheTarget() throws {
        let canonical = try CanonicalPath.canonicalize("/.well-known/x?y").get()
        #expect(canonical.path == "/.well-known/x")
        #expect(!canonical.isRewritten)
        #expect(canonical.uri == "/.well-known/x?y")
    }

    @Test func canonicalisationIsIdempotent() throws {
        for target in ["/a/%2e%2E/b/", "/%e2%82%ac//x/./y", "/caf\u{e9}/a b", "/a%7e%41"] {
            let once = try CanonicalPath.canonicalize(target).get()
            let twice = try CanonicalPath.canonicalize(once.uri).get()
            #expect(twice.uri == once.uri)
            #expect(!twice.isRewritten)
        }
    }

    @Test func errorsHaveShortDescriptions() {
        let errors: [PathError] = [
            .notOriginForm, .invalidPercentEncoding, .encodedSlash, .backslash, .controlCharacter,
            .climbsAboveRoot, .fragment,
        ]
        #expect(Set(errors.map(\.description)).count == errors.count)
        for error in errors {
            #expect(!error.description.isEmpty && error.description.count < 80)
        }
    }

    @Test func byteClassesMatchRFC3986() {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
        let pathBytes = unreserved.union("!$&'()*+,;=:@/".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(CanonicalPath.isUnreserved(byte) == unreserved.contains(byte), "\(byte)")
            #expect(CanonicalPath.isPathByte(byte) == pathBytes.contains(byte), "\(byte)")
        }
    }

    @Test func randomPathsNeverEscapeTheRootOrKeepDotSegments() {
        var generator = SplitMix64(seed: 77)
        let pieces = ["a", "b", ".", "..", "", "%2e", "%2E%2e", ".%2e", "%41", "x.y", "..."]
        for _ in 0..<5_000 {
            let count = Int(generator.next() % 7)
            var target = ""
            for _ in 0...count {
                target += "/" + pieces[Int(generator.next() % UInt64(pieces.count))]
            }
            switch CanonicalPath.canonicalize(target) {
            case .success(let canonical):
                let segments = canonical.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
                #expect(canonical.path.hasPrefix("/"))
                #expect(!segments.contains(".") && !segments.contains(".."), "\(target) -> \(canonical.path)")
                #expect(!canonical.path.contains("//"), "\(target) -> \(canonical.path)")
                #expect(!canonical.path.contains("%2"), "\(target) -> \(canonical.path)")
            case .failure(let error):
                #expect(error == .climbsAboveRoot, "\(target)")
            }
        }
    }
}
