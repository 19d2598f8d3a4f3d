/// The `path_firewall:` section: path forms that backends read differently from the gateway,
/// refused (400) before any rule is matched, in the spirit of Spring Security's
/// `StrictHttpFirewall`. Every check is on by default; each `allow*` switch turns one off for a
/// backend that needs that form.
///
/// It judges the canonical path (`CanonicalTarget.path`), so every spelling of a form is
/// caught once: `%2E` has been decoded to `.`, raw bytes outside ASCII have been encoded.
public struct PathFirewall: Hashable, Sendable {
    /// `;` or `%3B`: Tomcat and other Java servers strip `;params` from segments (`/..;/`
    /// climbs, `/admin;x` is `/admin`).
    public var allowSemicolon: Bool
    /// `%25`: a backend that decodes twice reads `%2561` as `a`.
    public var allowEncodedPercent: Bool
    /// An escape of a byte 0x80-0xFF (raw ones are encoded by the canonicaliser): overlong
    /// UTF-8 such as `%C0%AF` is `/` to some decoders.
    public var allowNonASCII: Bool
    /// A segment ending in `.` (`/admin./x`): IIS and Windows drop trailing dots.
    public var allowTrailingDot: Bool

    public init(
        allowSemicolon: Bool = false,
        allowEncodedPercent: Bool = false,
        allowNonASCII: Bool = false,
        allowTrailingDot: Bool = false
    ) {
        self.allowSemicolon = allowSemicolon
        self.allowEncodedPercent = allowEncodedPercent
        self.allowNonASCII = allowNonASCII
        self.allowTrailingDot = allowTrailingDot
    }

    /// Why a path was refused.
    public enum Violation: Hashable, Sendable, CustomStringConvertible {
        case semicolon
        case encodedPercent
        case nonASCII
        case trailingDot

        /// The access log's `reason` code.
        public var reason: String {
            switch self {
            case .semicolon: return "path_semicolon"
            case .encodedPercent: return "path_encoded_percent"
            case .nonASCII: return "path_non_ascii"
            case .trailingDot: return "path_trailing_dot"
            }
        }

        /// The 400 body's text.
        public var description: String {
            switch self {
            case .semicolon: return "';' in path"
            case .encodedPercent: return "encoded '%' (%25) in path"
            case .nonASCII: return "byte outside ASCII in path"
            case .trailingDot: return "path segment ending in '.'"
            }
        }
    }

    /// The first form of `target`'s path this firewall refuses; nil when it passes. Most paths
    /// hold none of the bytes it looks at, which the canonicaliser has noted.
    @inline(__always)
    public func check(_ target: CanonicalTarget) -> Violation? {
        target.mayConcernFirewall ? self.check(target.path) : nil
    }

    /// The first form of `path` (a canonical path) this firewall refuses; nil when it passes.
    public func check(_ path: Substring) -> Violation? {
        if self.allowSemicolon && self.allowEncodedPercent && self.allowNonASCII && self.allowTrailingDot { return nil }
        if let result = path.utf8.withContiguousStorageIfAvailable({ self.check($0) }) {
            return result
        }
        return Array(path.utf8).withUnsafeBufferPointer { self.check($0) }
    }

    private func check(_ bytes: UnsafeBufferPointer<UInt8>) -> Violation? {
        let count = bytes.count
        var index = 0
        while index < count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: ";"):
                if !self.allowSemicolon { return .semicolon }
            case UInt8(ascii: "%"):
                // A canonical path's escapes are whole: `%` and two hex digits.
                guard index + 2 < count, let high = CanonicalPath.hexValue(bytes[index + 1]), let low = CanonicalPath.hexValue(bytes[index + 2])
                else { break }
                if high == 2 && low == 5 {
                    if !self.allowEncodedPercent { return .encodedPercent }
                } else if high == 3 && low == 0xB {
                    if !self.allowSemicolon { return .semicolon }
                } else if high >= 8 {
                    if !self.allowNonASCII { return .nonASCII }
                }
                index += 3
                continue
            case UInt8(ascii: "."):
                if !self.allowTrailingDot && (index + 1 == count || bytes[index + 1] == UInt8(ascii: "/"))
                    && !Self.isDotSegment(bytes, endingAt: index)
                {
                    return .trailingDot
                }
            default:
                if byte >= 0x80 && !self.allowNonASCII { return .nonASCII }
            }
            index += 1
        }
        return nil
    }

    /// The segment whose last byte is the `.` at `index` is `.` or `..` (resolved by the
    /// canonicaliser, so never in a canonical path; not this check's business).
    @inline(__always)
    private static func isDotSegment(_ bytes: UnsafeBufferPointer<UInt8>, endingAt index: Int) -> Bool {
        guard index >= 1 else { return false }
        if bytes[index - 1] == UInt8(ascii: "/") { return true }
        return index >= 2 && bytes[index - 1] == UInt8(ascii: ".") && bytes[index - 2] == UInt8(ascii: "/")
    }

}
