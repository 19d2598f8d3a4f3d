import Atomics
import Foundation
import NIOConcurrencyHelpers
import PortcullisPolicy

#if canImport(Glibc)
import Glibc
#endif

/// What the built-in issuer remembers beyond its config: revoked token ids (each until its
/// token's `exp`) and when each client last redeemed its credentials. Outlives reloads, and is
/// kept across restarts in `state_file` (JSON, written atomically off the event loops by
/// ``saveIfChanged()``), or with a store configured, in the store: changes wait in an outbox
/// the store's writer empties, and every replica's entries are merged in.
///
/// The request path asks ``isRevoked(_:)`` for every built-in token, cached or not: one atomic
/// load and a dictionary lookup, no lock. Writers (revocations, redemptions) take a lock.
public final class IssuerState: Sendable {
    private final class Revoked: AtomicReference, Sendable {
        /// Token id -> its `exp`.
        let expiries: [String: Int64]
        init(_ expiries: [String: Int64]) { self.expiries = expiries }
    }

    private struct Mutable {
        var lastRedeemed: [String: Int64] = [:]
        var changed = false
        /// What the store has not been told yet (with a store configured).
        var outboxRevocations: [String: Int64] = [:]
        var outboxRedeemed: [String: Int64] = [:]
    }

    /// The file it is kept in; nil keeps it in memory only.
    public let path: String?
    /// A store keeps it instead of the file: changes wait in an outbox for ``takeOutbox()``.
    public let feedsStore: Bool
    private let revoked: ManagedAtomic<Revoked>
    private let mutable: NIOLockedValueBox<Mutable>

    /// Reads `path` if it exists. A file that cannot be read as state is an error, not a
    /// silent loss of revocations.
    public init(path: String?, now: Int64, feedsStore: Bool = false) throws(IssuerError) {
        self.path = path
        self.feedsStore = feedsStore
        var expiries: [String: Int64] = [:]
        var redeemed: [String: Int64] = [:]
        if let path, let data = FileManager.default.contents(atPath: path) {
            guard case .object(let root)? = try? JSONValue.parse(Array(data)) else {
                throw IssuerError(.invalidStateFile, reason: "\(path): not a Portcullis issuer state file (expected a JSON object)")
            }
            if case .object(let members)? = root["revoked"] {
                for (id, value) in members {
                    if let exp = value.numberValue, Int64(exp) > now { expiries[id] = Int64(exp) }
                }
            }
            if case .object(let members)? = root["last_redeemed"] {
                for (id, value) in members {
                    if let text = value.stringValue, let seconds = Self.parseTimestamp(text) { redeemed[id] = seconds }
                }
            }
        }
        self.revoked = ManagedAtomic(Revoked(expiries))
        self.mutable = NIOLockedValueBox(Mutable(lastRedeemed: redeemed))
    }

    /// Lock-free: whether the token id was revoked (and its token has not expired since).
    public func isRevoked(_ tokenID: String) -> Bool {
        self.revoked.load(ordering: .acquiring).expiries[tokenID] != nil
    }

    /// Refuses the token id from now until `expiresAt`; expired entries are dropped meanwhile.
    public func revoke(_ tokenID: String, until expiresAt: Int64, now: Int64) {
        self.mutable.withLockedValue { state in
            var expiries = self.revoked.load(ordering: .acquiring).expiries.filter { $0.value > now }
            if expiresAt > now { expiries[tokenID] = max(expiresAt, expiries[tokenID] ?? 0) }
            self.revoked.store(Revoked(expiries), ordering: .releasing)
            state.changed = true
            if self.feedsStore { state.outboxRevocations[tokenID] = max(expiresAt, state.outboxRevocations[tokenID] ?? 0) }
        }
    }

    public func redeemed(clientID: String, at seconds: Int64) {
        self.mutable.withLockedValue { state in
            state.lastRedeemed[clientID] = seconds
            state.changed = true
            if self.feedsStore { state.outboxRedeemed[clientID] = seconds }
        }
    }

    /// Revocations and redemptions made here since the last call, for the store to write.
    public func takeOutbox() -> (revocations: [String: Int64], redeemed: [String: Int64]) {
        self.mutable.withLockedValue { state in
            defer {
                state.outboxRevocations = [:]
                state.outboxRedeemed = [:]
            }
            return (state.outboxRevocations, state.outboxRedeemed)
        }
    }

    /// Adds what the store holds (every replica's revocations and redemptions); nothing is
    /// removed, and nothing merged here goes back to the store.
    public func merge(revocations: [String: Int64], lastRedeemed: [String: Int64], now: Int64) {
        self.mutable.withLockedValue { state in
            var expiries = self.revoked.load(ordering: .acquiring).expiries.filter { $0.value > now }
            var added = false
            for (id, exp) in revocations where exp > now && (expiries[id] ?? 0) < exp {
                expiries[id] = exp
                added = true
            }
            if added { self.revoked.store(Revoked(expiries), ordering: .releasing) }
            for (id, seconds) in lastRedeemed where (state.lastRedeemed[id] ?? 0) < seconds {
                state.lastRedeemed[id] = seconds
            }
        }
    }

    /// Client id -> seconds since the epoch of its last token.
    public var lastRedeemed: [String: Int64] {
        self.mutable.withLockedValue { $0.lastRedeemed }
    }

    /// Writes the file if anything changed since the last write: temp file, fsync, rename.
    /// Called off the event loops (every second, and at stop).
    public func saveIfChanged(now: Int64 = Int64(Date().timeIntervalSince1970)) throws {
        guard let path = self.path else { return }
        let snapshot: (redeemed: [String: Int64], revoked: [String: Int64])? = self.mutable.withLockedValue { state in
            guard state.changed else { return nil }
            state.changed = false
            return (state.lastRedeemed, self.revoked.load(ordering: .acquiring).expiries)
        }
        guard let snapshot else { return }
        var text = "{\"last_redeemed\":{"
        for (index, (id, seconds)) in snapshot.redeemed.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { text += "," }
            text.appendJSONString(id)
            text += ":\"\(Self.formatTimestamp(seconds))\""
        }
        text += "},\"revoked\":{"
        for (index, (id, exp)) in snapshot.revoked.filter({ $0.value > now }).sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { text += "," }
            text.appendJSONString(id)
            text += ":\(exp)"
        }
        text += "}}\n"
        do {
            try DurableFile.write(Array(text.utf8), to: path)
        } catch {
            self.mutable.withLockedValue { $0.changed = true }
            throw error
        }
    }

    /// RFC 3339 UTC, seconds precision.
    public static func formatTimestamp(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    static func parseTimestamp(_ text: String) -> Int64? {
        let formatter = ISO8601DateFormatter()
        return formatter.date(from: text).map { Int64($0.timeIntervalSince1970) }
    }
}

/// Writes a whole file so that a crash leaves the old content or the new, never a mix: a
/// temporary file in the same directory, fsync, rename over the target, fsync the directory.
public enum DurableFile {
    public static func write(_ bytes: [UInt8], to path: String) throws(IssuerError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw IssuerError(.io, reason: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(temporary)
                throw IssuerError(.io, reason: "cannot write \(temporary): \(reason)")
            }
            offset += written
        }
        guard fsync(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            unlink(temporary)
            throw IssuerError(.io, reason: "cannot fsync \(temporary): \(reason)")
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw IssuerError(.io, reason: "cannot rename \(temporary) to \(path): \(reason)")
        }
        let dirFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }
}
