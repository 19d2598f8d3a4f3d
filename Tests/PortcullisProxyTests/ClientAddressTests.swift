import NIOHTTP1
import PortcullisPolicy
import Testing

@testable import PortcullisProxy

@Suite struct ClientAddressTests {
    static let trusted = CIDRSet([
        CIDRPrefix(parsing: "10.0.0.0/8")!,
        CIDRPrefix(parsing: "2001:db8:ffff::/48")!,
    ])

    static func ip(_ text: String) -> IPAddress { IPAddress(parsing: text)! }

    static func resolve(
        peer: String,
        xff: [String],
        trusted: CIDRSet = Self.trusted
    ) -> ClientAddress {
        let peerAddress = Self.ip(peer)
        let fields = RequestFields([("Host", "api.example.com")] + xff.map { ("X-Forwarded-For", $0) })
        return ClientAddress.resolve(peer: peerAddress, peerText: peerAddress.description, fields: fields, trusted: trusted)
    }

    // MARK: - Untrusted peers

    @Test func untrustedPeerIsTheClientAndItsForwardedForIsIgnored() {
        let resolved = Self.resolve(peer: "203.0.113.5", xff: ["1.1.1.1, 10.0.0.2"])
        #expect(resolved.address == Self.ip("203.0.113.5"))
        #expect(resolved.forwardedFor == "203.0.113.5")
    }

    @Test func withNoTrustedProxiesNobodyIsBelieved() {
        let resolved = Self.resolve(peer: "10.0.0.1", xff: ["1.1.1.1"], trusted: .empty)
        #expect(resolved.address == Self.ip("10.0.0.1"))
        #expect(resolved.forwardedFor == "10.0.0.1")
    }

    @Test func trustedPeerWithoutForwardedForIsTheClient() {
        let resolved = Self.resolve(peer: "10.0.0.1", xff: [])
        #expect(resolved.address == Self.ip("10.0.0.1"))
        #expect(resolved.forwardedFor == "10.0.0.1")
    }

    @Test func peerTextIsUsedAsGiven() {
        let resolved = ClientAddress.resolve(
            peer: Self.ip("198.51.100.1"),
            peerText: "peer-as-written",
            fields: RequestFields([("X-Forwarded-For", "1.1.1.1")]),
            trusted: Self.trusted
        )
        #expect(resolved.forwardedFor == "peer-as-written")
    }

    // MARK: - Trusted peers

    @Test func rightmostUntrustedEntryIsTheClient() {
        let resolved = Self.resolve(peer: "10.0.0.1", xff: ["6.6.6.6, 203.0.113.5, 10.0.0.3, 10.0.0.2"])
        #expect(resolved.address == Self.ip("203.0.113.5"))
        // What the client itself wrote (6.6.6.6) is not passed on.
        #expect(resolved.forwardedFor == "203.0.113.5, 10.0.0.3, 10.0.0.2, 10.0.0.1")
    }

    @Test func oneTrustedHop() {
        let resolved = Self.resolve(peer: "10.0.0.1", xff: ["203.0.113.5"])
        #expect(resolved.address == Self.ip("203.0.113.5"))
        #expect(resolved.forwardedFor == "203.0.113.5, 10.0.0.1")
    }

    @Test func allEntriesTrustedMeansTheLeftmostIsTheClient() {
        let resolved = Self.resolve(peer: "10.0.0.1", xff: ["10.9.9.9, 10.0.0.3, 10.0.0.2"])
        #expect(resolved.address == Self.ip("10.9.9.9"))
        #expect(resolved.forwardedFor == "10.9.9.9, 10.0.0.3, 10.0.0.2, 10.0.0.1")
    }

    @Test(arguments: ["unknown", "", "1.2.3", "010.1.1.1", "1.2.3.4.5", "example.com", "[1.2.3.4", "_hidden", "1.2.3.4:", "[::1]:"])
    func unparseableEntryStopsTheWalk(garbage: String) {
        let resolved = Self.resolve(peer: "10.0.0.1", xff: ["203.0.113.5, \(garbage), 10.0.0.2"])
        // The walk stops at the garbage: the last hop believed is the client, never what lies beyond.
        #expect(resolved.address == Self.ip("10.0.0.2"))
        #expect(resolved.forwardedFor == "10.0.0.2, 10.0.0.1")
    }

