import PortcullisPolicy

/// The properties of `CanonicalPath.canonicalize` that the `path` fuzz target checks, and the
/// regression tests with it.
///
/// The input's bytes are the request target (as NIO hands it over: a `String`, so invalid
/// UTF-8 arrives as U+FFFD). Beyond not crashing:
/// - the result agrees with a plain reference canonicaliser written from DESIGN.md (decode
///   unreserved escapes, uppercase the others, escape bytes RFC 3986 does not allow, merge `//`,
///   resolve `.` and `..`, refuse what climbs above `/`): same success, same output;
/// - the canonical path starts with `/` and holds no `//`, `/./`, `/../`, nor ends in `/.` or
///   `/..`, and every `%` starts an uppercase escape of a byte that needs one;
/// - canonicalising the output again gives the same output, unrewritten.
public enum PathFuzzCheck {
    /// The properties `input` breaks; empty when all hold.
    public static func failures(_ input: [UInt8]) -> [String] {
        let target = String(decoding: input, as: UTF8.self)
        let targetBytes = Array(target.utf8)
        let expected = reference(targetBytes)
        var failures: [String] = []
        switch CanonicalPath.canonicalize(target) {
        case .failure(let error):
            if let expected {
                failures.append("refused (\(error)) but the reference gives \(show(expected))")
            }
        case .success(let canonical):
            let uri = Array(canonical.uri.utf8)
            let path = Array(canonical.path.utf8)
            guard let expected else {
                failures.append("accepted as \(show(uri)) but the reference refuses it")
                return failures
            }
            if uri != expected { failures.append("gives \(show(uri)), the reference \(show(expected))") }
            if canonical.isRewritten == (uri == targetBytes) {
                failures.append("isRewritten is \(canonical.isRewritten) for \(show(uri))")
            }
            let query = canonical.query.map { Array($0.utf8) }
            let rebuilt = path + (query.map { [UInt8(ascii: "?")] + $0 } ?? [])
            if rebuilt != uri { failures.append("path + query \(show(rebuilt)) is not the uri \(show(uri))") }
            failures += pathShapeFailures(path)
            switch CanonicalPath.canonicalize(canonical.uri) {
            case .failure(let error):
                failures.append("the output \(show(uri)) is refused when canonicalised again (\(error))")
            case .success(let again):
                if again.uri != canonical.uri || again.isRewritten {
                    failures.append("not idempotent: \(show(uri)) becomes \(show(Array(again.uri.utf8)))")
                }
            }
        }
        return failures
    }

    private static func pathShapeFailures(_ path: [UInt8]) -> [String] {
        var failures: [String] = []
        let text = String(decoding: path, as: UTF8.self)
        if path.first != UInt8(ascii: "/") { failures.append("path \(show(path)) does not start with /") }
        for bad in ["//", "/./", "/../"] where text.contains(bad) {
            failures.append("path \(show(path)) contains \(bad)")
        }
        if text.hasSuffix("/.") || text.hasSuffix("/..") { failures.append("path \(show(path)) ends in a dot segment") }
        var index = 0
        while index < path.count {
            let byte = path[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < path.count, let high = upperHex(path[index + 1]), let low = upperHex(path[index + 2]) else {
                    failures.append("path \(show(path)) has a % that is not an uppercase escape")
                    break
                }
                let decoded = high << 4 | low
                if isUnreserved(decoded) || decoded < 0x20 || decoded == 0x7F || decoded == UInt8(ascii: "/")
                    || decoded == UInt8(ascii: "\\")
                {
                    failures.append("path \(show(path)) keeps the escape of byte \(decoded)")
                }
                index += 3
                continue
            }
            if !isPathByte(byte) { failures.append("path \(show(path)) holds the raw byte \(byte)") }
            index += 1
        }
        return failures
    }

    /// The canonical target, or nil when it must be refused; written for clarity, not speed.
    public static func reference(_ target: [UInt8]) -> [UInt8]? {
        guard target.first == UInt8(ascii: "/") else { return nil }
        let questionMark = target.firstIndex(of: UInt8(ascii: "?")) ?? target.count
        let rawPath = target[..<questionMark]
        let rawQuery = questionMark < target.count ? Array(target[(questionMark + 1)...]) : nil
        if target.contains(UInt8(ascii: "#")) { return nil }

        var decoded: [UInt8] = []
        var index = rawPath.startIndex
        while index < rawPath.endIndex {
            var byte = rawPath[index]
            var wasEscaped = false
            if byte == UInt8(ascii: "%") {
                guard index + 2 < rawPath.endIndex, let high = anyHex(rawPath[index + 1]), let low = anyHex(rawPath[index + 2])
                else { return nil }
                byte = high << 4 | low
                wasEscaped = true
                index += 3
            } else {
                index += 1
            }
            if byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\\") { return nil }
            if wasEscaped && byte == UInt8(ascii: "/") { return nil }
            if wasEscaped ? isUnreserved(byte) : isPathByte(byte) {
                decoded.append(byte)
            } else {
                decoded += escape(byte)
            }
        }

        let segments = decoded.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
        var stack: [ArraySlice<UInt8>] = []
        var trailingSlash = false
        for (position, segment) in segments.enumerated() {
            let isLast = position == segments.count - 1
            if segment.isEmpty || segment.elementsEqual([UInt8(ascii: ".")]) {
                if isLast { trailingSlash = true }
            } else if segment.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                if stack.isEmpty { return nil }
                stack.removeLast()
                if isLast { trailingSlash = true }
            } else {
                stack.append(segment)
            }
        }
        var output: [UInt8] = [UInt8(ascii: "/")]
        for (position, segment) in stack.enumerated() {
            if position > 0 { output.append(UInt8(ascii: "/")) }
            output += segment
        }
        if trailingSlash && !stack.isEmpty { output.append(UInt8(ascii: "/")) }

        if let rawQuery {
            output.append(UInt8(ascii: "?"))
            for byte in rawQuery {
                if byte < 0x20 || byte == 0x7F { return nil }
                if isPathByte(byte) || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "%") {
                    output.append(byte)
                } else {
                    output += escape(byte)
                }
            }
        }
        return output
    }

    /// RFC 3986 unreserved: ALPHA DIGIT - . _ ~.
    static func isUnreserved(_ byte: UInt8) -> Bool {
        isAlphaOrDigit(byte) || "-._~".utf8.contains(byte)
    }

    /// RFC 3986 pchar without escapes, plus `/`.
    static func isPathByte(_ byte: UInt8) -> Bool {
        isUnreserved(byte) || "!$&'()*+,;=:@/".utf8.contains(byte)
    }

    private static func isAlphaOrDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func escape(_ byte: UInt8) -> [UInt8] {
        let digits = Array("0123456789ABCDEF".utf8)
        return [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0xF)]]
    }

    private static func anyHex(_ byte: UInt8) -> UInt8? {
        upperHex(byte) ?? ((UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) ? byte - UInt8(ascii: "a") + 10 : nil)
    }

    private static func upperHex(_ byte: UInt8) -> UInt8? {
        if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { return byte - UInt8(ascii: "0") }
        if (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte) { return byte - UInt8(ascii: "A") + 10 }
        return nil
    }

    static func show(_ bytes: [UInt8]) -> String {
        var text = "'"
        for byte in bytes.prefix(200) {
            if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "'") {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let digits = Array("0123456789ABCDEF".utf8)
                text += "\\x" + String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
            }
        }
        return text + (bytes.count > 200 ? "...'" : "'")
    }
}
