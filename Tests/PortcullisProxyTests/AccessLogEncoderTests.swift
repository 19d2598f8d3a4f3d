import Foundation
import Testing

@testable import PortcullisProxy

@Suite struct AccessLogEncoderTests {
    static func record(_ edit: (inout ExchangeRecord) -> Void = { _ in }) -> ExchangeRecord {
        var record = ExchangeRecord(
            startMillis: 1_795_352_394_123,
            requestID: "0464b9f3c949e99e615f0352ba1279d9",
            clientID: "psa-sync",
            clientName: "PSA \"ticket\" sync\n",
            sourceIP: "2001:db8::7",
            method: "POST",
            path: "/api/ExecResetPass",
            status: 403,
            decision: .deny,
            reason: .tenantDenied,
            rule: nil,
            tenant: "contoso.onmicrosoft.com",
            bytesIn: 17,
            bytesOut: 240,
            upstreamNanos: nil,
            totalNanos: 1_234_567,
            userAgent: "tab\there \u{1}",
            traceID: nil
        )
        edit(&record)
        return record
    }

    @Test func aLineIsOneJSONObjectWithEveryField() throws {
        var encoder = AccessLogEncoder()
        let bytes = encoder.encode(Self.record())
        #expect(bytes.last == UInt8(ascii: "\n"))
        #expect(bytes.dropLast().allSatisfy { $0 != UInt8(ascii: "\n") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["ts"] as? String == "2026-11-22T12:59:54.123Z")
        #expect(object["client_name"] as? String == "PSA \"ticket\" sync\n")
        #expect(object["user_agent"] as? String == "tab\there \u{1}")
        #expect(object["total_ms"] as? Double == 1.234)
        #expect(object["upstream_ms"] is NSNull && object["rule"] is NSNull && object["trace_id"] is NSNull)
        #expect(object["status"] as? Int == 403 && object["decision"] as? String == "deny")
        #expect(object["jti"] is NSNull)
        #expect(object.count == 19)
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(951_782_400_000), "2000-02-29T00:00:00.000Z"),
        (Int64(4_102_444_799_999), "2099-12-31T23:59:59.999Z"),
    ])
    func timestampsAreRFC3339UTC(millis: Int64, text: String) {
        var out: [UInt8] = []
        AccessLogEncoder.appendTimestamp(millis, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == text)
    }

    @Test func millisecondsKeepThreeDecimals() throws {
        var encoder = AccessLogEncoder()
        let bytes = encoder.encode(Self.record { $0.upstreamNanos = 5_000; $0.totalNanos = 600_000_000_000 })
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"upstream_ms\":0.005,"))
        #expect(text.contains("\"total_ms\":600000.000,"))
    }

    @Test func linesOfOneSecondAndTheNextKeepTheirOwnTimestamps() throws {
        var encoder = AccessLogEncoder()
        for (millis, text) in [(Int64(1_795_352_394_123), "12:59:54.123Z"), (1_795_352_394_999, "12:59:54.999Z"),
                               (1_795_352_395_000, "12:59:55.000Z"), (1_795_352_394_001, "12:59:54.001Z")] {
            let line = String(decoding: encoder.encode(Self.record { $0.startMillis = millis }), as: UTF8.self)
            #expect(line.hasPrefix("{\"ts\":\"2026-11-22T\(text)\""), "\(line)")
        }
    }

    /// Every control byte, DEL, quote and backslash escaped; other bytes (UTF-8 included) as
    /// they are; a value made only of bytes that need `\u00XX` (the reservation's worst case).
    @Test func everyByteThatNeedsEscapingIsEscapedAndNothingElse() throws {
        var encoder = AccessLogEncoder()
        let controls = String(decoding: (0..<0x20).map { UInt8($0) } + [0x7F], as: UTF8.self)
        let mixed = "Mozilla/5.0 (X11; Linux) plain \"quoted\" back\\slash é ✓ " + controls
        let worst = String(repeating: "\u{1}", count: 4000)
        let bytes = encoder.encode(Self.record {
            $0.userAgent = mixed
            $0.path = worst
            $0.bytesIn = Int.max
            $0.status = -1
        })
        #expect(bytes.last == UInt8(ascii: "\n"))
        #expect(bytes.dropLast().allSatisfy { $0 >= 0x20 && $0 != 0x7F })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["user_agent"] as? String == mixed)
        #expect(object["path"] as? String == worst)
        #expect(object["bytes_in"] as? Int == Int.max && object["status"] as? Int == -1)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(#"\u0000\u0001"#) && text.contains(#"\u007f"#) && text.contains(#"\t\n"#))
        // The next line of the same encoder starts clean.
        let next = String(decoding: encoder.encode(Self.record()), as: UTF8.self)
        #expect(next.hasPrefix("{\"ts\":\"2026-11-22T12:59:54.123Z\",\"request_id\":\"0464b9f3c949e99e615f0352ba1279d9\""))
    }

    @Test func dropMarkersSayHowManyLinesAreMissing() throws {
        var encoder = AccessLogEncoder()
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(encoder.dropMarker(lines: 42, nowMillis: 0))) as? [String: Any])
        #expect(object["event"] as? String == "access_log_dropped" && object["lines"] as? Int == 42)
    }
}

@Suite struct AccessLogWriterTests {
    @Test(arguments: [
        ("psa-sync", "psa-sync.log"),
        ("6cabf059-21c9-44d6-bbde-02898f7430dd", "6cabf059-21c9-44d6-bbde-02898f7430dd.log"),
    ])
    func plainClientIDsNameTheirFile(id: String, file: String) {
        #expect(FileSet.fileName(for: id) == file)
    }

    @Test func otherIDsCannotLeaveTheDirectoryOrShareAFile() {
        let names = ["../etc/passwd", "a/b", "a_b", ".hidden", "", "ünï"].map(FileSet.fileName(for:))
        #expect(Set(names).count == names.count)
        for name in names {
            #expect(!name.contains("/") && !name.hasPrefix(".") && name.hasSuffix(".log"), "\(name)")
        }
        #expect(FileSet.fileName(for: "a_b") == "a_b.log")
    }

    @Test func aWriterThatFallsBehindDropsCountsAndMarksTheLoss() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("access-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try AccessLogWriter(.init(path: path, perClientDirectory: nil, maxQueuedLines: 1), logger: .init(label: "test"))
        writer.submit([AccessLogEncoderTests.record(), AccessLogEncoderTests.record()])  // over the bound: dropped
        writer.submit([AccessLogEncoderTests.record()])
        writer.shutdown()
        #expect(writer.droppedLines == 2)
        #expect(writer.writtenLines == 1)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.first?.contains("\"event\":\"access_log_dropped\",\"lines\":2") == true)
    }
}
