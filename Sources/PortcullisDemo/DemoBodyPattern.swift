import NIOCore

/// The bytes `/demo/stream` sends: byte `i` of a body is `UInt8(i % 251)`. A prime period keeps
/// chunk boundaries from lining up with the pattern, so a dropped or repeated chunk changes the
/// checksum.
public enum DemoBodyPattern {
    public static let period = 251
    /// Size of each body part `/demo/stream` writes.
    public static let chunkSize = 64 * 1024

    /// One chunk plus a period, so any chunk is a slice starting at `offset % period`.
    private static let source: ByteBuffer = {
        var buffer = ByteBufferAllocator().buffer(capacity: chunkSize + period)
        for index in 0..<(chunkSize + period) {
            buffer.writeInteger(UInt8(index % period))
        }
        return buffer
    }()

    /// Body bytes `offset ..< offset + length` (length at most `chunkSize`), sharing storage.
    static func slice(offset: Int64, length: Int) -> ByteBuffer {
        precondition(length <= self.chunkSize, "pattern slice of \(length) bytes exceeds one chunk")
        let phase = Int(offset % Int64(self.period))
        return self.source.getSlice(at: self.source.readerIndex + phase, length: length)!
    }
}

/// 64-bit FNV-1a, the checksum `/demo/upload` reports.
public struct FNV1a64: Sendable, Equatable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { self.update($0) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var hash = self.value
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        self.value = hash
    }

    /// Sixteen lower-case hex digits.
    public var hex: String {
        let digits = String(self.value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
