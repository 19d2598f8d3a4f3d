import SharedTestData
import Testing

@testable import PortcullisPolicy

/// `CIDRSet` (merged ranges behind a bucket index) against a scan of every block.
@Suite struct CIDRSetLinearScanTests {
    enum Shape: String, CaseIterable {
        /// Blocks anywhere.
        case spread
        /// Everything inside 10.0.0.0/8 and 2001:db8::/32: the index must use the bits after those.
        case clustered
        /// Host routes inside one /64 and one /24: almost every leading bit shared.
        case hosts
        /// Blocks at the ends of the address space and wide blocks over narrow ones.
        case edges
    }

    static func prefix(_ shape: Shape, _ random: inout SplitMix64) -> CIDRPrefix {
        let v4 = Bool.random(using: &random)
        switch shape {
        case .spread:
            return v4 ? Self.v4(UInt32.random(in: 0...UInt32.max, using: &random), Int.random(in: 8...32, using: &random))
                : Self.v6(UInt64.random(in: 0...UInt64.max, using: &random), UInt64.random(in: 0...UInt64.max, using: &random), Int.random(in: 16...128, using: &random))
        case .clustered:
            return v4 ? Self.v4(0x0a00_0000 | UInt32.random(in: 0...0xff_ffff, using: &random), Int.random(in: 12...32, using: &random))
                : Self.v6(0x2001_0db8_0000_0000 | UInt64.random(in: 0...0xffff_ffff, using: &random), UInt64.random(in: 0...UInt64.max, using: &random), Int.random(in: 36...128, using: &random))
        case .hosts:
            return v4 ? Self.v4(0xc000_0200 | UInt32.random(in: 0...255, using: &random), 32)
                : Self.v6(0x2001_0db8_0000_0001, UInt64.random(in: 0...0xfff, using: &random), 128)
        case .edges:
            let roll = Int.random(in: 0..<6, using: &random)
            switch roll {
            case 0: return v4 ? Self.v4(.max, Int.random(in: 1...32, using: &random)) : Self.v6(.max, .max, Int.random(in: 1...128, using: &random))
            case 1: return v4 ? Self.v4(0, Int.random(in: 1...32, using: &random)) : Self.v6(0, 0, Int.random(in: 1...128, using: &random))
            case 2: return v4 ? Self.v4(UInt32.random(in: 0...UInt32.max, using: &random), Int.random(in: 1...4, using: &random))
                : Self.v6(UInt64.random(in: 0...UInt64.max, using: &random), 0, Int.random(in: 1...8, using: &random))
            default: return Self.prefix(.spread, &random)
            }
        }
    }

    static func v4(_ address: UInt32, _ length: Int) -> CIDRPrefix {
        CIDRPrefix(address: .v4(address & (length == 0 ? 0 : UInt32.max << UInt32(32 - length))), length: length)!
    }

    static func v6(_ high: UInt64, _ low: UInt64, _ length: Int) -> CIDRPrefix {
        let mask = CIDRPrefix.mask6(length)
        // ::ffff:0:0/96 blocks are stored as IPv4; keep the random ones away from that corner.
        let high = high == 0 ? 1 : high
        return CIDRPrefix(address: .v6(high & mask.high, low & mask.low), length: length)!
    }

    /// Addresses inside, just outside and around the blocks, plus random ones and mapped IPv4.
    static func probes(_ prefixes: [CIDRPrefix], _ random: inout SplitMix64) -> [IPAddress] {
        var result: [IPAddress] = [.v4(0), .v4(.max), .v6(0, 0), .v6(.max, .max), .v6(0, 0xffff_0000_0000), .v6(0, 0xffff_ffff_ffff)]
        for prefix in prefixes.prefix(400) {
            switch prefix.address {
            case .v4(let network):
                let last = network | ~(prefix.length == 0 ? 0 : UInt32.max << UInt32(32 - prefix.length))
                result += [.v4(network), .v4(last), .v4(network &- 1), .v4(last &+ 1), .v6(0, 0xffff_0000_0000 | UInt64(last))]
            case .v6(let high, let low):
                let mask = CIDRPrefix.mask6(prefix.length)
                let lastHigh = high | ~mask.high
                let lastLow = low | ~mask.low
                result += [.v6(high, low), .v6(lastHigh, lastLow), .v6(low == 0 ? high &- 1 : high, low &- 1), .v6(lastLow == .max ? lastHigh &+ 1 : lastHigh, lastLow &+ 1)]
            }
        }
        for _ in 0..<2000 {
            result.append(
                Bool.random(using: &random) ? .v4(UInt32.random(in: 0...UInt32.max, using: &random))
                    : .v6(UInt64.random(in: 0...UInt64.max, using: &random), UInt64.random(in: 0...UInt64.max, using: &random))
            )
        }
        return result
    }

    @Test(arguments: Shape.allCases, [1, 7, 60, 3000])
    func containsAgreesWithAScanOfEveryBlock(shape: Shape, count: Int) {
        var random = SplitMix64(seed: UInt64(count) &* 31 &+ UInt64(shape.rawValue.count))
        let prefixes = (0..<count).map { _ in Self.prefix(shape, &random) }
        let set = CIDRSet(prefixes)
        var wrong: [String] = []
        var hits = 0
        for address in Self.probes(prefixes, &random) {
            let expected = prefixes.contains { $0.contains(address) }
            if expected { hits += 1 }
            if set.contains(address) != expected, wrong.count < 5 { wrong.append("\(address): expected \(expected)") }
        }
        #expect(wrong.isEmpty, "\(shape) \(count): \(wrong)")
        #expect(hits > 0)
    }

    @Test func adjacentAndNestedBlocksMerge() {
        let set = CIDRSet(["10.0.0.0/25", "10.0.0.128/25", "10.0.1.0/24", "10.0.0.7", "0.0.0.0/32", "255.255.255.255"].map { CIDRPrefix(parsing: $0)! })
        for inside in ["10.0.0.0", "10.0.0.127", "10.0.0.128", "10.0.1.255", "0.0.0.0", "255.255.255.255", "::ffff:10.0.1.1"] {
            #expect(set.contains(IPAddress(parsing: inside)!), "\(inside)")
        }
        for outside in ["9.255.255.255", "10.0.2.0", "0.0.0.1", "255.255.255.254", "::a00:1"] {
            #expect(!set.contains(IPAddress(parsing: outside)!), "\(outside)")
        }
        #expect(set.count == 6)
        #expect(CIDRSet.empty.contains(IPAddress(parsing: "1.2.3.4")!) == false)
        #expect(CIDRSet([CIDRPrefix(parsing: "::/0")!]).contains(IPAddress(parsing: "2001:db8::1")!))
        #expect(!CIDRSet([CIDRPrefix(parsing: "::/0")!]).contains(IPAddress(parsing: "1.2.3.4")!))
    }
}
