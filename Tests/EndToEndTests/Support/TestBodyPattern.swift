/// The body pattern the demo backend streams and the tests upload (byte `i` is `i % 251`), and
/// 64-bit FNV-1a, computed independently of the demo backend's own copy.
enum TestBodyPattern {
    static let period = 251

    /// `length` pattern bytes starting at body offset `offset`.
    static func bytes(offset: Int, length: Int) -> [UInt8] {
        var phase = offset % self.period
        var out = [UInt8](repeating: 0, count: length)
        for index in 0..<length {
            out[index] = UInt8(phase)
            phase = phase == self.period - 1 ? 0 : phase + 1
        }
        return out
    }

    /// The FNV-1a of the first `totalBytes` pattern bytes.
    static func fnv1a(totalBytes: Int) -> UInt64 {
        var hash = FNV1a()
        let block = self.bytes(offset: 0, length: self.period * 256)
        var remaining = totalBytes
        while remaining > 0 {
            let count = min(remaining, block.count)
            block.withUnsafeBytes { hash.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            remaining -= count
        }
        return hash.value
    }

    /// `fnv1a(totalBytes:)` as the sixteen hex digits `/demo/upload` reports.
    static func fnv1aHex(totalBytes: Int) -> String {
        FNV1a.hex(self.fnv1a(totalBytes: totalBytes))
    }
}

struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var hash = self.value
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        self.value = hash
    }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { self.update($0) }
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
