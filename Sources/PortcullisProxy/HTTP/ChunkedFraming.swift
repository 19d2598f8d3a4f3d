import NIOCore

/// `Transfer-Encoding: chunked` framing for bodies the gateway re-frames (request bodies sent
/// chunked, response bodies of unknown length to HTTP/1.1 clients). Data buffers pass through
/// untouched; only the few bytes around them are written here.
enum ChunkedFraming {
    static let crlf = ByteBuffer(string: "\r\n")
    static let lastChunk = ByteBuffer(string: "0\r\n\r\n")

    /// The chunk-size line for `size` bytes of data.
    static func sizeLine(_ size: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var line = allocator.buffer(capacity: 18)
        let digits: StaticString = "0123456789abcdef"
        var shift = (Int.bitWidth - size.leadingZeroBitCount + 3) / 4 * 4 - 4
        if shift < 0 { shift = 0 }
        while shift >= 0 {
            line.writeInteger(digits.utf8Start[(size >> shift) & 0xF])
            shift -= 4
        }
        line.writeStaticString("\r\n")
        return line
    }
}
