/// The bearer token of an `Authorization` header value (RFC 6750 section 2.1).
///
/// Strict on purpose: the scheme is `Bearer` in any case, followed by exactly one space and a
/// `b64token` (`A-Z a-z 0-9 - . _ ~ + /` then optional `=` padding), nothing before or after.
/// A JWS compact token fits this alphabet. Anything else is no token rather than a guess.
public enum BearerToken {
    /// The token bytes of `authorization`, or nil when it is not a well-formed bearer credential.
    public static func extract(from authorization: String) -> Substring? {
        if let result = authorization.utf8.withContiguousStorageIfAvailable({ Self.tokenRange($0) }) {
            guard let range = result else { return nil }
            let utf8 = authorization.utf8
            let start = utf8.index(utf8.startIndex, offsetBy: range.lowerBound)
            return authorization[start..<utf8.endIndex]
        }
        var contiguous = authorization
        contiguous.makeContiguousUTF8()
        return Self.extract(from: contiguous)
    }

    /// The offsets of the token in `bytes`: one pass over a byte table, no per-index String work.
    private static func tokenRange(_ bytes: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        guard bytes.count > 7 else { return nil }
        var index = 0
        for expected in "bearer".utf8 {
            guard bytes[index] | 0x20 == expected else { return nil }
            index += 1
        }
        guard bytes[index] == UInt8(ascii: " ") else { return nil }
        index += 1
        let start = index
        guard bytes[start] != UInt8(ascii: "=") else { return nil }
        // The b64token characters, then only '=' padding to the end.
        while index < bytes.count && Self.tokenTable[Int(bytes[index])] { index += 1 }
        while index < bytes.count && bytes[index] == UInt8(ascii: "=") { index += 1 }
        guard index == bytes.count else { return nil }
        return start..<bytes.count
    }

    private static let tokenTable: [Bool] = (0..<256).map { Self.isTokenByte(UInt8($0)) }

    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }
}
