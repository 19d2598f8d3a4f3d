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

    @Test(arguments: [
        ("X-Request-Id", true),
        ("x_request_id", true),
        ("X_REQUEST-ID", true),
        ("x-request_id", true),
        ("x\rrequest-id", false),
        ("x-request_i", false),
        ("x-request-i_", false),
        ("x.request.id", false),
    ])
    func underscoreReadsAsDashWhenAsked(name: String, expected: Bool) {
        let bytes = Array(name.utf8)
        bytes.withUnsafeBytes { raw in
            #expect(HeaderName.equalsReadingUnderscoreAsDash(raw, "x-request-id") == expected)
            #expect(HeaderName.equalsReadingUnderscoreAsDash(raw, lowercased: Array("x-request-id".utf8)) == expected)
            #expect(HeaderName.hasPrefixReadingUnderscoreAsDash(raw, "x-request-") == (expected || name.hasPrefix("x-request")))
        }
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
