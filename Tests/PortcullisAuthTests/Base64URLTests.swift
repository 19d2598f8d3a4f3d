import Testing

@testable import PortcullisAuth

@Suite struct Base64URLTests {
    @Test(arguments: [
        ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ])
    func rfc4648VectorsRoundTripWithoutPadding(plain: String, encoded: String) {
        #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
        #expect(Base64URL.decode(Array(encoded.utf8)) == Array(plain.utf8))
    }

    @Test func urlAlphabetIsUsedBothWays() {
        let bytes: [UInt8] = [0xFB, 0xFF, 0xBF]
        #expect(Base64URL.encode(bytes) == "-_-_")
        #expect(Base64URL.decode(Array("-_-_".utf8)) == bytes)
    }

    @Test func everyLengthAndByteValueRoundTrips() {
        for length in 0..<70 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ length &* 11) }
            let encoded = Base64URL.encodedBytes(bytes)
            #expect(encoded.count == (length * 4 + 2) / 3)
            #expect(Base64URL.decode(encoded) == bytes)
        }
        let all = (0...255).map { UInt8($0) }
        #expect(Base64URL.decode(Base64URL.encodedBytes(all)) == all)
    }

    @Test(arguments: [
        "Zg==", "Zm8=", "Zg=", "Zm9v=", "=Zm9v",  // padding in any place
        "Zm9v+g", "Zm9v/g", "Zm+v",  // the standard alphabet
        " Zm9v", "Zm9v ", "Zm 9v", "Zm9v\n", "Zm9v\r\n", "Zm\t9v",  // whitespace
        "Zm9v?", "Zm9.v", "Zm9v#", "Zm9\u{e9}",  // other characters
        "Z", "Zm9vY",  // length 4n + 1
    ])
    func looseSpellingsAreRefused(text: String) {
        #expect(Base64URL.decode(Array(text.utf8)) == nil)
    }

    @Test(arguments: [
        ("Zh", "Zg"), ("Zv", "Zg"), ("Zm9", "Zm8"), ("Zm-", "Zm8"), ("AB", "AA"), ("AAB", "AAA"),
    ])
    func unusedTrailingBitsMustBeZero(nonCanonical: String, canonical: String) {
        #expect(Base64URL.decode(Array(nonCanonical.utf8)) == nil)
        #expect(Base64URL.decode(Array(canonical.utf8)) != nil)
    }

    @Test func rawBufferAndNonContiguousInputsDecodeAlike() {
        let text = "SGVsbG8sIHdvcmxkIQ"
        let expected = Array("Hello, world!".utf8)
        let fromBuffer = Array(text.utf8).withUnsafeBytes { Base64URL.decode($0) }
        #expect(fromBuffer == expected)
        #expect(Base64URL.decode(text.utf8) == expected)
        #expect(Base64URL.decode(text.utf8.lazy.map { $0 }) == expected)
        #expect(Base64URL.decode(Substring(text).utf8) == expected)
    }
}
