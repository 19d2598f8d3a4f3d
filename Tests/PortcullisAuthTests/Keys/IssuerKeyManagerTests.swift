import Foundation
import Logging
import PortcullisAuth
import PortcullisPolicy
import Testing

/// Key sets from files, from a JWKS URL and through OIDC discovery, served by a real HTTP server
/// on loopback (``KeySetServer``). Timings are shortened through
/// ``IssuerKeyManager/Configuration`` and short `jwks_refresh` values; nothing sleeps long.
@Suite("IssuerKeyManager")
struct IssuerKeyManagerTests {
    // MARK: jwks_file

    @Test func fileSourceIsReadByKeysFor() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("jwks.json").path
            try KeySetDocuments.p256(kids: "file-1", "file-2").write(toFile: path, atomically: true, encoding: .utf8)
            try await withKeyManager { manager in
                let keys = try #require(try manager.keys(for: [fileIssuer(path: path)])["file"])
                #expect(keys.current.keyIDs == ["file-1", "file-2"])
                #expect(keys.lastRefresh != nil)
                #expect(keys.issuerName == "file")
            }
        }
    }

    @Test(arguments: [
        ("not json at all", KeySetError.Code.invalidKeySet),
        (#"{"kty":"EC"}"#, .invalidKeySet),
        (#"{"keys":[]}"#, .emptyKeySet),
        (#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"broken"}]}"#, .emptyKeySet),
    ])
    func badFileIsAnErrorNamingTheFile(content: String, code: KeySetError.Code) async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("bad-jwks.json").path
            try content.write(toFile: path, atomically: true, encoding: .utf8)
            try await withKeyManager { manager in
                let error = #expect(throws: KeySetError.self) { try manager.keys(for: [fileIssuer(path: path)]) }
                #expect(error?.code == code)
                #expect(error?.description.contains(path) == true)
            }
        }
    }

    @Test func missingFileIsAnErrorNamingTheFile() async throws {
        try await withKeyManager { manager in
            let path = "/nonexistent/portcullis/jwks.json"
            let error = #expect(throws: KeySetError.self) { try manager.keys(for: [fileIssuer(path: path)]) }
            #expect(error?.code == .unreadableFile)
            #expect(error?.description.contains(path) == true)
        }
    }

    @Test func badFileLeavesTheRunningIssuersAlone() async throws {
        let server = try await KeySetServer.start()
        server.answer("/jwks", json: KeySetDocuments.p256(kids: "k1"))
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("bad.json").path
            try "{".write(toFile: path, atomically: true, encoding: .utf8)
            try await withKeyManager { manager in
                let running = try #require(try manager.keys(for: [urlIssuer(url: server.url("/jwks"))])["idp"])
                await manager.waitForInitialFetch(timeout: .seconds(60))

                // The new configuration drops "idp" and adds a broken file: refused as a whole.
                #expect(throws: KeySetError.self) { try manager.keys(for: [fileIssuer(path: path)]) }

                let again = try #require(try manager.keys(for: [urlIssuer(url: server.url("/jwks"))])["idp"])
                #expect(again === running)
                #expect(again.current.keyIDs == ["k1"])
                #expect(server.requests("/jwks") == 1)
            }
        }
        try await server.stop()
    }

    // MARK: jwks_url

    @Test func urlSourceIsFetchedAtStart() async throws {
        let server = try await KeySetServer.start()
        server.answer("/jwks", json: KeySetDocuments.p256(kids: "k1", "k2"))
        try await withKeyManager { manager in
            let keys = try #require(try manager.keys(for: [urlIssuer(url: server.url("/jwks"))])["idp"])
            // The wait ends on the fetch, not at its timeout: under the full suite on two busy
            // cores the fetch has taken over 60 s, so the timeout is far above that.
            let start = ContinuousClock.now
            await manager.waitForInitialFetch(timeout: .seconds(600))
            #expect(ContinuousClock.now - start < .seconds(590))
            #expect(keys.current.keyIDs == ["k1", "k2"])
            #expect(keys.generation == 1)
            #expect(keys.refreshCount == 1)
            #expect(keys.failureCount == 0)
            #expect(keys.lastError == nil)
            #expect(server.requests("/jwks") == 1)
        }
        try await server.stop()
    }

    @Test func unknownKeyIDFetchesARotatedSetWithoutWaitingForTheSchedule() async throws {
        let server = try await KeySetServer.start()
        server.answer("/jwks", json: KeySetDocuments.p256(kids: "old"))
        try await withKeyManager { manager in
            let keys = try #require(try manager.keys(for: [urlIssuer(url: server.url("/jwks"))])["idp"])
            await manager.waitForInitialFetch(timeout: .seconds(60))
            #expect(keys.current.keyIDs == ["old"])

            server.answer("/jwks", json: KeySetDocuments.p256(kids: "new"))
            keys.unknownKeyID("new")
            #expect(await eventually { keys.current.key(withID: "new") != nil })
            #expect(keys.current.key(withID: "old") == nil)
            #expect(server.requests("/jwks") == 2)
            #expect(keys.unknownKeyIDRefreshCount == 1)
            #expect(keys.generation == 2)
        }
        try await server.stop()
    }

    @Test func secondUnknownKeyIDWithinTheWindowDoesNotFetch() async throws {
        let server = try await KeySetServer.start()
        server.answer("/jwks", json: KeySetDocuments.p256(kids: "k1"))
        // A window far longer than the test: on two busy cores it has taken over 100 s.
        try await withKeyManager(.fast(unknownKeyIDInterval: .seconds(3600))) { manager in
            let keys = try #require(try manager.keys(for: [urlIssuer(url: server.url("/jwks"))])["idp"])
            await manager.waitForInitialFetch(timeout: .seconds(60))
            server.answer("/jwks", json: KeySetDocuments.p256(kids: "k1", "k2"))
            keys.unknownKeyID("k2")
            #expect(await eventually { keys.current.key(withID: "k2") != nil })

            server.answer("/jwks", json: KeySetDocuments.p256(kids: "k1", "k2", "k3"))
            keys.unknownKeyID("k3")
            keys.unknownKeyID("k4")
            keys.unknownKeyID("k3")
            try await Task.sleep(for: .milliseconds(400))
            #expect(server.requests("/jwks") == 2)
            #expect(keys.current.key(withID: "k3") == nil)
            #expect(keys.unknownKeyIDRefreshCount == 1)
        }
        try await server.stop()
    }

    @Test func unknownKeyIDFetchesAgainOnceTheWindowHasPassed() async throws {
        let server = try await KeySetServer.start()
        server.answer("/jwks", json: KeySetDocuments.p256(kids: "k1"))
        try await withKeyManager(.fast(unknownKeyIDInterval: .milliseconds(200))) { manager in
            let keys = try #require(try manager.keys(for: [urlIssuer(url: server.url("/jwks"))])["idp"])
            await manager.waitForInitialFetch(timeout: .seconds(60))
            server.answer("/jwks", json: KeySetDocuments.p256(kids: "k2"))
            keys.unknownKeyID("k2")
            #expect(await eventually { keys.current.key(withID: "k2") != nil })

            server.answer("/jwks", json: KeySetDocuments.p256(kids: "k3"))
            try await Task.sleep(for: .milliseconds(250))
            keys.unknownKeyID("k3")
            #expect(await eventually { keys.current.key(withID: "k3") != nil })
            #expect(server.requests("/jwks") == 3)
            #expect(keys.unknownKeyIDRefreshCount == 2)
        }
        try await server.stop()
    }

    @Test func keyIDThatAFetchDidNotBringIsNegativelyCached() async throws {
        let server = try await KeySetServer.start()
        server.answer("/jwks", json: KeySetDocuments.p256(kids: "k1"))
        let configuration = IssuerKeyManager.Configuration.fast(
            unknownKeyIDInterval: .milliseconds(100),
            negativeCacheTTL: .seconds(60)
        )
        try await withKeyManager(configuration) { manager in
            let keys = try #require(try manager.keys(for: [urlIssuer(url: server.url("/jwks"))])["idp"])
            await manager.waitForInitialFetch(timeout: .seconds(60))

            keys.unknownKeyID("ghost")
            #expect(await eventually { server.requests("/jwks") == 2 && keys.refreshCount == 2 })
            try await Task.sleep(for: .milliseconds(250))

            // The window has passed, but "ghost" stayed unknown after its fetch.
            keys.unknownKeyID("ghost")
            try await Task.sleep(for: .milliseconds(300))
            #expect(server.requests("/jwks") == 2)
            #expect(keys.unknownKeyIDRefreshCount == 1)

            // Another kid still may ask.
            keys.unknownKeyID("other")
            #expect(await eventually { server.requests("/jwks") == 3 })
            #expect(keys.unknownKeyIDRefreshCount == 2)
        }
        try await server.stop()
    }

    @Test func failedRefreshesKeepTheLastGoodSet() async throws {
        let server = try await KeySetServer.start()
        let url = server.url("/jwks")
        server.answer("/jwks", json: KeySetDocuments.p256(kids: "good"))
        let logs = RecordingLogHandler.Store()
        try await withKeyManager(.fast(), logs: logs) { manager in
            let keys = try #require(try manager.keys(for: [urlIssuer(url: url, refresh: .milliseconds(100))])["idp"])
            await manager.waitForInitialFetch(timeout: .seconds(60))
            #expect(keys.current.keyIDs == ["good"])

            let failures: [(KeySetServer.Answer, KeySetError.Code)] = [
                (.body(status: .internalServerError, bytes: Array("oops".utf8)), .httpStatus),
                (.body(status: .ok, bytes: Array("<html>down for maintenance</html>".utf8)), .invalidKeySet),
                (.body(status: .ok, bytes: Array(#"{"keys":[]}"#.utf8)), .emptyKeySet),
                (.body(status: .found, bytes: []), .httpStatus),
            ]
            for (answer, code) in failures {
                server.answer("/jwks", answer)
                #expect(await eventually { keys.lastError?.code == code }, "expected \(code)")
                #expect(keys.current.keyIDs == ["good"])
            }

            try await server.stop()
            #expect(await eventually { keys.lastError?.code == .unreachable })
            #expect(keys.current.keyIDs == ["good"])
            #expect(keys.failureCount >= 5)

            let warnings = logs.lines(atLeast: .warning)
            #expect(warnings.contains { $0.contains(url) && $0.contains("500") })
            #expect(warnings.allSatisfy { $0.contains("issuer=idp") })

            // The IdP comes back with a rotated set: picked up by the retries.
            let revived = try await KeySetServer.start(port: server.port)
            revived.answer("/jwks", json: KeySetDocuments.p256(kids: "fresh"))
            #expect(await eventually { keys.current.keyIDs == ["fresh"] })
            #expect(keys.lastError == nil)
            try await revived.stop()
        }
    }

    @Test func oversizedKeySetIsRefused() async throws {
        let server = try await KeySetServer.start()
        server.answer("/jwks", json: KeySetDocuments.p256(kids: (0..<10).map { "k\($0)" }))
        var configuration = IssuerKeyManager.Configuration.fast()
        configuration.maximumKeySetBytes = 512
        try await withKeyManager(configuration) { manager in
            let keys = try #require(try manager.keys(for: [urlIssuer(url: server.url("/jwks"))])["idp"])
            await manager.waitForInitialFetch(timeout: .seconds(60))
            #expect(keys.lastError?.code == .tooLarge)
            #expect(keys.current.isEmpty)
        }
        try await server.stop()
    }

    @Test(arguments: ["http://keys.example/jwks", "http://localhost@keys.example/jwks", "ftp://127.0.0.1/jwks"])
    func insecureURLIsNeverFetched(url: String) async throws {
        try await withKeyManager { manager in
            let keys = try #require(try manager.keys(for: [urlIssuer(url: url)])["idp"])
            await manager.waitForInitialFetch(timeout: .seconds(60))
            #expect(keys.lastError?.code == .insecureURL)
            #expect(keys.current.isEmpty)
        }
    }

    // MARK: discovery

    @Test func discoveryFetchesTheAdvertisedKeySet() async throws {
        let server = try await KeySetServer.start()
        let issuer = server.url("/tenant/")
        server.answer(
            "/tenant/.well-known/openid-configuration",
            json: #"{"issuer":"\#(issuer)","jwks_uri":"\#(server.url("/tenant/keys"))","token_endpoint":"x"}"#
        )
        server.answer("/tenant/keys", json: KeySetDocuments.p256(kids: "d1"))
        try await withKeyManager { manager in
            let keys = try #require(try manager.keys(for: [discoveryIssuer(issuer: issuer)])["oidc"])
            await manager.waitForInitialFetch(timeout: .seconds(60))
            #expect(keys.current.keyIDs == ["d1"])
            #expect(server.requests("/tenant/.well-known/openid-configuration") == 1)

            // A rotation found through an unknown kid reuses the discovered jwks_uri.
            server.answer("/tenant/keys", json: KeySetDocuments.p256(kids: "d1", "d2"))
            keys.unknownKeyID("d2")
            #expect(await eventually { keys.current.key(withID: "d2") != nil })
            #expect(server.requests("/tenant/.well-known/openid-configuration") == 1)
            #expect(server.requests("/tenant/keys") == 2)
        }
        try await server.stop()
    }

    @Test func discoveryNamingAnotherIssuerIsRefused() async throws {
        let server = try await KeySetServer.start()
        server.answer(
            "/tenant/.well-known/openid-configuration",
            json: #"{"issuer":"\#(server.url("/other"))","jwks_uri":"\#(server.url("/tenant/keys"))"}"#
        )
        server.answer("/tenant/keys", json: KeySetDocuments.p256(kids: "d1"))
        try await withKeyManager { manager in
            let keys = try #require(try manager.keys(for: [discoveryIssuer(issuer: server.url("/tenant"))])["oidc"])
            await manager.waitForInitialFetch(timeout: .seconds(60))
            #expect(keys.lastError?.code == .issuerMismatch)
            #expect(keys.current.isEmpty)
            #expect(server.requests("/tenant/keys") == 0)
        }
        try await server.stop()
    }

    @Test func discoveryRefusesAPlainHTTPKeySetURLElsewhere() async throws {
        let server = try await KeySetServer.start()
        let issuer = server.url("/tenant")
        server.answer(
            "/tenant/.well-known/openid-configuration",
            json: #"{"issuer":"\#(issuer)","jwks_uri":"http://keys.example/jwks"}"#
        )
        try await withKeyManager { manager in
            let keys = try #require(try manager.keys(for: [discoveryIssuer(issuer: issuer)])["oidc"])
            await manager.waitForInitialFetch(timeout: .seconds(60))
            #expect(keys.lastError?.code == .insecureURL)
            #expect(keys.current.isEmpty)
        }
        try await server.stop()
    }

    // MARK: reloads and lifecycle

    @Test func unchangedConfigurationKeepsItsIssuerKeys() async throws {
        let server = try await KeySetServer.start()
        server.answer("/a", json: KeySetDocuments.p256(kids: "a1"))
        server.answer("/b", json: KeySetDocuments.p256(kids: "b1"))
        try await withKeyManager { manager in
            let first = try #require(try manager.keys(for: [urlIssuer(url: server.url("/a"), refresh: .milliseconds(100))])["idp"])
            await manager.waitForInitialFetch(timeout: .seconds(60))

            let same = try #require(try manager.keys(for: [urlIssuer(url: server.url("/a"), refresh: .milliseconds(100))])["idp"])
            #expect(same === first)
            let slower = try #require(try manager.keys(for: [urlIssuer(url: server.url("/a"), refresh: .milliseconds(150))])["idp"])
            #expect(slower === first)
            #expect(first.current.keyIDs == ["a1"])

            let moved = try #require(try manager.keys(for: [urlIssuer(url: server.url("/b"), refresh: .milliseconds(100))])["idp"])
            #expect(moved !== first)
            #expect(await eventually { moved.current.keyIDs == ["b1"] })
            let fetchesOfA = server.requests("/a")
            try await Task.sleep(for: .milliseconds(400))
            #expect(server.requests("/a") == fetchesOfA, "the replaced issuer's task still fetches")

            let none = try manager.keys(for: [])
            #expect(none.isEmpty)
            let fetchesOfB = server.requests("/b")
            try await Task.sleep(for: .milliseconds(400))
            #expect(server.requests("/b") == fetchesOfB, "the removed issuer's task still fetches")
        }
        try await server.stop()
    }

    @Test func waitForInitialFetchReturnsAfterAFailedFirstAttempt() async throws {
        let server = try await KeySetServer.start()
        let url = server.url("/jwks")
        try await server.stop()
        try await withKeyManager { manager in
            let keys = try #require(try manager.keys(for: [urlIssuer(url: url)])["idp"])
            let start = ContinuousClock.now
            await manager.waitForInitialFetch(timeout: .seconds(900))
            // The refused fetch ends the wait long before the timeout. Loose: the client retries
            // a refused connect for ~5 s, and with the whole suite on two busy cores a wake-up of
            // the cooperative pool was seen to come 70 s late.
            #expect(ContinuousClock.now - start < .seconds(300))
            #expect(keys.lastError?.code == .unreachable)
            #expect(keys.current.isEmpty)
        }
    }

    @Test func waitForInitialFetchGivesUpAtItsTimeout() async throws {
        let server = try await KeySetServer.start()
        server.answer("/jwks", .hang)
        var configuration = IssuerKeyManager.Configuration.fast()
        // The fetch's own timeouts are far above every bound below, so a bound that holds
        // shows the wait (or the shutdown) did not sit out the fetch. The bounds are loose on
        // purpose: the whole test run shares two cores, and while the blocking end-to-end
        // suites hold the cooperative pool's threads a wake-up can be 10 s late (seen in CI).
        configuration.readTimeout = .seconds(300)
        configuration.requestTimeout = .seconds(300)
        try await withKeyManager(configuration) { manager in
            let keys = try #require(try manager.keys(for: [urlIssuer(url: server.url("/jwks"))])["idp"])
            let start = ContinuousClock.now
            await manager.waitForInitialFetch(timeout: .milliseconds(300))
            let waited = ContinuousClock.now - start
            #expect(waited >= .milliseconds(300))
            #expect(waited < .seconds(60))
            #expect(keys.current.isEmpty)
            #expect(keys.lastError == nil)

            // Shutting down cancels the hanging fetch rather than waiting out its timeout.
            let shutdownStart = ContinuousClock.now
            await manager.shutdown()
            #expect(ContinuousClock.now - shutdownStart < .seconds(60))
        }
        try await server.stop()
    }

    @Test func waitForInitialFetchWithoutFetchedIssuersReturnsAtOnce() async throws {
        try await withKeyManager { manager in
            let none = try manager.keys(for: [])
            #expect(none.isEmpty)
            let start = ContinuousClock.now
            await manager.waitForInitialFetch(timeout: .seconds(30))
            #expect(ContinuousClock.now - start < .seconds(1))
        }
    }

    @Test func runEndsWhenCancelledAndShutsTheManagerDown() async throws {
        let server = try await KeySetServer.start()
        server.answer("/jwks", json: KeySetDocuments.p256(kids: "k1"))
        try await withKeyManager { manager in
            let keys = try #require(try manager.keys(for: [urlIssuer(url: server.url("/jwks"))])["idp"])
            let running = Task { await manager.run() }
            await manager.waitForInitialFetch(timeout: .seconds(60))
            #expect(keys.current.keyIDs == ["k1"])

            running.cancel()
            await running.value
            let error = #expect(throws: KeySetError.self) { try manager.keys(for: [urlIssuer(url: server.url("/jwks"))]) }
            #expect(error?.code == .shutDown)
            // The keys already handed out stay readable.
            #expect(keys.current.keyIDs == ["k1"])
        }
        try await server.stop()
    }
}
