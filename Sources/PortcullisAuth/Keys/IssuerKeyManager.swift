import AsyncHTTPClient
import Atomics
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PortcullisPolicy

/// Loads every configured issuer's keys and keeps the fetched ones fresh, off the request path.
///
/// ``keys(for:)`` is called at start and at every reload: `jwks_file` sets are read there and
/// then; each `jwks_url` or discovery issuer gets a refresh task (see ``IssuerKeys``) that
/// fetches through one shared `HTTPClient` (connect and read timeouts of a few seconds, no
/// redirects, bodies up to ``Configuration/maximumKeySetBytes``). An issuer whose name and
/// source are unchanged keeps its ``IssuerKeys`` and task across reloads; tasks of issuers no
/// longer configured stop.
///
/// Safe to call from any task: a lock guards the task table. The request path never touches
/// the manager, only ``IssuerKeys/current``. The refresh tasks run from ``keys(for:)`` on;
/// ``run()`` only ties the manager's life to a service task. ``shutdown()`` must run before
/// the manager is released, since it shuts the `HTTPClient` down.
public final class IssuerKeyManager: Sendable {
    /// Limits and timings; the defaults suit production, tests shorten them.
    public struct Configuration: Sendable {
        /// The shortest time between two early fetches asked for by unknown `kid`s, per issuer.
        public var unknownKeyIDInterval: Duration = .seconds(30)
        /// How long a `kid` that an early fetch did not bring may not ask for another. No longer
        /// than the interval: an IdP that signs with a new key before every copy of its key set
        /// shows it must cost at most that long an outage, not this.
        public var negativeCacheTTL: Duration = .seconds(30)
        /// `kid`s remembered as unknown, per issuer.
        public var negativeCacheCapacity = 256
        /// The first retry delay after a failed fetch; it doubles up to the refresh interval.
        public var minimumRetryDelay: Duration = .seconds(1)
        /// async-http-client retries a refused connection until this passes, so an IdP that
        /// refuses connections counts as down after this long.
        public var connectTimeout: Duration = .seconds(5)
        /// Longest silence while reading an answer.
        public var readTimeout: Duration = .seconds(5)
        /// One whole exchange (connect, request, body).
        public var requestTimeout: Duration = .seconds(10)
        /// Key set files and fetched bodies (key sets and OpenID configurations) above this are
        /// refused.
        public var maximumKeySetBytes = 1 << 20

        public init() {}
    }

    private struct Refresh {
        let id: Int
        let source: KeySetRefresher.Source
        let keys: IssuerKeys
        let interval: ManagedAtomic<Int64>
        let firstAttempt: AsyncLatch
        let task: Task<Void, Never>
    }

    private struct State {
        var refreshes: [String: Refresh] = [:]
        /// Cancelled tasks not finished yet, awaited by ``shutdown()``.
        var stopping: [Int: Task<Void, Never>] = [:]
        var nextID = 0
        var isShutDown = false
    }

    private let configuration: Configuration
    private let logger: Logger
    private let client: HTTPClient
    private let state = NIOLockedValueBox(State())

    /// - Parameters:
    ///   - logger: Fetch failures are warnings (URL and reason; never token contents).
    ///   - eventLoopGroup: Where the `HTTPClient` runs; the gateway passes its own group.
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

    /// The keys of every issuer with a key source, by `issuers[].name`; built-in issuers are
    /// left out.
    ///
    /// Throws, changing nothing, when a `jwks_file` cannot be read, is not a JWK Set or holds
    /// no usable key: at a reload the caller keeps its running configuration (and the tasks it
    /// uses keep running). Call it last, once the rest of the new configuration is valid,
    /// since on success it stops the tasks of issuers that are gone.
    public func keys(for issuers: [IssuerConfig]) throws(KeySetError) -> [String: IssuerKeys] {
        var result: [String: IssuerKeys] = [:]
        var fetched: [String: (issuer: IssuerConfig, source: KeySetRefresher.Source)] = [:]
        for issuer in issuers {
            switch issuer.keySource {
            case nil:
                continue
            case .file(let path):
                result[issuer.name] = IssuerKeys(issuerName: issuer.name, keys: try self.readKeySetFile(path))
            case .url(let url):
                fetched[issuer.name] = (issuer, .keySetURL(url))
            case .discovery:
                fetched[issuer.name] = (issuer, .discovery(issuer: issuer.issuer))
            }
        }

        let outcome = self.state.withLockedValue { state -> (keys: [String: IssuerKeys], stopped: [Task<Void, Never>])? in
            guard !state.isShutDown else { return nil }
            var next: [String: Refresh] = [:]
            for (name, (issuer, source)) in fetched {
                let interval = EarlyRefreshGate.nanoseconds(issuer.jwksRefresh.duration)
                if let running = state.refreshes[name], running.source == source {
                    running.interval.store(interval, ordering: .relaxed)
                    next[name] = running
                } else {
                    next[name] = self.startRefresh(issuer: issuer, source: source, interval: interval, state: &state)
                }
            }
            var stopped: [Task<Void, Never>] = []
            for (name, running) in state.refreshes where next[name]?.id != running.id {
                state.stopping[running.id] = running.task
                stopped.append(running.task)
            }
            state.refreshes = next
            return (next.mapValues(\.keys), stopped)
        }
        guard let outcome else {
            throw KeySetError(.shutDown, reason: "the issuer key manager has shut down")
        }
        for task in outcome.stopped {
            task.cancel()
        }
        result.merge(outcome.keys) { _, fetched in fetched }
        return result
    }

