import NIOConcurrencyHelpers
import NIOHTTP1
import PortcullisPolicy

/// Each client's counters by id, kept across reloads so that a reload (or a changed limit) does
/// not hand every client a fresh allowance.
final class LimiterRegistry: Sendable {
    private let limiters = NIOLockedValueBox<[String: ClientLimiter]>([:])
    /// Counters are exchanged with other replicas (a PostgreSQL store).
    let shared: Bool

    init(shared: Bool = false) {
        self.shared = shared
    }

    func limiter(for clientID: String) -> ClientLimiter {
        self.limiters.withLockedValue { limiters in
            if let existing = limiters[clientID] { return existing }
            let created = ClientLimiter(shared: self.shared)
            limiters[clientID] = created
            return created
        }
    }
}

/// One limited client in a settings snapshot: its limits, resolved once per load, and its
/// counters. A reference: the request path takes it from the snapshot's array without copying
/// its strings.
final class ClientLimitSlot: Sendable {
    let clientID: String
    let limits: ClientLimits
    let limiter: ClientLimiter
    /// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers), written once per load.
    let policyHeader: String
    /// The same as a header line, for admitted responses.
    let policyLine: String
    /// `policyLine` and the start of the `RateLimit` line, for each policy an allowance can
    /// name (`ClientLimiter.Allowance.policy`): the request path adds only the numbers.
    private let ratePrefix: [UInt8]
    private let quotaPrefix: [UInt8]

    init(clientID: String, limits: ClientLimits, limiter: ClientLimiter) {
        self.clientID = clientID
        self.limits = limits
        self.limiter = limiter
        var policies: [String] = []
        if let rate = limits.rate {
            policies.append("\"rate\";q=\(limits.effectiveBurst);w=\(max(1, Int64(rate.intervalNanos) * Int64(limits.effectiveBurst) / 1_000_000_000))")
        }
        if let quota = limits.quota {
            policies.append("\"quota\";q=\(quota.count);w=\(quota.window == .day ? 86_400 : 2_592_000)")
        }
        if let concurrency = limits.concurrency { policies.append("\"concurrency\";q=\(concurrency)") }
        let policyHeader = policies.joined(separator: ", ")
        self.policyHeader = policyHeader
        self.policyLine = "RateLimit-Policy: \(policyHeader)\r\n"
        self.ratePrefix = Array("RateLimit-Policy: \(policyHeader)\r\nRateLimit: \"rate\";r=".utf8)
        self.quotaPrefix = Array("RateLimit-Policy: \(policyHeader)\r\nRateLimit: \"quota\";r=".utf8)
    }

    /// Every client's slot by policy index (nil: no limit applies), from the config's
    /// `client_limits`, its roles' `limits` and its own.
    static func compile(_ config: GatewayConfig, registry: LimiterRegistry) -> [ClientLimitSlot?] {
        config.clients.map { client in
            let limits = config.limits(of: client)
            guard !limits.isEmpty else { return nil }
            return ClientLimitSlot(clientID: client.id, limits: limits, limiter: registry.limiter(for: client.id))
        }
    }
}

extension ErrorResponse {
    /// 429 for a client over one of its limits, with `Retry-After` and the RateLimit headers.
    static func limited(_ refusal: ClientLimiter.Refusal, slot: ClientLimitSlot) -> ErrorResponse {
        let retryAfter: Int64
        let error: StaticString
        let description: String
        let policy: String
        switch refusal {
        case .rate(let nanos):
            retryAfter = max(1, Int64((nanos + 999_999_999) / 1_000_000_000))
            error = "rate_limited"
            description = "the client is over its rate of \(slot.limits.rate.map { "\($0)" } ?? "-") (burst \(slot.limits.effectiveBurst))"
            policy = "rate"
        case .quota(let seconds):
            retryAfter = max(1, seconds)
            error = "quota_exceeded"
            description = "the client has used its quota of \(slot.limits.quota.map { "\($0)" } ?? "-")"
            policy = "quota"
        case .concurrency:
            retryAfter = 1
            error = "concurrency_limited"
            description = "the client has \(slot.limits.concurrency ?? 0) requests in flight, its limit"
            policy = "concurrency"
        }
        return ErrorResponse(
            status: .tooManyRequests,
            error: error,
            description: description,
            extraHeaders: [
                ("Retry-After", String(retryAfter)),
                ("RateLimit-Policy", slot.policyHeader),
                ("RateLimit", "\"\(policy)\";r=0;t=\(retryAfter)"),
            ]
        )
    }
}

