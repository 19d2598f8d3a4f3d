import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PortcullisPolicy

/// Obtains and keeps fresh the credential of `upstream.auth`, off the request path.
///
/// ``credential(for:)`` is called at start and at every reload. A `header` credential reads its
/// value file there and then (a bad file fails the start or the reload), then a task polls the
/// file's size, modification time and inode every second and swaps in a changed value (a bad
/// new value keeps the old one, logged). A `client_credentials` credential gets a task that
/// POSTs to `token_url`, one request at a time, through one shared `HTTPClient` (no redirects,
/// timeouts of a few seconds, bodies up to ``Configuration/maximumResponseBytes``), refreshes
/// before expiry (``TokenRefreshSchedule``) and retries with backoff; the current token stays
/// in use while it is valid. An unchanged `upstream.auth` keeps its credential across reloads;
/// ``commit(_:)`` stops the others once the new configuration is applied.
///
/// Secrets and tokens are never logged. ``shutdown()`` must run before the manager is released.
public final class UpstreamCredentialManager: Sendable {
    public struct Configuration: Sendable {
        public var schedule = TokenRefreshSchedule()
        /// How often a header value file is checked for a change.
        public var filePollInterval: Duration = .seconds(1)
        public var connectTimeout: Duration = .seconds(5)
        public var readTimeout: Duration = .seconds(5)
        /// One whole exchange with the token endpoint.
        public var requestTimeout: Duration = .seconds(10)
        public var maximumResponseBytes = 64 * 1024

        public init() {}
    }

    private struct Running {
        let id: Int
        let credential: UpstreamCredential
        let task: Task<Void, Never>
    }

    private struct State {
        var running: [Running] = []
        var nextID = 0
        var isShutDown = false
    }

    private let configuration: Configuration
    private let logger: Logger
    private let client: HTTPClient
    private let state = NIOLockedValueBox(State())

    public init(
        logger: Logger,
        configuration: Configuration = Configuration(),
        eventLoopGroup: any EventLoopGroup = HTTPClient.defaultEventLoopGroup
    ) {
        self.configuration = configuration
        self.logger = logger
        self.client = HTTPClient.offPath(
            connectTimeout: TimeAmount(configuration.connectTimeout),
            readTimeout: TimeAmount(configuration.readTimeout),
            eventLoopGroup: eventLoopGroup,
            logger: logger
        )
    }