    @Test func unparseableLastEntryLeavesThePeer() {
        let resolved = Self.resolve(peer: "10.0.0.1", xff: ["203.0.113.5, unknown"])
        #expect(resolved.address == Self.ip("10.0.0.1"))
        #expect(resolved.forwardedFor == "10.0.0.1")
    }

    @Test(arguments: [
        ("1.2.3.4:567", "1.2.3.4"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("[::ffff:203.0.113.5]:80", "203.0.113.5"),
        ("  203.0.113.5  ", "203.0.113.5"),
    ])
    func entryForms(entry: String, client: String) {
        let resolved = Self.resolve(peer: "10.0.0.1", xff: ["\(entry),10.0.0.2"])
        #expect(resolved.address == Self.ip(client))
        #expect(resolved.forwardedFor == "\(client), 10.0.0.2, 10.0.0.1")
    }

    @Test func portsOnTrustedHopsAreDroppedAndTheWalkContinues() {
        let resolved = Self.resolve(peer: "10.0.0.1", xff: ["203.0.113.5:1234, 10.0.0.2:443, [2001:db8:ffff::7]:8443"])
        #expect(resolved.address == Self.ip("203.0.113.5"))
        #expect(resolved.forwardedFor == "203.0.113.5, 10.0.0.2, 2001:db8:ffff::7, 10.0.0.1")
    }

    @Test func severalForwardedForHeadersFormOneList() {
        let resolved = Self.resolve(peer: "10.0.0.1", xff: ["6.6.6.6, 203.0.113.5", "10.0.0.3", "10.0.0.2"])
        #expect(resolved.address == Self.ip("203.0.113.5"))
        #expect(resolved.forwardedFor == "203.0.113.5, 10.0.0.3, 10.0.0.2, 10.0.0.1")
    }

    @Test func headerNameIsCaseInsensitive() {
        let resolved = ClientAddress.resolve(
            peer: Self.ip("10.0.0.1"),
            peerText: "10.0.0.1",
            fields: RequestFields([("x-FORWARDED-for", "203.0.113.5")]),
            trusted: Self.trusted
        )
        #expect(resolved.address == Self.ip("203.0.113.5"))
    }

    @Test func ipv4MappedEntriesAreMatchedAsIPv4() {
        // A mapped trusted hop is recognised as trusted, and the client is reported as plain IPv4.
        let resolved = Self.resolve(peer: "10.0.0.1", xff: ["::ffff:198.51.100.9, ::ffff:10.0.0.2"])
        #expect(resolved.address == .v4(0xc633_6409))
        #expect(resolved.forwardedFor == "198.51.100.9, 10.0.0.2, 10.0.0.1")
    }

    @Test func ipv6TrustedPeer() {
        let resolved = Self.resolve(peer: "2001:db8:ffff::1", xff: ["2001:db8:1::5, 2001:db8:ffff::2"])
        #expect(resolved.address == Self.ip("2001:db8:1::5"))
        #expect(resolved.forwardedFor == "2001:db8:1::5, 2001:db8:ffff::2, 2001:db8:ffff::1")
    }

    @Test func addressesAreWrittenCanonically() {
        let resolved = Self.resolve(peer: "10.0.0.1", xff: ["2001:DB8:0:0:0:0:0:1"])
        #expect(resolved.forwardedFor == "2001:db8::1, 10.0.0.1")
    }

    // MARK: - parseEntry

    @Test(arguments: [
        "1.2.3.4:", "1.2.3.4:x", "1.2.3.4:80:80", "[::1]:", "[::1]x", "[::1]:8x", "[]:80", "example.com:80",
        "2001:db8::1:80x", "[fe80::1%eth0]:80", "127.1", "1.2.3.4 5",
    ])
    func entryRejects(text: String) {
        #expect(ClientAddress.parseEntry(Substring(text)) == nil)
    }
}
