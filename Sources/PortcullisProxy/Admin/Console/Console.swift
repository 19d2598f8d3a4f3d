import Atomics
import Foundation
import NIOConcurrencyHelpers
import NIOHTTP1
import PortcullisStore

/// The admin console (`/ui/`): what every admin connection's ``ConsoleRequestHandler`` shares.
/// Its pages call the admin API through `/ui/api/v1/...` with the session cookie instead of the
/// admin token, so the console can do exactly what the API does and nothing more.
final class Console: Sendable {
    let api: AdminAPI
    let sessions: ConsoleSessions
    /// Recent access-log lines and counts; nil when the gateway keeps none (no live view).
    let recent: RecentRequests?
    /// Milliseconds since 1970.
    let now: @Sendable () -> Int64
    /// Failed sign-ins by address: (count, first failure) in the current window.
    private let failedSignIns = NIOLockedValueBox<[String: (count: Int, sinceMillis: Int64)]>([:])
    /// Beyond this many wrong tokens from one address in `signInWindowMillis`, sign-in is refused (429).
    static let maxFailedSignIns = 10
    static let signInWindowMillis: Int64 = 5 * 60_000
    /// Live views open now, at most `maxLiveViews`.
    let liveViews = ManagedAtomic<Int>(0)
    let maxLiveViews: Int

    init(
        api: AdminAPI,
        recent: RecentRequests?,
        sessions: ConsoleSessions? = nil,
        maxLiveViews: Int = 32,
        now: @escaping @Sendable () -> Int64 = Console.wallClockMillis
    ) {
        self.api = api
        self.recent = recent
        self.now = now
        self.sessions = sessions ?? ConsoleSessions(now: now)
        self.maxLiveViews = maxLiveViews
    }

    @Sendable static func wallClockMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The admin token's name for a token presented at sign-in; nil for a wrong one. With one
    /// `admin.token_file` every holder is `admin`.
    func adminName(forToken token: String) -> String? {
        guard !token.isEmpty, token.utf8.count <= 4096 else { return nil }
        var headers = HTTPHeaders()
        headers.add(name: "authorization", value: "Bearer " + token)
        switch self.api.authorize(headers) {
        case .allowed(let name): return name
        case .disabled, .missing, .wrong: return nil
        }
    }

    /// The session with this id while it lives and its admin token is still accepted.
    func session(_ id: String, touch: Bool = true) -> ConsoleSessions.Session? {
        guard let session = touch ? self.sessions.use(id) : self.sessions.peek(id) else { return nil }
        guard self.api.accepts(tokenSHA256: session.tokenSHA256) else {
            self.sessions.end(id)
            return nil
        }
        return session
    }

    /// Seconds until `address` may try to sign in again; nil while it may.
    func signInRetryAfter(address: String) -> Int64? {
        let now = self.now()
        return self.failedSignIns.withLockedValue { table in
            guard let entry = table[address], now - entry.sinceMillis < Self.signInWindowMillis else { return nil }
            guard entry.count >= Self.maxFailedSignIns else { return nil }
            return max(1, (entry.sinceMillis + Self.signInWindowMillis - now + 999) / 1000)
        }
    }

    /// Counts a wrong token from `address` (at most 4,096 addresses are remembered; the table
    /// is emptied of finished windows when full).
    func signInFailed(address: String) {
        let now = self.now()
        self.failedSignIns.withLockedValue { table in
            if table.count >= 4096 { table = table.filter { now - $0.value.sinceMillis < Self.signInWindowMillis } }
            if let entry = table[address], now - entry.sinceMillis < Self.signInWindowMillis {
                table[address] = (entry.count + 1, entry.sinceMillis)
            } else if table.count < 4096 {
                table[address] = (1, now)
            }
        }
    }

    /// An admin API call made through the console by `session`'s admin from `source` (the
    /// browser's address). `target` is the API path and query (`/api/v1/...`).
    func callAPI(method: HTTPMethod, target: String, body: [UInt8], session: ConsoleSessions.Session, source: String) async -> AdminAPI.Response {
        // The audit trail names the admin token the session was opened with, and the browser.
        await self.api.handle(method: method, path: target[...], body: body, actor: AuditActor(name: session.admin, source: source))
    }

    /// `GET /ui/live/summary`: each client's requests and errors in the last hour.
    func summaryJSON() -> [String: Any] {
        guard let recent = self.recent else { return ["available": false, "clients": [String: Any]()] }
        var clients: [String: Any] = [:]
        for (id, summary) in recent.summaries(nowMillis: self.now()) where id != RecentRequests.anonymous {
            clients[id] = [
                "requests": summary.requests,
                "errors": summary.errors,
                "last_jti": summary.lastTokenID.map { $0 as Any } ?? NSNull(),
                "last_request_ms": summary.lastMillis,
            ] as [String: Any]
        }
        return ["available": true, "clients": clients]
    }

    /// `GET /ui/live/clients/{id}/minutes`: the last 60 minutes by status class, oldest first.
    func minutesJSON(client id: String) -> [String: Any] {
        guard let recent = self.recent else { return ["available": false] }
        let now = self.now()
        return [
            "available": true,
            "end_minute_ms": now - now % 60_000,
            "minutes": recent.perMinute(client: id, nowMillis: now),
        ]
    }

    static func json(_ object: Any) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