    /// The credential for `config` (nil for none): the running one when `config` is unchanged,
    /// else a new one whose refresh task starts now. Throws when a header value file cannot be
    /// used; nothing is stopped here (see ``commit(_:)``).
    public func credential(for config: UpstreamAuthConfig?) throws(UpstreamCredentialError) -> UpstreamCredential? {
        guard let config else { return nil }
        if let running = self.state.withLockedValue({ state in state.running.first { $0.credential.config == config } }) {
            return running.credential
        }
        let credential = UpstreamCredential(config: config)
        let operation: @Sendable () async -> Void
        switch config {
        case .header(let header):
            let initial = Self.fingerprint(header.valueFile)
            switch UpstreamAuthConfig.readCredentialFile(header.valueFile) {
            case .success(let value): credential.publish(name: header.name, value: value, validUntil: .max)
            case .failure(let problem): throw UpstreamCredentialError(.unreadableFile, reason: "upstream.auth.header.value_file: \(problem)")
            }
            credential.firstAttempt.open()
            operation = { [logger = self.logger, interval = self.configuration.filePollInterval] in
                var fingerprint = initial
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    if Task.isCancelled { return }
                    let now = Self.fingerprint(header.valueFile)
                    guard now != fingerprint else { continue }
                    fingerprint = now
                    switch UpstreamAuthConfig.readCredentialFile(header.valueFile) {
                    case .success(let value):
                        credential.publish(name: header.name, value: value, validUntil: .max)
                        logger.info("upstream header value file changed; new value in use", metadata: ["header": "\(header.name)"])
                    case .failure(let problem):
                        logger.error(
                            "upstream header value file cannot be used; keeping the previous value",
                            metadata: ["header": "\(header.name)", "error": "\(problem)"]
                        )
                    }
                }
            }
        case .clientCredentials(let settings):
            let fetcher = ClientCredentialsFetcher(
                client: self.client,
                settings: settings,
                timeout: self.configuration.requestTimeout,
                maximumBytes: self.configuration.maximumResponseBytes
            )
            operation = { [logger = self.logger, schedule = self.configuration.schedule] in
                await Self.keepFresh(credential, fetcher: fetcher, schedule: schedule, logger: logger)
            }
        }
        let started = self.state.withLockedValue { state -> Bool in
            guard !state.isShutDown else { return false }
            let id = state.nextID
            state.nextID += 1
            state.running.append(Running(id: id, credential: credential, task: Task { await operation() }))
            return true
        }
        guard started else {
            throw UpstreamCredentialError(.shutDown, reason: "the upstream credential manager has shut down")
        }
        return credential
    }

    /// Stops every credential's task except `credential`'s: call once a configuration using it
    /// has been applied.
    public func commit(_ credential: UpstreamCredential?) {
        let stopped = self.state.withLockedValue { state -> [Running] in
            let stopped = state.running.filter { $0.credential !== credential }
            state.running.removeAll { $0.credential !== credential }
            return stopped
        }
        for running in stopped {
            running.task.cancel()
        }
    }

    /// Returns once `credential` has had its first attempt (a token request, successful or not),
    /// or when `timeout` has passed.
    public func waitForFirstAttempt(of credential: UpstreamCredential?, timeout: Duration) async {
        guard let credential, !credential.firstAttempt.isOpen else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await credential.firstAttempt.wait() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Stops every task and shuts the `HTTPClient` down; later ``credential(for:)`` calls throw.
    public func shutdown() async {
        let running = self.state.withLockedValue { state -> [Running]? in
            guard !state.isShutDown else { return nil }
            state.isShutDown = true
            defer { state.running = [] }
            return state.running
        }
        guard let running else { return }
        for entry in running { entry.task.cancel() }
        for entry in running { await entry.task.value }
        do {
            try await self.client.shutdown()
        } catch {
            self.logger.debug("HTTP client shutdown", metadata: ["error": "\(error)"])
        }
    }

    /// The token loop: fetch, publish, sleep until the refresh time (or the backoff), again.
    private static func keepFresh(
        _ credential: UpstreamCredential,
        fetcher: ClientCredentialsFetcher,
        schedule: TokenRefreshSchedule,
        logger: Logger
    ) async {
        var logger = logger
        logger[metadataKey: "token_url"] = "\(fetcher.settings.tokenURL)"
        var failures = 0
        while !Task.isCancelled {
            let started = NIODeadline.now().uptimeNanoseconds
            let delay: Int64
            do throws(UpstreamCredentialError) {
                let response = try await fetcher.fetch()
                let lifetime = TokenRefreshSchedule.nanoseconds(response.expiresIn)
                let (validUntil, overflow) = started.addingReportingOverflow(UInt64(lifetime))
                credential.publish(bearer: response.accessToken, validUntil: overflow ? .max : validUntil)
                failures = 0
                let elapsed = Int64(NIODeadline.now().uptimeNanoseconds - started)
                delay = schedule.refreshDelay(lifetime: response.expiresIn) - elapsed
                logger.info("upstream token obtained", metadata: ["expires_in": "\(response.expiresIn)s"])
            } catch {
                if Task.isCancelled { break }
                failures += 1
                delay = schedule.retryDelay(afterFailures: failures)
                let now = NIODeadline.now().uptimeNanoseconds
                let state =
                    credential.isAvailable(atUptimeNanoseconds: now)
                    ? "the current token stays in use while it is valid"
                    : "no valid token: upstream requests get 502 upstream_credential_unavailable"
                logger.warning(
                    "upstream token request failed; \(state)",
                    metadata: [
                        "error": "\(error.reason)", "failures": "\(failures)", "retry_in": "\(Double(delay) / 1e9)s",
                    ]
                )
            }
            credential.firstAttempt.open()
            try? await Task.sleep(nanoseconds: UInt64(max(delay, 1_000_000)))
        }
        credential.firstAttempt.open()
    }

    /// Size, modification time and inode: a change to any means the file is read again (an
    /// atomic rename, or Kubernetes' symlink swap of a mounted Secret, changes the inode).
    static func fingerprint(_ path: String) -> [String] {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return [] }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? -1
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
        return ["\(size)", "\(modified)", "\(inode)"]
    }
}

/// POSTs the client-credentials grant to `token_url` (client_secret_post) and parses the answer.
struct ClientCredentialsFetcher: Sendable {
    let client: HTTPClient
    let settings: UpstreamAuthConfig.ClientCredentials
    let timeout: Duration
    let maximumBytes: Int

    func fetch() async throws(UpstreamCredentialError) -> UpstreamTokenResponse {
        // Read for every request, so a rotated secret is used without a reload.
        let secret: String
        switch UpstreamAuthConfig.readCredentialFile(self.settings.clientSecretFile) {
        case .success(let value): secret = value
        case .failure(let problem): throw UpstreamCredentialError(.unreadableFile, reason: "client_secret_file: \(problem)")
        }
        let url = self.settings.tokenURL
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "accept", value: "application/json")
        request.headers.add(name: "user-agent", value: "portcullis")
        request.body = .bytes(
            ByteBuffer(string: UpstreamTokenResponse.requestBody(clientID: self.settings.clientID, clientSecret: secret, scope: self.settings.scope))
        )
        let response: HTTPClientResponse
        do {
            response = try await self.client.execute(request, deadline: .now() + TimeAmount(self.timeout))
        } catch {
            throw UpstreamCredentialError(.unreachable, reason: "POST \(url) failed: \(error)")
        }
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: self.maximumBytes)
        } catch is NIOTooManyBytesError {
            throw UpstreamCredentialError(.tooLarge, reason: "POST \(url): the answer is larger than \(self.maximumBytes) bytes")
        } catch {
            throw UpstreamCredentialError(.unreachable, reason: "POST \(url) failed while reading the answer: \(error)")
        }
        guard response.status == .ok else {
            let code = UpstreamTokenResponse.errorCode(body.readableBytesView).map { " (\($0))" } ?? ""
            throw UpstreamCredentialError(
                .httpStatus,
                reason: "POST \(url) answered \(response.status.code) \(response.status.reasonPhrase)\(code)"
            )
        }
        do throws(UpstreamCredentialError) {
            return try UpstreamTokenResponse.parse(body.readableBytesView)
        } catch {
            throw UpstreamCredentialError(error.code, reason: "POST \(url): \(error.reason)")
        }
    }
}
