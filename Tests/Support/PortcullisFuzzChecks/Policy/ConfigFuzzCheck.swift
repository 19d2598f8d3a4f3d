import PortcullisPolicy

/// The properties of `ConfigLoader` that the `config` fuzz target checks, and the regression
/// tests with it.
///
/// The input is the text of one config file, loaded through the in-memory entry from a
/// directory that does not exist (so every file the config names is missing, the same on every
/// machine). Beyond not crashing: a refusal carries at least one error, each with a message,
/// and each location in the file itself, at a line and column the text has; an acceptance has
/// a listener and an upstream.
public enum ConfigFuzzCheck {
    static let directory = "/nonexistent/portcullis-fuzz-config"
    static let file = directory + "/portcullis.yaml"

    /// The properties `input` breaks; empty when all hold.
    public static func failures(_ input: [UInt8]) -> [String] {
        let text = String(decoding: input, as: UTF8.self)
        var failures: [String] = []
        do {
            let config = try ConfigLoader.load(sources: [(file, text)], directory: directory)
            if config.listeners.isEmpty { failures.append("accepted a config without a listener") }
        } catch {
            if error.errors.isEmpty { failures.append("refused with no error") }
            // YAML breaks lines at LF, CR and CRLF (the fuzzer's first find: a lone CR).
            let bytes = Array(text.utf8)
            var lines = 1
            for (index, byte) in bytes.enumerated()
            where byte == 0x0A || (byte == 0x0D && (index + 1 == bytes.count || bytes[index + 1] != 0x0A)) {
                lines += 1
            }
            for problem in error.errors {
                if problem.message.isEmpty { failures.append("an error without a message (key '\(problem.key)')") }
                guard let location = problem.location else { continue }
                if location.file != file { failures.append("error located in '\(location.file)': \(problem)") }
                // Yams may point one line past the text's last (at its end), never further.
                if location.line < 1 || location.line > lines + 1 || location.column < 1 {
                    failures.append("error at \(location.line):\(location.column) of a \(lines)-line text: \(problem)")
                }
            }
        }
        return failures
    }
}
