import CZlib
import NIOCore
import PortcullisPolicy

/// A content coding the gateway can apply to a response body.
enum ContentCoding: UInt8, Sendable {
    case gzip
    case deflate

    /// `deflateInit2` window bits: 31 writes a gzip wrapper, 15 a zlib (RFC 1950) one, which
    /// is what HTTP's `deflate` means.
    var windowBits: Int32 { self == .gzip ? 31 : 15 }

    var headerLine: StaticString {
        self == .gzip ? "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n" : "Content-Encoding: deflate\r\nVary: Accept-Encoding\r\n"
    }
}

/// `Accept-Encoding` (RFC 9110 12.5.3), read once per request by the parser: the coding the
/// gateway would use, gzip preferred over deflate, neither when refused with `q=0`.
enum AcceptEncoding {
    static func preferred(_ value: UnsafeRawBufferPointer) -> ContentCoding? {
        // nil: not mentioned; else acceptable or not.
        var gzip: Bool?
        var deflate: Bool?
        var star: Bool?
        HTTPSyntax.forEachListElement(value) { element in
            var end = 0
            while end < element.count && element[end] != UInt8(ascii: ";") { end += 1 }
            var nameEnd = end
            while nameEnd > 0 && (element[nameEnd - 1] == 0x20 || element[nameEnd - 1] == 0x09) { nameEnd -= 1 }
            let name = UnsafeRawBufferPointer(rebasing: element[0..<nameEnd])
            let accepted = end == element.count ? true : Self.qIsNonZero(UnsafeRawBufferPointer(rebasing: element[(end + 1)...]))
            switch name.count {
            case 1 where name[0] == UInt8(ascii: "*"): star = accepted
            case 4 where HeaderName.equals(name, "gzip"): gzip = accepted
            case 6 where HeaderName.equals(name, "x-gzip"): if gzip == nil { gzip = accepted }
            case 7 where HeaderName.equals(name, "deflate"): deflate = accepted
            default: break
            }
        }
        if gzip ?? star ?? false { return .gzip }
        if deflate ?? star ?? false { return .deflate }
        return nil
    }

    /// The parameters after a coding: false only for a `q` of zero (`q=0`, `q=0.0`, `q=0.000`).
    private static func qIsNonZero(_ params: UnsafeRawBufferPointer) -> Bool {
        var result = true
        var start = 0
        while start < params.count {
            var end = start
            while end < params.count && params[end] != UInt8(ascii: ";") { end += 1 }
            var a = start
            while a < end && (params[a] == 0x20 || params[a] == 0x09) { a += 1 }
            if a + 1 < end, params[a] | 0x20 == UInt8(ascii: "q") {
                var i = a + 1
                while i < end && (params[i] == 0x20 || params[i] == 0x09) { i += 1 }
                if i < end && params[i] == UInt8(ascii: "=") {
                    i += 1
                    while i < end && (params[i] == 0x20 || params[i] == 0x09) { i += 1 }
                    var nonZero = false
                    var digits = 0
                    while i < end {
                        let byte = params[i]
                        if byte >= UInt8(ascii: "1") && byte <= UInt8(ascii: "9") { nonZero = true }
                        if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") { digits += 1 }
                        i += 1
                    }
                    result = digits == 0 ? true : nonZero
                }
            }
            start = end + 1
        }
        return result
    }
}

/// `compression:` as the request path uses it: present only when enabled.
struct CompressionSettings: Sendable {
    let minBytes: Int
    /// Exact `type/subtype` entries.
    let exact: Set<String>
    /// `type/*` entries, as `type/`.
    let prefixes: [String]

    init?(_ config: CompressionConfig) {
        guard config.enabled else { return nil }
        self.minBytes = config.minBytes
        self.exact = Set(config.types.filter { !$0.hasSuffix("/*") })
        self.prefixes = config.types.filter { $0.hasSuffix("/*") }.map { String($0.dropLast()) }
    }

