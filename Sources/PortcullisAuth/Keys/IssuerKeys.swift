import Atomics
import Foundation
import NIOConcurrencyHelpers

/// One issuer's current verification keys, read by every event loop and swapped whole by a
/// refresh (or a reload, for a `jwks_file`).
///
/// The request path reads ``current`` with no lock: an atomic strong reference (two
/// compare-and-swaps on one double word and a retain), small next to one signature check and
/// not paid at all on a verified-token cache hit. ``generation`` is one plain atomic load, so a
/// per-event-loop cache can notice a swap cheaply, e.g. to drop tokens verified under a key
/// the IdP has withdrawn.
///
/// Sets from ``IssuerKeyManager`` for `jwks_url` and discovery issuers refresh in the
/// background; ``unknownKeyID(_:)`` asks for an early fetch. Sets made with
/// ``init(issuerName:keys:)`` never refresh by themselves.
public final class IssuerKeys: Sendable {
    private final class Box: AtomicReference, Sendable {
        let keys: JWKSet

        init(_ keys: JWKSet) {
            self.keys = keys
        }
    }

    private struct Status {
        var lastRefresh: Date?
        var lastError: KeySetError?
    }

    /// `issuers[].name` of the issuer these keys belong to.
    public let issuerName: String
    private let box: ManagedAtomic<Box>
    private let generationCounter = ManagedAtomic<UInt64>(0)
    private let refreshes = ManagedAtomic<Int>(0)
    private let failures = ManagedAtomic<Int>(0)
    private let status = NIOLockedValueBox(Status())
    /// Nil for sets that do not refresh.
    let gate: EarlyRefreshGate?

    /// A set that changes only through ``replace(with:)``: a `jwks_file` issuer, or tests.
    public convenience init(issuerName: String, keys: JWKSet) {
        self.init(issuerName: issuerName, keys: keys, gate: nil)
        self.recordSuccess()
    }

    init(issuerName: String, keys: JWKSet, gate: EarlyRefreshGate?) {
        self.issuerName = issuerName
        self.box = ManagedAtomic(Box(keys))
        self.gate = gate
    }

    /// The keys to verify with now. A request reads this once and keeps the value it got.
    public var current: JWKSet {
        self.box.load(ordering: .acquiring).keys
    }

    /// Counts swaps of ``current``: a change means the set may differ. Starts at 0.
    public var generation: UInt64 {
        self.generationCounter.load(ordering: .acquiring)
    }

    /// Swaps in `keys` for every later reader.
    public func replace(with keys: JWKSet) {
        self.box.store(Box(keys), ordering: .releasing)
        self.generationCounter.wrappingIncrement(ordering: .releasing)
    }

    /// Tells the refresher that a token named `keyID` and ``current`` has no such key.
    ///
    /// Called on the request path; returns at once. The first call after at least 30 seconds
    /// (``IssuerKeyManager/Configuration/unknownKeyIDInterval``) since the last accepted one
    /// wakes the refresher for an immediate fetch, unless `keyID` stayed unknown after an
    /// earlier such fetch (``IssuerKeyManager/Configuration/negativeCacheTTL``). The token
    /// itself is still refused: it may be retried once the new set is in.
    public func unknownKeyID(_ keyID: String) {
        self.gate?.request(keyID)
    }

    /// When a fetch (or, for a file, the load) last gave a valid set, changed or not.
    public var lastRefresh: Date? {
        self.status.withLockedValue { $0.lastRefresh }
    }

    /// Why the latest fetch failed; nil once a fetch succeeds again.
    public var lastError: KeySetError? {
        self.status.withLockedValue { $0.lastError }
    }

    /// Fetches (or loads) that gave a valid set.
    public var refreshCount: Int {
        self.refreshes.load(ordering: .relaxed)
    }

    /// Fetches that failed; the last good set stayed in use.
    public var failureCount: Int {
        self.failures.load(ordering: .relaxed)
    }

    /// Early fetches asked for by ``unknownKeyID(_:)`` and let through by the rate limit.
    public var unknownKeyIDRefreshCount: Int {
        self.gate?.acceptedCount ?? 0
    }

    func recordSuccess() {
        self.status.withLockedValue { status in
            status.lastRefresh = Date()
            status.lastError = nil
        }
        self.refreshes.wrappingIncrement(ordering: .relaxed)
    }

    func recordFailure(_ error: KeySetError) {
        self.status.withLockedValue { $0.lastError = error }
        self.failures.wrappingIncrement(ordering: .relaxed)
    }
}
