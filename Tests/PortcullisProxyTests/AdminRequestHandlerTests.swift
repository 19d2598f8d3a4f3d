import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import PortcullisProxy

/// The admin handler on an `EmbeddedChannel`, behind NIOHTTP1's server pipeline as
/// `AdminServer` builds it.
@Suite struct AdminRequestHandlerTests {
    struct Harness {
        let channel = EmbeddedChannel()
        let ready = NIOLockedValueBox(true)

        init(metrics: String = "# TYPE x counter\nx 1\n") throws {
            let ready = self.ready
            let endpoints = AdminServer.Endpoints(
                metricsText: { loop in loop.makeSucceededFuture(metrics) },
                isReady: { ready.withLockedValue { $0 } }
            )
            let sync = self.channel.pipeline.syncOperations
            try sync.configureHTTPServerPipeline(withErrorHandling: true)
            try sync.addHandler(AdminRequestHandler(endpoints: endpoints))
            try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9090)).wait()
        }

        /// Sends `method path` and returns the raw response.
        func request(_ method: String, _ path: String, close: Bool = false) throws -> String {
            let connection = close ? "Connection: close\r\n" : ""
            try self.channel.writeInbound(ByteBuffer(string: "\(method) \(path) HTTP/1.1\r\nHost: admin\r\n\(connection)\r\n"))
            self.channel.embeddedEventLoop.run()
            var all = ByteBuffer()
            while let buffer = try self.channel.readOutbound(as: ByteBuffer.self) {
                all.writeImmutableBuffer(buffer)
            }
            return String(buffer: all)
        }
    }

    @Test(arguments: [
        ("GET", "/metrics", AdminRoute.metrics),
        ("GET", "/metrics?name[]=x", .metrics),
        ("HEAD", "/healthz", .healthz),
        ("GET", "/readyz", .readyz),
        ("POST", "/readyz", .methodNotAllowed),
        ("GET", "/", .notFound),
        ("GET", "/metrics/", .notFound),
        ("GET", "/api/ListTenants", .notFound),
    ])
    func routesAreDecidedByMethodAndPath(method: String, uri: String, route: AdminRoute) {
        #expect(AdminRoute(method: HTTPMethod(rawValue: method), uri: uri) == route)
    }

    @Test func healthzIsOKWhileTheProcessRuns() throws {
        let harness = try Harness()
        let response = try harness.request("GET", "/healthz")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.contains("Content-Type: application/json\r\n"))
        #expect(response.hasSuffix("\r\n\r\n{\"status\":\"ok\"}\n"))
    }

    @Test func readyzTurns503WhenDrainingStarts() throws {
        let harness = try Harness()
        let ready = try harness.request("GET", "/readyz")
        #expect(ready.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(ready.hasSuffix("{\"status\":\"ready\"}\n"))
        harness.ready.withLockedValue { $0 = false }
        let draining = try harness.request("GET", "/readyz")
        #expect(draining.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
        #expect(draining.hasSuffix("{\"status\":\"draining\"}\n"))
    }

    @Test func metricsAreServedAsPrometheusText() throws {
        let harness = try Harness(metrics: "# TYPE x counter\nx 1\n")
        let response = try harness.request("GET", "/metrics")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        #expect(response.contains("Content-Length: 21\r\n"))
        #expect(response.hasSuffix("\r\n\r\n# TYPE x counter\nx 1\n"))
    }

    @Test func headGetsTheHeadersWithoutTheBody() throws {
        let harness = try Harness()
        let response = try harness.request("HEAD", "/healthz")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.hasSuffix("\r\n\r\n"))
    }

    @Test func unknownPathsAre404JSONAndWrongMethods405() throws {
        let harness = try Harness()
        let missing = try harness.request("GET", "/admin")
        #expect(missing.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        #expect(missing.contains("\"error\":\"not_found\""))
        let wrongMethod = try harness.request("DELETE", "/metrics")
        #expect(wrongMethod.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"))
        #expect(wrongMethod.contains("Allow: GET, HEAD\r\n"))
    }

    @Test func connectionCloseIsHonoured() throws {
        let harness = try Harness()
        let response = try harness.request("GET", "/healthz", close: true)
        #expect(response.contains("Connection: close\r\n"))
        #expect(!harness.channel.isActive)
    }

    @Test func aKeptAliveConnectionServesSeveralRequests() throws {
        let harness = try Harness()
        for _ in 0..<3 {
            #expect(try harness.request("GET", "/healthz").hasPrefix("HTTP/1.1 200 OK\r\n"))
        }
        #expect(harness.channel.isActive)
    }
}
