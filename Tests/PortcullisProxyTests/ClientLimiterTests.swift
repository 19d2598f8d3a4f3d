import Foundation
import Dispatch
import PortcullisPolicy
import Testing

@testable import PortcullisProxy

@Suite struct ClientLimiterTests {
    static let now: UInt64 = 10_000_000_000

    /// The lines of an admitted response, written byte by byte, read as the interpolated text would.
    @Test func admittedLinesAreThePolicyAndTheRemainingAllowance() {
        let slot = ClientLimitSlot(clientID: "q", limits: ClientLimits(quota: QuotaSpec(count: 30, window: .day)), limiter: ClientLimiter(shared: true))
        #expect(slot.admittedLines(nil) == slot.policyLine)
        let numbers: [(Int, Int64)] = [
            (0, 0), (7, 59), (9, 10), (10, 99), (29, 86_399), (-1, 1), (1_000_000, 999_999),
            (Int.max, Int64.max), (Int.min + 1, Int64.min),
        ]
        for policy in ["quota", "rate", "other"] {
            for (remaining, reset) in numbers {
                let allowance = ClientLimiter.Allowance(policy: policy, remaining: remaining, resetSeconds: reset)
                #expect(slot.admittedLines(allowance) == slot.policyLine + "RateLimit: \"\(policy)\";r=\(remaining);t=\(reset)\r\n")
            }
        }
    }

    @Test func manyThreadsTogetherAreAdmittedExactlyTheLimit() {
        let limiter = ClientLimiter()
        let limits = ClientLimits(rate: RateSpec(count: 100, period: .minute), burst: 100)
        let admitted = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<1000 {
                if case .success = limiter.admit(limits, cells: 1, nowNanos: Self.now, nowSeconds: 1_796_601_600) { admitted.add() }
            }
        }
        #expect(admitted.value == 100)
    }

    static func admitted(_ result: Result<ClientLimiter.Allowance?, ClientLimiter.Refusal>) -> Bool {
        if case .success = result { return true }
        return false
    }

    @Test func theConcurrencyCapHoldsAndEverySlotIsGivenBack() {
        let limiter = ClientLimiter()
        let limits = ClientLimits(concurrency: 2)
        #expect(Self.admitted(limiter.admit(limits, cells: 1, nowNanos: Self.now, nowSeconds: 0)))
        #expect(Self.admitted(limiter.admit(limits, cells: 1, nowNanos: Self.now, nowSeconds: 0)))
        #expect(throws: ClientLimiter.Refusal.concurrency) { try limiter.admit(limits, cells: 1, nowNanos: Self.now, nowSeconds: 0).get() }
        limiter.release()
        #expect(limiter.exchangesInFlight == 1)
        #expect(Self.admitted(limiter.admit(limits, cells: 1, nowNanos: Self.now, nowSeconds: 0)))
    }

    @Test func aRefusalByOneLimitTakesNothingFromTheOthers() throws {
        let limiter = ClientLimiter()
        let limits = ClientLimits(rate: RateSpec(count: 10, period: .second), burst: 10, quota: QuotaSpec(count: 3, window: .day), concurrency: 5)
        let day: Int64 = 1_796_601_600
        for _ in 0..<3 { _ = try limiter.admit(limits, cells: 1, nowNanos: Self.now, nowSeconds: day).get() }
        #expect(limiter.exchangesInFlight == 3)
        let refused = limiter.admit(limits, cells: 1, nowNanos: Self.now, nowSeconds: day)
        #expect(refused == .failure(.quota(retryAfterSeconds: 86_400)))
        #expect(limiter.exchangesInFlight == 3, "the refused request holds no slot")
        // The next UTC day the quota starts again; the rate lost nothing to the refusal.
        let allowance = try limiter.admit(limits, cells: 1, nowNanos: Self.now, nowSeconds: day + 86_400).get()
        #expect(allowance?.remaining == 2)
        // A batch of 20 against a rate of 10 with a burst of 10 is refused whole.
        let batch = limiter.admit(ClientLimits(rate: RateSpec(count: 10, period: .second), burst: 10), cells: 20, nowNanos: Self.now, nowSeconds: day)
        guard case .failure(.rate) = batch else {
            Issue.record("expected a rate refusal, got \(batch)")
            return
        }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { self.lock.withLock { self.count += 1 } }
    var value: Int { self.lock.withLock { self.count } }
}

@Suite struct LimiterRegistryTests {
    static func config(rate: String) throws -> GatewayConfig {
        let text = """
            listen:
              - address: "127.0.0.1:8080"
            upstream:
              url: "http://127.0.0.1:8091"
            issuers:
              - { name: local, issuer: "https://idp.example.com/", audiences: ["api://gateway"], jwks_url: "https://idp.example.com/keys", algorithms: [RS256] }
            roles:
              r:
                allow: [{ paths: ["/**"] }]
                limits: { rate: \(rate), burst: 5 }
            clients:
              - { id: a, issuer: local, roles: [r] }
              - { id: b, issuer: local, roles: [r] }
            """
        return try ConfigLoader.load(sources: [(file: "gateway.yaml", text: text)], directory: "/tmp")
    }

    @Test func aReloadKeepsEachClientsCountersAndAppliesTheNewLimit() throws {
        let registry = LimiterRegistry()
        let first = ClientLimitSlot.compile(try Self.config(rate: "10/m"), registry: registry)
        let a = try #require(first[0])
        for _ in 0..<5 { _ = a.limiter.admit(a.limits, cells: 1, nowNanos: 1_000_000_000, nowSeconds: 0) }
        // Reloaded with a new rate: the burst client a used is still used; b is untouched.
        let second = ClientLimitSlot.compile(try Self.config(rate: "20/m"), registry: registry)
        let reloadedA = try #require(second[0])
        let reloadedB = try #require(second[1])
        #expect(reloadedA.limiter === a.limiter)
        #expect(reloadedA.limits.rate == RateSpec(count: 20, period: .minute))
        guard case .failure(.rate) = reloadedA.limiter.admit(reloadedA.limits, cells: 1, nowNanos: 1_000_000_000, nowSeconds: 0) else {
            Issue.record("the reload gave client a a fresh allowance")
            return
        }
        guard case .success = reloadedB.limiter.admit(reloadedB.limits, cells: 1, nowNanos: 1_000_000_000, nowSeconds: 0) else {
            Issue.record("client b was limited by a's use")
            return
        }
    }
}
