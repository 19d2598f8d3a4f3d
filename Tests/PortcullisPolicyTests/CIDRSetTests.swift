import SharedTestData
import Testing

@testable import PortcullisPolicy

@Suite struct CIDRSetTests {
    @Test(arguments: [
        ("203.0.113.0/24", IPAddress.v4(0xcb00_7100), 24),
        ("198.51.100.7", .v4(0xc633_6407), 32),
        ("198.51.100.7/32", .v4(0xc633_6407), 32),
        ("0.0.0.0/0", .v4(0), 0),
        ("10.0.0.0/8", .v4(0x0a00_0000), 8),
        ("2001:db8::/48", .v6(0x2001_0db8_0000_0000, 0), 48),
        ("2001:db8::/32", .v6(0x2001_0db8_0000_0000, 0), 32),
        ("2001:db8::1", .v6(0x2001_0db8_0000_0000, 1), 128),
        ("::/0", .v6(0, 0), 0),
        ("::1/128", .v6(0, 1), 128),
        ("2001:db8:0:0:8000::/65", .v6(0x2001_0db8_0000_0000, 0x8000_0000_0000_0000), 65),
        ("::ffff:0:0/96", .v4(0), 0),
        ("::ffff:10.0.0.0/104", .v4(0x0a00_0000), 8),
        ("::ffff:192.0.2.1", .v4(0xc000_0201), 32),
        ("::FFFF:192.0.2.0/120", .v4(0xc000_0200), 24),
    ])
    func strictPrefixParses(text: String, address: IPAddress, length: Int) throws {
        let prefix = try #require(CIDRPrefix(parsing: text))
        #expect(prefix.address == address)
        #expect(prefix.length == length)
    }

    @Test(arguments: [
        ("1.2.3.4/24", CIDRError.Code.hostBitsSet),
        ("10.0.0.1/0", .hostBitsSet),
        ("2001:db8::1/48", .hostBitsSet),
        ("::ffff:1.2.3.4/120", .hostBitsSet),
        ("1.2.3.0/33", .lengthOutOfRange),
        ("::/129", .lengthOutOfRange),
        ("1.2.3.0/999", .lengthOutOfRange),
        ("1.2.3.0/024", .invalidLength),
        ("1.2.3.0/00", .invalidLength),
        ("1.2.3.0/+24", .invalidLength),
        ("1.2.3.0/-1", .invalidLength),
        ("1.2.3.0/", .invalidLength),
        ("1.2.3.0/ 24", .invalidLength),
        ("1.2.3.0/24 ", .invalidLength),
        ("1.2.3.0/24/1", .invalidLength),
        ("1.2.3.0/2a", .invalidLength),
        ("1.2.3.0/1000", .invalidLength),
        ("/24", .invalidAddress),
        ("", .invalidAddress),
        ("010.0.0.0/8", .invalidAddress),
        ("127.1/32", .invalidAddress),
        ("10/8", .invalidAddress),
        (" 1.2.3.0/24", .invalidAddress),
        ("fe80::%eth0/64", .invalidAddress),
        ("[::1]/128", .invalidAddress),
    ])
    func ambiguousOrMalformedPrefixIsRejected(text: String, code: CIDRError.Code) {
        #expect(CIDRPrefix(parsing: text) == nil)
        guard case .failure(let error) = CIDRPrefix.validate(text) else {
            Issue.record("\(text) parsed")
            return
        }
        #expect(error.code == code, "\(text): \(error.reason)")
        #expect(!error.reason.isEmpty)
    }

    @Test func hostBitsErrorSuggestsTheNetwork() throws {
        guard case .failure(let error) = CIDRPrefix.validate("1.2.3.4/24") else { throw ParseUnexpectedlySucceeded() }
        #expect(error.reason == "1.2.3.4/24 has host bits set; did you mean 1.2.3.0/24?")
        guard case .failure(let v6) = CIDRPrefix.validate("2001:db8::1/48") else { throw ParseUnexpectedlySucceeded() }
        #expect(v6.reason == "2001:db8::1/48 has host bits set; did you mean 2001:db8::/48?")
    }

    @Test func invalidAddressErrorCarriesTheAddressReason() throws {
        guard case .failure(let error) = CIDRPrefix.validate("010.0.0.0/8") else { throw ParseUnexpectedlySucceeded() }
        #expect(error.addressError?.code == .leadingZero)
        #expect(error.reason.contains("'010'"))
    }

