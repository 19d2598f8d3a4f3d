import PortcullisAuth
import Testing

@Suite("IssuerKeys")
struct IssuerKeysTests {
    @Test func fixedSetHoldsItsKeysAndCountsSwaps() throws {
        let first = try JWKSet(json: Array(KeySetDocuments.p256(kids: "a").utf8))
        let second = try JWKSet(json: Array(KeySetDocuments.p256(kids: "b", "c").utf8))
        let keys = IssuerKeys(issuerName: "fixed", keys: first)
        #expect(keys.current.keyIDs == ["a"])
        #expect(keys.generation == 0)
        #expect(keys.refreshCount == 1)
        #expect(keys.lastRefresh != nil)
        #expect(keys.lastError == nil)

        keys.replace(with: second)
        #expect(keys.current.keyIDs == ["b", "c"])
        #expect(keys.generation == 1)
    }

    @Test func unknownKeyIDOnAFixedSetDoesNothing() throws {
        let keys = IssuerKeys(issuerName: "fixed", keys: try JWKSet(json: Array(KeySetDocuments.p256(kids: "a").utf8)))
        keys.unknownKeyID("b")
        #expect(keys.unknownKeyIDRefreshCount == 0)
        #expect(keys.current.keyIDs == ["a"])
    }

    @Test func concurrentReadersAlwaysSeeAWholeSet() async throws {
        let sets = try (1...4).map { size in
            try JWKSet(json: Array(KeySetDocuments.p256(kids: (0..<size).map { "k\(size)-\($0)" }).utf8))
        }
        let keys = IssuerKeys(issuerName: "busy", keys: sets[0])
        let torn = await withTaskGroup(of: Int.self) { group in
            group.addTask {
                for round in 0..<2_000 {
                    keys.replace(with: sets[round % sets.count])
                }
                return 0
            }
            for _ in 0..<4 {
                group.addTask {
                    var torn = 0
                    for _ in 0..<20_000 {
                        let current = keys.current
                        let size = current.keys.count
                        if current.keyIDs != (0..<size).map({ "k\(size)-\($0)" }) {
                            torn += 1
                        }
                    }
                    return torn
                }
            }
            return await group.reduce(0, +)
        }
        #expect(torn == 0)
        #expect(keys.generation == 2_000)
    }
}

@Suite struct KeyRotationOutageBoundTests {
    @Test func anUnknownKidIsRefusedNoLongerThanTheEarlyRefreshInterval() {
        let configuration = IssuerKeyManager.Configuration()
        #expect(configuration.unknownKeyIDInterval == .seconds(30))
        #expect(configuration.negativeCacheTTL <= configuration.unknownKeyIDInterval)
    }
}
