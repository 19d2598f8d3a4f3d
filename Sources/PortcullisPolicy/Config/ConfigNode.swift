import Yams

/// YAML text to nodes, every scalar left a string: the loader reads booleans, numbers and
/// durations itself (`ConfigNode.bool`, `integer`, `duration`). Yams' default resolver would
/// match each plain scalar against seven regular expressions to tag it, which starts
/// Foundation's regular-expression engine and ICU in every gateway for tags nothing reads.
enum ConfigYAML {
    static func compose(_ text: String) throws -> Node? {
        try Yams.compose(yaml: text, .basic)
    }

    /// A YAML 1.1 boolean, spelled as Yams' default resolver accepts one, in a plain (unquoted)
    /// scalar: `"true"` in quotes is a string, as it was with that resolver.
    static func bool(_ node: Node) -> Bool? {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return nil }
        switch scalar.string {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        default: return nil
        }
    }
}

/// A YAML node with the file it came from, so every value can report `file:line:col`.
struct ConfigNode {
    let node: Node
    let file: String
    let keyPath: String

    var location: SourceLocation? {
        self.node.mark.map { SourceLocation(file: self.file, line: $0.line, column: $0.column) }
    }

    func error(_ message: String) -> ConfigError {
        ConfigError(self.location, key: self.keyPath, message)
    }

    func child(_ node: Node, key: String) -> ConfigNode {
        ConfigNode(node: node, file: self.file, keyPath: self.keyPath.isEmpty ? key : "\(self.keyPath).\(key)")
    }

    func element(_ node: Node, index: Int) -> ConfigNode {
        ConfigNode(node: node, file: self.file, keyPath: "\(self.keyPath)[\(index)]")
    }

    struct Entry {
        let key: String
        let keyLocation: SourceLocation?
        let value: ConfigNode
    }

    /// The entries of a mapping, in file order; an error for anything else or a repeated key.
    func mapping(_ errors: inout [ConfigError]) -> [Entry]? {
        guard case .mapping(let mapping) = self.node else {
            errors.append(self.error("expected a mapping of keys to values, found \(self.kind)"))
            return nil
        }
        var seen: [String: SourceLocation?] = [:]
        var entries: [Entry] = []
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                errors.append(self.error("keys must be plain strings"))
                continue
            }
            let key = scalar.string
            let keyLocation = keyNode.mark.map { SourceLocation(file: self.file, line: $0.line, column: $0.column) }
            if let first = seen[key] {
                let firstText = first.map { " (first at line \($0.line))" } ?? ""
                errors.append(ConfigError(keyLocation, key: self.childPath(key), "duplicate key\(firstText)"))
                continue
            }
            seen[key] = keyLocation
            entries.append(Entry(key: key, keyLocation: keyLocation, value: self.child(valueNode, key: key)))
        }
        return entries
    }

    /// Checks the keys of a mapping against the known ones and reports the others.
    func checkKeys(
        _ entries: [Entry],
        known: [String],
        _ errors: inout [ConfigError]
    ) {
        for entry in entries where !known.contains(entry.key) {
            errors.append(
                ConfigError(
                    entry.keyLocation ?? self.location,
                    key: self.childPath(entry.key),
                    "unknown key\(Self.suggestion(for: entry.key, among: known)); expected one of \(known.joined(separator: ", "))"
                )
            )
        }
    }

    func sequence(_ errors: inout [ConfigError]) -> [ConfigNode]? {
        guard case .sequence(let sequence) = self.node else {
            errors.append(self.error("expected a list, found \(self.kind)"))
            return nil
        }
        return sequence.enumerated().map { self.element($0.element, index: $0.offset) }
    }

    func string(_ errors: inout [ConfigError]) -> String? {
        guard case .scalar(let scalar) = self.node else {
            errors.append(self.error("expected a string, found \(self.kind)"))
            return nil
        }
        return scalar.string
    }

    func bool(_ errors: inout [ConfigError]) -> Bool? {
        guard let value = ConfigYAML.bool(self.node) else {
            errors.append(self.error("expected true or false"))
            return nil
        }
        return value
    }

    func integer(_ errors: inout [ConfigError], in range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let scalar) = self.node, !scalar.string.isEmpty,
            scalar.string.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int(scalar.string)
        else {
            errors.append(self.error("expected a whole number in \(range.lowerBound)...\(range.upperBound)"))
            return nil
        }
        guard range.contains(value) else {
            errors.append(self.error("\(value) is out of range; expected \(range.lowerBound)...\(range.upperBound)"))
            return nil
        }
        return value
    }

    func duration(_ errors: inout [ConfigError]) -> ConfigDuration? {
        guard case .scalar(let scalar) = self.node else {
            errors.append(self.error("expected a duration such as 500ms, 30s, 10m or 1h"))
            return nil
        }
        switch ConfigDuration.validate(scalar.string) {
        case .success(let value):
            return value
        case .failure(let reason):
            errors.append(self.error("\(reason); expected a duration such as 500ms, 30s, 10m or 1h"))
            return nil
        }
    }

    var kind: String {
        switch self.node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let scalar): return scalar.string.isEmpty ? "nothing" : "'\(scalar.string)'"
        case .alias: return "an alias"
        }
    }

    func childPath(_ key: String) -> String {
        self.keyPath.isEmpty ? key : "\(self.keyPath).\(key)"
    }

    /// "; did you mean 'upstream'?" when a known key is one or two edits away.
    static func suggestion(for key: String, among known: [String]) -> String {
        let best = known.map { ($0, editDistance(key.lowercased(), $0)) }.min { $0.1 < $1.1 }
        guard let (name, distance) = best, distance <= max(1, min(2, name.count / 3)) else { return "" }
        return " (did you mean '\(name)'?)"
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8)
        let b = Array(b.utf8)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
