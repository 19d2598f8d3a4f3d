import Foundation
import NIOPosix
import PortcullisDemo
import Testing

/// Runs the demo backend in-process and talks to it with `RawHTTPClient`: checks both at once,
/// since every end-to-end test stands on them.
@Suite("DemoBackendSelfTest")
struct DemoBackendSelfTest {
    private func withBackend(_ body: (DemoBackend) async throws -> Void) async throws {
        let backend = try await DemoBackend.start(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        do {
            try await body(backend)
        } catch {
            try? await backend.close()
            throw error
        }
        try await backend.close()
    }

    @Test func cippEndpointsAnswerLikeCIPP() async throws {
        try await withBackend { backend in
            let port = backend.port
            let tenants = RawHTTPClient.request("GET", "/api/ListTenants", port: port)
            #expect(tenants.status == 200)
            #expect(tenants.header("content-type") == "application/json")
            let domains = (tenants.jsonValue as? [[String: Any]])?.compactMap { $0["defaultDomainName"] as? String }
            #expect(domains == ["contoso.onmicrosoft.com", "fabrikam.onmicrosoft.com", "northwind.onmicrosoft.com"])

            let users = RawHTTPClient.request("GET", "/API/listusers?tenantFilter=fabrikam.onmicrosoft.com", port: port)
            #expect(users.status == 200)
            #expect((users.jsonValue as? [Any])?.count == 3)

            #expect(RawHTTPClient.request("GET", "/api/ListLogs", port: port).jsonValue is [Any])
            #expect(RawHTTPClient.request("GET", "/api/ListUsers", port: port).status == 400)
            #expect(RawHTTPClient.request("GET", "/api/ListUsers?tenantFilter=nope.example", port: port).status == 404)
            #expect(RawHTTPClient.request("GET", "/api/ListNothing", port: port).status == 404)
            let mailboxes = RawHTTPClient.request(
                "GET", "/api/ListMailboxes?tenantFilter=northwind.onmicrosoft.com", port: port)
            #expect((mailboxes.jsonValue as? [Any])?.count == 3)

            let reset = RawHTTPClient.request(
                "POST", "/api/ExecResetPass", port: port,
                headers: [("Content-Type", "application/json")],
                body: Array(#"{"tenantFilter":"contoso.onmicrosoft.com","ID":"adele.vance@contoso.onmicrosoft.com"}"#.utf8)
            )
            #expect(reset.status == 200)
            #expect((reset.json?["Results"] as? String)?.hasPrefix("Successfully reset the password for adele.vance@") == true)
            let mfa = RawHTTPClient.request(
                "POST", "/api/ExecResetMFA", port: port,
                body: Array(#"{"tenantFilter":"contoso.onmicrosoft.com","ID":"nobody@contoso.onmicrosoft.com"}"#.utf8)
            )
            #expect(mfa.status == 404)

            let batch = RawHTTPClient.request(
                "POST", "/api/$batch", port: port,
                body: Array(
                    #"{"requests":[{"id":"1","method":"GET","url":"ListUsers?tenantFilter=contoso.onmicrosoft.com"},{"id":"2","method":"GET","url":"/api/ListTenants"},{"id":"3","method":"GET","url":"ListUsers"}]}"#
                        .utf8)
            )
            #expect(batch.status == 200)
            let responses = batch.json?["responses"] as? [[String: Any]]
            #expect(responses?.map { $0["status"] as? Int } == [200, 200, 400])
            #expect((responses?.first?["body"] as? [Any])?.count == 4)
        }
    }

    @Test func echoReportsHeadersInOrderAndBodyLength() async throws {
        try await withBackend { backend in
            let response = RawHTTPClient.request(
                "PUT", "/demo/echo/some/Path?x=1", port: backend.port,
                headers: [("X-First", "1"), ("x-second", "two"), ("X-First", "3")],
                body: [UInt8](repeating: 7, count: 1000)
            )
            #expect(response.status == 200)
            let json = try #require(response.json)
            #expect(json["method"] as? String == "PUT")
            #expect(json["uri"] as? String == "/demo/echo/some/Path?x=1")
            #expect(json["version"] as? String == "1.1")
            #expect(json["body_bytes"] as? Int == 1000)
            let headers = (json["headers"] as? [[String]])?.filter { $0.first?.lowercased().hasPrefix("x-") == true }
            #expect(headers == [["X-First", "1"], ["x-second", "two"], ["X-First", "3"]])
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrderOnOneConnection() async throws {
        try await withBackend { backend in
            let client = try RawHTTPClient.connect(port: backend.port)
            let authority = client.authority
            var bytes: [UInt8] = []
            for path in ["/demo/slow?ms=200", "/demo/echo/a", "/api/ListTenants"] {
                bytes += RawHTTPClient.requestHead("GET", path, authority: authority)
            }
            bytes += RawHTTPClient.requestHead("HEAD", "/demo/stream?bytes=100", authority: authority)
            bytes += RawHTTPClient.requestHead("GET", "/demo/echo/b", authority: authority)
            #expect(client.send(bytes))
            #expect(client.readResponse()?.json?["slept_ms"] as? Int == 200)
            #expect(client.readResponse()?.json?["uri"] as? String == "/demo/echo/a")
            #expect((client.readResponse()?.jsonValue as? [Any])?.count == 3)
            let head = try #require(client.readResponse(requestMethod: "HEAD"))
            #expect(head.header("Content-Length") == "100" && head.body.isEmpty)
            #expect(client.readResponse()?.json?["uri"] as? String == "/demo/echo/b")
            #expect(!client.isClosedByPeer(timeout: 0.2))
        }
    }

    @Test func slowAndSlowBodyWaitWithoutBlocking() async throws {
        try await withBackend { backend in
            let start = Date()
            let slow = try RawHTTPClient.connect(port: backend.port)
            slow.sendRequest("GET", "/demo/slow?ms=600")
            // Another connection is served while the first waits.
            #expect(RawHTTPClient.request("GET", "/demo/echo", port: backend.port).status == 200)
            #expect(slow.receive(timeout: 0) == nil)
            #expect(slow.readResponse()?.status == 200)
            #expect(Date().timeIntervalSince(start) >= 0.6)

            let slowBody = try RawHTTPClient.connect(port: backend.port)
            slowBody.sendRequest("GET", "/demo/slowbody?ms=400")
            let first = String(decoding: slowBody.receive(timeout: 2) ?? [], as: UTF8.self)
            #expect(first.hasPrefix("HTTP/1.1 200 OK\r\n") && first.hasSuffix("{\"slow_body\":true,"))
            #expect(slowBody.receive(timeout: 0.2) == nil)
            #expect(String(decoding: slowBody.receive(timeout: 2) ?? [], as: UTF8.self) == "\"delayed_ms\":400}")
        }
    }

    @Test func streamSends64MiBInEachFraming() async throws {
        try await withBackend { backend in
            let size = 64 << 20
            let download = RawHTTPClient.streamDownload(port: backend.port, path: "/demo/stream?bytes=\(size)")
            #expect(download.status == 200)
            #expect(download.bodyBytes == size)
            #expect(download.fnv1a == TestBodyPattern.fnv1a(totalBytes: size))

            let odd = 3 * 65536 + 17
            let client = try RawHTTPClient.connect(port: backend.port)
            client.sendRequest("GET", "/demo/stream?bytes=\(odd)&chunked=1")
            let chunked = try #require(client.readResponse())
            #expect(chunked.framing == .chunked && chunked.header("Content-Length") == nil)
            #expect(chunked.body == TestBodyPattern.bytes(offset: 0, length: odd))
            client.sendRequest("GET", "/demo/stream?bytes=\(odd)&eof=1")
            let eof = try #require(client.readResponse())
            #expect(eof.framing == .endOfFile && eof.header("Connection") == "close")
            #expect(eof.body.count == odd && eof.body.last == UInt8((odd - 1) % 251))
        }
    }

    @Test func streamWaitsForAReaderInsteadOfBuffering() async throws {
        try await withBackend { backend in
            let before = try #require(Self.residentKiB())
            let client = try RawHTTPClient.connect(port: backend.port)
            client.sendRequest("GET", "/demo/stream?bytes=\(1 << 30)")
            #expect(client.receive(timeout: 5) != nil)
            try await Task.sleep(for: .milliseconds(500))
            let grown = try #require(Self.residentKiB()) - before
            // Unthrottled, the backend would queue the whole GiB in memory within that time.
            #expect(grown < 128 * 1024, "resident memory grew by \(grown) KiB while the client did not read")
            client.close()
        }
    }

    private static func residentKiB() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        return line?.split(whereSeparator: \.isWhitespace).dropFirst().first.flatMap { Int($0) }
    }

    @Test func uploadCounts64MiBWithoutKeepingIt() async throws {
        try await withBackend { backend in
            let size = 64 << 20
            let response = RawHTTPClient.streamUpload(port: backend.port, path: "/demo/upload", totalBytes: size)
            #expect(response.status == 200)
            #expect(response.json?["bytes"] as? Int == size)
            #expect(response.json?["fnv1a"] as? String == TestBodyPattern.fnv1aHex(totalBytes: size))
        }
    }

    @Test func expectContinueGetsAnInterimResponse() async throws {
        try await withBackend { backend in
            let client = try RawHTTPClient.connect(port: backend.port)
            client.sendRequest("POST", "/demo/upload", headers: [("Expect", "100-continue"), ("Content-Length", "3")])
            #expect(client.readResponse(timeout: 2)?.status == 100)
            client.send([1, 2, 3])
            #expect(client.readResponse()?.json?["bytes"] as? Int == 3)
        }
    }

    @Test func closeResetAndHangEndConnectionsAsNamed() async throws {
        try await withBackend { backend in
            let closing = try RawHTTPClient.connect(port: backend.port)
            closing.sendRequest("GET", "/demo/close")
            #expect(closing.readResponse()?.header("Connection") == "close")
            #expect(closing.isClosedByPeer(timeout: 2))

            let reset = try RawHTTPClient.connect(port: backend.port)
            reset.sendRequest("GET", "/demo/reset")
            #expect(reset.readResponse(timeout: 2) == nil)
            #expect(reset.peerClosed && reset.peerReset)

            let hanging = try RawHTTPClient.connect(port: backend.port)
            hanging.sendRequest("GET", "/demo/hang")
            #expect(hanging.readResponse(timeout: 0.3) == nil)
            #expect(!hanging.peerClosed)
        }
    }

    @Test func statsCountAcrossConnections() async throws {
        try await withBackend { backend in
            #expect(RawHTTPClient.request("GET", "/demo/stats/reset", port: backend.port).status == 200)
            let keep = try RawHTTPClient.connect(port: backend.port)
            keep.sendRequest("GET", "/demo/echo")
            #expect(keep.readResponse()?.status == 200)
            // The reset request's connection was closed by the client; the backend notices that
            // shortly after, so poll rather than race it (each poll is one more connection).
            var stats: [String: Any] = [:]
            var polls = 0
            let deadline = Date().addingTimeInterval(3)
            repeat {
                if polls > 0 { usleep(20_000) }
                stats = try #require(RawHTTPClient.request("GET", "/demo/stats", port: backend.port).json)
                polls += 1
            } while stats["connections_open"] as? Int != 2 && Date() < deadline
            #expect(stats["connections_accepted"] as? Int == 1 + polls)
            #expect(stats["connections_open"] as? Int == 2)
            #expect(stats["requests"] as? Int == 1 + polls)
            #expect(backend.stats.connectionsAccepted == 1 + polls)
        }
    }
}
