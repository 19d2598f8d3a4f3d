/// Makes request ids: 32 lowercase hex digits (128 bits, the shape of a W3C trace id).
///
/// One generator per event loop: SplitMix64 over a randomly seeded counter, so ids are unique
/// without a syscall or a lock per request. Ids need uniqueness, not secrecy.
struct RequestIDGenerator {
    private var state: UInt64

    init() {
        var random = SystemRandomNumberGenerator()
        self.state = random.next()
    }

    init(seed: UInt64) {
        self.state = seed
    }

    /// A W3C parent (span) id: 64 bits, never zero.
    mutating func makeSpanID() -> UInt64 {
        let value = self.next()
        return value == 0 ? 1 : value
    }

    private mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func make() -> String {
        let high = self.next()
        let low = self.next()
        return String(unsafeUninitializedCapacity: 32) { buffer in
            let digits: StaticString = "0123456789abcdef"
            let table = digits.utf8Start
            for i in 0..<16 {
                buffer[i] = table[Int((high >> UInt64(60 - 4 * i)) & 0xF)]
                buffer[16 + i] = table[Int((low >> UInt64(60 - 4 * i)) & 0xF)]
            }
            return 32
        }
    }
}
