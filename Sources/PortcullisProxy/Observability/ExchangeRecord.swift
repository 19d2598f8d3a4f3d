/// One request that reached the gateway, as the access log and the metrics see it: built on the
/// event loop from values the request path already holds (no formatting there), written as a
/// JSON line by the access-log writer and counted by the loop's metrics.
struct ExchangeRecord: Sendable {
    enum Decision: Sendable {
        case allow
        case deny
    }

    /// Wall clock at the request head, milliseconds since 1970.
    var startMillis: Int64
    var requestID: String
    /// Nil when no client was identified (no token, a bad token, a malformed request).
    var clientID: String?
    var clientName: String?
    /// The bearer token's `jti`, when it has one (built-in issuer tokens always do).
    var tokenID: String?
    var sourceIP: String
    var method: String
    /// The canonical path when the request got that far, else the target as sent (or empty).
    var path: String
    var status: Int
    var decision: Decision
    var reason: AccessLogReason
    /// The role and rule that decided (`readonly roles.yaml:12 roles.readonly.allow[0]`).
    var rule: String?
    var tenant: String?
    /// Request body bytes read from the client.
    var bytesIn: Int
    /// Response bytes written to the client, head included.
    var bytesOut: Int
    /// From asking for an upstream connection to the response's end; nil when no upstream
    /// exchange was started.
    var upstreamNanos: Int64? = nil
    var totalNanos: Int64 = 0
    var userAgent: String? = nil
    /// W3C trace id (32 hex digits) of the `traceparent` sent upstream.
    var traceID: String?

    // Bookkeeping while the request is in flight (monotonic clock, nanoseconds).
    var startUptimeNanos: UInt64 = 0
    var upstreamStartUptimeNanos: UInt64?
    var upstreamEndUptimeNanos: UInt64?

    /// 1 for 1xx ... 5xx.
    var statusClass: Int { max(1, min(5, self.status / 100)) }
}

/// The access-log line of an exchange in flight, by reference: a connection between requests
/// holds none, and a loop reuses them (`ExchangeLogPool`) instead of allocating one a request.
final class ExchangeLog {
    var record: ExchangeRecord

    init(_ record: consuming ExchangeRecord) {
        self.record = record
    }
}

@available(*, unavailable)
extension ExchangeLog: Sendable {}

/// A loop's spare `ExchangeLog`s.
struct ExchangeLogPool {
    private var spare: [ExchangeLog] = []
    /// Spares kept at most: as many as the exchanges a loop had in flight at once, up to this.
    static let capacity = 1024

    mutating func make(_ record: consuming ExchangeRecord) -> ExchangeLog {
        guard let log = self.spare.popLast() else { return ExchangeLog(record) }
        log.record = record
        return log
    }

    /// The exchange has ended: its line, moved out (no copy), and `log`, blank, kept for the next.
    mutating func finish(_ log: ExchangeLog) -> ExchangeRecord {
        var record = ExchangeRecord.blank
        swap(&record, &log.record)
        if self.spare.count < Self.capacity { self.spare.append(log) }
        return record
    }
}

extension ExchangeRecord {
    /// A spare log's contents: nothing held.
    static let blank = ExchangeRecord(
        startMillis: 0,
        requestID: "",
        sourceIP: "",
        method: "",
        path: "",
        status: 0,
        decision: .allow,
        reason: .allowed,
        bytesIn: 0,
        bytesOut: 0
    )
}
