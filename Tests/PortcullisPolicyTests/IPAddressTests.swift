import SharedTestData
import Testing

@testable import PortcullisPolicy

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("0.0.0.0", IPAddress.v4(0)),
        ("1.2.3.4", .v4(0x0102_0304)),
        ("10.0.0.1", .v4(0x0a00_0001)),
        ("192.0.2.255", .v4(0xc000_02ff)),
        ("255.255.255.255", .v4(0xffff_ffff)),
        ("100.64.0.0", .v4(0x6440_0000)),
    ])
    func strictIPv4Parses(text: String, expected: IPAddress) {
        #expect(IPAddress(parsing: text) == expected)
    }

    @Test(arguments: [
        ("::", IPAddress.v6(0, 0)),
        ("::1", .v6(0, 1)),
        ("1::", .v6(0x0001_0000_0000_0000, 0)),
        ("2001:db8::1", .v6(0x2001_0db8_0000_0000, 1)),
        ("2001:DB8::1", .v6(0x2001_0db8_0000_0000, 1)),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", .v6(0x2001_0db8_0000_0000, 1)),
        ("1:2:3:4:5:6:7:8", .v6(0x0001_0002_0003_0004, 0x0005_0006_0007_0008)),
        ("1:2:3:4:5:6:7::", .v6(0x0001_0002_0003_0004, 0x0005_0006_0007_0000)),
        ("::2:3:4:5:6:7:8", .v6(0x0000_0002_0003_0004, 0x0005_0006_0007_0008)),
        ("1:2::7:8", .v6(0x0001_0002_0000_0000, 0x0000_0000_0007_0008)),
        ("fe80::abcd:ef01", .v6(0xfe80_0000_0000_0000, 0x0000_0000_abcd_ef01)),
        ("FFFF:ffff:FfFf:ffff:ffff:ffff:ffff:ffff", .v6(.max, .max)),
        ("::ffff:192.0.2.1", .v6(0, 0x0000_ffff_c000_0201)),
        ("64:ff9b::192.0.2.33", .v6(0x0064_ff9b_0000_0000, 0x0000_0000_c000_0221)),
        ("1:2:3:4:5:6:1.2.3.4", .v6(0x0001_0002_0003_0004, 0x0005_0006_0102_0304)),
        ("::1.2.3.4", .v6(0, 0x0102_0304)),
        ("0:0:0:0:0:ffff:0.0.0.0", .v6(0, 0x0000_ffff_0000_0000)),
    ])
    func strictIPv6Parses(text: String, expected: IPAddress) {
        #expect(IPAddress(parsing: text) == expected)
    }

    @Test(arguments: [
        ("010.1.1.1", IPAddressError.Code.leadingZero),
        ("1.2.3.00", .leadingZero),
        ("1.2.3", .wrongOctetCount),
        ("127.1", .wrongOctetCount),
        ("1", .wrongOctetCount),
        ("1.2.3.4.5", .wrongOctetCount),
        ("1..2.3", .wrongOctetCount),
        ("1.2.3.4.", .wrongOctetCount),
        (".1.2.3.4", .wrongOctetCount),
        ("256.1.1.1", .octetOutOfRange),
        ("1.2.3.1000", .octetOutOfRange),
        ("0x7f.0.0.1", .hexOctet),
        ("1.0X1.0.1", .hexOctet),
        ("1.2.3.a", .invalidCharacter),
        ("-1.2.3.4", .invalidCharacter),
        ("+1.2.3.4", .invalidCharacter),
        (" 1.2.3.4", .whitespace),
        ("1.2.3.4 ", .whitespace),
        ("1.2.3.4\n", .whitespace),
        (":: ", .whitespace),
        ("1.2.3.4:80", .port),
        ("", .empty),
        ("1:2:3:4:5:6:7:8:9", .wrongGroupCount),
        ("1:2:3:4:5:6:7", .wrongGroupCount),
        ("1::2:3:4:5:6:7:8", .wrongGroupCount),
        ("1:2:3:4:5:6:7:8::", .wrongGroupCount),
        ("1:2:3:4:5:6:7:1.2.3.4", .ipv6Syntax),
        ("1:2:3:4:5:1.2.3.4", .wrongGroupCount),
        ("1::2::3", .ipv6Syntax),
        (":::", .ipv6Syntax),
        ("1:::2", .ipv6Syntax),
        (":1::", .ipv6Syntax),
        (":", .ipv6Syntax),
        ("1:", .ipv6Syntax),
        ("1::2:", .ipv6Syntax),
        ("12345::", .groupTooLong),
        ("::01234", .groupTooLong),
        ("fe80::1%eth0", .zoneID),
        ("fe80::1%1", .zoneID),
        ("[::1]", .brackets),
        ("::ffff:010.0.0.1", .leadingZero),
        ("::ffff:1.2.3", .wrongOctetCount),
        ("::ffff:1a.2.3.4", .invalidCharacter),
        ("::g", .invalidCharacter),
        ("::1.2.3.4:1", .port),
        ("::-1", .invalidCharacter),
    ])
    func ambiguousOrMalformedTextIsRejected(text: String, code: IPAddressError.Code) {
        #expect(IPAddress(parsing: text) == nil)
        let result = IPAddress.validate(text)
        guard case .failure(let error) = result else {
            Issue.record("\(text) parsed as \(result)")
            return
        }
        #expect(error.code == code, "\(text): \(error.reason)")
        #expect(!error.reason.isEmpty)
    }

    @Test func octalOctetIsRejectedWithAReasonNamingTheOctet() throws {
        let result = IPAddress.validate("010.1.1.1")
        guard case .failure(let error) = result else { throw ParseUnexpectedlySucceeded() }
        #expect(error.reason == "leading zero in IPv4 octet '010' is ambiguous (octal?)")
    }

    @Test func zoneIDIsRejectedWithAReason() throws {
        guard case .failure(let error) = IPAddress.validate("fe80::1%eth0") else { throw ParseUnexpectedlySucceeded() }
        #expect(error.reason.contains("zone ids are not allowed"))
    }

    @Test func shortFormIsRejectedWithAReasonQuotingIt() throws {
        guard case .failure(let error) = IPAddress.validate("127.1") else { throw ParseUnexpectedlySucceeded() }
        #expect(error.reason.contains("'127.1'"))
        #expect(error.reason.contains("four"))
    }

    @Test func validateAgreesWithParsing() {
        #expect(IPAddress.validate("2001:db8::1") == .success(.v6(0x2001_0db8_0000_0000, 1)))
        #expect(IPAddress.validate("203.0.113.9"[...]) == .success(.v4(0xcb00_7109)))
    }

    @Test(arguments: [
        ("0.0.0.0", "0.0.0.0"),
        ("203.0.113.9", "203.0.113.9"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
        ("0:0:1:0:0:0:0:0", "0:0:1::"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("0:0:0:0:0:FFFF:C000:0201", "::ffff:192.0.2.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("fe80::0abc:0000:0000:0001", "fe80::abc:0:0:1"),
    ])
    func descriptionIsCanonicalRFC5952Text(text: String, canonical: String) throws {
        let address = try #require(IPAddress(parsing: text))
        #expect(address.description == canonical)
        #expect(IPAddress(parsing: canonical) == address)
    }

    @Test func descriptionRoundTripsPseudoRandomIPv6() throws {
        var generator = SplitMix64(seed: 0x5eed)
        for _ in 0..<2_000 {
            var high = generator.next()
            var low = generator.next()
            // Zero some groups so compression paths are exercised.
            high &= generator.next() | generator.next()
            low &= generator.next() | generator.next()
            let address = IPAddress.v6(high, low)
            let text = address.description
            #expect(IPAddress(parsing: text) == address, "\(text)")
            #expect(!text.contains(":::"))
        }
    }

    @Test func ipv4MappedAddressUnmapsToIPv4() throws {
        let mapped = try #require(IPAddress(parsing: "::ffff:192.0.2.1"))
        #expect(mapped.isIPv4Mapped)
        #expect(mapped.unmappedIPv4 == .v4(0xc000_0201))
        let plain = try #require(IPAddress(parsing: "2001:db8::1"))
        #expect(!plain.isIPv4Mapped)
        #expect(plain.unmappedIPv4 == plain)
        #expect(IPAddress.v4(1).unmappedIPv4 == .v4(1))
        #expect(!IPAddress.v4(1).isIPv4Mapped)
        let compatible = try #require(IPAddress(parsing: "::192.0.2.1"))
        #expect(!compatible.isIPv4Mapped)
    }

    @Test func bracketsAreAcceptedOnlyAroundIPv6() {
        #expect(IPAddress(bracketedOrBare: "[::1]") == .v6(0, 1))
        #expect(IPAddress(bracketedOrBare: "::1") == .v6(0, 1))
        #expect(IPAddress(bracketedOrBare: "1.2.3.4") == .v4(0x0102_0304))
        #expect(IPAddress(bracketedOrBare: "[1.2.3.4]") == nil)
        #expect(IPAddress(bracketedOrBare: "[::1") == nil)
        #expect(IPAddress(bracketedOrBare: "[::1]:80") == nil)
        #expect(IPAddress(bracketedOrBare: "[[::1]]") == nil)
        #expect(IPAddress(bracketedOrBare: "[]") == nil)
        #expect(IPAddress(bracketedOrBare: "[fe80::1%eth0]") == nil)
        #expect(IPAddress(parsing: "[::1]") == nil)
    }

    @Test func rawBytesParseLikeText() {
        let header: [UInt8] = Array("203.0.113.7, 10.0.0.1".utf8)
        #expect(IPAddress(utf8: header[0..<11]) == .v4(0xcb00_7107))
        #expect(IPAddress(utf8: header[13...]) == .v4(0x0a00_0001))
        #expect(IPAddress(utf8: header) == nil)
        #expect(IPAddress(utf8: "::1".utf8) == .v6(0, 1))
        #expect(IPAddress(bracketedOrBareUTF8: Array("[2001:db8::1]".utf8)) == .v6(0x2001_0db8_0000_0000, 1))
    }

    @Test func nonContiguousBytesParseThroughTheScratchBuffer() {
        let bytes = "2001:db8::192.0.2.1".utf8.reversed().reversed()
        #expect(IPAddress(utf8: bytes.lazy.map { $0 }) == .v6(0x2001_0db8_0000_0000, 0xc000_0201))
        let overlong = String(repeating: "1", count: 200)
        #expect(IPAddress(utf8: overlong.utf8.lazy.map { $0 }) == nil)
        #expect(IPAddress(utf8: "1.2.3.4".utf8.lazy.filter { _ in true }) == .v4(0x0102_0304))
    }

    @Test func substringsParse() {
        let line = "for=198.51.100.7;proto=https"
        let start = line.index(line.startIndex, offsetBy: 4)
        let end = line.firstIndex(of: ";")!
        #expect(IPAddress(parsing: line[start..<end]) == .v4(0xc633_6407))
    }
}

struct ParseUnexpectedlySucceeded: Error {}
