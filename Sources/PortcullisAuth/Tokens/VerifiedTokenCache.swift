#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Verified tokens of one event loop (DESIGN.md): bounded, keyed by the token bytes, each entry
/// valid until its token's `exp` (+ leeway). Owned by one loop, so no locks.
///
/// A hit costs a hash of the token's last bytes (its signature, which no two tokens share by
/// accident) and one byte comparison of the whole token.
///
/// Once full, a token is admitted only on its second miss within a short memory (a
/// "doorkeeper" of recent miss digests, as in TinyLFU), and then replaces the oldest entry. A
/// stream of more distinct tokens than slots therefore keeps a stable part of them cached
/// instead of evicting every entry before its next use; a token used once never displaces one
/// in use.
public struct VerifiedTokenCache {
    /// The last JOSE header this loop parsed, for the verifier (not a cache of verdicts).
    public var headers = JOSEHeaderMemo()

    struct Key: Hashable {
        /// A slice of the request's `Authorization` value, kept alive by the entry.
        let token: Substring
        /// Computed once from the token's length and last 16 bytes (its signature, which no two
        /// verified tokens share by accident): the dictionary rehashes keys when it moves them,
        /// so hashing must not walk the token.
        let digest: UInt64

        init(token: Substring) {
            self.token = token
            self.digest = Self.digest(token)
        }

        private static func digest(_ token: Substring) -> UInt64 {
            let count = token.utf8.count
            let tail = token.utf8.withContiguousStorageIfAvailable { bytes -> (UInt64, UInt64) in
                guard bytes.count >= 16 else { return Self.fold(bytes) }
                let raw = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[(bytes.count - 16)...]))
                return (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            } ?? Array(token.utf8.suffix(16)).withUnsafeBufferPointer { Self.fold($0) }
            return tail.0 &* 0x9E37_79B9_7F4A_7C15 ^ tail.1 ^ UInt64(truncatingIfNeeded: count)
        }

        private static func fold(_ bytes: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64) {
            var a: UInt64 = 0
            for byte in bytes { a = a &* 31 &+ UInt64(byte) }
            return (a, 0)
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(self.digest)
        }

        static func == (lhs: Key, rhs: Key) -> Bool {
            guard lhs.digest == rhs.digest else { return false }
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
    /// Digests of recent misses that were not admitted, one per slot (power-of-two count).
    private var doorkeeper: [UInt64] = []
    public private(set) var hits = 0
    public private(set) var misses = 0

    public init(capacity: Int) {
        self.capacity = max(0, capacity)
        self.order = []
    }

    public var count: Int { self.entries.count }

    /// The identity of a token verified before and still valid at `now`.
    public mutating func lookup(_ token: Substring, now: Int64) -> VerifiedIdentity? {
        let key = Key(token: token)
        guard let identity = self.entries[key] else {
            self.misses += 1
            return nil
        }
        guard now < identity.validUntil else {
            self.entries[key] = nil
            self.misses += 1
            return nil
        }
        self.hits += 1
        return identity
    }

    public mutating func insert(_ token: Substring, _ identity: VerifiedIdentity) {
        guard self.capacity > 0 else { return }
        let key = Key(token: token)
        if self.order.isEmpty {
            self.order = Array(repeating: nil, count: self.capacity)
            var slots = 1
            while slots < self.capacity { slots <<= 1 }
            self.doorkeeper = Array(repeating: 0, count: slots)
        }
        if self.entries.count >= self.capacity && self.entries[key] == nil {
            let slot = Int(truncatingIfNeeded: key.digest) & (self.doorkeeper.count - 1)
            guard self.doorkeeper[slot] == key.digest else {
                self.doorkeeper[slot] = key.digest
                return
            }
            self.doorkeeper[slot] = 0
        }
        if self.entries.updateValue(identity, forKey: key) != nil { return }
        if let old = self.order[self.next] { self.entries[old] = nil }
        self.order[self.next] = key
        self.next = (self.next + 1) % self.capacity
    }

    /// A new configuration: identities verified under the old one are not reused.
    public mutating func removeAll() {
        self.entries.removeAll()
        self.order = []
        self.doorkeeper = []
        self.next = 0
    }
}
