/// The bearer token of an `Authorization` header value (RFC 6750 section 2.1).
///
/// Strict on purpose: the scheme is `Bearer` in any case, followed by exactly one space and a
/// `b64token` (`A-Z a-z 0-9 - . _ ~ + /` then optional `=` padding), nothing before or after.
/// A JWS compact token fits this alphabet. Anything else is no token rather than a guess.
public enum BearerToken {
    /// The token bytes of `authorization`, or nil when it is not a well-formed bearer credential.
    public static func extract(from authorization: String) -> Substring? {
        let utf8 = authorization.utf8
        guard utf8.count > 7 else { return nil }
        var index = utf8.startIndex
        for expected in "bearer".utf8 {
            guard utf8[index] | 0x20 == expected else { return nil }
            index = utf8.index(after: index)
        }
        guard utf8[index] == UInt8(ascii: " ") else { return nil }
        index = utf8.index(after: index)
        let start = index
        var padding = false
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "=") {
                padding = true
            } else if padding || !Self.isTokenByte(byte) {
                return nil
            }
            index = utf8.index(after: index)
        }
        guard start < utf8.endIndex, utf8[start] != UInt8(ascii: "=") else { return nil }
        return authorization[start...]
    }

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
