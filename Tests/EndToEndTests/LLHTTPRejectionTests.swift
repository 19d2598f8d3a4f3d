import Foundation
import Testing

/// llhttp's own request cases (`../shared/testdata/llhttp`, see `LLHTTPFixtures`) replayed raw
/// against a real gateway in front of a real demo backend, one fresh connection per case.
///
/// - Every case llhttp rejects gets the gateway's 400 (431 for a head over the size limit), a
///   JSON body with "error", and a closed connection, and nothing of it reaches the backend.
///   Before each case two good requests pass through the gateway, so every event loop holds an
///   idle pooled upstream connection: a gateway that forwards a head before it has finished
///   judging the request would be caught, not hidden behind a slow connect.
/// - A few rejected cases contain complete, valid requests before the bad bytes (llhttp's
///   "Data after `Connection: close`"): those requests may be served, the rest must not reach
///   the backend.
/// - Cases llhttp accepts are only recorded (the gateway refuses on purpose several things
///   llhttp accepts), except that none may crash the gateway or get a 5xx of its own.
/// - Upgrade pauses (CONNECT, Upgrade, PRI) are neither: counted and skipped.
@Suite("LLHTTPRejectionTests", .serialized, RawRequestSuiteProcesses.Scope())
struct LLHTTPRejectionTests {
    static let fixturesPresent = LLHTTPFixtures.directory() != nil
    static let missing =
        "llhttp fixtures not found: this test needs the folder ../shared/testdata/llhttp "
        + "beside the repository (or PORTCULLIS_TESTDATA pointing at a testdata folder)"

    @Test(.enabled(if: fixturesPresent, Comment(rawValue: missing)))
    func llhttpRejectedRequestsGet400AndNeverReachTheBackend() throws {
        let all = try #require(LLHTTPFixtures.requestCases(), "\(Self.missing)")
        let cases = all.filter { !$0.isLenient }
        let rejecting = cases.filter(\.expectsError)
        let pauses = cases.filter(\.expectsUpgradePause)
        let accepted = cases.filter { !$0.expectsError && !$0.expectsUpgradePause }
        #expect(!rejecting.isEmpty, "no rejecting request case found in \(LLHTTPFixtures.directory()?.path ?? "?")")

        let processes = try RawRequestSuiteProcesses.current()
        processes.resetBackend()
        var ownBackendRequests = 0  // warm-ups and stats calls, which the backend counts too
        var statuses: [Int: Int] = [:]
        var afterCompleteMessages = 0

        for llCase in rejecting {
            let outcome = try processes.replay(llCase.input, expectedResponses: max(1, llCase.completedMessages + 1))
            ownBackendRequests += outcome.ownBackendRequests
            let context = Comment(rawValue: "\(llCase) [llhttp: \(llCase.errorReason ?? "?")]\n\(outcome)")
            #expect(outcome.gatewaySurvived, "the gateway crashed: \(context)")
            #expect(outcome.closedByGateway, "the connection stayed open: \(context)")

            if llCase.completedMessages > 0 {
                // Valid requests before the bad bytes may be served; nothing after them may pass.
                afterCompleteMessages += 1
                #expect(
                    (outcome.leakedToBackend ?? 0) <= llCase.completedMessages,
                    "more requests reached the backend than llhttp completed: \(context)")
                #expect(!outcome.responses.contains { $0.status >= 500 }, "5xx: \(context)")
                for response in outcome.responses { statuses[response.status, default: 0] += 1 }
                continue
            }

            #expect(outcome.leakedToBackend == 0, "the rejected request reached the backend: \(context)")
            guard let response = outcome.responses.first else {
                Issue.record("no response: \(context)")
                continue
            }
            statuses[response.status, default: 0] += 1
            // 431 is the gateway's answer to a head over max_header_bytes; no llhttp case is that big.
            #expect([400, 431].contains(response.status), "status \(response.status): \(context)")
            if response.status == 431 {
                print("llhttp: \(llCase) answered 431 (header size)")
            }
            #expect(response.json?["error"] is String, "no JSON error body: \(context)")
            #expect(outcome.responses.count == 1, "more than one response: \(context)")
        }

        // The whole run, from the backend's own counter.
        let total = try #require(processes.backendRequestCount(), "backend /demo/stats failed")
        ownBackendRequests += 1
        let leakedInRun = total - ownBackendRequests
        #expect(
            leakedInRun <= rejecting.filter { $0.completedMessages > 0 }.map(\.completedMessages).reduce(0, +),
            "backend counted \(total) requests, \(ownBackendRequests) of them the test's own")
        #expect(processes.gatewayAnswersGoodRequest(), "the gateway no longer serves a good request")

        print(
            "llhttp: \(rejecting.count) rejecting cases -> 400, \(accepted.count) accepted cases "
                + "(\(pauses.count) upgrade-pause cases skipped; \(afterCompleteMessages) of the rejecting ones "
                + "fail only after complete requests); statuses \(Self.tally(statuses)); "
                + "backend saw \(leakedInRun) request(s) from the rejecting run"
        )
    }

    @Test(.enabled(if: fixturesPresent, Comment(rawValue: missing)))
    func llhttpAcceptedRequestsNeverCrashTheGateway() throws {
        let all = try #require(LLHTTPFixtures.requestCases(), "\(Self.missing)")
        let accepted = all.filter { !$0.isLenient && !$0.expectsError && !$0.expectsUpgradePause }
        let processes = try RawRequestSuiteProcesses.current()
        var table: [String] = []
        var statuses: [Int: Int] = [:]
        for llCase in accepted {
            // Some inputs end inside a message (llhttp completes none): a short wait is enough.
            let outcome = try processes.replay(
                llCase.input,
                expectedResponses: max(1, llCase.completedMessages),
                waitForClose: false,
                readTimeout: llCase.completedMessages == 0 ? 1 : 3,
                requestMethod: llCase.input.starts(with: Array("HEAD ".utf8)) ? "HEAD" : "GET"
            )
            let context = Comment(rawValue: "\(llCase)\n\(outcome)")
            #expect(outcome.gatewaySurvived, "the gateway crashed: \(context)")
            let codes = outcome.responses.map(\.status)
            for code in codes { statuses[code, default: 0] += 1 }
            // The demo backend answers whatever reaches it with 2xx or 4xx, so any 5xx is the
            // gateway's own failure (a crash, or an upstream write it could not make).
            for response in outcome.responses where response.status >= 500 {
                Issue.record("5xx \(response.status) for an llhttp-accepted case: \(context)")
            }
            table.append(
                "  \(llCase): \(codes.isEmpty ? "no response (\(outcome.failure ?? "?"))" : codes.map(String.init).joined(separator: ","))"
                    + (outcome.firstErrorDescription.map { " \($0)" } ?? ""))
        }
        #expect(processes.gatewayAnswersGoodRequest(), "the gateway no longer serves a good request")
        print("llhttp: \(accepted.count) accepted cases, statuses \(Self.tally(statuses)):")
        print(table.joined(separator: "\n"))
    }

    /// `400 x51, 404 x2`.
    static func tally(_ statuses: [Int: Int]) -> String {
        statuses.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")
    }
}
