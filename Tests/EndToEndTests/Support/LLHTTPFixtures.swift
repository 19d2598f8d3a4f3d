import Foundation
import SharedTestData

/// One parsing case from llhttp's markdown test suite (`shared/testdata/llhttp/*.md`).
struct LLHTTPCase: Sendable, CustomStringConvertible {
    /// The markdown file name, e.g. `content-length.md`.
    var file: String
    /// The nearest heading above the case.
    var name: String
    /// 1-based line of the ```http fence, for messages.
    var line: Int
    /// `request`, `response`, `request-only`, `request-lenient-headers`, ...
    var type: String
    /// `strict` or `loose` when the meta names one.
    var mode: String?
    /// llhttp's `noScan` meta flag (the case is not replayed byte by byte).
    var noScan: Bool
    /// The bytes to feed the parser, escapes expanded and lines ending in CRLF.
    var input: [UInt8]
    /// The expected event log, one entry per line.
    var expectedLog: [String]
    /// The `error code=N` of the log, if it has one (pauses included).
    var errorCode: Int?
    var errorReason: String?

    /// The parser must reject the input: the log has an error that is not one of llhttp's pauses
    /// (21 paused, 22 CONNECT/Upgrade, 23 PRI/Upgrade), which mean "hand the connection over".
    var expectsError: Bool {
        guard let errorCode else { return false }
        return !Self.pauseCodes.contains(errorCode)
    }

    /// The log ends in a pause for CONNECT or Upgrade rather than an error.
    var expectsUpgradePause: Bool {
        self.errorCode.map(Self.pauseCodes.contains) ?? false
    }

    /// Messages the log completes.
    var completedMessages: Int {
        self.expectedLog.filter { $0.hasSuffix(" message complete") }.count
    }

    var isRequest: Bool { self.type == "request" || self.type == "request-only" }
    var isLenient: Bool { self.type.contains("-lenient-") }

    var description: String { "\(self.file):\(self.line) \(self.name)" }

    private static let pauseCodes: Set<Int> = [21, 22, 23]
}

/// Reads the llhttp fixtures. They live outside the repository (`../shared/testdata/llhttp`), so
/// callers skip with `missingMessage` when `directory()` is nil.
enum LLHTTPFixtures {
    static let missingMessage =
        "llhttp fixtures not found: expected the folder shared/testdata/llhttp beside the repository "
        + "(../shared/testdata/llhttp), or PORTCULLIS_TESTDATA pointing at a testdata folder"

    /// `$PORTCULLIS_TESTDATA/llhttp`, else `shared/testdata/llhttp` beside some folder above the
    /// current directory or this source file.
    static func directory(filePath: String = #filePath) -> URL? {
        SharedTestData.url("llhttp", filePath: filePath)
    }

