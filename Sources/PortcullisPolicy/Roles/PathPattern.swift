/// A path pattern of a role rule, such as `/api/List*` or `/v1/tenants/*/users/**`, matched
/// against the canonical path (see `CanonicalPath`).
///
/// Syntax, checked by `validate(_:)`:
/// - starts with `/`; segments are separated by `/`; `/` alone matches only the root.
/// - `*` matches any run of bytes within one segment (also none: `/api/List*` matches `/api/List`);
///   a segment that is only `*` matches exactly one segment.
/// - `**` matches any number of whole segments, none included (`/api/**` matches `/api` and
///   everything below it); it must be a whole segment. Repeated `/**/**` is the same as `/**`.
/// - No empty segments (`//`), no `.` or `..` segments, no trailing `/`: the canonical path has
///   none of these, and a single trailing `/` of a request path is ignored when matching, so
///   `/api/ListUsers` also matches `/api/ListUsers/` (a deny rule cannot be sidestepped by one).
/// - Bytes are those of RFC 3986 path segments; `%XX` escapes are written as the canonical path
///   has them (escapes of unreserved characters are decoded, the others upper-cased), so
///   `%7e` and `~` are the same pattern. `%2F` and `%5C` are refused (such requests are refused
///   with 400, so the pattern could never match), as are `?` (the query is not matched), `#`,
///   `\`, spaces, control bytes, `{ }` (write `*` for a path parameter) and `[ ]`. Non-ASCII
///   text is percent-encoded, as the canonical path encodes it.
/// - A literal `*` cannot be written: `*` is always a wildcard.
public struct PathPattern: Hashable, Sendable, CustomStringConvertible {
    /// One `/`-separated piece of a pattern, in canonical bytes.
    public enum Segment: Hashable, Sendable {
        /// Matches exactly these bytes (ASCII case-insensitively under the CIPP profile).
        case literal([UInt8])
        /// Bytes with at least one `*` (0x2A), each matching any run of bytes within the segment.
        case glob([UInt8])
        /// `*`: exactly one segment.
        case star
        /// `**`: any number of segments, none included.
        case doubleStar
    }

    /// The pattern as written in the configuration (or derived from the catalogue).
    public let text: String
    public let segments: [Segment]

    public var description: String { self.text }

    /// Parses `text`; nil when it is not a valid pattern.
    public init?(_ text: String) {
        guard case .success(let pattern) = Self.validate(text) else { return nil }
        self = pattern
    }

    private init(text: String, segments: [Segment]) {
        self.text = text
        self.segments = segments
    }

