import Testing

@testable import PortcullisProxy

/// How the response body is framed for the client, from what the upstream sent.
@Suite struct ResponseFramingTests {
    @Test func aKnownLengthPassesThrough() {
        #expect(ResponseFraming(hasBody: true, contentLength: 10, compressed: false, http10: false) == .asReceived)
        #expect(ResponseFraming(hasBody: true, contentLength: 10, compressed: false, http10: true) == .asReceived)
    }

    @Test func noBodyIsAsReceivedWhateverElse() {
        #expect(ResponseFraming(hasBody: false, contentLength: nil, compressed: false, http10: false) == .asReceived)
        #expect(ResponseFraming(hasBody: false, contentLength: nil, compressed: true, http10: true) == .asReceived)
    }

    @Test func anUnknownLengthIsChunkedForHTTP11AndEndsWithTheConnectionForHTTP10() {
        #expect(ResponseFraming(hasBody: true, contentLength: nil, compressed: false, http10: false) == .chunked)
        #expect(ResponseFraming(hasBody: true, contentLength: nil, compressed: false, http10: true) == .untilClose)
    }

    @Test func aCompressedBodyLosesItsLength() {
        #expect(ResponseFraming(hasBody: true, contentLength: 10, compressed: true, http10: false) == .chunked)
        #expect(ResponseFraming(hasBody: true, contentLength: 10, compressed: true, http10: true) == .untilClose)
    }
}