    /// Every case of every `*.md` file, in file order; nil when the folder is absent.
    static func allCases(filePath: String = #filePath) -> [LLHTTPCase]? {
        guard let folder = self.directory(filePath: filePath) else { return nil }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".md") }.sorted().flatMap { name -> [LLHTTPCase] in
            guard let text = try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8) else {
                return []
            }
            return self.parse(markdown: text, file: name)
        }
    }

    /// The cases of type `request` and `request-only` (the lenient variants are left out: Portcullis
    /// parses strictly); nil when the folder is absent.
    static func requestCases(filePath: String = #filePath) -> [LLHTTPCase]? {
        self.allCases(filePath: filePath)?.filter(\.isRequest)
    }

    /// The cases of one markdown document.
    static func parse(markdown: String, file: String) -> [LLHTTPCase] {
        var cases: [LLHTTPCase] = []
        var heading = ""
        var previousLine = ""
        var meta: [String: Any] = [:]
        var fence: (language: String, startLine: Int, lines: [String])?
        var pendingInput: (line: Int, bytes: [UInt8], meta: [String: Any], heading: String)?

        let lines = markdown.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }.map(String.init)
        for (index, line) in lines.enumerated() {
            if var open = fence {
                if line.hasPrefix("```") {
                    fence = nil
                    if open.language == "http" {
                        pendingInput = (open.startLine, self.input(fromBlock: open.lines), meta, heading)
                        meta = [:]
                    } else if open.language == "log", let input = pendingInput {
                        cases.append(self.makeCase(file: file, input: input, log: open.lines))
                        pendingInput = nil
                    }
                } else {
                    open.lines.append(line)
                    fence = open
                }
                continue
            }
            if line.hasPrefix("```") {
                let language = line.dropFirst(3).trimmingCharacters(in: .whitespaces)
                fence = (language, index + 1, [])
            } else if line.hasPrefix("#") {
                heading = line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)
            } else if !previousLine.isEmpty, !line.isEmpty, line.allSatisfy({ $0 == "=" || $0 == "-" }) {
                heading = previousLine.trimmingCharacters(in: .whitespaces)
            } else if let range = line.range(of: "<!-- meta=") {
                var json = line[range.upperBound...]
                if let end = json.range(of: "-->") {
                    json = json[..<end.lowerBound]
                }
                meta = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
            }
            previousLine = line
        }
        return cases
    }

    private static func makeCase(
        file: String,
        input: (line: Int, bytes: [UInt8], meta: [String: Any], heading: String),
        log: [String]
    ) -> LLHTTPCase {
        let entries = log.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        var errorCode: Int?
        var errorReason: String?
        for entry in entries {
            // `off=56 error code=11 reason="Content-Length overflow"`, or a bare `error ...` line.
            let words = entry.split(separator: " ", maxSplits: 2)
            let rest: Substring
            if words.first == "error" {
                rest = entry.dropFirst("error".count)
            } else if words.count >= 2, words[0].hasPrefix("off="), words[1] == "error" {
                rest = words.count > 2 ? words[2] : ""
            } else {
                continue
            }
            if let code = rest.range(of: "code=") {
                errorCode = Int(rest[code.upperBound...].prefix { $0.isNumber }) ?? -1
            } else {
                errorCode = -1
            }
            if let reason = rest.range(of: "reason=\"") {
                errorReason = String(rest[reason.upperBound...].dropLast(rest.hasSuffix("\"") ? 1 : 0))
            }
        }
        return LLHTTPCase(
            file: file,
            name: input.heading,
            line: input.line,
            type: input.meta["type"] as? String ?? "request",
            mode: input.meta["mode"] as? String,
            noScan: input.meta["noScan"] as? Bool ?? false,
            input: input.bytes,
            expectedLog: entries,
            errorCode: errorCode,
            errorReason: errorReason
        )
    }

    /// The block's lines joined as llhttp's test runner does: the trailing newline dropped, a
    /// backslash at the end of a line joining it to the next, every newline made CRLF, then
    /// `\r \n \t \f \xNN` expanded. `\xNN` stands for the character U+00NN written as UTF-8, as
    /// in llhttp (the logged offsets count `\xff` as two bytes).
    static func input(fromBlock lines: [String]) -> [UInt8] {
        var text = lines.joined(separator: "\n")
        text = text.replacingOccurrences(of: "\\\n", with: "")
        text = text.replacingOccurrences(of: "\n", with: "\r\n")
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\"), index + 1 < bytes.count else {
                out.append(byte)
                index += 1
                continue
            }
            switch bytes[index + 1] {
            case UInt8(ascii: "r"):
                out.append(0x0D)
                index += 2
            case UInt8(ascii: "n"):
                out.append(0x0A)
                index += 2
            case UInt8(ascii: "t"):
                out.append(0x09)
                index += 2
            case UInt8(ascii: "f"):
                out.append(0x0C)
                index += 2
            case UInt8(ascii: "x")
            where index + 3 < bytes.count && self.isHex(bytes[index + 2]) && self.isHex(bytes[index + 3]):
                let value = UInt8(String(decoding: bytes[(index + 2)...(index + 3)], as: UTF8.self), radix: 16)!
                out.append(contentsOf: Array(String(UnicodeScalar(value)).utf8))
                index += 4
            default:
                out.append(byte)
                index += 1
            }
        }
        return out
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }
}
