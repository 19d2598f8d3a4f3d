import Testing

@testable import PortcullisProxy

@Suite struct HeaderNameTests {
    @Test(arguments: [
        ("Authorization", true),
        ("AUTHORIZATION", true),
        ("authorization", true),
        ("authorizatioN", true),
        ("authorisation", false),
        ("authorization ", false),
        ("authorizatio", false),
    ])
    func equalsIgnoresASCIICaseOnly(name: String, expected: Bool) {
        #expect(HeaderName.equals(name, "authorization") == expected)
    }

    @Test func caseFoldingAppliesToLettersOnly() {
        // '-' (0x2D) and '\r' (0x0D) differ by 0x20, as do '@' and '`': not letters, not equal.
        #expect(!HeaderName.equals("x\rhost", "x-host"))
        #expect(!HeaderName.equals("`a", "@a"))
        #expect(!HeaderName.equals("x_request_id", "x-request-id"))
    }

    @Test(arguments: [
        ("X-Portcullis-Client-Id", true),
        ("x-portcullis-", true),
        ("X-PORTCULLIS-ANYTHING", true),
        ("X-Portcullis", false),
        ("X-Portcullis_Client", false),
        ("Y-Portcullis-Client", false),
    ])
    func hasPrefixIgnoresASCIICase(name: String, expected: Bool) {
        #expect(HeaderName.hasPrefix(name, "x-portcullis-") == expected)
    }

    @Test func nonASCIINamesNeverMatch() {
        #expect(!HeaderName.equals("hóst", "host"))
        #expect(!HeaderName.hasPrefix("x-pörtcullis-id", "x-portcullis-"))
    }
}
