/// A request target after canonicalisation: the path that rules match and that is forwarded,
/// and the query exactly as the client sent it.
///
/// `path` and `query` are slices of `uri`, so an already canonical target costs no allocation.
public struct CanonicalTarget: Hashable, Sendable {
    /// The target to forward upstream: `path`, then `?` and `query` when there is one.
    public let uri: String
    /// False when the client's target was already canonical and `uri` is that same string.
    public let isRewritten: Bool
    /// The canonical path: unreserved escapes decoded, other escapes in uppercase hex, `//`
    /// merged, `.` and `..` resolved. Starts with `/`. Sliced once: the request path reads it
    /// several times.
    public let path: Substring
    /// The raw query without the `?`, exactly as sent; nil when the target has no `?`.
    public let query: Substring?
    /// The path holds `;`, `%` or `.`: only then can `PathFirewall` refuse it.
    public let mayConcernFirewall: Bool

    init(uri: String, pathEnd: String.Index, isRewritten: Bool, mayConcernFirewall: Bool) {
        self.uri = uri
        self.isRewritten = isRewritten
        self.path = uri[..<pathEnd]
        self.query = pathEnd < uri.endIndex ? uri[uri.utf8.index(after: pathEnd)...] : nil
        self.mayConcernFirewall = mayConcernFirewall
    }
}

/// Turns an HTTP/1.1 request target into the canonical form of DESIGN.md, once per request.
///
/// Only origin-form targets (`/path?query`) are accepted. Anything whose meaning could differ
/// between Portcullis and the backend is an error rather than a guess: encoded slashes and
/// backslashes, control bytes, malformed escapes, paths climbing above `/`, and fragments.
/// Raw bytes that RFC 3986 does not allow in a path (space, `"`, `{`, non-ASCII, ...) are
/// percent-encoded, so every spelling of a path has one canonical form.
public enum CanonicalPath {
    /// Canonicalises `target` (an `HTTPRequestHead.uri`); the failure's `description` is the
    /// 400 body text.
    public static func canonicalize(_ target: String) -> Result<CanonicalTarget, PathError> {
        if let result = target.utf8.withContiguousStorageIfAvailable({ canonicalize(target, bytes: $0) }) {
            return result
        }
        var contiguous = target
        contiguous.makeContiguousUTF8()
        return canonicalize(contiguous)
    }