    /// Parses `text` and, when it is not a pattern, says why in words fit for a config error.
    public static func validate(_ text: String) -> Result<PathPattern, PathPatternError> {
        let bytes = Array(text.utf8)
        guard let first = bytes.first else { return .failure(PathPatternError(.notAbsolute, reason: "expected a path pattern starting with /")) }
        guard first == UInt8(ascii: "/") else {
            return .failure(PathPatternError(.notAbsolute, reason: "'\(text)' must start with /, e.g. /\(text)"))
        }
        guard bytes.count <= 4096 else { return .failure(PathPatternError(.tooLong, reason: "a pattern is limited to 4096 bytes")) }
        if bytes.count == 1 { return .success(PathPattern(text: text, segments: [])) }
        if bytes.last == UInt8(ascii: "/") {
            return .failure(
                PathPatternError(
                    .emptySegment,
                    reason: "'\(text)' ends in /: a trailing / is ignored when matching, so drop it "
                        + "(end it in /** for everything below)"
                )
            )
        }
        var segments: [Segment] = []
        for raw in bytes.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if raw.isEmpty {
                return .failure(PathPatternError(.emptySegment, reason: "'\(text)' has an empty segment (//); the canonical path never has one"))
            }
            switch Self.segment(raw, in: text) {
            case .failure(let error):
                return .failure(error)
            case .success(let segment):
                if segment == .doubleStar, segments.last == .doubleStar { continue }
                segments.append(segment)
            }
        }
        return .success(PathPattern(text: text, segments: segments))
    }

    /// A pattern from an OpenAPI path such as `/api/users/{id}`: each `{...}` template becomes `*`.
    public static func fromOpenAPIPath(_ path: String) -> Result<PathPattern, PathPatternError> {
        var converted = ""
        var inTemplate = false
        for character in path {
            switch character {
            case "{":
                if inTemplate { return .failure(PathPatternError(.template, reason: "'\(path)' has a nested {")) }
                inTemplate = true
            case "}":
                if !inTemplate { return .failure(PathPatternError(.template, reason: "'\(path)' has } without {")) }
                inTemplate = false
                if converted.last != "*" { converted.append("*") }
            default:
                if !inTemplate {
                    if character == "*" { return .failure(PathPatternError(.template, reason: "'\(path)' contains *")) }
                    converted.append(character)
                }
            }
        }
        if inTemplate { return .failure(PathPatternError(.template, reason: "'\(path)' has { without }")) }
        // A template spanning a whole segment is one segment; the same as the written form.
        return Self.validate(converted).map { PathPattern(text: path, segments: $0.segments) }
    }

    private static func segment(_ raw: ArraySlice<UInt8>, in text: String) -> Result<Segment, PathPatternError> {
        let star = UInt8(ascii: "*")
        if raw.elementsEqual([star]) { return .success(.star) }
        if raw.elementsEqual([star, star]) { return .success(.doubleStar) }
        var output: [UInt8] = []
        output.reserveCapacity(raw.count)
        var index = raw.startIndex
        var hasStar = false
        var previousWasStar = false
        while index < raw.endIndex {
            let byte = raw[index]
            if byte == star {
                if previousWasStar {
                    return .failure(PathPatternError(.doubleStarInSegment, reason: "'\(text)': ** must be a whole segment (/**/); use * within a segment"))
                }
                hasStar = true
                previousWasStar = true
                output.append(byte)
                index += 1
                continue
            }
            previousWasStar = false
            if byte == UInt8(ascii: "%") {
                guard index + 2 < raw.endIndex, let high = hexValue(raw[index + 1]), let low = hexValue(raw[index + 2]) else {
                    return .failure(PathPatternError(.invalidEscape, reason: "'\(text)': % must be followed by two hex digits"))
                }
                let decoded = high << 4 | low
                if decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\") {
                    return .failure(
                        PathPatternError(.neverMatches, reason: "'\(text)': an encoded slash or backslash never matches: such requests are refused with 400")
                    )
                }
                if decoded < 0x20 || decoded == 0x7F {
                    return .failure(PathPatternError(.neverMatches, reason: "'\(text)': an encoded control character never matches"))
                }
                if CanonicalPath.isUnreserved(decoded) {
                    output.append(decoded)
                } else {
                    appendEscape(decoded, to: &output)
                }
                index += 3
                continue
            }
            if let problem = problem(byte) {
                return .failure(PathPatternError(.invalidCharacter, reason: "'\(text)': \(problem)"))
            }
            if byte >= 0x80 {
                appendEscape(byte, to: &output)
            } else {
                output.append(byte)
            }
            index += 1
        }
        if output == [UInt8(ascii: ".")] || output == [UInt8(ascii: "."), UInt8(ascii: ".")] {
            return .failure(
                PathPatternError(.dotSegment, reason: "'\(text)': . and .. segments are resolved before matching; write the resolved path")
            )
        }
        return .success(hasStar ? .glob(output) : .literal(output))
    }

    private static func problem(_ byte: UInt8) -> String? {
        switch byte {
        case UInt8(ascii: "?"): return "? starts the query, which patterns do not match; give the path only"
        case UInt8(ascii: "#"): return "# (a fragment) never reaches the gateway"
        case UInt8(ascii: "\\"): return "backslash is refused in request paths"
        case UInt8(ascii: "{"), UInt8(ascii: "}"): return "write * for a path parameter instead of {name}"
        case UInt8(ascii: "["), UInt8(ascii: "]"): return "[ ] are not character classes here; write %5B and %5D for the characters"
        case 0x00...0x20, 0x7F: return "spaces and control characters are not allowed (write %20 for a space)"
        case 0x80...: return nil
        default: return CanonicalPath.isPathByte(byte) ? nil : "'\(Unicode.Scalar(byte))' must be percent-encoded"
        }
    }

    private static func appendEscape(_ byte: UInt8, to output: inout [UInt8]) {
        let digits: [UInt8] = Array("0123456789ABCDEF".utf8)
        output.append(UInt8(ascii: "%"))
        output.append(digits[Int(byte >> 4)])
        output.append(digits[Int(byte & 0xF)])
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        if byte &- UInt8(ascii: "0") < 10 { return byte &- UInt8(ascii: "0") }
        let lower = byte | 0x20
        if lower &- UInt8(ascii: "a") < 6 { return lower &- UInt8(ascii: "a") + 10 }
        return nil
    }
}

