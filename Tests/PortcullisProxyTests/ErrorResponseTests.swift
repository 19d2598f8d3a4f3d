import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import PortcullisProxy

@Suite struct ErrorResponseTests {
    static let requestID = "0123456789abcdef0123456789abcdef"

    static func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        let data = Data(buffer.readableBytesView)
        let object = try JSONSerialization.jsonObject(with: data)
        return try #require(object as? [String: Any], "not a JSON object: \(String(buffer: buffer))")
    }

    @Test(arguments: [
        ErrorResponse.badRequest("path climbs above /"), .headerTooLarge, .requestTimeout, .badGateway,
        .gatewayTimeout, .draining, .expectationFailed,
    ])
    func bodyIsJSONWithErrorDescriptionAndRequestID(response: ErrorResponse) throws {
        let body = response.body(requestID: Self.requestID, allocator: ByteBufferAllocator())
        let object = try Self.json(body)
        #expect(Set(object.keys) == ["error", "error_description", "request_id"])
        #expect(object["error"] as? String == response.error.description)
        #expect(object["error_description"] as? String == response.description)
        #expect(object["request_id"] as? String == Self.requestID)
        #expect(String(buffer: body).hasSuffix("}\n"))
    }

    @Test(arguments: [
        "say \"hi\"",
        "back\\slash \\\"",
        "line\nbreak\r\ttab",
        "nul\u{0} bell\u{7} esc\u{1B} unit\u{1F} del\u{7F}",
        "unicode: é ü ✓ 🚪 \u{2028}",
        "</script><!--",
        "",
    ])
    func descriptionIsEscaped(description: String) throws {
        let body = ErrorResponse.badRequest(description).body(requestID: Self.requestID, allocator: ByteBufferAllocator())
        let object = try Self.json(body)
        #expect(object["error_description"] as? String == description)
        let raw = Array(body.readableBytesView)
        // No raw control character reaches the wire; the final newline is the body's own.
        #expect(!raw.dropLast().contains { $0 < 0x20 || $0 == 0x7F }, "\(String(buffer: body))")
    }

    @Test func controlCharactersUseTheShortOrUnicodeEscapes() {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        buffer.writeJSONString("\"\\\n\r\t\u{0}\u{1F}\u{7F}a")
        #expect(String(buffer: buffer) == #""\"\\\n\r\t\u0000\u001f\u007fa""#)
    }

    /// Splits raw bytes into the head's lines and the body.
    static func split(_ bytes: ByteBuffer) -> (lines: [String], body: String) {
        let parts = String(buffer: bytes).components(separatedBy: "\r\n\r\n")
        #expect(parts.count == 2)
        return (parts[0].components(separatedBy: "\r\n"), parts.count == 2 ? parts[1] : "")
    }

    @Test(arguments: [true, false])
    func headMatchesTheBody(close: Bool) throws {
        let response = ErrorResponse.badRequest("nope")
        let body = response.body(requestID: Self.requestID, allocator: ByteBufferAllocator())
        let (lines, text) = Self.split(response.rawBytes(requestID: Self.requestID, close: close, allocator: ByteBufferAllocator()))
        #expect(lines.first == "HTTP/1.1 400 Bad Request")
        #expect(text == String(buffer: body))
        #expect(lines.contains("Content-Length: \(body.readableBytes)"))
        #expect(lines.contains("Content-Type: application/json"))
        #expect(lines.contains("X-Request-Id: \(Self.requestID)"))
        #expect(lines.contains("Cache-Control: no-store"))
        #expect(lines.contains("Connection: close") == close)
    }

    @Test func headKeepsTheRequestVersionAndExtraHeaders() {
        let (lines, _) = Self.split(
            ErrorResponse.draining.rawBytes(requestID: Self.requestID, http10: true, allocator: ByteBufferAllocator())
        )
        #expect(lines.first == "HTTP/1.0 503 Service Unavailable")
        #expect(lines.contains("Retry-After: 5"))
        #expect(lines.contains("Connection: close"))
    }

    @Test func answerToHEADHasTheLengthButNoBody() {
        let response = ErrorResponse.badGateway
        let body = response.body(requestID: Self.requestID, allocator: ByteBufferAllocator())
        let (lines, text) = Self.split(
            response.rawBytes(requestID: Self.requestID, close: false, omitBody: true, allocator: ByteBufferAllocator())
        )
        #expect(text.isEmpty)
        #expect(lines.contains("Content-Length: \(body.readableBytes)"))
    }

    @Test func rawBytesAreACompleteResponse() throws {
        let raw = String(buffer: ErrorResponse.requestTimeout.rawBytes(requestID: Self.requestID, allocator: ByteBufferAllocator()))
        let parts = raw.components(separatedBy: "\r\n\r\n")
        #expect(parts.count == 2)
        let lines = parts[0].components(separatedBy: "\r\n")
        #expect(lines.first == "HTTP/1.1 408 Request Timeout")
        #expect(lines.contains("Connection: close"))
        #expect(lines.contains("X-Request-Id: \(Self.requestID)"))
        #expect(lines.contains("Content-Length: \(parts[1].utf8.count)"))
        let body = try JSONSerialization.jsonObject(with: Data(parts[1].utf8)) as? [String: Any]
        #expect(body?["error"] as? String == "request_timeout")
        #expect(body?["request_id"] as? String == Self.requestID)
    }

    // MARK: - Request ids

    static func isLowercaseHex32(_ id: String) -> Bool {
        id.utf8.count == 32 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    @Test func requestIDsAre32LowercaseHexDigits() {
        var ids = RequestIDGenerator()
        for _ in 0..<1000 {
            let id = ids.make()
            #expect(Self.isLowercaseHex32(id), "\(id)")
        }
    }

    @Test func tenThousandRequestIDsAreDistinct() {
        var ids = RequestIDGenerator()
        var seen = Set<String>()
        for _ in 0..<10_000 { seen.insert(ids.make()) }
        #expect(seen.count == 10_000)
    }

    @Test func seededGeneratorsRepeatAndDifferentSeedsDiffer() {
        var a = RequestIDGenerator(seed: 42)
        var b = RequestIDGenerator(seed: 42)
        var c = RequestIDGenerator(seed: 43)
        let fromA = (0..<100).map { _ in a.make() }
        #expect(fromA == (0..<100).map { _ in b.make() })
        #expect(Set(fromA).isDisjoint(with: (0..<100).map { _ in c.make() }))
        var zero = RequestIDGenerator(seed: 0)
        #expect(Self.isLowercaseHex32(zero.make()))
    }

    @Test func generatorsSeededFromTheSystemDiffer() {
        var a = RequestIDGenerator()
        var b = RequestIDGenerator()
        #expect(a.make() != b.make())
    }
}
