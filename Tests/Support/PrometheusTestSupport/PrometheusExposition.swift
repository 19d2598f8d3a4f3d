/// A strict reader of the Prometheus text format (0.0.4) for the tests: every line is a HELP,
/// a TYPE, or a sample of a family whose TYPE came first; label values are unescaped.
public struct PrometheusExposition {
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Sample: Sendable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    /// `# HELP` text by family name.
    public private(set) var helps: [String: String] = [:]
    /// `# TYPE` by family name.
    public private(set) var types: [String: String] = [:]
    public private(set) var samples: [Sample] = []

    public init(parsing text: String) throws {
        guard text.hasSuffix("\n") else { throw ParseError(description: "the text does not end in a line feed") }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                let name = String(rest.prefix { $0 != " " })
                guard Self.isMetricName(name), self.helps[name] == nil else { throw ParseError(description: "bad or repeated HELP: \(line)") }
                self.helps[name] = String(rest.dropFirst(name.count + 1))
            } else if line.hasPrefix("# TYPE ") {
                let words = line.dropFirst(7).split(separator: " ")
                guard words.count == 2, Self.isMetricName(String(words[0])),
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(words[1]),
                    self.types[String(words[0])] == nil
                else { throw ParseError(description: "bad or repeated TYPE: \(line)") }
                self.types[String(words[0])] = String(words[1])
            } else if line.hasPrefix("#") || line.isEmpty {
                continue
            } else {
                let sample = try Self.sample(line)
                guard self.family(of: sample.name) != nil else {
                    throw ParseError(description: "sample before its TYPE: \(line)")
                }
                self.samples.append(sample)
            }
        }
    }

    /// The family a sample belongs to (a histogram's `_bucket`, `_sum` and `_count` included).
    public func family(of name: String) -> String? {
        if self.types[name] != nil { return name }
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if self.types[base] == "histogram" || self.types[base] == "summary" { return base }
        }
        return nil
    }

    /// The value of the sample with exactly these labels.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        self.samples.first { $0.name == name && $0.labels == labels }?.value
    }

    public static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.properties.isAlphabetic || first == "_" || first == ":" else { return false }
        return name.unicodeScalars.allSatisfy { ($0.isASCII && $0.properties.isAlphabetic) || ("0"..."9").contains($0) || $0 == "_" || $0 == ":" }
    }

    private static func sample(_ line: Substring) throws -> Sample {
        var rest = line[...]
        let name = String(rest.prefix { $0 != "{" && $0 != " " })
        guard isMetricName(name) else { throw ParseError(description: "bad metric name: \(line)") }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let label = String(rest.prefix { $0 != "=" })
                guard isMetricName(label), !label.contains(":") else { throw ParseError(description: "bad label name: \(line)") }
                rest = rest.dropFirst(label.count)
                guard rest.hasPrefix("=\"") else { throw ParseError(description: "expected =\" in \(line)") }
                rest = rest.dropFirst(2)
                var value = ""
                while true {
                    guard let character = rest.first else { throw ParseError(description: "unterminated label value: \(line)") }
                    rest = rest.dropFirst()
                    if character == "\"" { break }
                    if character == "\\" {
                        guard let escaped = rest.first else { throw ParseError(description: "dangling escape: \(line)") }
                        rest = rest.dropFirst()
                        switch escaped {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw ParseError(description: "bad escape \\\(escaped): \(line)")
                        }
                    } else {
                        value.append(character)
                    }
                }
                guard labels.updateValue(value, forKey: label) == nil else { throw ParseError(description: "repeated label: \(line)") }
                if rest.first == "," { rest = rest.dropFirst() }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " " else { throw ParseError(description: "expected a space before the value: \(line)") }
        let words = rest.dropFirst().split(separator: " ")
        guard (1...2).contains(words.count), let value = Self.number(words[0]) else {
            throw ParseError(description: "bad value: \(line)")
        }
        return Sample(name: name, labels: labels, value: value)
    }

    private static func number(_ text: Substring) -> Double? {
        switch text {
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }
}

extension PrometheusExposition {
    /// Every family the gateway exposes on /metrics, with its type.
    public static let gatewayFamilies: [String: String] = [
        "portcullis_requests_total": "counter",
        "portcullis_request_duration_seconds": "histogram",
        "portcullis_upstream_duration_seconds": "histogram",
        "portcullis_upstream_connections": "gauge",
        "portcullis_client_connections": "gauge",
        "portcullis_token_cache_hits_total": "counter",
        "portcullis_token_cache_misses_total": "counter",
        "portcullis_jwks_refreshes_total": "counter",
        "portcullis_jwks_refresh_failures_total": "counter",
        "portcullis_config_generation": "gauge",
        "portcullis_config_reloads_total": "counter",
        "portcullis_config_reload_failures_total": "counter",
    ]

    /// The families added when an access-log writer runs.
    public static let accessLogFamilies: [String: String] = [
        "portcullis_access_log_queue_lines": "gauge",
        "portcullis_access_log_written_lines_total": "counter",
        "portcullis_access_log_dropped_lines_total": "counter",
    ]
}
