/// Where in the configuration a value came from: a file and a 1-based line and column.
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(self.file):\(self.line):\(self.column)" }
}

/// One problem found in a configuration: where, which key, and what was expected.
///
/// Loading collects every error of a configuration before failing, so an operator sees them
/// all at once; `description` reads like a compiler diagnostic (`file:line:col: key: message`).
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation?
    /// The key path, e.g. `upstream.connect_timeout` or `listen[1].address`.
    public var key: String
    public var message: String

    public init(_ location: SourceLocation?, key: String, _ message: String) {
        self.location = location
        self.key = key
        self.message = message
    }

    public var description: String {
        let place = self.location.map { "\($0): " } ?? ""
        let key = self.key.isEmpty ? "" : "\(self.key): "
        return "\(place)\(key)\(self.message)"
    }
}

/// A configuration that failed validation, with every error found.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]

    public init(_ errors: [ConfigError]) {
        self.errors = errors
    }

    public var description: String {
        self.errors.map(\.description).joined(separator: "\n")
    }
}
