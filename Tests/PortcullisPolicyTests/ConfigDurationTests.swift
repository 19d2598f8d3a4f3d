import Testing

@testable import PortcullisPolicy

@Suite struct ConfigDurationTests {
    @Test(arguments: [
        ("0s", Int64(0)),
        ("0ms", 0),
        ("0h", 0),
        ("500ms", 500_000_000),
        ("1ms", 1_000_000),
        ("30s", 30_000_000_000),
        ("10m", 600_000_000_000),
        ("1h", 3_600_000_000_000),
        ("90s", 90_000_000_000),
        ("1500ms", 1_500_000_000),
        ("2562047h", 2_562_047 * 3_600_000_000_000),
        ("90d", 90 * 86_400_000_000_000),
    ])
    func integerWithUnitParses(text: String, nanoseconds: Int64) throws {
        let duration = try #require(ConfigDuration(parsing: text))
        #expect(duration.nanoseconds == nanoseconds)
    }

    @Test(arguments: [
        ("", ConfigDurationError.Code.invalidNumber),
        ("s", .invalidNumber),
        ("-5s", .invalidNumber),
        ("+5s", .invalidNumber),
        (" 5s", .invalidNumber),
        ("05s", .invalidNumber),
        ("00s", .invalidNumber),
        ("1.5s", .invalidNumber),
        ("30", .missingUnit),
        ("0", .missingUnit),
        ("5 s", .invalidUnit),
        ("5s ", .invalidUnit),
        ("5S", .invalidUnit),
        ("5sec", .invalidUnit),
        ("5us", .invalidUnit),
        ("5w", .invalidUnit),
        ("1h30m", .invalidUnit),
        ("2562048h", .overflow),
        ("9223372036854775807s", .overflow),
        ("99999999999999999999ms", .overflow),
    ])
    func malformedDurationIsRejected(text: String, code: ConfigDurationError.Code) {
        #expect(ConfigDuration(parsing: text) == nil)
        guard case .failure(let error) = ConfigDuration.validate(text) else {
            Issue.record("\(text) parsed")
            return
        }
        #expect(error.code == code, "\(text): \(error.reason)")
        #expect(!error.reason.isEmpty)
    }

    @Test func missingUnitErrorSuggestsOne() throws {
        guard case .failure(let error) = ConfigDuration.validate("30") else { throw ParseUnexpectedlySucceeded() }
        #expect(error.reason.contains("30s"))
    }

    @Test(arguments: [
        ("0ms", "0s"),
        ("500ms", "500ms"),
        ("1000ms", "1s"),
        ("1500ms", "1500ms"),
        ("60s", "1m"),
        ("90s", "90s"),
        ("120m", "2h"),
        ("90m", "90m"),
        ("3600s", "1h"),
    ])
    func descriptionUsesTheLargestExactUnit(text: String, printed: String) throws {
        let duration = try #require(ConfigDuration(parsing: text))
        #expect(duration.description == printed)
        #expect(ConfigDuration(parsing: printed) == duration)
    }

    @Test func helpersMatchParsedValues() {
        #expect(ConfigDuration.milliseconds(500) == ConfigDuration(parsing: "500ms"))
        #expect(ConfigDuration.seconds(30) == ConfigDuration(parsing: "30s"))
        #expect(ConfigDuration.minutes(10) == ConfigDuration(parsing: "10m"))
        #expect(ConfigDuration.hours(1) == ConfigDuration(parsing: "1h"))
        #expect(ConfigDuration.zero == ConfigDuration(parsing: "0s"))
    }

    @Test func durationsCompareByLength() {
        #expect(ConfigDuration.milliseconds(999) < .seconds(1))
        #expect(ConfigDuration.minutes(1) == .seconds(60))
        #expect(ConfigDuration.hours(1) > .minutes(59))
        let sorted = [ConfigDuration.minutes(1), .seconds(5), .milliseconds(5)].sorted()
        #expect(sorted == [.milliseconds(5), .seconds(5), .minutes(1)])
    }

    @Test func conversionsKeepTheValue() {
        #expect(ConfigDuration.milliseconds(1500).seconds == 1.5)
        #expect(ConfigDuration.seconds(2).milliseconds == 2000)
        #expect(ConfigDuration.minutes(10).duration == .seconds(600))
    }

    @Test func substringsParse() {
        let line = "timeout: 10m"
        #expect(ConfigDuration(parsing: line.split(separator: " ")[1]) == .minutes(10))
    }
}