    @Test func prefixFromAddressRejectsHostBitsAndNormalisesMappedIPv4() {
        #expect(CIDRPrefix(address: .v4(0x0102_0304), length: 24) == nil)
        #expect(CIDRPrefix(address: .v4(0x0102_0300), length: 33) == nil)
        #expect(CIDRPrefix(address: .v4(0x0102_0300), length: -1) == nil)
        #expect(CIDRPrefix(address: .v6(0, 0x0000_ffff_0a00_0000), length: 104) == CIDRPrefix(parsing: "10.0.0.0/8"))
        #expect(CIDRPrefix(host: .v6(0, 0x0000_ffff_0a00_0001)) == CIDRPrefix(parsing: "10.0.0.1"))
        #expect(CIDRPrefix(address: .v6(0, 0x0000_ffff_0000_0000), length: 95) == nil)
    }

    @Test func prefixDescriptionPrintsCanonicalText() throws {
        #expect(try #require(CIDRPrefix(parsing: "2001:DB8:0::/48")).description == "2001:db8::/48")
        #expect(try #require(CIDRPrefix(parsing: "::ffff:10.0.0.0/104")).description == "10.0.0.0/8")
        #expect(try #require(CIDRPrefix(parsing: "198.51.100.7")).description == "198.51.100.7/32")
    }

    @Test func prefixContainsItsAddresses() throws {
        let v4 = try #require(CIDRPrefix(parsing: "203.0.113.0/24"))
        #expect(v4.contains(.v4(0xcb00_7100)))
        #expect(v4.contains(.v4(0xcb00_71ff)))
        #expect(!v4.contains(.v4(0xcb00_7200)))
        #expect(v4.contains(try #require(IPAddress(parsing: "::ffff:203.0.113.9"))))
        #expect(!v4.contains(.v6(0, 0)))
        let v6 = try #require(CIDRPrefix(parsing: "2001:db8::/48"))
        #expect(v6.contains(try #require(IPAddress(parsing: "2001:db8:0:ffff::1"))))
        #expect(!v6.contains(try #require(IPAddress(parsing: "2001:db8:1::1"))))
        #expect(!v6.contains(.v4(0)))
    }

    private func set(_ texts: [String]) throws -> CIDRSet {
        CIDRSet(try texts.map { try #require(CIDRPrefix(parsing: $0)) })
    }

    private func address(_ text: String) throws -> IPAddress {
        try #require(IPAddress(parsing: text))
    }

    @Test func setMatchesDesignExample() throws {
        let allowed = try self.set(["203.0.113.0/24", "2001:db8::/48", "198.51.100.7"])
        #expect(allowed.count == 3)
        #expect(allowed.contains(try self.address("203.0.113.200")))
        #expect(allowed.contains(try self.address("198.51.100.7")))
        #expect(!allowed.contains(try self.address("198.51.100.8")))
        #expect(allowed.contains(try self.address("2001:db8:0:1::5")))
        #expect(!allowed.contains(try self.address("2001:db8:1::5")))
        #expect(!allowed.contains(try self.address("203.0.114.1")))
    }

    @Test func mappedIPv4PeerMatchesIPv4Prefix() throws {
        let allowed = try self.set(["192.0.2.0/24"])
        #expect(allowed.contains(try self.address("::ffff:192.0.2.9")))
        #expect(!allowed.contains(try self.address("::ffff:192.0.3.9")))
        #expect(!allowed.contains(try self.address("::192.0.2.9")))
    }

    @Test func mappedIPv6PrefixMatchesIPv4Peer() throws {
        let allowed = try self.set(["::ffff:192.0.2.0/120"])
        #expect(allowed.contains(try self.address("192.0.2.9")))
        #expect(allowed.contains(try self.address("::ffff:192.0.2.9")))
        #expect(!allowed.contains(try self.address("192.0.3.9")))
    }

    @Test func zeroLengthPrefixMatchesItsWholeFamily() throws {
        let allV4 = try self.set(["0.0.0.0/0"])
        #expect(allV4.contains(.v4(0)))
        #expect(allV4.contains(.v4(.max)))
        #expect(allV4.contains(try self.address("::ffff:8.8.8.8")))
        #expect(!allV4.contains(try self.address("2001:db8::1")))
        let allV6 = try self.set(["::/0"])
        #expect(allV6.contains(try self.address("2001:db8::1")))
        #expect(allV6.contains(.v6(.max, .max)))
        #expect(!allV6.contains(.v4(0x0808_0808)))
        // Mapped peers count as IPv4, so "::/0" alone does not admit them.
        #expect(!allV6.contains(try self.address("::ffff:8.8.8.8")))
    }

    @Test func emptySetMatchesNothing() throws {
        #expect(CIDRSet.empty.isEmpty)
        #expect(CIDRSet.empty.count == 0)
        #expect(!CIDRSet.empty.contains(.v4(0)))
        #expect(!CIDRSet.empty.contains(.v6(0, 0)))
        #expect(!CIDRSet.empty.contains(try self.address("::ffff:1.2.3.4")))
        #expect(CIDRSet([]) == .empty)
    }

    @Test func duplicatesAndCoveredPrefixesStillMatch() throws {
        let allowed = try self.set([
            "10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/8", "10.1.2.3", "2001:db8::/32", "2001:db8:1::/48",
        ])
        #expect(allowed.count == 5)
        #expect(allowed.prefixes.map(\.description) == [
            "10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "2001:db8::/32", "2001:db8:1::/48",
        ])
        #expect(allowed.contains(try self.address("10.1.2.3")))
        #expect(allowed.contains(try self.address("10.200.0.1")))
        #expect(allowed.contains(try self.address("2001:db8:1::1")))
        #expect(allowed.contains(try self.address("2001:db8:ffff::1")))
        #expect(!allowed.contains(try self.address("11.0.0.1")))
    }

