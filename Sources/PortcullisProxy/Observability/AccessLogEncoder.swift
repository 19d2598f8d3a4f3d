import NIOCore

/// Access-log lines as JSON (DESIGN.md "Access log"), written byte by byte on the writer's
/// thread: no Foundation, no formatter, one reused buffer.
///
/// A line is written into memory reserved once for it (`ReservedBytesWriter`), sized for the
/// worst case: every string byte escaped as `\u00XX`. Appending piece by piece to an array cost
/// about 8,300 instructions a line, as much again as the rest of logging (callgrind).
struct AccessLogEncoder {
    private var line = ByteBuffer()
    /// `YYYY-MM-DDTHH:MM:SS.` of the last second seen: lines of one second share it.
    private var secondPrefix: [UInt8] = []
    private var prefixSecond = Int64.min

    init() {}

    /// `{"ts":..., ..., "trace_id":...}` and a newline, handed to `body`.
    mutating func withLine<Result>(_ record: ExchangeRecord, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        let second = Self.floorDivide(record.startMillis, 1000)
        if second != self.prefixSecond { self.updatePrefix(second) }
        var stringBytes = record.requestID.utf8.count + record.sourceIP.utf8.count + record.method.utf8.count
        stringBytes += record.path.utf8.count + record.reason.code.utf8.count
        stringBytes += (record.clientID?.utf8.count ?? 0) + (record.clientName?.utf8.count ?? 0) + (record.tokenID?.utf8.count ?? 0)
        stringBytes += (record.rule?.utf8.count ?? 0) + (record.tenant?.utf8.count ?? 0)
        stringBytes += (record.userAgent?.utf8.count ?? 0) + (record.traceID?.utf8.count ?? 0)
        let bound = Self.fixedBytes + self.secondPrefix.count + 6 * stringBytes
        // A line grown by a huge value (a long path) does not keep its memory.
        if self.line.capacity > Self.keptCapacity { self.line = ByteBuffer() }
        self.line.clear()
        self.line.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { memory in
            var out = ReservedBytesWriter(memory)
            out.write("{\"ts\":\"" as StaticString)
            self.secondPrefix.withUnsafeBytes { out.write($0) }
            Self.decimal(record.startMillis - second * 1000, width: 3, into: &out)
            out.write("Z\",\"request_id\":" as StaticString)
            Self.string(record.requestID, into: &out)
            out.write(",\"client_id\":" as StaticString)
            Self.string(record.clientID, into: &out)
            out.write(",\"client_name\":" as StaticString)
            Self.string(record.clientName, into: &out)
            out.write(",\"jti\":" as StaticString)
            Self.string(record.tokenID, into: &out)
            out.write(",\"src_ip\":" as StaticString)
            Self.string(record.sourceIP, into: &out)
            out.write(",\"method\":" as StaticString)
            Self.string(record.method, into: &out)
            out.write(",\"path\":" as StaticString)
            Self.string(record.path, into: &out)
            out.write(",\"status\":" as StaticString)
            Self.decimal(Int64(record.status), into: &out)
            out.write(record.decision == .allow ? ",\"decision\":\"allow\"" as StaticString : ",\"decision\":\"deny\"")
            out.write(",\"reason\":" as StaticString)
            Self.string(record.reason.code, into: &out)
            out.write(",\"rule\":" as StaticString)
            Self.string(record.rule, into: &out)
            out.write(",\"tenant\":" as StaticString)
            Self.string(record.tenant, into: &out)
            out.write(",\"bytes_in\":" as StaticString)
            Self.decimal(Int64(record.bytesIn), into: &out)
            out.write(",\"bytes_out\":" as StaticString)
            Self.decimal(Int64(record.bytesOut), into: &out)
            out.write(",\"upstream_ms\":" as StaticString)
            if let nanos = record.upstreamNanos { Self.milliseconds(nanos, into: &out) } else { out.write("null" as StaticString) }
            out.write(",\"total_ms\":" as StaticString)
            Self.milliseconds(record.totalNanos, into: &out)
            out.write(",\"user_agent\":" as StaticString)
            Self.string(record.userAgent, into: &out)
            out.write(",\"trace_id\":" as StaticString)
            Self.string(record.traceID, into: &out)
            out.write("}\n" as StaticString)
            return out.count
        }
        return self.line.withUnsafeReadableBytes(body)
    }

    /// The line's bytes outside the strings, at most: the keys and punctuation (about 200),
    /// five integers of at most 20 characters, two millisecond values of at most 24.
    private static let fixedBytes = 512
    private static let keptCapacity = 64 * 1024

    /// One line, as an array (tests).
    mutating func encode(_ record: ExchangeRecord) -> [UInt8] {
        self.withLine(record) { Array($0) }
    }

