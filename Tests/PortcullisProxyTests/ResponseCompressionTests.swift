import CZlib
import Foundation
import NIOCore
import PortcullisPolicy
import Testing

@testable import PortcullisProxy

@Suite struct AcceptEncodingTests {
    static func preferred(_ value: String) -> ContentCoding? {
        Array(value.utf8).withUnsafeBytes { AcceptEncoding.preferred($0) }
    }

    @Test(arguments: [
        ("gzip", ContentCoding.gzip),
        ("deflate, gzip", .gzip),
        ("br, deflate", .deflate),
        ("GZIP;q=0.5", .gzip),
        ("gzip;q=0, deflate", .deflate),
        ("gzip; q=0.000, deflate;q=0.1", .deflate),
        ("x-gzip", .gzip),
        ("*", .gzip),
        ("*;q=0.2, gzip;q=0", .deflate),
        ("gzip ; q=1.0", .gzip),
    ])
    func accepted(value: String, coding: ContentCoding) {
        #expect(Self.preferred(value) == coding, "\(value)")
    }

    @Test(arguments: ["", "identity", "br", "gzip;q=0", "gzip;q=0.0, deflate;q=0", "*;q=0", "gzipx, deflatey", "br, *;q=0"])
    func refused(value: String) {
        #expect(Self.preferred(value) == nil, "\(value)")
    }

    @Test func requestParserReadsItWhenAsked() throws {
        var parser = RequestParser(maxHeadBytes: 8192)
        parser.readsAcceptEncoding = true
        let request = "GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br;q=1, deflate\r\n\r\n"
        var bytes = ByteBuffer(string: request + request)
        for _ in 0..<2 {
            guard case .head(let head) = try parser.next(&bytes) else {
                Issue.record("no head")
                return
            }
            #expect(head.acceptEncoding == .deflate)
            #expect(try parser.next(&bytes).map { if case .end = $0 { true } else { false } } == true)
        }
        // Compression off: not read at all.
        var off = RequestParser(maxHeadBytes: 8192)
        var again = ByteBuffer(string: request)
        guard case .head(let unread) = try off.next(&again) else {
            Issue.record("no head")
            return
        }
        #expect(unread.acceptEncoding == nil)
        var plain = RequestParser(maxHeadBytes: 8192)
        plain.readsAcceptEncoding = true
        var other = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        guard case .head(let none) = try plain.next(&other) else {
            Issue.record("no head")
            return
        }
        #expect(none.acceptEncoding == nil)
    }
}

/// zlib's own inflate, for round trips; windowBits 47 detects a gzip or zlib wrapper.
func inflateAll(_ data: [UInt8], windowBits: Int32 = 47) -> [UInt8]? {
    var stream = z_stream()
    guard czlib_inflateInit2(&stream, windowBits) == Z_OK else { return nil }
    defer { inflateEnd(&stream) }
    var out: [UInt8] = []
    var input = data
    var finished = false
    input.withUnsafeMutableBufferPointer { inp in
        stream.next_in = inp.baseAddress
        stream.avail_in = UInt32(inp.count)
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let rc = chunk.withUnsafeMutableBufferPointer { c -> Int32 in
                stream.next_out = c.baseAddress
                stream.avail_out = UInt32(c.count)
                return inflate(&stream, Z_NO_FLUSH)
            }
            out += chunk[0..<(16384 - Int(stream.avail_out))]
            if rc == Z_STREAM_END { finished = true; break }
            if rc != Z_OK { break }
            if stream.avail_in == 0 && stream.avail_out != 0 { break }
        }
    }
    return finished ? out : nil
}

@Suite struct ResponseCompressorTests {
    static func body(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(ascii: "a") + UInt8(($0 * 7 + $0 / 13) % 26) }
    }

    @Test(arguments: [ContentCoding.gzip, .deflate])
    func roundTripInPiecesWithSyncFlushes(coding: ContentCoding) throws {
        let input = Self.body(200_000)
        let compressor = try #require(ResponseCompressor(coding, allocator: ByteBufferAllocator()))
        var output: [UInt8] = []
        var offset = 0
        while offset < input.count {
            let end = min(offset + 7000, input.count)
            compressor.write(ByteBuffer(bytes: input[offset..<end]))
            offset = end
            if offset % 21000 == 0, let flushed = compressor.flush() {
                output += flushed.readableBytesView
                // Everything so far decodes: a sync flush ends on a byte boundary.
                #expect(flushed.readableBytes > 0)
            }
        }
        if let last = compressor.finish() { output += last.readableBytesView }
        #expect(output.count < input.count / 2)
        if coding == .gzip { #expect(output.prefix(2) == [0x1F, 0x8B]) } else { #expect(output[0] & 0x0F == 8) }
        let decoded = try #require(inflateAll(output, windowBits: coding.windowBits))
        #expect(decoded == input)
    }

    @Test func emptyBodyIsAValidStream() throws {
        let compressor = try #require(ResponseCompressor(.gzip, allocator: ByteBufferAllocator()))
        #expect(compressor.flush() != nil)  // a sync flush writes the gzip header and an empty block
        let compressor2 = try #require(ResponseCompressor(.gzip, allocator: ByteBufferAllocator()))
        let last = try #require(compressor2.finish())
        #expect(inflateAll(Array(last.readableBytesView)) == [])
    }

    @Test func abandonedAndFinishedStreamsAreFreed() throws {
        // Each stream holds about 256 KiB of zlib state: 3000 of them leaked grow the resident
        // set by ~200 MiB (freed, the same heap is reused). deinit runs deflateEnd for a stream
        // never finished (an aborted exchange); finish runs it for the others.
        let input = ByteBuffer(bytes: Self.body(5000))
        let before = Self.residentBytes()
        for index in 0..<3000 {
            let compressor = try #require(ResponseCompressor(index % 2 == 0 ? .deflate : .gzip, allocator: ByteBufferAllocator()))
            compressor.write(input)
            _ = compressor.flush()
            if index % 3 == 0 { _ = compressor.finish() }
        }
        let after = Self.residentBytes()
        #expect(after < before + 64 * 1024 * 1024, "resident set grew by \(after - before) bytes")
    }

    static func residentBytes() -> Int {
        let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        let pages = statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return pages * 4096
    }
}

