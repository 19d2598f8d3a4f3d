/// Access-log lines as JSON (DESIGN.md "Access log"), written byte by byte on the writer's
/// thread: no Foundation, no formatter, one reused buffer.
struct AccessLogEncoder {
    private var line: [UInt8] = []
    /// `YYYY-MM-DDTHH:MM:SS.` of the last second seen: lines of one second share it.
    private var secondPrefix: [UInt8] = []
    private var prefixSecond = Int64.min

    init() {
        self.line.reserveCapacity(512)
    }

    /// `{"ts":..., ..., "trace_id":...}` and a newline.
    mutating func encode(_ record: ExchangeRecord) -> [UInt8] {
        self.line.removeAll(keepingCapacity: true)
        self.raw("{\"ts\":\"")
        self.timestamp(record.startMillis)
        self.raw("\",\"request_id\":")
        self.string(record.requestID)
        self.raw(",\"client_id\":")
        self.string(record.clientID)
        self.raw(",\"client_name\":")
        self.string(record.clientName)
        self.raw(",\"src_ip\":")
        self.string(record.sourceIP)
        self.raw(",\"method\":")
        self.string(record.method)
        self.raw(",\"path\":")
        self.string(record.path)
        self.raw(",\"status\":")
        self.integer(Int64(record.status))
        self.raw(record.decision == .allow ? ",\"decision\":\"allow\"" : ",\"decision\":\"deny\"")
        self.raw(",\"reason\":")
        self.string(record.reason)
        self.raw(",\"rule\":")
        self.string(record.rule)
        self.raw(",\"tenant\":")
        self.string(record.tenant)
        self.raw(",\"bytes_in\":")
        self.integer(Int64(record.bytesIn))
        self.raw(",\"bytes_out\":")
        self.integer(Int64(record.bytesOut))
        self.raw(",\"upstream_ms\":")
        if let nanos = record.upstreamNanos { self.milliseconds(nanos) } else { self.raw("null") }
        self.raw(",\"total_ms\":")
        self.milliseconds(record.totalNanos)
        self.raw(",\"user_agent\":")
        self.string(record.userAgent)
        self.raw(",\"trace_id\":")
        self.string(record.traceID)
        self.raw("}\n")
        return self.line
    }

    /// The line that marks lines dropped at this place of the log.
    mutating func dropMarker(lines: Int, nowMillis: Int64) -> [UInt8] {
        self.line.removeAll(keepingCapacity: true)
        self.raw("{\"ts\":\"")
        Self.appendTimestamp(nowMillis, to: &self.line)
        self.raw("\",\"event\":\"access_log_dropped\",\"lines\":")
        self.integer(Int64(lines))
        self.raw("}\n")
        return self.line
    }

    // MARK: - Pieces

    private mutating func timestamp(_ millis: Int64) {
        let second = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        if second != self.prefixSecond {
            self.prefixSecond = second
            self.secondPrefix.removeAll(keepingCapacity: true)
            Self.appendTimestamp(second * 1000, to: &self.secondPrefix)
            self.secondPrefix.removeLast(4)  // "000Z"
        }
        self.line.append(contentsOf: self.secondPrefix)
        Self.appendDecimal(millis - second * 1000, to: &self.line, width: 3)
        self.line.append(UInt8(ascii: "Z"))
    }

    private mutating func raw(_ text: StaticString) {
        self.line.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private mutating func string(_ value: String?) {
        guard var value else { return self.raw("null") }
        self.line.append(UInt8(ascii: "\""))
        // Most values need no escaping: copied in one go.
        let clean = value.withUTF8 { bytes in
            if bytes.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") && $0 != 0x7F }) {
                self.line.append(contentsOf: bytes)
                return true
            }
            return false
        }
        if clean {
            self.line.append(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): self.raw("\\\"")
            case UInt8(ascii: "\\"): self.raw("\\\\")
            case 0x0A: self.raw("\\n")
            case 0x0D: self.raw("\\r")
            case 0x09: self.raw("\\t")
            case 0x00..<0x20, 0x7F:
                self.raw("\\u00")
                self.line.append(Self.hexDigit(byte >> 4))
                self.line.append(Self.hexDigit(byte & 0x0F))
            default:
                self.line.append(byte)
            }
        }
        self.line.append(UInt8(ascii: "\""))
    }

    private mutating func integer(_ value: Int64) {
        Self.appendDecimal(value, to: &self.line)
    }

    /// Nanoseconds as milliseconds with three decimals (`12.345`).
    private mutating func milliseconds(_ nanos: Int64) {
        let micros = max(0, nanos) / 1000
        Self.appendDecimal(micros / 1000, to: &self.line)
        self.line.append(UInt8(ascii: "."))
        Self.appendDecimal(micros % 1000, to: &self.line, width: 3)
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? 0x30 + value : 0x61 + value - 10
    }

    static func appendDecimal(_ value: Int64, to out: inout [UInt8], width: Int = 1) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            return Self.appendDecimal(0 - value, to: &out, width: width)
        }
        // Highest power of ten to print, so digits come out in order with no scratch buffer.
        var divisor: Int64 = 1
        var digits = 1
        while digits < width || (digits < 19 && value / divisor >= 10) {
            divisor *= 10
            digits += 1
        }
        while divisor > 0 {
            out.append(UInt8(truncatingIfNeeded: value / divisor % 10) + 0x30)
            divisor /= 10
        }
    }

    /// RFC 3339 UTC with milliseconds: `2026-11-22T13:33:32.123Z`.
    static func appendTimestamp(_ millis: Int64, to out: inout [UInt8]) {
        let seconds = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        let milli = millis - seconds * 1000
        var days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        Self.appendDecimal(year, to: &out, width: 4)
        out.append(UInt8(ascii: "-"))
        Self.appendDecimal(month, to: &out, width: 2)
        out.append(UInt8(ascii: "-"))
        Self.appendDecimal(day, to: &out, width: 2)
        out.append(UInt8(ascii: "T"))
        Self.appendDecimal(secondOfDay / 3600, to: &out, width: 2)
        out.append(UInt8(ascii: ":"))
        Self.appendDecimal(secondOfDay / 60 % 60, to: &out, width: 2)
        out.append(UInt8(ascii: ":"))
        Self.appendDecimal(secondOfDay % 60, to: &out, width: 2)
        out.append(UInt8(ascii: "."))
        Self.appendDecimal(milli, to: &out, width: 3)
        out.append(UInt8(ascii: "Z"))
    }
}
