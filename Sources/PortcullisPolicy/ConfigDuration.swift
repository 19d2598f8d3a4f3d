/// A duration from the configuration, written as an integer and a unit: `500ms`, `30s`, `10m`,
/// `1h`.
///
/// Only that form is accepted: no fractions, no spaces, no sign, no leading zeros, no bare
/// numbers (is `30` seconds or milliseconds?). Values are whole milliseconds, so
/// `description` always prints back a form that parses to the same value.
public struct ConfigDuration: Hashable, Sendable, Comparable {
    public let nanoseconds: Int64

    private init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    /// Parses `<digits><unit>` with unit `ms`, `s`, `m`, `h` or `d` (24h); nil otherwise or on overflow.
    public init?(parsing text: some StringProtocol) {
        guard case .success(let duration) = ConfigDuration.validate(text) else { return nil }
        self = duration
    }

    /// Parses like `init(parsing:)` and, on failure, says why in words fit for a config error.
    public static func validate(_ text: some StringProtocol) -> Result<ConfigDuration, ConfigDurationError> {
        let bytes = text.utf8
        let digitsEnd = bytes.firstIndex { $0 &- UInt8(ascii: "0") >= 10 } ?? bytes.endIndex
        let digits = bytes[..<digitsEnd]
        let unitText = text[digitsEnd...]
        guard let firstDigit = digits.first else {
            return .failure(
                ConfigDurationError(
                    .invalidNumber,
                    reason: "'\(text)' is not a duration; write a whole number and a unit: 500ms, 30s, 10m or 1h"
                )
            )
        }
        guard firstDigit != UInt8(ascii: "0") || digits.count == 1 else {
            return .failure(ConfigDurationError(.invalidNumber, reason: "leading zero in duration '\(text)'"))
        }
        if unitText.hasPrefix(".") {
            return .failure(
                ConfigDurationError(
                    .invalidNumber,
                    reason: "fractions are not allowed in duration '\(text)'; use a smaller unit"
                )
            )
        }
        let unit: Int64
        switch unitText {
        case "ms": unit = 1_000_000
        case "s": unit = 1_000_000_000
        case "m": unit = 60_000_000_000
        case "h": unit = 3_600_000_000_000
        case "d": unit = 86_400_000_000_000
        case "":
            return .failure(
                ConfigDurationError(
                    .missingUnit,
                    reason: "duration '\(text)' has no unit; write e.g. \(text)s or \(text)ms"
                )
            )
        default:
            return .failure(
                ConfigDurationError(
                    .invalidUnit,
                    reason: "unknown unit '\(unitText)' in duration '\(text)'; use ms, s, m, h or d"
                )
            )
        }
        var value: Int64 = 0
        for digit in digits {
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = shifted.addingReportingOverflow(Int64(digit &- UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return .failure(ConfigDuration.overflowError(text)) }
            value = sum
        }
        let (nanoseconds, overflow) = value.multipliedReportingOverflow(by: unit)
        guard !overflow else { return .failure(ConfigDuration.overflowError(text)) }
        return .success(ConfigDuration(nanoseconds: nanoseconds))
    }

    private static func overflowError(_ text: some StringProtocol) -> ConfigDurationError {
        ConfigDurationError(.overflow, reason: "duration '\(text)' is too long")
    }

    public static let zero = ConfigDuration(nanoseconds: 0)

    public static func milliseconds(_ value: Int64) -> ConfigDuration { scaled(value, by: 1_000_000) }
    public static func seconds(_ value: Int64) -> ConfigDuration { scaled(value, by: 1_000_000_000) }
    public static func minutes(_ value: Int64) -> ConfigDuration { scaled(value, by: 60_000_000_000) }
    public static func hours(_ value: Int64) -> ConfigDuration { scaled(value, by: 3_600_000_000_000) }
    public static func days(_ value: Int64) -> ConfigDuration { scaled(value, by: 86_400_000_000_000) }

    /// Whole seconds, rounded down.
    public var wholeSeconds: Int64 { self.nanoseconds / 1_000_000_000 }

    private static func scaled(_ value: Int64, by unit: Int64) -> ConfigDuration {
        precondition(value >= 0, "a ConfigDuration is never negative: \(value)")
        let (nanoseconds, overflow) = value.multipliedReportingOverflow(by: unit)
        precondition(!overflow, "ConfigDuration overflows Int64 nanoseconds: \(value) x \(unit)")
        return ConfigDuration(nanoseconds: nanoseconds)
    }

    public var seconds: Double { Double(self.nanoseconds) / 1_000_000_000 }

    public var milliseconds: Int64 { self.nanoseconds / 1_000_000 }

    public var duration: Duration { .nanoseconds(self.nanoseconds) }

    public static func < (lhs: ConfigDuration, rhs: ConfigDuration) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }
}

extension ConfigDuration: CustomStringConvertible {
    /// The value in the largest unit that holds it exactly: `90s`, `2m`, `1500ms`, `0s`.
    public var description: String {
        let units: [(Int64, String)] = [
            (3_600_000_000_000, "h"), (60_000_000_000, "m"), (1_000_000_000, "s"), (1_000_000, "ms"),
        ]
        if self.nanoseconds == 0 { return "0s" }
        for (size, name) in units where self.nanoseconds % size == 0 {
            return "\(self.nanoseconds / size)\(name)"
        }
        return "\(self.nanoseconds)ns"
    }
}

/// Why a piece of text is not a duration, worded for an operator reading a config error.
///
/// Errors compare equal when their codes do.
public struct ConfigDurationError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of mistake the text makes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case invalidNumber
            case missingUnit
            case invalidUnit
            case overflow
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// Empty, signed, fractional, spaced, or with a leading zero.
        public static let invalidNumber = Code(.invalidNumber)
        public static let missingUnit = Code(.missingUnit)
        public static let invalidUnit = Code(.invalidUnit)
        public static let overflow = Code(.overflow)

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
