import PortcullisPolicy

/// ASCII case-insensitive header-name matching without allocating (names arrive as sent).
enum HeaderName {
    /// `name` equals `lowercase` ignoring ASCII case; `lowercase` must be lowercase ASCII.
    @inline(__always)
    static func equals(_ name: String, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard name.utf8.count == count else { return false }
        return Self.hasPrefix(name, lowercase)
    }

    @inline(__always)
    static func hasPrefix(_ name: String, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard name.utf8.count >= count else { return false }
        // Native strings (every parsed header) compare as bytes: iterating the UTF-8 view cost
        // about ten times as much (callgrind: ~1,100 instructions per request).
        if let matched = name.utf8.withContiguousStorageIfAvailable({
            Self.equals(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer($0)[0..<count]), lowercase)
        }) {
            return matched
        }
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: count)
        var index = 0
        for byte in name.utf8 {
            if index == count { return true }
            let want = expected[index]
            if byte != want && !(byte ^ 0x20 == want && want >= 0x61 && want <= 0x7A) { return false }
            index += 1
        }
        return index == count
    }

    /// `bytes` equals `lowercase` ignoring ASCII case; `lowercase` must be lowercase ASCII.
    @inline(__always)
    static func equals(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard bytes.count == count else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<count {
            let byte = bytes[index]
            let want = expected[index]
            if byte != want && !(byte ^ 0x20 == want && want >= 0x61 && want <= 0x7A) { return false }
        }
        return true
    }

    /// `bytes` equals `lowercase` ignoring ASCII case and reading `_` in `bytes` as `-`:
    /// CGI, WSGI, PHP and many frameworks turn both into `_` (`HTTP_X_FORWARDED_FOR`), so to
    /// them `X_Forwarded_For` is `X-Forwarded-For`. `lowercase` must be lowercase ASCII.
    @inline(__always)
    static func equalsReadingUnderscoreAsDash(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard bytes.count == count else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<count {
            let byte = bytes[index]
            let want = expected[index]
            if byte != want && !(byte ^ 0x20 == want && want >= 0x61 && want <= 0x7A)
                && !(byte == UInt8(ascii: "_") && want == UInt8(ascii: "-"))
            {
                return false
            }
        }
        return true
    }

    /// `hasPrefix` reading `_` in `bytes` as `-` (see `equalsReadingUnderscoreAsDash`).
    @inline(__always)
    static func hasPrefixReadingUnderscoreAsDash(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        return bytes.count >= count
            && Self.equalsReadingUnderscoreAsDash(UnsafeRawBufferPointer(rebasing: bytes[0..<count]), lowercase)
    }

    /// `equals(_:lowercased:)` reading `_` in `bytes` as `-`.
    static func equalsReadingUnderscoreAsDash(_ bytes: UnsafeRawBufferPointer, lowercased: [UInt8]) -> Bool {
        bytes.count == lowercased.count
            && zip(bytes, lowercased).allSatisfy {
                $0 == $1 || ($0 >= 0x41 && $0 <= 0x5A && $0 | 0x20 == $1) || ($0 == UInt8(ascii: "_") && $1 == UInt8(ascii: "-"))
            }
    }

    /// `bytes` holds a `_`.
    @inline(__always)
    static func containsUnderscore(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.contains(UInt8(ascii: "_"))
    }

    /// `bytes` starts with `lowercase` ignoring ASCII case; `lowercase` must be lowercase ASCII.
    @inline(__always)
    static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        return bytes.count >= count && Self.equals(UnsafeRawBufferPointer(rebasing: bytes[0..<count]), lowercase)
    }

    /// `bytes` equals `lowercased` ignoring ASCII case; `lowercased` must be lowercase.
    static func equals(_ bytes: UnsafeRawBufferPointer, lowercased: [UInt8]) -> Bool {
        bytes.count == lowercased.count
            && zip(bytes, lowercased).allSatisfy { $0 == $1 || ($0 >= 0x41 && $0 <= 0x5A && $0 | 0x20 == $1) }
    }

    /// A `Connection` value naming no header to remove: just `keep-alive` or `close`, the
    /// usual case, checked without splitting or allocating.
    @inline(__always)
    static func isPlainConnectionValue(_ value: String) -> Bool {
        Self.equals(value, "keep-alive") || Self.equals(value, "close")
    }

    /// Connection tokens naming headers to remove (`keep-alive` and `close` dropped).
    static func connectionTokens(_ value: String) -> [String] {
        if Self.isPlainConnectionValue(value) { return [] }
        return Self.tokens(value).filter { $0 != "keep-alive" && $0 != "close" }
    }

    /// Splits a comma-separated header value into lowercased tokens (`Connection: close, X-Foo`).
    static func tokens(_ value: String) -> [String] {
        value.split(separator: ",").compactMap {
            let token = $0.trimmingASCIIWhitespace()
            return token.isEmpty ? nil : token.lowercased()
        }
    }
}
