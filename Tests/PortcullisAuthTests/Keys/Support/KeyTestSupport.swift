import Crypto
import Foundation
import Logging
import NIOConcurrencyHelpers
import PortcullisAuth
import PortcullisPolicy

/// JWK Set documents with fresh P-256 keys, one per `kid`.
enum KeySetDocuments {
    static func p256(kids: String...) -> String {
        self.p256(kids: kids)
    }

    static func p256(kids: [String]) -> String {
        let keys = kids.map { kid -> String in
            let point = Array(P256.Signing.PrivateKey().publicKey.x963Representation)
            let x = Base64URL.encode(point[1..<33])
            let y = Base64URL.encode(point[33..<65])
            return #"{"kty":"EC","crv":"P-256","x":"\#(x)","y":"\#(y)","kid":"\#(kid)","alg":"ES256","use":"sig"}"#
        }
        return #"{"keys":[\#(keys.joined(separator: ","))]}"#
    }
}

extension JWKSet {
    var keyIDs: [String] { self.keys.compactMap(\.keyID) }
}

/// Keeps every log event so tests can check what an operator would read.
final class RecordingLogHandler: LogHandler {
    struct Event: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]

        /// The message and its metadata as one line, the way a log file shows it.
        var line: String {
            ([self.message] + self.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
                .joined(separator: " ")
        }
    }

    final class Store: Sendable {
        private let events = NIOLockedValueBox<[Event]>([])

        func append(_ event: Event) {
            self.events.withLockedValue { $0.append(event) }
        }

        var all: [Event] { self.events.withLockedValue { $0 } }

        func lines(atLeast level: Logger.Level) -> [String] {
            self.all.filter { $0.level >= level }.map(\.line)
        }
    }

    let store: Store
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    init(store: Store) {
        self.store = store
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged: [String: String] = [:]
        for (key, value) in self.metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            merged[key] = "\(value)"
        }
        self.store.append(Event(level: event.level, message: "\(event.message)", metadata: merged))
    }
}

/// Test timings: nothing a test waits for takes seconds.
extension IssuerKeyManager.Configuration {
    static func fast(
        unknownKeyIDInterval: Duration = .seconds(30),
        negativeCacheTTL: Duration = .seconds(300)
    ) -> Self {
        var configuration = Self()
        configuration.unknownKeyIDInterval = unknownKeyIDInterval
        configuration.negativeCacheTTL = negativeCacheTTL
        configuration.minimumRetryDelay = .milliseconds(50)
        configuration.connectTimeout = .seconds(2)
        configuration.readTimeout = .seconds(2)
        configuration.requestTimeout = .seconds(3)
        return configuration
    }
}

/// Runs `body` with a manager and always shuts it down (its HTTPClient must not be dropped
/// running).
func withKeyManager(
    _ configuration: IssuerKeyManager.Configuration = .fast(),
    logs: RecordingLogHandler.Store = RecordingLogHandler.Store(),
    _ body: (IssuerKeyManager) async throws -> Void
) async throws {
    let logger = Logger(label: "portcullis.keys.test") { _ in RecordingLogHandler(store: logs) }
    let manager = IssuerKeyManager(logger: logger, configuration: configuration)
    do {
        try await body(manager)
    } catch {
        await manager.shutdown()
        throw error
    }
    await manager.shutdown()
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
/// (Generous: the whole suite runs in parallel on two cores, refreshes back off, and while the
/// blocking end-to-end suites hold the cooperative pool a wake-up can be ~10 s late.)
func eventually(timeout: Duration = .seconds(60), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() {
            return true
        }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

func urlIssuer(_ name: String = "idp", url: String, refresh: Duration = .seconds(600)) -> IssuerConfig {
    IssuerConfig(
        name: name,
        issuer: "https://idp.example/",
        audiences: ["api://test"],
        keySource: .url(url),
        algorithms: ["ES256"],
        jwksRefresh: configDuration(refresh)
    )
}

func discoveryIssuer(_ name: String = "oidc", issuer: String) -> IssuerConfig {
    IssuerConfig(name: name, issuer: issuer, audiences: ["api://test"], keySource: .discovery, algorithms: ["ES256"])
}

func fileIssuer(_ name: String = "file", path: String) -> IssuerConfig {
    IssuerConfig(name: name, issuer: "https://file.example/", audiences: ["api://test"], keySource: .file(path), algorithms: ["ES256"])
}

func configDuration(_ duration: Duration) -> ConfigDuration {
    .milliseconds(Int64(duration.components.seconds) * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
}

/// A fresh temporary directory, removed by `body`'s end.
func withTemporaryDirectory(_ body: (URL) async throws -> Void) async throws {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("portcullis-keys-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    try await body(directory)
}