    @Test func setEqualityIgnoresOrder() throws {
        #expect(try self.set(["10.0.0.0/8", "::1"]) == self.set(["::1", "10.0.0.0/8"]))
        #expect(try self.set(["10.0.0.0/8"]) != self.set(["10.0.0.0/9"]))
    }

    @Test func largeSetAgreesWithLinearScan() {
        var generator = SplitMix64(seed: 20_240_611)
        var prefixes: [CIDRPrefix] = []
        while prefixes.count < 1_000 {
            let prefix: CIDRPrefix?
            switch generator.next() % 3 {
            case 0:
                let length = 8 + Int(generator.next() % 25)
                let mask = CIDRPrefix.mask4(length)
                prefix = CIDRPrefix(address: .v4(UInt32(truncatingIfNeeded: generator.next()) & mask), length: length)
            case 1:
                // Mapped IPv6 prefixes, normalised to IPv4 on the way in.
                let length = 104 + Int(generator.next() % 25)
                let mask = CIDRPrefix.mask6(length)
                let low = (0x0000_ffff_0000_0000 | generator.next() & 0xffff_ffff) & mask.low
                prefix = CIDRPrefix(address: .v6(0, low), length: length)
            default:
                let length = 24 + Int(generator.next() % 105)
                let mask = CIDRPrefix.mask6(length)
                // A narrow high word makes overlapping prefixes and hits likely.
                let high = (0x2001_0db8_0000_0000 | generator.next() & 0xffff) & mask.high
                prefix = CIDRPrefix(address: .v6(high, generator.next() & mask.low), length: length)
            }
            if let prefix { prefixes.append(prefix) }
        }
        let allowed = CIDRSet(prefixes)

        var hits = 0
        for round in 0..<10_000 {
            let candidate: IPAddress
            let base = prefixes[Int(generator.next() % UInt64(prefixes.count))]
            switch (round % 4, base.address) {
            case (0, .v4(let network)):
                candidate = .v4(network | UInt32(truncatingIfNeeded: generator.next()) & ~CIDRPrefix.mask4(base.length))
            case (1, .v4(let network)):
                let host = UInt32(truncatingIfNeeded: generator.next()) & ~CIDRPrefix.mask4(base.length)
                candidate = .v6(0, 0x0000_ffff_0000_0000 | UInt64(network | host))
            case (0, .v6(let high, let low)), (1, .v6(let high, let low)):
                let mask = CIDRPrefix.mask6(base.length)
                candidate = .v6(high | generator.next() & ~mask.high, low | generator.next() & ~mask.low)
            case (2, _):
                candidate = .v4(UInt32(truncatingIfNeeded: generator.next()))
            default:
                candidate = .v6(0x2001_0db8_0000_0000 | generator.next() & 0xffff_ffff, generator.next())
            }
            let expected = prefixes.contains { $0.contains(candidate) }
            #expect(allowed.contains(candidate) == expected, "\(candidate)")
            if expected { hits += 1 }
        }
        #expect(hits > 2_000)
        #expect(hits < 10_000)
    }
}
