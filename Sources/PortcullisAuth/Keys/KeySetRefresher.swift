import Atomics
import Logging

/// Keeps one `jwks_url` or discovery issuer's ``IssuerKeys`` fresh, on its own task.
///
/// Fetches at once, then every refresh interval; after a failure sooner, backing off from the
/// minimum retry delay (doubling) up to the interval; and at once when ``EarlyRefreshGate``
/// lets an unknown `kid` through. A fetch that fails, or a document that is not a JWK Set or
/// holds no usable key, leaves the last good set in place. A document identical to the last
/// one is not parsed again and does not bump ``IssuerKeys/generation``.
///
/// For discovery, the OpenID configuration is read again on every scheduled fetch; an early
/// fetch reuses the `jwks_uri` it gave last, so a rotation costs one round trip.
struct KeySetRefresher: Sendable {
    /// Where the set comes from; two configurations with the same source share their keys.
    enum Source: Hashable, Sendable, CustomStringConvertible {
        case keySetURL(String)
        case discovery(issuer: String)

        var description: String {
            switch self {
            case .keySetURL(let url): return url
            case .discovery(let issuer): return "discovery from \(issuer)"
            }
        }
    }

    private struct LoopState {
        var failures = 0
        var discoveredURL: String?
        var lastDocument: [UInt8]?
    }

    let source: Source
    let keys: IssuerKeys
    let gate: EarlyRefreshGate
    let fetcher: JWKSFetcher
    /// Nanoseconds between successful fetches; a reload may change it.
    let interval: ManagedAtomic<Int64>
    let minimumRetryDelay: Int64
    /// Opens after the first fetch attempt, whatever its outcome.
    let firstAttempt: AsyncLatch
    let logger: Logger

    /// Runs until the task is cancelled.
    func run() async {
        var state = LoopState()
        while !Task.isCancelled {
            let request = self.gate.take()
            let succeeded = await self.refresh(early: request.requested, state: &state)
            self.firstAttempt.open()
            if Task.isCancelled {
                return
            }
            if succeeded {
                state.failures = 0
                let current = self.keys.current
                self.gate.rememberUnknown(request.keyIDs.filter { current.key(withID: $0) == nil })
            } else {
                state.failures += 1
            }
            await self.gate.wait(upTo: .nanoseconds(self.delay(afterFailures: state.failures)))
        }
    }

    private func delay(afterFailures failures: Int) -> Int64 {
        // Never a busy loop, whatever interval a caller builds by hand (the loader allows >= 30s).
        let interval = max(self.interval.load(ordering: .relaxed), self.minimumRetryDelay, 1_000_000)
        guard failures > 0 else { return interval }
        let shift = min(failures - 1, 62)
        let backoff = self.minimumRetryDelay > (Int64.max >> shift) ? Int64.max : self.minimumRetryDelay << shift
        return min(interval, backoff)
    }

    private func refresh(early: Bool, state: inout LoopState) async -> Bool {
        do throws(KeySetError) {
            let url: String
            switch self.source {
            case .keySetURL(let configured):
                url = configured
            case .discovery(let issuer):
                if early, let known = state.discoveredURL {
                    url = known
                } else {
                    url = try await self.fetcher.keySetURL(discoveredFrom: issuer)
                    state.discoveredURL = url
                }
            }
            if early {
                self.logger.debug("fetching the key set early: a token named an unknown kid", metadata: ["url": "\(url)"])
            }
            let document = try await self.fetcher.keySetDocument(at: url)
            if document == state.lastDocument {
                self.keys.recordSuccess()
                return true
            }
            let keySet: JWKSet
            do throws(JWKError) {
                keySet = try JWKSet(json: document)
            } catch {
                throw KeySetError(.invalidKeySet, reason: "\(url): \(error)")
            }
            for skipped in keySet.skipped {
                let level: Logger.Level = skipped.error.code == .notForSignatures ? .debug : .warning
                self.logger.log(level: level, "key set entry not used", metadata: ["url": "\(url)", "key": "\(skipped)"])
            }
            guard !keySet.isEmpty else {
                throw KeySetError(.emptyKeySet, reason: "\(url): the key set holds no usable signature key")
            }
            self.keys.replace(with: keySet)
            state.lastDocument = document
            self.keys.recordSuccess()
            self.logger.info(
                "key set updated",
                metadata: [
                    "url": "\(url)",
                    "keys": "\(keySet.keys.count)",
                    "kids": "\(keySet.keys.compactMap(\.keyID).joined(separator: ","))",
                ]
            )
            return true
        } catch {
            if Task.isCancelled {
                return false
            }
            state.discoveredURL = nil
            self.keys.recordFailure(error)
            self.logger.warning(
                "key set refresh failed; the last good set stays in use",
                metadata: ["source": "\(self.source)", "error": "\(error)"]
            )
            return false
        }
    }
}
