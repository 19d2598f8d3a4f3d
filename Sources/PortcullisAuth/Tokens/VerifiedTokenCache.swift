#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Verified tokens of one event loop (DESIGN.md): bounded, keyed by the token bytes, each entry
/// valid until its token's `exp` (+ leeway). Owned by one loop, so no locks.
///
/// A hit costs a hash of the token's last bytes (its signature, which no two tokens share by
/// accident) and one byte comparison of the whole token. Full, it forgets the oldest entry.
public struct VerifiedTokenCache {
    struct Key: Hashable {
        /// A slice of the request's `Authorization` value, kept alive by the entry.
        let token: Substring

        func hash(into hasher: inout Hasher) {
            let utf8 = self.token.utf8
            hasher.combine(utf8.count)
            for byte in utf8.suffix(24) { hasher.combine(byte) }
        }

        static func == (lhs: Key, rhs: Key) -> Bool {
            let a = lhs.token.utf8
            let b = rhs.token.utf8
            guard a.count == b.count else { return false }
            if a.isEmpty { return true }
            let equal = a.withContiguousStorageIfAvailable { x in
                b.withContiguousStorageIfAvailable { y in
                    memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
                }
            }
            return equal.flatMap { $0 } ?? a.elementsEqual(b)
        }
    }

    public let capacity: Int
    private var entries: [Key: VerifiedIdentity] = [:]
    /// Insertion order, for eviction: a ring of `capacity` slots.
    private var order: [Key?]
    private var next = 0
    public private(set) var hits = 0
    public private(set) var misses = 0

    public init(capacity: Int) {
        self.capacity = max(0, capacity)
        self.order = []
    }

    public var count: Int { self.entries.count }

    /// The identity of a token verified before and still valid at `now`.
    public mutating func lookup(_ token: Substring, now: Int64) -> VerifiedIdentity? {
        guard let identity = self.entries[Key(token: token)] else {
            self.misses += 1
            return nil
        }
        guard now < identity.validUntil else {
            self.entries[Key(token: token)] = nil
            self.misses += 1
            return nil
        }
        self.hits += 1
        return identity
    }

    public mutating func insert(_ token: Substring, _ identity: VerifiedIdentity) {
        guard self.capacity > 0 else { return }
        let key = Key(token: token)
        if self.order.isEmpty { self.order = Array(repeating: nil, count: self.capacity) }
        if self.entries.updateValue(identity, forKey: key) != nil { return }
        if let old = self.order[self.next] { self.entries[old] = nil }
        self.order[self.next] = key
        self.next = (self.next + 1) % self.capacity
    }

    /// A new configuration: identities verified under the old one are not reused.
    public mutating func removeAll() {
        self.entries.removeAll()
        self.order = []
        self.next = 0
    }
}
