import NIOConcurrencyHelpers
import PortcullisAuth

/// The admin console's sign-in sessions, in memory (a restart signs everyone out).
///
/// A session id is 256 random bits, given to the browser once in a cookie and kept here only as
/// its SHA-256 digest; its CSRF token is another 256 random bits, compared in constant time.
/// A session ends after `idleTimeout` without a request, after `absoluteTimeout` in any case,
/// or at sign-out. At most `maxSessions` live at once: beyond that the least recently used is
/// ended.
public final class ConsoleSessions: Sendable {
    public struct Session: Sendable, Equatable {
        /// The admin token's name: who the console's calls are made by.
        public var admin: String
        /// The SHA-256 of the admin token signed in with: the session ends when it is no longer accepted.
        public var tokenSHA256: String
        public var csrfToken: String
        public var createdMillis: Int64
        public var lastUsedMillis: Int64
        /// When the session ends at the latest.
        public var expiresMillis: Int64
    }

    public let idleTimeoutMillis: Int64
    public let absoluteTimeoutMillis: Int64
    public let maxSessions: Int
    private let now: @Sendable () -> Int64
    private let random: @Sendable () -> [UInt8]
    /// By SHA-256 (hex) of the session id.
    private let sessions = NIOLockedValueBox<[String: Session]>([:])

    /// - Parameters:
    ///   - now: milliseconds since 1970 (injected for tests).
    ///   - random: 32 random bytes per call (injected for tests).
    public init(
        idleTimeoutMillis: Int64 = 30 * 60_000,
        absoluteTimeoutMillis: Int64 = 8 * 3_600_000,
        maxSessions: Int = 64,
        now: @escaping @Sendable () -> Int64,
        random: @escaping @Sendable () -> [UInt8] = ConsoleSessions.randomBytes
    ) {
        self.idleTimeoutMillis = idleTimeoutMillis
        self.absoluteTimeoutMillis = absoluteTimeoutMillis
        self.maxSessions = max(1, maxSessions)
        self.now = now
        self.random = random
    }

    /// Starts a session for `admin`; returns its id (for the cookie, never stored) and the session.
    public func create(admin: String, tokenSHA256: String = "") -> (id: String, session: Session) {
        let id = Self.base64URL(self.random())
        let now = self.now()
        let session = Session(
            admin: admin,
            tokenSHA256: tokenSHA256,
            csrfToken: Self.base64URL(self.random()),
            createdMillis: now,
            lastUsedMillis: now,
            expiresMillis: now + self.absoluteTimeoutMillis
        )
        let key = ClientSecret.sha256Hex(id)
        self.sessions.withLockedValue { sessions in
            sessions = sessions.filter { self.isLive($0.value, now: now) }
            while sessions.count >= self.maxSessions,
                let oldest = sessions.min(by: { $0.value.lastUsedMillis < $1.value.lastUsedMillis })?.key
            {
                sessions.removeValue(forKey: oldest)
            }
            sessions[key] = session
        }
        return (id, session)
    }

    /// The live session with this id, its idle clock restarted; nil for an unknown, idle or
    /// expired one (which is forgotten).
    public func use(_ id: String) -> Session? {
        guard Self.isWellFormed(id) else { return nil }
        let key = ClientSecret.sha256Hex(id)
        let now = self.now()
        return self.sessions.withLockedValue { sessions in
            guard var session = sessions[key] else { return nil }
            guard self.isLive(session, now: now) else {
                sessions.removeValue(forKey: key)
                return nil
            }
            session.lastUsedMillis = now
            sessions[key] = session
            return session
        }
    }

    /// The live session with this id, without restarting its idle clock (a live view's poll).
    public func peek(_ id: String) -> Session? {
        guard Self.isWellFormed(id) else { return nil }
        let key = ClientSecret.sha256Hex(id)
        let now = self.now()
        return self.sessions.withLockedValue { sessions in
            sessions[key].flatMap { self.isLive($0, now: now) ? $0 : nil }
        }
    }

    /// Sign-out.
    public func end(_ id: String) {
        guard Self.isWellFormed(id) else { return }
        let key = ClientSecret.sha256Hex(id)
        _ = self.sessions.withLockedValue { $0.removeValue(forKey: key) }
    }

    public var count: Int { self.sessions.withLockedValue { $0.count } }

    private func isLive(_ session: Session, now: Int64) -> Bool {
        now < session.expiresMillis && now - session.lastUsedMillis < self.idleTimeoutMillis
    }

    /// 43 characters of base64url: what `create` hands out.
    static func isWellFormed(_ id: String) -> Bool {
        id.utf8.count == 43 && id.utf8.allSatisfy { Self.alphabet.contains($0) }
    }

    /// Whether two strings are equal, in time that depends on their lengths only.
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    @Sendable public static func randomBytes() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Unpadded base64url.
    static func base64URL(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value = 0
            for (offset, byte) in chunk.enumerated() { value |= Int(byte) << (16 - 8 * offset) }
            for position in 0...chunk.count { out.append(Self.alphabet[(value >> (18 - 6 * position)) & 63]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
