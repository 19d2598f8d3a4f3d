import Atomics
import PortcullisPolicy

/// The credential the gateway presents upstream now (`upstream.auth`), read by every event loop
/// and swapped whole by its refresher (a token fetch, or a changed header value file).
///
/// The request path calls ``headerLine(atUptimeNanoseconds:)``: one atomic load of a strong
/// reference, no lock, no `async`. The value is the whole header line, pre-rendered as bytes
/// (`Authorization: Bearer ...\r\n` or `Name: value\r\n`), so a request copies it as it is.
public final class UpstreamCredential: Sendable {
    final class Snapshot: AtomicReference, Sendable {
        let line: [UInt8]?
        /// Monotonic (uptime) nanoseconds after which `line` is not sent; `.max` never expires.
        let validUntil: UInt64

        init(line: [UInt8]?, validUntil: UInt64) {
            self.line = line
            self.validUntil = validUntil
        }
    }

    /// What this credential was made from; an unchanged `upstream.auth` keeps its credential
    /// (and its token) across reloads.
    public let config: UpstreamAuthConfig
    /// The lowercased name of the header it is sent in; client-sent copies are dropped.
    public let headerName: String
    private let snapshot: ManagedAtomic<Snapshot>
    /// Opens after the first attempt to obtain the value, whatever its outcome.
    let firstAttempt = AsyncLatch()

    init(config: UpstreamAuthConfig) {
        self.config = config
        self.headerName = config.headerName
        self.snapshot = ManagedAtomic(Snapshot(line: nil, validUntil: 0))
    }

    /// The header line to send, or nil when there is no valid credential now (never fetched,
    /// or expired while refreshes fail): the request then gets 502 at once.
    @inline(__always)
    public func headerLine(atUptimeNanoseconds now: UInt64) -> [UInt8]? {
        let current = self.snapshot.load(ordering: .acquiring)
        guard now < current.validUntil else { return nil }
        return current.line
    }

    /// Whether a value is there and valid at `now`.
    public func isAvailable(atUptimeNanoseconds now: UInt64) -> Bool {
        self.headerLine(atUptimeNanoseconds: now) != nil
    }

    /// Sends `Name: value` from now on, until `validUntil` (uptime nanoseconds).
    func publish(name: String, value: String, validUntil: UInt64) {
        self.snapshot.store(Snapshot(line: Array("\(name): \(value)\r\n".utf8), validUntil: validUntil), ordering: .releasing)
    }

    /// Sends `Authorization: Bearer <token>` from now on, until `validUntil`.
    func publish(bearer token: String, validUntil: UInt64) {
        self.publish(name: "Authorization", value: "Bearer \(token)", validUntil: validUntil)
    }

    /// A credential with a fixed value, for tests of the request path.
    public static func fixed(_ config: UpstreamAuthConfig, value: String) -> UpstreamCredential {
        let credential = UpstreamCredential(config: config)
        switch config {
        case .header(let header): credential.publish(name: header.name, value: value, validUntil: .max)
        case .clientCredentials: credential.publish(bearer: value, validUntil: .max)
        }
        credential.firstAttempt.open()
        return credential
    }
}

extension UpstreamCredential {
    /// The header to send now as a name and a value, for fetches made off the request path
    /// (the tenant directory); nil when there is no valid credential.
    public func header(atUptimeNanoseconds now: UInt64) -> (name: String, value: String)? {
        guard let line = self.headerLine(atUptimeNanoseconds: now), let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            return nil
        }
        let name = String(decoding: line[..<colon], as: UTF8.self)
        var value = line[(colon + 1)...]
        while value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        while value.last == UInt8(ascii: "\n") || value.last == UInt8(ascii: "\r") { value = value.dropLast() }
        return (name, String(decoding: value, as: UTF8.self))
    }
}