    /// The upstream response head allows compressing its body: a 2xx other than 204 and 206,
    /// no `Content-Encoding`, no `Cache-Control: no-transform`, a listed media type (never
    /// `text/event-stream`), and a `Content-Length`, if any, of at least `min_bytes`.
    func allows(_ head: UpstreamResponseHead) -> Bool {
        guard head.status >= 200 && head.status < 300 && head.status != 204 && head.status != 206 else { return false }
        if let length = head.contentLength, length < self.minBytes { return false }
        var mediaType: String?
        var refused = false
        head.bytes.withUnsafeReadableBytes { p in
            var index = 0
            while p[index] != 0x0A { index += 1 }
            index += 1
            while p[index] != 0x0D && !refused {
                var lineEnd = index
                while p[lineEnd] != 0x0A { lineEnd += 1 }
                lineEnd += 1
                var colon = index
                while p[colon] != UInt8(ascii: ":") { colon += 1 }
                let name = UnsafeRawBufferPointer(rebasing: p[index..<colon])
                switch name.count {
                case 12 where HeaderName.equals(name, "content-type"):
                    var a = colon + 1
                    while a < lineEnd && (p[a] == 0x20 || p[a] == 0x09) { a += 1 }
                    var b = a
                    while b < lineEnd - 2 && p[b] != UInt8(ascii: ";") { b += 1 }
                    while b > a && (p[b - 1] == 0x20 || p[b - 1] == 0x09) { b -= 1 }
                    if mediaType == nil {
                        mediaType = String(decoding: UnsafeRawBufferPointer(rebasing: p[a..<b]), as: UTF8.self).lowercased()
                    } else {
                        refused = true  // two Content-Types: ambiguous, left alone
                    }
                case 16 where HeaderName.equals(name, "content-encoding"):
                    refused = true
                case 13 where HeaderName.equals(name, "cache-control"):
                    HTTPSyntax.forEachListElement(UnsafeRawBufferPointer(rebasing: p[(colon + 1)..<(lineEnd - 2)])) { token in
                        if HeaderName.equals(token, "no-transform") { refused = true }
                    }
                default:
                    break
                }
                index = lineEnd
            }
        }
        guard !refused, let mediaType, mediaType != "text/event-stream" else { return false }
        if self.exact.contains(mediaType) { return true }
        return self.prefixes.contains { mediaType.hasPrefix($0) }
    }
}

/// One response body's deflate stream (the system zlib). `deflateEnd` runs when the stream
/// finishes or, for an exchange cut short, when the compressor is released.
final class ResponseCompressor {
    private let stream: UnsafeMutablePointer<z_stream>
    private var isOpen: Bool
    /// Compressed bytes not yet written: one chunk per upstream read burst.
    private var pending: ByteBuffer
    private let allocator: ByteBufferAllocator

    /// Level 6, zlib's default balance of size and CPU.
    init?(_ coding: ContentCoding, level: Int32 = 6, allocator: ByteBufferAllocator) {
        self.stream = .allocate(capacity: 1)
        self.stream.initialize(to: z_stream())
        self.allocator = allocator
        self.pending = allocator.buffer(capacity: 0)
        guard czlib_deflateInit2(self.stream, level, coding.windowBits) == Z_OK else {
            self.stream.deinitialize(count: 1)
            self.stream.deallocate()
            return nil
        }
        self.isOpen = true
    }

    deinit {
        self.end()
        self.stream.deinitialize(count: 1)
        self.stream.deallocate()
    }

    /// Frees zlib's state now (idempotent).
    func end() {
        if self.isOpen {
            self.isOpen = false
            deflateEnd(self.stream)
        }
    }

    /// Compresses `input` into the pending output (zlib may hold some of it back).
    func write(_ input: ByteBuffer) {
        self.run(input, flush: Z_NO_FLUSH)
    }

    /// Everything so far, decodable by the client now (`Z_SYNC_FLUSH`); nil when there is none.
    func flush() -> ByteBuffer? {
        self.run(nil, flush: Z_SYNC_FLUSH)
        return self.takePending()
    }

    /// The stream's last bytes (`Z_FINISH`); zlib's state is freed.
    func finish() -> ByteBuffer? {
        self.run(nil, flush: Z_FINISH)
        self.end()
        return self.takePending()
    }

    private func takePending() -> ByteBuffer? {
        guard self.pending.readableBytes > 0 else { return nil }
        let out = self.pending
        // A fresh buffer next time: the one handed out is now owned by the write.
        self.pending = self.allocator.buffer(capacity: 0)
        return out
    }

    private func run(_ input: ByteBuffer?, flush: Int32) {
        guard self.isOpen else { return }
        let stream = self.stream
        func loop(_ next: UnsafeMutablePointer<UInt8>?, _ count: Int) {
            stream.pointee.next_in = next
            stream.pointee.avail_in = UInt32(count)
            repeat {
                let room = max(Int(deflateBound(stream, UInt(count))) + 16, 1024)
                self.pending.writeWithUnsafeMutableBytes(minimumWritableBytes: min(room, 64 * 1024)) { out in
                    stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    stream.pointee.avail_out = UInt32(out.count)
                    _ = deflate(stream, flush)
                    return out.count - Int(stream.pointee.avail_out)
                }
            } while stream.pointee.avail_out == 0
            stream.pointee.next_in = nil
            stream.pointee.avail_in = 0
        }
        if let input {
            guard input.readableBytes > 0 else { return }
            input.withUnsafeReadableBytes { p in
                loop(UnsafeMutablePointer(mutating: p.baseAddress!.assumingMemoryBound(to: UInt8.self)), p.count)
            }
        } else {
            loop(nil, 0)
        }
    }
}
