import AsyncHTTPClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import PortcullisPolicy

/// Keeps CIPP's tenant list fresh for `tenant_directory: {upstream: /api/ListTenants}`: fetches
/// it from the backend with the upstream credential, off the request path, every `refresh`
/// (every 30 s while fetches fail), and hands each good copy to `publish`. A failed fetch keeps
/// the last good copy; until the first one, no tenant resolves, so tenant-limited requests are
/// refused rather than compared as written.
public final class TenantDirectoryFetcher: Sendable {
    /// Where to fetch from and how; equal settings keep the running task across reloads.
    public struct Source: Sendable, Equatable {
        public var url: String
        public var caFile: String?
        public var refresh: Duration

        public init(url: String, caFile: String?, refresh: Duration) {
            self.url = url
            self.caFile = caFile
            self.refresh = refresh
        }
    }

    private struct Running {
        let source: Source
        let task: Task<Void, Never>
    }

    public static let maximumBytes = 32 << 20
    static let retryInterval = Duration.seconds(30)

    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let publish: @Sendable (TenantDirectory) -> Void
    private let running = NIOLockedValueBox<Running?>(nil)

    public init(logger: Logger, eventLoopGroup: any EventLoopGroup, publish: @escaping @Sendable (TenantDirectory) -> Void) {
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.publish = publish
    }

    /// Starts fetching from `source` (nil: stops); an unchanged source keeps its task and its
    /// last copy. `credential` is read at each fetch.
    public func configure(_ source: Source?, credential: UpstreamCredential?) {
        let previous = self.running.withLockedValue { running -> Running? in
            if let current = running, current.source == source { return nil }
            let old = running
            running = source.map { source in
                Running(source: source, task: Task { await self.run(source, credential: credential) })
            }
            return old
        }
        previous?.task.cancel()
    }

    public func shutdown() async {
        let task = self.running.withLockedValue { running -> Task<Void, Never>? in
            defer { running = nil }
            return running?.task
        }
        task?.cancel()
        await task?.value
    }

    private func run(_ source: Source, credential: UpstreamCredential?) async {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: HTTPClient.Configuration.Timeout(connect: .seconds(5), read: .seconds(60))
        )
        configuration.decompression = .disabled
        if let caFile = source.caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            configuration.tlsConfiguration = tls
        }
        let client = HTTPClient(eventLoopGroup: self.eventLoopGroup, configuration: configuration, backgroundActivityLogger: self.logger)
        if let credential, !credential.firstAttempt.isOpen {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await credential.firstAttempt.wait() }
                group.addTask { try? await Task.sleep(for: .seconds(10)) }
                await group.next()
                group.cancelAll()
            }
        }
        while !Task.isCancelled {
            let wait: Duration
            do {
                let directory = try await self.fetch(source, client: client, credential: credential)
                self.publish(directory)
                self.logger.info("tenant directory fetched", metadata: ["url": "\(source.url)", "tenants": "\(directory.tenants.count)"])
                wait = source.refresh
            } catch {
                self.logger.error("tenant directory fetch failed; keeping the last good copy", metadata: ["url": "\(source.url)", "error": "\(error)"])
                wait = min(source.refresh, Self.retryInterval)
            }
            try? await Task.sleep(for: wait)
        }
        try? await client.shutdown()
    }

    private func fetch(_ source: Source, client: HTTPClient, credential: UpstreamCredential?) async throws -> TenantDirectory {
        var request = HTTPClientRequest(url: source.url)
        request.headers.add(name: "Accept", value: "application/json")
        if let credential {
            guard let header = credential.header(atUptimeNanoseconds: NIODeadline.now().uptimeNanoseconds) else {
                throw TenantDirectoryError(.credentialUnavailable, reason: "the upstream credential is not available")
            }
            request.headers.add(name: header.name, value: header.value)
        }
        let response = try await client.execute(request, deadline: .now() + .seconds(120))
        let body = try await response.body.collect(upTo: Self.maximumBytes)
        guard response.status == .ok else { throw TenantDirectoryError(.httpStatus, reason: "HTTP \(response.status.code)") }
        return try TenantDirectory.parse(body.readableBytesView, source: source.url).get()
    }
}
