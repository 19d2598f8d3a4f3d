import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A secret replaced with `rotate --grace`: it keeps working, and so do the tokens issued under
/// it, until `until`.
public struct RetiredSecret: Codable, Sendable, Equatable {
    /// Lowercase hex SHA-256 of the secret (never the secret).
    public var secretSHA256: String
    /// When it was made (RFC 3339 UTC), if known.
    public var created: String?
    /// The end of its grace (RFC 3339 UTC).
    public var until: String

    public init(secretSHA256: String, created: String?, until: String) {
        self.secretSHA256 = secretSHA256
        self.created = created
        self.until = until
    }

    enum CodingKeys: String, CodingKey {
        case created, until
        case secretSHA256 = "secret_sha256"
    }
}

/// The secrets of a built-in client: the current one, when it was made, and the retired ones
/// still in their grace.
public struct ClientSecrets: Sendable, Equatable {
    public var currentSHA256: String?
    public var created: String?
    public var retired: [RetiredSecret]

    public init(currentSHA256: String?, created: String?, retired: [RetiredSecret]) {
        self.currentSHA256 = currentSHA256
        self.created = created
        self.retired = retired
    }

    /// A new current secret made `now`. With a grace the old one is retired until `now + grace`
    /// (retired ones whose grace has ended are dropped); without one every older secret stops at
    /// once.
    public func rotated(to newSHA256: String, grace: ConfigDuration?, now: Date) -> ClientSecrets {
        let seconds = Int64(now.timeIntervalSince1970.rounded(.down))
        var retired: [RetiredSecret] = []
        if let grace, grace > .zero {
            retired = self.retired.filter { (UTCTime.seconds($0.until) ?? 0) > seconds }
            if let current = self.currentSHA256 {
                retired.append(RetiredSecret(secretSHA256: current, created: self.created, until: UTCTime.format(seconds + grace.wholeSeconds)))
            }
        }
        return ClientSecrets(currentSHA256: newSHA256, created: UTCTime.format(seconds), retired: retired)
    }
}

/// One secret of a client as the token endpoint and the request path use it.
public struct LiveSecret: Sendable, Equatable {
    public var secretSHA256: String
    /// Seconds since the epoch after which neither the secret nor its tokens are accepted; nil:
    /// never.
    public var notAfter: Int64?
    /// Whether it is a retired secret in its grace.
    public var retired: Bool

    public init(secretSHA256: String, notAfter: Int64?, retired: Bool) {
        self.secretSHA256 = secretSHA256
        self.notAfter = notAfter
        self.retired = retired
    }
}

extension ClientConfig {
    /// The built-in client's secret lifetime: its own `secret_lifetime`, else the issuer's.
    public func secretLifetime(issuer: BuiltinIssuerSettings?) -> ConfigDuration? {
        self.secretLifetime ?? issuer?.secretLifetime
    }

    /// When the current secret expires (seconds since the epoch); nil: never (no lifetime, or a
    /// secret of unknown age).
    public func secretExpiry(issuer: BuiltinIssuerSettings?) -> Int64? {
        guard let lifetime = self.secretLifetime(issuer: issuer), let created = self.secretCreated.flatMap(UTCTime.seconds) else {
            return nil
        }
        return created + lifetime.wholeSeconds
    }

    /// The current secret then the retired ones, each with the second it stops.
    public func liveSecrets(issuer: BuiltinIssuerSettings?) -> [LiveSecret] {
        guard let current = self.secretSHA256 else { return [] }
        var result = [LiveSecret(secretSHA256: current, notAfter: self.secretExpiry(issuer: issuer), retired: false)]
        for old in self.retiredSecrets {
            let until = UTCTime.seconds(old.until) ?? 0
            // A retired secret never outlives the lifetime it had.
            let lifetimeEnd = self.secretLifetime(issuer: issuer).flatMap { lifetime in
                old.created.flatMap(UTCTime.seconds).map { $0 + lifetime.wholeSeconds }
            }
            result.append(LiveSecret(secretSHA256: old.secretSHA256, notAfter: min(until, lifetimeEnd ?? until), retired: true))
        }
        return result
    }
}

extension GatewayConfig {
    /// The next second at which a client secret (current or retired) stops being accepted, after
    /// `now`: the running snapshot must be compiled again then.
    public func nextSecretBoundary(after now: Int64) -> Int64? {
        let settings = self.issuers.first(where: \.builtin)?.builtinSettings
        var next: Int64?
        for client in self.clients {
            for secret in client.liveSecrets(issuer: settings) {
                guard let end = secret.notAfter, end > now else { continue }
                next = min(next ?? end, end)
            }
        }
        return next
    }
}

/// RFC 3339 UTC times with whole seconds (`2026-12-04T10:00:00Z`), as the clients file and the
/// store write them.
public enum UTCTime {
    public static func format(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))Z"
    }

    /// Seconds since the epoch of `2026-12-04T10:00:00Z`; nil for anything else.
    public static func seconds(_ text: String) -> Int64? {
        guard ConfigLoader.isRFC3339UTCSeconds(text) else { return nil }
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int32 {
            bytes[range].reduce(0) { $0 * 10 + Int32($1 - 0x30) }
        }
        var parts = tm()
        parts.tm_year = number(0..<4) - 1900
        parts.tm_mon = number(5..<7) - 1
        parts.tm_mday = number(8..<10)
        parts.tm_hour = number(11..<13)
        parts.tm_min = number(14..<16)
        parts.tm_sec = number(17..<19)
        return Int64(timegm(&parts))
    }
}

extension GatewayConfig {
    /// Client id -> when its current secret expires, for the clients whose secret does.
    public func secretExpiries() -> [String: Int64] {
        let settings = self.issuers.first(where: \.builtin)?.builtinSettings
        var result: [String: Int64] = [:]
        for client in self.clients where client.secretSHA256 != nil {
            if let expiry = client.secretExpiry(issuer: settings) { result[client.id] = expiry }
        }
        return result
    }

    /// How long before its expiry a secret is warned about: 14 days, or a quarter of its
    /// lifetime when that is shorter.
    public func secretWarningLead(clientID: String) -> Int64 {
        let settings = self.issuers.first(where: \.builtin)?.builtinSettings
        guard let client = self.clients.first(where: { $0.id == clientID }), let lifetime = client.secretLifetime(issuer: settings) else {
            return 14 * 86_400
        }
        return min(14 * 86_400, lifetime.wholeSeconds / 4)
    }
}
