import PortcullisAuth
import Testing

@Suite struct BearerTokenTests {
    @Test(arguments: [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER a-b_c~d+e/f==", "a-b_c~d+e/f=="),
        ("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
    ])
    func wellFormedCredentialYieldsItsToken(header: String, token: String) {
        #expect(BearerToken.extract(from: header) == Substring(token))
    }

    /// RFC 6750 2.1: `"Bearer" 1*SP b64token`.
    @Test(arguments: [
        ("Bearer  abc", "abc"),
        ("bearer   abc.def.ghi", "abc.def.ghi"),
        ("Bearer      a-b_c~d+e/f==", "a-b_c~d+e/f=="),
    ])
    func oneOrMoreSpacesMaySeparateTheSchemeFromTheToken(header: String, token: String) {
        #expect(BearerToken.extract(from: header) == Substring(token))
        #expect(BearerToken.candidate(from: header) == Substring(token))
    }

    @Test(arguments: [
        "", "Bearer", "Bearer ", "Bearer   ", "Bearer \tabc", "Bearer  \tabc", " Bearer abc", "Bearer abc ", "Bearer\tabc",
        "Basic dXNlcjpwYXNz", "Bearerabc", "Bearer a=b", "Bearer =abc", "Bearer a,b", "Bearer a b",
        "Bearer a\"b", "Bearer a%2Eb", "Token abc", "Bearer abc\r\n",
    ])
    func anythingElseIsNoToken(header: String) {
        #expect(BearerToken.extract(from: header) == nil)
    }

    /// The candidate a cache is searched with: the scheme in any case and its spaces, nothing
    /// more checked.
    @Test func theCandidateIsWhatFollowsTheSchemeAndItsSpaces() {
        #expect(BearerToken.candidate(from: "bEaReR x") == "x")
        #expect(BearerToken.candidate(from: "Bearer a,b c") == "a,b c")
        for header in ["", "Bearer", "Bearer ", "Bearer   ", "Bearerabc", "Bearer\tabc", "Basic dXNlcjpwYXNz", "Token abc", "B\u{E9}arer abc", " Bearer abc"] {
            #expect(BearerToken.candidate(from: header) == nil, "\(header.debugDescription)")
        }
    }
}