extension ClientLimitSlot {
    /// `RateLimit-Policy` and, when a rate or quota applies, `RateLimit`
    /// (`"rate";r=REMAINING;t=RESET`) for an admitted response: the slot's prefix and two
    /// numbers written byte by byte (no string interpolation or concatenation per request).
    func admittedLines(_ allowance: ClientLimiter.Allowance?) -> String {
        guard let allowance else { return self.policyLine }
        let prefix: [UInt8]
        switch allowance.policy {
        case "rate": prefix = self.ratePrefix
        case "quota": prefix = self.quotaPrefix
        default: prefix = Array("\(self.policyLine)RateLimit: \"\(allowance.policy)\";r=".utf8)
        }
        return String(unsafeUninitializedCapacity: prefix.count + 2 * 20 + 6) { out in
            var count = prefix.withUnsafeBufferPointer { bytes in
                _ = UnsafeMutableBufferPointer(rebasing: out[..<bytes.count]).initialize(fromContentsOf: bytes)
                return bytes.count
            }
            Self.writeDecimal(Int64(allowance.remaining), into: out, at: &count)
            out[count] = UInt8(ascii: ";")
            out[count + 1] = UInt8(ascii: "t")
            out[count + 2] = UInt8(ascii: "=")
            count += 3
            Self.writeDecimal(allowance.resetSeconds, into: out, at: &count)
            out[count] = 0x0D
            out[count + 1] = 0x0A
            return count + 2
        }
    }

    /// `value` in decimal at `out[index...]`; `index` moves past it (at most 20 bytes).
    @inline(__always)
    private static func writeDecimal(_ value: Int64, into out: UnsafeMutableBufferPointer<UInt8>, at index: inout Int) {
        if value < 0 {
            out[index] = UInt8(ascii: "-")
            index += 1
        }
        var magnitude = value.magnitude
        var digits = 1
        var scale: UInt64 = 10
        while digits < 20 && magnitude >= scale {
            digits += 1
            scale = digits < 20 ? scale &* 10 : scale
        }
        var end = index + digits
        index = end
        repeat {
            end -= 1
            out[end] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
    }
}

extension ClientLimitSlot {
    /// The gauges of `/metrics`: what each limited client may still do now.
    static func renderGauges(_ slots: [ClientLimitSlot], nowNanos: UInt64, nowSeconds: Int64, into out: inout PrometheusTextWriter) {
        guard !slots.isEmpty else { return }
        out.family(
            "portcullis_client_limit_remaining",
            .gauge,
            help: "Requests a limited client may still make now: at once under its rate (limit=rate), or in the current UTC window of its quota (limit=quota)."
        )
        for slot in slots {
            if let rate = slot.limits.rate {
                let remaining = slot.limiter.rateRemaining(rate, burst: slot.limits.effectiveBurst, nowNanos: nowNanos)
                out.sample("portcullis_client_limit_remaining", remaining, labels: ["client": slot.clientID, "limit": "rate"])
            }
            if let quota = slot.limits.quota {
                let remaining = slot.limiter.quotaRemaining(quota, nowSeconds: nowSeconds)
                out.sample("portcullis_client_limit_remaining", remaining, labels: ["client": slot.clientID, "limit": "quota"])
            }
        }
        out.family("portcullis_client_exchanges_in_flight", .gauge, help: "Exchanges in flight of a client with a concurrency limit.")
        for slot in slots where slot.limits.concurrency != nil {
            out.sample("portcullis_client_exchanges_in_flight", slot.limiter.exchangesInFlight, labels: ["client": slot.clientID])
        }
    }
}
