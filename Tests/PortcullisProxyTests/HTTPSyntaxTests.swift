import Testing

@testable import PortcullisProxy

@Suite struct HTTPSyntaxTests {
    /// The word and byte passes of `allFieldBytes` agree with `isFieldByte`: every byte
    /// value at every place of values long enough for both (and at their edges).
    @Test func allFieldBytesAgreesWithIsFieldByteAtEveryPlace() {
        for length in [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 63, 64, 65, 71] {
            for place in 0..<length {
                for value in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length + 6)
                    bytes[3 + place] = UInt8(value)
                    let verdict = bytes.withUnsafeBytes { HTTPSyntax.allFieldBytes($0, from: 3, to: 3 + length) }
                    guard verdict == HTTPSyntax.isFieldByte(UInt8(value)) else {
                        Issue.record("byte \(value) at \(place) of \(length): \(verdict)")
                        return
                    }
                }
            }
        }
        // Bytes outside the range are not read: a control byte just before or after it.
        for length in [5, 8, 34, 64] {
            var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length + 6)
            bytes[2] = 0x00
            bytes[3 + length] = 0x7F
            #expect(bytes.withUnsafeBytes { HTTPSyntax.allFieldBytes($0, from: 3, to: 3 + length) })
            #expect(!bytes.withUnsafeBytes { HTTPSyntax.allFieldBytes($0, from: 3, to: 4 + length) })
            #expect(!bytes.withUnsafeBytes { HTTPSyntax.allFieldBytes($0, from: 2, to: 3 + length) })
        }
        // Two bytes at once, one allowed (HTAB) and one not, anywhere in a long value.
        var tabbed = [UInt8](repeating: UInt8(ascii: "a"), count: 70)
        tabbed[10] = 0x09
        #expect(tabbed.withUnsafeBytes { HTTPSyntax.allFieldBytes($0, from: 0, to: 70) })
        tabbed[50] = 0x0A
        #expect(!tabbed.withUnsafeBytes { HTTPSyntax.allFieldBytes($0, from: 0, to: 70) })
    }
}