// MARK: - Matching one pattern

extension PathPattern {
    /// Whether this pattern matches a canonical path, by a direct recursive walk. One trailing
    /// `/` is ignored; a path with an empty segment (`//`) matches nothing, as in `RouteMatcher`.
    ///
    /// For `explain`, tests and benchmarks: the request path uses the compiled `RouteMatcher`.
    public func matches(_ path: some StringProtocol, caseInsensitive: Bool) -> Bool {
        guard path.utf8.first == UInt8(ascii: "/") else { return false }
        var bytes = Array(path.utf8.dropFirst())
        if bytes.last == UInt8(ascii: "/") {
            bytes.removeLast()
            if bytes.isEmpty { return false }
        }
        let pathSegments = bytes.isEmpty ? [] : bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        if pathSegments.contains(where: \.isEmpty) { return false }
        return Self.match(self.segments[...], pathSegments[...], caseInsensitive)
    }

    private static func match(_ pattern: ArraySlice<Segment>, _ path: ArraySlice<ArraySlice<UInt8>>, _ fold: Bool) -> Bool {
        guard let head = pattern.first else { return path.isEmpty }
        if head == .doubleStar {
            return (path.startIndex...path.endIndex).contains { match(pattern.dropFirst(), path[$0...], fold) }
        }
        guard let segment = path.first, !segment.isEmpty else { return false }
        let matched: Bool
        switch head {
        case .star, .doubleStar: matched = true
        case .literal(let bytes): matched = bytes.count == segment.count && zip(bytes, segment).allSatisfy { same($0, $1, fold) }
        case .glob(let bytes): matched = globMatches(bytes[...], segment, fold)
        }
        return matched && match(pattern.dropFirst(), path.dropFirst(), fold)
    }

    /// `*` in `glob` matches any run of bytes; by plain recursion, for clarity.
    private static func globMatches(_ glob: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>, _ fold: Bool) -> Bool {
        guard let first = glob.first else { return text.isEmpty }
        if first == UInt8(ascii: "*") {
            return (text.startIndex...text.endIndex).contains { globMatches(glob.dropFirst(), text[$0...], fold) }
        }
        guard let byte = text.first, same(first, byte, fold) else { return false }
        return globMatches(glob.dropFirst(), text.dropFirst(), fold)
    }

    private static func same(_ a: UInt8, _ b: UInt8, _ fold: Bool) -> Bool {
        fold ? asciiLower(a) == asciiLower(b) : a == b
    }
}

@inline(__always)
func asciiLower(_ byte: UInt8) -> UInt8 {
    byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
}

/// Why a path pattern was refused, in words fit for a config error.
///
/// Errors compare equal when their codes do.
public struct PathPatternError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case notAbsolute
            case tooLong
            case emptySegment
            case dotSegment
            case doubleStarInSegment
            case invalidEscape
            case invalidCharacter
            case neverMatches
            case template
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// Empty, or not starting with `/`.
        public static let notAbsolute = Code(.notAbsolute)
        public static let tooLong = Code(.tooLong)
        /// `//`, or a trailing `/`.
        public static let emptySegment = Code(.emptySegment)
        /// `.` or `..`: resolved before matching.
        public static let dotSegment = Code(.dotSegment)
        /// `**` not standing alone as a segment.
        public static let doubleStarInSegment = Code(.doubleStarInSegment)
        /// `%` not followed by two hex digits.
        public static let invalidEscape = Code(.invalidEscape)
        /// `?`, `#`, `\`, `{ }`, `[ ]`, spaces, control bytes, other bytes needing an escape.
        public static let invalidCharacter = Code(.invalidCharacter)
        /// An escape that no accepted request can contain (`%2F`, `%5C`, control bytes).
        public static let neverMatches = Code(.neverMatches)
        /// An OpenAPI path template that does not convert (`{` without `}`, ...).
        public static let template = Code(.template)

        public var description: String { "\(self.backing)" }
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: UInt

    public init(_ code: Code, reason: String, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    public var description: String { self.reason }

}
