import NIOConcurrencyHelpers

/// The admin console's view of recent traffic: per client, its last access-log lines and its
/// requests per minute by status class over the last hour. Fed by the access-log writer's
/// thread once per pass (never by an event loop); read by the admin listener. Bounded: at most
/// `linesPerClient` lines for each of at most `maxClients` clients (the least recently seen
/// forgotten first), and 60 minutes of counts.
public final class RecentRequests: Sendable {
    /// One access-log line as the writer wrote it (JSON, no newline).
    public struct Line: Sendable, Equatable {
        /// Increases by one per line across all clients: a live view asks for lines after one.
        public var sequence: UInt64
        public var text: String
    }

    /// What the writer hands over for one record.
    struct Entry {
        var clientID: String
        var millis: Int64
        var statusClass: Int
        var tokenID: String?
        var line: String
    }

    /// Requests of one client in the last hour.
    public struct Summary: Sendable, Equatable {
        public var requests = 0
        /// Answers with status 400 and above: refusals and failures.
        public var errors = 0
        /// The `jti` of the last request that carried one.
        public var lastTokenID: String?
        /// The last request, milliseconds since 1970.
        public var lastMillis: Int64 = 0
    }

    private struct Minute {
        var minute: Int64 = .min
        /// 1xx ... 5xx.
        var counts = [Int](repeating: 0, count: 5)
    }

    private struct Client {
        var lines: [Line] = []
        /// Next index to overwrite once `lines` is full.
        var next = 0
        var minutes = [Minute](repeating: Minute(), count: 60)
        var lastTokenID: String?
        var lastMillis: Int64 = 0
        var lastSeenPass: UInt64 = 0
    }

    private struct State {
        var clients: [String: Client] = [:]
        var sequence: UInt64 = 0
        var pass: UInt64 = 0
    }

    /// Requests that named no client (no token, a bad one) are kept under this key.
    public static let anonymous = ""

    public let linesPerClient: Int
    public let maxClients: Int
    private let state = NIOLockedValueBox(State())

    public init(linesPerClient: Int = 200, maxClients: Int = 2000) {
        self.linesPerClient = max(1, linesPerClient)
        self.maxClients = max(1, maxClients)
    }

    /// One writer pass: every line of it, in order, under one lock.
    func append(_ entries: [Entry]) {
        guard !entries.isEmpty else { return }
        self.state.withLockedValue { state in
            state.pass += 1
            for entry in entries {
                state.sequence += 1
                if state.clients[entry.clientID] == nil && state.clients.count >= self.maxClients {
                    if let oldest = state.clients.min(by: { $0.value.lastSeenPass < $1.value.lastSeenPass })?.key {
                        state.clients.removeValue(forKey: oldest)
                    }
                }
                var client = state.clients.removeValue(forKey: entry.clientID) ?? Client()
                let line = Line(sequence: state.sequence, text: entry.line)
                if client.lines.count < self.linesPerClient {
                    client.lines.append(line)
                } else {
                    client.lines[client.next] = line
                    client.next = (client.next + 1) % self.linesPerClient
                }
                let minute = Self.floorDivide(entry.millis, 60_000)
                let slot = Int(((minute % 60) + 60) % 60)
                // A slot holds one minute; a line older than the minute there is over an hour old.
                if client.minutes[slot].minute < minute { client.minutes[slot] = Minute(minute: minute) }
                if client.minutes[slot].minute == minute {
                    client.minutes[slot].counts[max(1, min(5, entry.statusClass)) - 1] += 1
                }
                if let token = entry.tokenID { client.lastTokenID = token }
                client.lastMillis = max(client.lastMillis, entry.millis)
                client.lastSeenPass = state.pass
                state.clients[entry.clientID] = client
            }
        }
    }

    /// The client's kept lines after `sequence`, oldest first, at most `limit` (the newest).
    public func lines(client id: String, after sequence: UInt64 = 0, limit: Int = .max) -> [Line] {
        self.state.withLockedValue { state in
            guard let client = state.clients[id] else { return [] }
            let ordered = Array(client.lines[client.next...] + client.lines[..<client.next])
            return Array(ordered.filter { $0.sequence > sequence }.suffix(limit))
        }
    }

    /// Requests per minute by status class for the 60 minutes ending with `nowMillis`'s:
    /// `[minute][class - 1]`, oldest minute first.
    public func perMinute(client id: String, nowMillis: Int64) -> [[Int]] {
        let now = Self.floorDivide(nowMillis, 60_000)
        return self.state.withLockedValue { state in
            let minutes = state.clients[id]?.minutes ?? []
            return (0..<60).map { back in
                let minute = now - 59 + Int64(back)
                return minutes.first(where: { $0.minute == minute })?.counts ?? [0, 0, 0, 0, 0]
            }
        }
    }

    /// Every known client's last hour, by client id.
    public func summaries(nowMillis: Int64) -> [String: Summary] {
        let now = Self.floorDivide(nowMillis, 60_000)
        return self.state.withLockedValue { state in
            state.clients.mapValues { client in
                var summary = Summary(lastTokenID: client.lastTokenID, lastMillis: client.lastMillis)
                for minute in client.minutes where minute.minute > now - 60 && minute.minute <= now {
                    summary.requests += minute.counts.reduce(0, +)
                    summary.errors += minute.counts[3] + minute.counts[4]
                }
                return summary
            }
        }
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        value >= 0 ? value / divisor : -((-value + divisor - 1) / divisor)
    }
}