    /// Returns once every fetched issuer has had its first fetch attempt, successful or not, or
    /// when `timeout` has passed. Call before reporting ready, so a gateway started while its
    /// IdP answers accepts tokens from the first request.
    public func waitForInitialFetch(timeout: Duration) async {
        let latches = self.state.withLockedValue { $0.refreshes.values.map(\.firstAttempt) }
        guard latches.contains(where: { !$0.isOpen }) else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for latch in latches {
                    await latch.wait()
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Suspends until the calling task is cancelled, then shuts down (see ``shutdown()``).
    /// With swift-service-lifecycle, run it under `cancelWhenGracefulShutdown`.
    public func run() async {
        let (stream, continuation) = AsyncStream<Never>.makeStream()
        for await _ in stream {}
        continuation.finish()
        await self.shutdown()
    }

    /// Stops every refresh task, waits for them, and shuts the `HTTPClient` down. Later calls of
    /// ``keys(for:)`` throw. Calling it again does nothing.
    public func shutdown() async {
        let tasks = self.state.withLockedValue { state -> [Task<Void, Never>]? in
            guard !state.isShutDown else { return nil }
            state.isShutDown = true
            let tasks = state.refreshes.values.map(\.task) + state.stopping.values
            state.refreshes = [:]
            state.stopping = [:]
            return tasks
        }
        guard let tasks else { return }
        for task in tasks {
            task.cancel()
        }
        for task in tasks {
            await task.value
        }
        do {
            try await self.client.shutdown()
        } catch {
            self.logger.debug("HTTP client shutdown", metadata: ["error": "\(error)"])
        }
    }

    private func startRefresh(
        issuer: IssuerConfig,
        source: KeySetRefresher.Source,
        interval: Int64,
        state: inout State
    ) -> Refresh {
        let id = state.nextID
        state.nextID += 1
        let gate = EarlyRefreshGate(
            interval: self.configuration.unknownKeyIDInterval,
            negativeTTL: self.configuration.negativeCacheTTL,
            negativeCapacity: self.configuration.negativeCacheCapacity
        )
        let keys = IssuerKeys(issuerName: issuer.name, keys: JWKSet(keys: []), gate: gate)
        let intervalBox = ManagedAtomic(interval)
        let firstAttempt = AsyncLatch()
        var logger = self.logger
        logger[metadataKey: "issuer"] = "\(issuer.name)"
        let refresher = KeySetRefresher(
            source: source,
            keys: keys,
            gate: gate,
            fetcher: JWKSFetcher(
                client: self.client,
                maximumBytes: self.configuration.maximumKeySetBytes,
                timeout: self.configuration.requestTimeout
            ),
            interval: intervalBox,
            minimumRetryDelay: EarlyRefreshGate.nanoseconds(self.configuration.minimumRetryDelay),
            firstAttempt: firstAttempt,
            logger: logger
        )
        let task = Task { [weak self] in
            await refresher.run()
            self?.state.withLockedValue { _ = $0.stopping.removeValue(forKey: id) }
        }
        return Refresh(id: id, source: source, keys: keys, interval: intervalBox, firstAttempt: firstAttempt, task: task)
    }

    private func readKeySetFile(_ path: String) throws(KeySetError) -> JWKSet {
        let data: Data
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            if let size = attributes[.size] as? NSNumber, size.intValue > self.configuration.maximumKeySetBytes {
                throw KeySetError(
                    .tooLarge,
                    reason: "jwks_file \(path) is larger than \(self.configuration.maximumKeySetBytes) bytes"
                )
            }
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let error as KeySetError {
            throw error
        } catch {
            throw KeySetError(.unreadableFile, reason: "jwks_file \(path) cannot be read: \(error.localizedDescription)")
        }
        let keySet: JWKSet
        do throws(JWKError) {
            keySet = try JWKSet(json: data)
        } catch {
            throw KeySetError(.invalidKeySet, reason: "jwks_file \(path): \(error)")
        }
        for skipped in keySet.skipped where skipped.error.code != .notForSignatures {
            self.logger.warning("key set entry not used", metadata: ["file": "\(path)", "key": "\(skipped)"])
        }
        guard !keySet.isEmpty else {
            throw KeySetError(.emptyKeySet, reason: "jwks_file \(path) holds no usable signature key")
        }
        return keySet
    }
}
