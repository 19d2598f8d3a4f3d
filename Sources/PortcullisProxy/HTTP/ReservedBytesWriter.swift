/// Writes a message head or an access-log line into memory reserved for it beforehand: one
/// capacity check per message (`ByteBuffer.writeWithUnsafeMutableBytes`) instead of one per
/// piece, which on the request path cost more than the copies themselves. Writing past the
/// reservation is a precondition failure.
struct ReservedBytesWriter {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    private(set) var count = 0

    init(_ memory: UnsafeMutableRawBufferPointer) {
        self.base = memory.baseAddress!
        self.capacity = memory.count
    }

    @inline(__always)
    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count <= self.capacity - self.count, "more bytes than the memory reserved for them")
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        (self.base + self.count).copyMemory(from: source, byteCount: bytes.count)
        self.count += bytes.count
    }

    @inline(__always)
    mutating func write(_ text: StaticString) {
        self.write(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inline(__always)
    mutating func write(_ text: String) {
        let done: Void? = text.utf8.withContiguousStorageIfAvailable { self.write(UnsafeRawBufferPointer($0)) }
        if done == nil {
            for byte in text.utf8 { self.write(byte: byte) }
        }
    }

    @inline(__always)
    mutating func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { self.write($0) }
    }

    @inline(__always)
    mutating func write(byte: UInt8) {
        precondition(self.count < self.capacity, "more bytes than the memory reserved for them")
        self.base.storeBytes(of: byte, toByteOffset: self.count, as: UInt8.self)
        self.count += 1
    }
}
