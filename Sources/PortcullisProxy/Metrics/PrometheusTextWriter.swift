/// Writes the Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` lines,
/// then one `name{label="value",...} value` line per sample.
struct PrometheusTextWriter {
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    enum MetricType: String {
        case counter
        case gauge
        case histogram
    }

    private(set) var text = ""

    mutating func family(_ name: String, _ type: MetricType, help: String) {
        self.text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(type.rawValue)\n"
    }

    mutating func sample(_ name: String, _ value: Int, labels: KeyValuePairs<String, String> = [:]) {
        self.sample(name, text: String(value), labels: labels)
    }

    mutating func sample(_ name: String, seconds nanos: Int64, labels: KeyValuePairs<String, String> = [:]) {
        self.sample(name, text: Self.seconds(nanos), labels: labels)
    }

    private mutating func sample(_ name: String, text value: String, labels: KeyValuePairs<String, String>) {
        self.text += name
        if !labels.isEmpty {
            self.text += "{"
            for (index, (label, labelValue)) in labels.enumerated() {
                if index > 0 { self.text += "," }
                self.text += "\(label)=\"\(Self.escapeLabelValue(labelValue))\""
            }
            self.text += "}"
        }
        self.text += " \(value)\n"
    }

    /// The histogram's `_bucket` (cumulative, `le` last), `_sum` (seconds) and `_count` lines.
    mutating func histogram(_ name: String, _ histogram: LoopMetrics.Histogram) {
        for (label, count) in zip(LoopMetrics.Histogram.bucketLabels, histogram.cumulativeCounts) {
            self.sample("\(name)_bucket", count, labels: ["le": label])
        }
        self.sample("\(name)_sum", seconds: histogram.sumNanos)
        self.sample("\(name)_count", histogram.count)
    }

    /// Appends text another writer made (swift-prometheus's registry), which ends in a newline.
    mutating func append(_ exposition: String) {
        self.text += exposition
    }

    /// Backslash, double quote and line feed are escaped in label values.
    static func escapeLabelValue(_ value: String) -> String {
        Self.escape(value, quote: true)
    }

    /// Backslash and line feed are escaped in `# HELP` text.
    static func escapeHelp(_ help: String) -> String {
        Self.escape(help, quote: false)
    }

    private static func escape(_ text: String, quote: Bool) -> String {
        let special = { (byte: UInt8) in
            byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\n") || (quote && byte == UInt8(ascii: "\""))
        }
        guard text.utf8.contains(where: special) else { return text }
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\"" where quote: escaped += "\\\""
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// Whole nanoseconds as seconds, exactly (`1.5`, `0.000000001`), with no float rounding.
    static func seconds(_ nanos: Int64) -> String {
        let sign = nanos < 0 ? "-" : ""
        let magnitude = nanos.magnitude
        let whole = magnitude / 1_000_000_000
        let fraction = magnitude % 1_000_000_000
        guard fraction > 0 else { return "\(sign)\(whole)" }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 9 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(sign)\(whole).\(digits)"
    }
}