@Suite struct CompressionSettingsTests {
    static let settings = CompressionSettings(CompressionConfig(enabled: true, minBytes: 1024, types: CompressionConfig.defaultTypes))!

    static func head(_ headers: String, status: Int = 200, length: Int? = 5000) -> UpstreamResponseHead {
        var text = "HTTP/1.1 \(status) X\r\n" + headers
        if let length { text += "Content-Length: \(length)\r\n" }
        text += "\r\n"
        return UpstreamResponseHead(
            status: status, isHTTP10: false, bytes: ByteBuffer(string: text), contentLength: length, chunked: length == nil,
            connectionClose: false, connectionKeepAlive: false, connectionNamesHeaders: false
        )
    }

    @Test func offMeansNoSettings() {
        #expect(CompressionSettings(CompressionConfig()) == nil)
    }

    @Test func allowed() {
        #expect(Self.settings.allows(Self.head("Content-Type: application/json; charset=utf-8\r\n")))
        #expect(Self.settings.allows(Self.head("content-type: TEXT/HTML\r\n")))
        #expect(Self.settings.allows(Self.head("Content-Type: image/svg+xml\r\n", status: 201)))
        #expect(Self.settings.allows(Self.head("Content-Type: application/json\r\n", length: nil)))
        #expect(Self.settings.allows(Self.head("Content-Type: application/json\r\n", length: 1024)))
    }

    @Test func refused() {
        #expect(!Self.settings.allows(Self.head("Content-Type: application/json\r\n", length: 1023)))
        #expect(!Self.settings.allows(Self.head("Content-Type: application/octet-stream\r\n")))
        #expect(!Self.settings.allows(Self.head("Content-Type: text/event-stream\r\n", length: nil)))
        #expect(!Self.settings.allows(Self.head("Content-Type: application/json\r\nContent-Encoding: gzip\r\n")))
        #expect(!Self.settings.allows(Self.head("Content-Type: application/json\r\nCache-Control: public, no-transform\r\n")))
        #expect(!Self.settings.allows(Self.head("X-Other: 1\r\n")))
        #expect(!Self.settings.allows(Self.head("Content-Type: application/json\r\n", status: 206)))
        #expect(!Self.settings.allows(Self.head("Content-Type: application/json\r\n", status: 204)))
        #expect(!Self.settings.allows(Self.head("Content-Type: application/json\r\n", status: 404)))
        #expect(!Self.settings.allows(Self.head("Content-Type: application/json\r\n", status: 304)))
    }

    @Test func eventStreamIsNeverCompressedEvenWhenListed() {
        let all = CompressionSettings(CompressionConfig(enabled: true, minBytes: 0, types: ["text/*"]))!
        #expect(!all.allows(Self.head("Content-Type: text/event-stream\r\n", length: nil)))
        #expect(all.allows(Self.head("Content-Type: text/plain\r\n", length: nil)))
    }
}

@Suite struct CompressedDownstreamHeadTests {
    @Test func contentLengthDroppedEncodingAndVaryAdded() {
        let head = CompressionSettingsTests.head("Content-Type: application/json\r\nVary: Origin\r\nETag:  \"abc\"\r\n")
        var out = ByteBuffer()
        HeaderRewriter.writeDownstreamHead(head, http10: false, requestID: "r1", chunked: true, close: false, encoding: .gzip, into: &out)
        let text = String(buffer: out)
        #expect(!text.lowercased().contains("content-length"))
        #expect(text.contains("Content-Encoding: gzip\r\n"))
        #expect(text.contains("Vary: Origin\r\n"))
        #expect(text.contains("ETag: W/\"abc\"\r\n"))
        #expect(text.contains("Vary: Accept-Encoding\r\n"))
        #expect(text.contains("Transfer-Encoding: chunked\r\n"))
        #expect(text.hasSuffix("\r\n\r\n"))
    }
}

@Suite struct UncompressedDownstreamHeadTests {
    @Test func headersAreCopiedAsTheyCame() {
        let head = CompressionSettingsTests.head("ETag: \"abc\"\r\n")
        var out = ByteBuffer()
        HeaderRewriter.writeDownstreamHead(head, http10: false, requestID: "r1", chunked: false, close: false, into: &out)
        let text = String(buffer: out)
        #expect(text.contains("ETag: \"abc\"\r\nContent-Length: 5000\r\n"))
        #expect(!text.contains("Content-Encoding"))
    }
}
