import Foundation

/// A client's own limits as the admin API and `portcullis client` take them: one place that
/// checks them, so every entry point (create, `PUT .../limits`, a later `PATCH`) says the same.
///
/// `description` is `field: reason`, what the admin API and the CLI answer; `debugDescription`
/// adds the code and the throw site. Errors compare equal when their codes do.
public struct LimitsInputError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case invalidValue
            case notAnObject
            case unknownField
            case wrongType
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// A rate, burst, quota or concurrency that does not parse or is out of range.
        public static let invalidValue = Code(.invalidValue)
        /// The JSON `limits` is not an object.
        public static let notAnObject = Code(.notAnObject)
        public static let unknownField = Code(.unknownField)
        /// A JSON member of the wrong type.
        public static let wrongType = Code(.wrongType)

        public var description: String { "\(self.backing)" }
    }

    public let code: Code
    /// The field at fault: `limits.rate`, `limits.burst`, `--rate`, ...
    public let field: String
    public let reason: String
    public let file: String
    public let line: UInt

    public init(_ code: Code, field: String, reason: String, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.field = field
        self.reason = reason
        self.file = file
        self.line = line
    }

    public var description: String { "\(self.field): \(self.reason)" }

}

/// An edit of a client's own limits: `set` over what it has (or over nothing with `clear`).
public struct LimitsEdit: Sendable, Equatable {
    public var set: ClientLimits
    /// Drop every limit the client has of its own first.
    public var clear: Bool

    public init(set: ClientLimits = ClientLimits(), clear: Bool = false) {
        self.set = set
        self.clear = clear
    }

    /// The client's own limits after the edit; nil when none is left.
    public func applied(to current: ClientLimits?) -> ClientLimits? {
        let base = self.clear ? ClientLimits() : (current ?? ClientLimits())
        let result = self.set.over(base)
        return result.isEmpty && result.burst == nil ? nil : result
    }
}

extension ClientLimits {
    /// The limits from their text: `rate` `10/s`, `100/m` or `5000/h`; `burst` and
    /// `concurrency` positive integers; `quota` `10000/d` or `200000/month`. `prefix` names the
    /// fields in errors (`limits.` in the admin API, `--` on the command line).
    public static func parse(
        rate: String?,
        burst: Int?,
        quota: String?,
        concurrency: Int?,
        prefix: String = "limits."
    ) throws(LimitsInputError) -> ClientLimits {
        var limits = ClientLimits()
        if let rate {
            guard let spec = RateSpec(parsing: rate) else {
                throw LimitsInputError(.invalidValue, field: prefix + "rate", reason: "expected a rate such as 10/s, 100/m or 5000/h, got '\(rate)'")
            }
            limits.rate = spec
        }
        if let burst {
            guard (1...1_000_000).contains(burst) else {
                throw LimitsInputError(.invalidValue, field: prefix + "burst", reason: "expected an integer from 1 to 1000000, got \(burst)")
            }
            limits.burst = burst
        }
        if let quota {
            guard let spec = QuotaSpec(parsing: quota) else {
                throw LimitsInputError(
                    .invalidValue, field: prefix + "quota", reason: "expected a quota such as 10000/d or 200000/month (UTC calendar days and months), got '\(quota)'")
            }
            limits.quota = spec
        }
        if let concurrency {
            guard (1...100_000).contains(concurrency) else {
                throw LimitsInputError(.invalidValue, field: prefix + "concurrency", reason: "expected an integer from 1 to 100000, got \(concurrency)")
            }
            limits.concurrency = concurrency
        }
        return limits
    }

    /// The limits of a JSON object (`{"rate": "10/s", "burst": 20, "quota": "10000/d",
    /// "concurrency": 2}`, as `JSONSerialization` reads it); `null` values are not set. Unknown
    /// fields and wrong types are refused, naming the field.
    public static func parse(json value: Any?, field: String = "limits") throws(LimitsInputError) -> ClientLimits {
        guard let object = value as? [String: Any] else {
            throw LimitsInputError(.notAnObject, field: field, reason: "expected an object with rate, burst, quota and/or concurrency")
        }
        if let unknown = object.keys.sorted().first(where: { !ConfigLoader.limitKeys.contains($0) }) {
            throw LimitsInputError(.unknownField, field: "\(field).\(unknown)", reason: "unknown field; expected \(ConfigLoader.limitKeys.joined(separator: ", "))")
        }
        func text(_ key: String) throws(LimitsInputError) -> String? {
            guard let value = object[key], !(value is NSNull) else { return nil }
            guard let string = value as? String else { throw LimitsInputError(.wrongType, field: "\(field).\(key)", reason: "expected a string") }
            return string
        }
        func integer(_ key: String) throws(LimitsInputError) -> Int? {
            guard let value = object[key], !(value is NSNull) else { return nil }
            guard !(value is String), let number = value as? Int, (value as? Double).map({ $0 == Double(number) }) ?? true else {
                throw LimitsInputError(.wrongType, field: "\(field).\(key)", reason: "expected a whole number")
            }
            return number
        }
        let limits = try Self.parse(
            rate: try text("rate"), burst: try integer("burst"), quota: try text("quota"), concurrency: try integer("concurrency"),
            prefix: field + ".")
        return limits
    }

    /// The JSON object of these limits: only the fields that are set.
    public var jsonObject: [String: Any] {
        var object: [String: Any] = [:]
        if let rate = self.rate { object["rate"] = rate.description }
        if let burst = self.burst { object["burst"] = burst }
        if let quota = self.quota { object["quota"] = quota.description }
        if let concurrency = self.concurrency { object["concurrency"] = concurrency }
        return object
    }
}

/// As the stores keep it: `{"rate": "10/s", "burst": 20, "quota": "10000/d", "concurrency": 2}`,
/// the fields that are set.
extension ClientLimits: Codable {
    enum CodingKeys: String, CodingKey {
        case rate, burst, quota, concurrency
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        do {
            self = try Self.parse(
                rate: try container.decodeIfPresent(String.self, forKey: .rate),
                burst: try container.decodeIfPresent(Int.self, forKey: .burst),
                quota: try container.decodeIfPresent(String.self, forKey: .quota),
                concurrency: try container.decodeIfPresent(Int.self, forKey: .concurrency)
            )
        } catch let error as LimitsInputError {
            throw DecodingError.dataCorrupted(DecodingError.Context(codingPath: container.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(self.rate?.description, forKey: .rate)
        try container.encodeIfPresent(self.burst, forKey: .burst)
        try container.encodeIfPresent(self.quota?.description, forKey: .quota)
        try container.encodeIfPresent(self.concurrency, forKey: .concurrency)
    }
}