    /// The line that marks lines dropped at this place of the log.
    mutating func dropMarker(lines: Int, nowMillis: Int64) -> [UInt8] {
        var line: [UInt8] = []
        line.append(contentsOf: #"{"ts":""#.utf8)
        Self.appendTimestamp(nowMillis, to: &line)
        line.append(contentsOf: #"","event":"access_log_dropped","lines":"#.utf8)
        Self.appendDecimal(Int64(lines), to: &line)
        line.append(contentsOf: "}\n".utf8)
        return line
    }

    // MARK: - Pieces

    private mutating func updatePrefix(_ second: Int64) {
        self.prefixSecond = second
        self.secondPrefix.removeAll(keepingCapacity: true)
        Self.appendTimestamp(second * 1000, to: &self.secondPrefix)
        self.secondPrefix.removeLast(4)  // "000Z"
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        value >= 0 ? value / divisor : (value - divisor + 1) / divisor
    }

    /// A JSON string, or `null`. Most values need no escaping: copied in one go.
    @inline(__always)
    private static func string(_ value: String?, into out: inout ReservedBytesWriter) {
        guard var value else { return out.write("null" as StaticString) }
        out.write(byte: UInt8(ascii: "\""))
        value.withUTF8 { bytes in
            let clean = Self.cleanPrefix(UnsafeRawBufferPointer(bytes))
            out.write(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[0..<clean]))
            for byte in bytes[clean...] { Self.escaped(byte, into: &out) }
        }
        out.write(byte: UInt8(ascii: "\""))
    }

    /// How many leading bytes need no escaping: eight at a time while a word has no byte
    /// below 0x20, no `"`, no `\\` and no DEL (the usual value has none at all).
    @inline(__always)
    private static func cleanPrefix(_ p: UnsafeRawBufferPointer) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func hasByte(_ word: UInt64, _ byte: UInt8) -> Bool {
            let x = word ^ (ones &* UInt64(byte))
            return (x &- ones) & ~x & highs != 0
        }
        var index = 0
        while index + 8 <= p.count {
            let word = p.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let below20 = (word &- ones &* 0x20) & ~word & highs != 0
            if below20 || hasByte(word, 0x22) || hasByte(word, 0x5C) || hasByte(word, 0x7F) { break }
            index += 8
        }
        while index < p.count && Self.needsNoEscape(p[index]) { index += 1 }
        return index
    }

    @inline(__always)
    private static func needsNoEscape(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") && byte != 0x7F
    }

    private static func escaped(_ byte: UInt8, into out: inout ReservedBytesWriter) {
        switch byte {
        case UInt8(ascii: "\""): out.write("\\\"" as StaticString)
        case UInt8(ascii: "\\"): out.write("\\\\" as StaticString)
        case 0x0A: out.write("\\n" as StaticString)
        case 0x0D: out.write("\\r" as StaticString)
        case 0x09: out.write("\\t" as StaticString)
        case 0x00..<0x20, 0x7F:
            out.write("\\u00" as StaticString)
            out.write(byte: Self.hexDigit(byte >> 4))
            out.write(byte: Self.hexDigit(byte & 0x0F))
        default:
            out.write(byte: byte)
        }
    }

    /// Nanoseconds as milliseconds with three decimals (`12.345`).
    private static func milliseconds(_ nanos: Int64, into out: inout ReservedBytesWriter) {
        let micros = max(0, nanos) / 1000
        Self.decimal(micros / 1000, into: &out)
        out.write(byte: UInt8(ascii: "."))
        Self.decimal(micros % 1000, width: 3, into: &out)
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? 0x30 + value : 0x61 + value - 10
    }

    /// `value` in decimal, zero-padded to `width` digits.
    private static func decimal(_ value: Int64, width: Int = 1, into out: inout ReservedBytesWriter) {
        Self.withDigits(value, width: width) { out.write($0) }
    }

    static func appendDecimal(_ value: Int64, to out: inout [UInt8], width: Int = 1) {
        Self.withDigits(value, width: width) { out.append(contentsOf: $0) }
    }

    /// The decimal text of `value` (a `-` first when negative), its digits zero-padded to
    /// `width`, at most 20 characters, written into a scratch on the stack.
    @inline(__always)
    private static func withDigits(_ value: Int64, width: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
        precondition(width <= 19, "decimal width \(width)")
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes, filled from the end
        withUnsafeMutableBytes(of: &digits) { scratch in
            var index = scratch.count
            var rest = value.magnitude
            repeat {
                index -= 1
                scratch[index] = UInt8(truncatingIfNeeded: rest % 10) + 0x30
                rest /= 10
            } while rest > 0 || scratch.count - index < width
            if value < 0 {
                index -= 1
                scratch[index] = UInt8(ascii: "-")
            }
            body(UnsafeRawBufferPointer(rebasing: scratch[index...]))
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
