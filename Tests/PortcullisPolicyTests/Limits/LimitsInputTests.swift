import Foundation
import PortcullisPolicy
import Testing

/// The one parser of a client's own limits that the admin API and the command line share.
@Suite struct LimitsInputTests {
    @Test func aJSONObjectIsParsedAndNullsAreNotSet() throws {
        let object: Any = ["rate": "10/s", "burst": 20, "quota": "10000/d", "concurrency": NSNull()]
        let limits = try ClientLimits.parse(json: object)
        #expect(limits == ClientLimits(rate: RateSpec(count: 10, period: .second), burst: 20, quota: QuotaSpec(count: 10_000, window: .day)))
        #expect(limits.jsonObject["rate"] as? String == "10/s")
    }

    @Test(arguments: [
        (#"{"rate": "10"}"#, "limits.rate"),
        (#"{"rate": 10}"#, "limits.rate"),
        (#"{"burst": 0}"#, "limits.burst"),
        (#"{"burst": "5"}"#, "limits.burst"),
        (#"{"burst": 1.5}"#, "limits.burst"),
        (#"{"quota": "5/w"}"#, "limits.quota"),
        (#"{"concurrency": -1}"#, "limits.concurrency"),
        (#"{"ratee": "10/s"}"#, "limits.ratee"),
        (#"["10/s"]"#, "limits"),
    ])
    func aBadFieldIsNamed(_ json: String, _ field: String) throws {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8))
        do {
            _ = try ClientLimits.parse(json: object)
            Issue.record("\(json) was accepted")
        } catch {
            #expect(error.field == field, "\(error)")
        }
    }

    @Test func theCommandLineNamesItsOptions() {
        let error = #expect(throws: LimitsInputError(.invalidValue, field: "--rate", reason: "")) {
            try ClientLimits.parse(rate: "10/x", burst: nil, quota: nil, concurrency: nil, prefix: "--")
        }
        #expect(error?.description == "--rate: expected a rate such as 10/s, 100/m or 5000/h, got '10/x'")
    }

    @Test func anEditSetsFieldsOverWhatIsThereOrClearsFirst() {
        let current = ClientLimits(rate: RateSpec(count: 10, period: .second), burst: 20, concurrency: 2)
        let quota = ClientLimits(quota: QuotaSpec(count: 5, window: .day))
        #expect(LimitsEdit(set: quota).applied(to: current) == ClientLimits(rate: RateSpec(count: 10, period: .second), burst: 20, quota: QuotaSpec(count: 5, window: .day), concurrency: 2))
        #expect(LimitsEdit(set: quota, clear: true).applied(to: current) == quota)
        #expect(LimitsEdit(clear: true).applied(to: current) == nil)
    }

    @Test func limitsRoundTripThroughJSONAsTheStoresKeepThem() throws {
        let limits = ClientLimits(rate: RateSpec(count: 100, period: .minute), burst: 5, quota: QuotaSpec(count: 9, window: .month), concurrency: 4)
        let data = try JSONEncoder().encode(limits)
        #expect(try JSONDecoder().decode(ClientLimits.self, from: data) == limits)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ClientLimits.self, from: Data(#"{"rate":"ten"}"#.utf8)) }
    }
}

/// `store.limits_sync`: PostgreSQL only, 100ms to 60s, default 1s.
@Suite struct LimitsSyncConfigTests {
    @Test func theDefaultIsOneSecondAndAValueIsRead() throws {
        let plain = try ConfigLoaderTests.load(ConfigLoaderTests.minimal + "\nstore: { postgres: { url_file: pg-url } }")
        guard case .postgres(let settings)? = plain.store else {
            Issue.record("expected postgres")
            return
        }
        #expect(settings.limitsSync == ConfigDuration(parsing: "1s"))
        let set = try ConfigLoaderTests.load(ConfigLoaderTests.minimal + "\nstore: { postgres: { url_file: pg-url }, limits_sync: 250ms }")
        guard case .postgres(let faster)? = set.store else {
            Issue.record("expected postgres")
            return
        }
        #expect(faster.limitsSync == ConfigDuration(parsing: "250ms"))
    }

    @Test func itIsRefusedForTheEmbeddedStoreAndOutOfRange() {
        let embedded = ConfigLoaderTests.errors([("gateway.yaml", ConfigLoaderTests.minimal + "\nstore: { path: state, limits_sync: 1s }")])
        #expect(embedded.first?.description.contains("store.limits_sync: limits_sync applies to the PostgreSQL store only") == true, "\(embedded)")
        let tooFast = ConfigLoaderTests.errors([("gateway.yaml", ConfigLoaderTests.minimal + "\nstore: { postgres: { url_file: pg-url }, limits_sync: 10ms }")])
        #expect(tooFast.first?.description.contains("expected a duration from 100ms to 60s") == true, "\(tooFast)")
    }
}
