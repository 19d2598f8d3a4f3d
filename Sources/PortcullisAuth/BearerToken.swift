/// The bearer token of an `Authorization` header value (RFC 6750 section 2.1).
///
/// Strict on purpose: the scheme is `Bearer` in any case, followed by one or more spaces
/// (`1*SP`) and a `b64token` (`A-Z a-z 0-9 - . _ ~ + /` then optional `=` padding), nothing
/// before or after. A JWS compact token fits this alphabet. Anything else is no token rather
/// than a guess.
public enum BearerToken {
    /// The token bytes of `authorization`, or nil when it is not a well-formed bearer credential.
    public static func extract(from authorization: String) -> Substring? {
        guard let token = Self.candidate(from: authorization), Self.isWellFormed(token) else { return nil }
        return token
    }

    /// What follows `Bearer` and its spaces (scheme in any case), not yet checked against the
    /// b64token alphabet: enough to look a token up among those verified before, which were
    /// checked. Nil when nothing follows the spaces.
    public static func candidate(from authorization: String) -> Substring? {
        let utf8 = authorization.utf8
        let offset = utf8.withContiguousStorageIfAvailable { Self.tokenOffset($0) } ?? Array(utf8).withUnsafeBufferPointer { Self.tokenOffset($0) }
        guard let offset else { return nil }
        return authorization[utf8.index(utf8.startIndex, offsetBy: offset)...]
    }

    /// Where the token starts: after `bearer` (any case) and `1*SP` (RFC 6750 2.1); nil when
    /// the scheme differs or nothing follows the spaces.
    private static func tokenOffset(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard bytes.count > 7,
            bytes[0] | 0x20 == UInt8(ascii: "b"), bytes[1] | 0x20 == UInt8(ascii: "e"), bytes[2] | 0x20 == UInt8(ascii: "a"),
            bytes[3] | 0x20 == UInt8(ascii: "r"), bytes[4] | 0x20 == UInt8(ascii: "e"), bytes[5] | 0x20 == UInt8(ascii: "r"),
            bytes[6] == UInt8(ascii: " ")
        else { return nil }
        var index = 7
        while index < bytes.count && bytes[index] == UInt8(ascii: " ") { index += 1 }
        return index < bytes.count ? index : nil
    }

    /// `token` is a `b64token`: the alphabet, then only `=` padding, not empty, no `=` first.
    public static func isWellFormed(_ token: Substring) -> Bool {
        if let result = token.utf8.withContiguousStorageIfAvailable({ Self.isWellFormed($0) }) {
            return result
        }
        return Array(token.utf8).withUnsafeBufferPointer { Self.isWellFormed($0) }
    }

    private static func isWellFormed(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let first = bytes.first, first != UInt8(ascii: "=") else { return false }
        var index = 0
        Self.tokenTable.withUnsafeBufferPointer { table in
            while index < bytes.count && table[Int(bytes[index])] { index += 1 }
        }
        while index < bytes.count && bytes[index] == UInt8(ascii: "=") { index += 1 }
        return index == bytes.count
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
