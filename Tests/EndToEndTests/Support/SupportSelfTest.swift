import Testing

/// Checks of the end-to-end helpers that need no running binary.
@Suite("SupportSelfTest")
struct SupportSelfTest {
    @Test func readyFileLinesMayCarryALabel() {
        let listeners = PortcullisProcess.parseReadyFile("http://127.0.0.1:43127\nadmin http://127.0.0.1:9090\n\n")
        #expect(listeners.map(\.label) == [nil, "admin"])
        #expect(listeners.map(\.url) == ["http://127.0.0.1:43127", "http://127.0.0.1:9090"])
        #expect(PortcullisProcess.port(of: "http://[::1]:8443") == 8443)
    }

    @Test func llhttpInputsExpandEscapesAndUseCRLF() throws {
        let markdown = """
            ## Sample

            <!-- meta={"type": "request", "mode": "strict"} -->
            ```http
            GET / HTTP/1.1
            A: b\\tc\\xff
            Long: x\\
            y


            ```

            ```log
            off=0 message begin
            off=19 error code=10 reason="Invalid header token"
            ```
            """
        let cases = LLHTTPFixtures.parse(markdown: markdown, file: "sample.md")
        let only = try #require(cases.first)
        #expect(cases.count == 1)
        #expect(only.name == "Sample" && only.type == "request" && only.mode == "strict")
        #expect(only.input == Array("GET / HTTP/1.1\r\nA: b\tc\u{ff}\r\nLong: xy\r\n\r\n".utf8))
        #expect(only.expectsError && only.errorCode == 10 && only.errorReason == "Invalid header token")
    }

    @Test func llhttpFixturesParseWhenPresent() throws {
        guard let cases = LLHTTPFixtures.allCases() else {
            print("skipping: \(LLHTTPFixtures.missingMessage)")
            return
        }
        let requests = cases.filter(\.isRequest)
        print(
            "llhttp: \(cases.count) cases, \(requests.count) request cases, "
                + "\(requests.filter(\.expectsError).count) expect an error, "
                + "\(requests.filter(\.expectsUpgradePause).count) end in an upgrade pause"
        )
        #expect(!requests.isEmpty)
        #expect(requests.allSatisfy { !$0.input.isEmpty && !$0.expectedLog.isEmpty })
    }
}