    private static func canonicalize(
        _ target: String,
        bytes: UnsafeBufferPointer<UInt8>
    ) -> Result<CanonicalTarget, PathError> {
        guard let first = bytes.first, first == UInt8(ascii: "/") else { return .failure(.notOriginForm) }

        var pathEnd = bytes.count
        var isCanonical = true
        var firewallBytes = false
        var previous = UInt8(ascii: "/")
        var index = 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "?") {
                pathEnd = index
                break
            }
            if byte == UInt8(ascii: "#") { return .failure(.fragment) }
            if !isPathByte(byte) { isCanonical = false }
            if isFirewallByte(byte) { firewallBytes = true }
            // "//", "/./" and "/../" all start with a slash followed by a slash or a dot.
            if previous == UInt8(ascii: "/"), byte == UInt8(ascii: "/") || byte == UInt8(ascii: ".") {
                isCanonical = false
            }
            previous = byte
            index += 1
        }
        // The query is passed on unchanged except for bytes RFC 3986 does not allow in it,
        // which are percent-encoded: the upstream client refuses to send them raw.
        var queryNeedsEncoding = false
        if pathEnd < bytes.count {
            for byte in bytes[(pathEnd + 1)...] {
                if byte == UInt8(ascii: "#") { return .failure(.fragment) }
                if byte < 0x20 || byte == 0x7F { return .failure(.controlCharacter) }
                if !isQueryByte(byte) { queryNeedsEncoding = true }
            }
        }

        var rewritten: [UInt8] = []
        if !isCanonical {
            switch rewrite(UnsafeBufferPointer(rebasing: bytes[..<pathEnd])) {
            case .success(let path): rewritten = path
            case .failure(let error): return .failure(error)
            }
            isCanonical = rewritten.elementsEqual(bytes[..<pathEnd])
        }

        if isCanonical && !queryNeedsEncoding {
            let pathEndIndex = target.utf8.index(target.utf8.startIndex, offsetBy: pathEnd)
            return .success(CanonicalTarget(uri: target, pathEnd: pathEndIndex, isRewritten: false, mayConcernFirewall: firewallBytes))
        }
        if isCanonical { rewritten = Array(bytes[..<pathEnd]) }
        let pathLength = rewritten.count
        let rewrittenFirewallBytes = rewritten.contains(where: isFirewallByte)
        if queryNeedsEncoding {
            rewritten.append(UInt8(ascii: "?"))
            for byte in bytes[(pathEnd + 1)...] {
                if isQueryByte(byte) {
                    rewritten.append(byte)
                } else {
                    rewritten.append(UInt8(ascii: "%"))
                    rewritten.append(hexDigits[Int(byte >> 4)])
                    rewritten.append(hexDigits[Int(byte & 0x0F)])
                }
            }
        } else {
            rewritten.append(contentsOf: bytes[pathEnd...])
        }
        let uri = String(decoding: rewritten, as: UTF8.self)
        let pathEndIndex = uri.utf8.index(uri.utf8.startIndex, offsetBy: pathLength)
        return .success(CanonicalTarget(uri: uri, pathEnd: pathEndIndex, isRewritten: true, mayConcernFirewall: rewrittenFirewallBytes))
    }

    /// Decodes and re-encodes escapes, then resolves dot segments; `path` starts with `/`.
    private static func rewrite(_ path: UnsafeBufferPointer<UInt8>) -> Result<[UInt8], PathError> {
        var output: [UInt8] = []
        output.reserveCapacity(path.count + 8)
        var index = 0
        while index < path.count {
            let byte = path[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < path.count, let high = hexValue(path[index + 1]), let low = hexValue(path[index + 2])
                else { return .failure(.invalidPercentEncoding) }
                let decoded = high << 4 | low
                if decoded < 0x20 || decoded == 0x7f { return .failure(.controlCharacter) }
                if decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\") { return .failure(.encodedSlash) }
                if isUnreserved(decoded) {
                    output.append(decoded)
                } else {
                    appendEscape(decoded, to: &output)
                }
                index += 3
                continue
            }
            if byte < 0x20 || byte == 0x7f { return .failure(.controlCharacter) }
            if byte == UInt8(ascii: "\\") { return .failure(.backslash) }
            if isPathByte(byte) {
                output.append(byte)
            } else {
                appendEscape(byte, to: &output)
            }
            index += 1
        }
        guard let length = removeDotSegments(&output) else { return .failure(.climbsAboveRoot) }
        output.removeSubrange(length...)
        return .success(output)
    }

    /// RFC 3986 5.2.4 in place, with empty segments merged; nil when `..` climbs above `/`.
    ///
    /// Returns the new length. The output written so far always ends in `/` and never
    /// overtakes the read position, so the copy cannot clobber unread input.
    private static func removeDotSegments(_ buffer: inout [UInt8]) -> Int? {
        let slash = UInt8(ascii: "/")
        let dot = UInt8(ascii: ".")
        let count = buffer.count
        var written = 1
        var segmentStart = 1
        while segmentStart <= count {
            var segmentEnd = segmentStart
            while segmentEnd < count, buffer[segmentEnd] != slash { segmentEnd += 1 }
            let length = segmentEnd - segmentStart
            let isLast = segmentEnd == count
            if length == 0 || (length == 1 && buffer[segmentStart] == dot) {
                // Empty or ".": nothing to keep; at the end, the trailing "/" already written stays.
            } else if length == 2 && buffer[segmentStart] == dot && buffer[segmentStart + 1] == dot {
                guard written > 1 else { return nil }
                written -= 1
                while buffer[written - 1] != slash { written -= 1 }
            } else {
                if written != segmentStart {
                    for offset in 0..<length { buffer[written + offset] = buffer[segmentStart + offset] }
                }
                written += length
                if isLast { return written }
                buffer[written] = slash
                written += 1
            }
            segmentStart = segmentEnd + 1
        }
        return written
    }

    private static func appendEscape(_ byte: UInt8, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "%"))
        output.append(upperHexDigit(byte >> 4))
        output.append(upperHexDigit(byte & 0xf))
    }

    @inline(__always)
    private static func upperHexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        if byte &- UInt8(ascii: "0") < 10 { return byte &- UInt8(ascii: "0") }
        let lower = byte | 0x20
        if lower &- UInt8(ascii: "a") < 6 { return lower &- UInt8(ascii: "a") + 10 }
        return nil
    }

    /// RFC 3986 query characters: pchar, `/`, `?`, and `%` (escapes were not rewritten).
    static func isQueryByte(_ byte: UInt8) -> Bool {
        isPathByte(byte) || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "%")
    }

    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// RFC 3986 pchar without escapes, plus `/`: ALPHA DIGIT - . _ ~ ! $ & ' ( ) * + , ; = : @ /.
    @inline(__always)
    static func isPathByte(_ byte: UInt8) -> Bool {
        inBitmap(byte, low: 0x2fff_ffd2_0000_0000, high: 0x47ff_fffe_87ff_ffff)
    }

    /// `;`, `%` and `.`, the bytes `PathFirewall` looks at (bytes from 0x80 are `%` escapes in
    /// a canonical path).
    @inline(__always)
    static func isFirewallByte(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ";") || byte == UInt8(ascii: "%") || byte == UInt8(ascii: ".") || byte >= 0x80
    }

    /// RFC 3986 unreserved: ALPHA DIGIT - . _ ~.
    @inline(__always)
    static func isUnreserved(_ byte: UInt8) -> Bool {
        inBitmap(byte, low: 0x03ff_6000_0000_0000, high: 0x47ff_fffe_87ff_fffe)
    }

    /// One bit per ASCII byte: `low` holds 0-63, `high` 64-127; bytes from 128 are never in.
    @inline(__always)
    private static func inBitmap(_ byte: UInt8, low: UInt64, high: UInt64) -> Bool {
        guard byte < 128 else { return false }
        let word = byte < 64 ? low : high
        return word >> UInt64(byte & 63) & 1 == 1
    }
}

/// Why a request target was refused; `description` is the short text for the 400 body.
///
/// Errors compare equal when their codes do.
public struct PathError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case notOriginForm
        case invalidPercentEncoding
        case encodedSlash
        case backslash
        case controlCharacter
        case climbsAboveRoot
        case fragment
    }

    private let code: Code

    private init(_ code: Code) {
        self.code = code
    }

    /// Absolute-form, authority-form, `*`, or anything not starting with `/`.
    public static let notOriginForm = PathError(.notOriginForm)
    /// `%` not followed by two hex digits.
    public static let invalidPercentEncoding = PathError(.invalidPercentEncoding)
    /// `%2F` or `%5C`: backends disagree on whether they separate segments.
    public static let encodedSlash = PathError(.encodedSlash)
    /// Some backends treat `\` as `/`.
    public static let backslash = PathError(.backslash)
    /// A byte 0x00-0x1F or 0x7F, raw or percent-encoded.
    public static let controlCharacter = PathError(.controlCharacter)
    public static let climbsAboveRoot = PathError(.climbsAboveRoot)
    /// Clients never send `#...`; one in a target is a crafted request.
    public static let fragment = PathError(.fragment)

    public var description: String {
        switch self.code {
        case .notOriginForm: return "request target must be an absolute path starting with /"
        case .invalidPercentEncoding: return "invalid percent-encoding in path"
        case .encodedSlash: return "encoded slash or backslash in path"
        case .backslash: return "backslash in path"
        case .controlCharacter: return "control character in path"
        case .climbsAboveRoot: return "path climbs above /"
        case .fragment: return "fragment in request target"
        }
    }
}
