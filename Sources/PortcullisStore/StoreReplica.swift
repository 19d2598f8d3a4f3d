import Atomics
import Foundation
import Logging

/// What `/metrics` and `/readyz` read about the store; atomics, read from any thread.
public final class StoreStatus: Sendable {
    private let up = ManagedAtomic<Bool>(false)
    private let loaded = ManagedAtomic<Bool>(false)
    private let lastSyncMillis = ManagedAtomic<Int64>(0)
    private let buffered = ManagedAtomic<Int>(0)
    private let dropped = ManagedAtomic<Int>(0)

    public init() {}

    /// The store answered its last request.
    public var isUp: Bool { self.up.load(ordering: .relaxed) }
    /// The registry was loaded at least once: until then the replica is not ready.
    public var hasLoaded: Bool { self.loaded.load(ordering: .relaxed) }
    /// Milliseconds since the epoch of the last full load; 0 before the first.
    public var lastSync: Int64 { self.lastSyncMillis.load(ordering: .relaxed) }
    /// Usage updates waiting for the store.
    public var bufferedUpdates: Int { self.buffered.load(ordering: .relaxed) }
    /// Usage updates dropped because the buffer was full while the store was down.
    public var droppedUpdates: Int { self.dropped.load(ordering: .relaxed) }

    func markUp(_ value: Bool) { self.up.store(value, ordering: .relaxed) }

    func markLoaded(atMillis millis: Int64) {
        self.loaded.store(true, ordering: .relaxed)
        self.lastSyncMillis.store(millis, ordering: .relaxed)
    }

    func setBuffered(_ count: Int) { self.buffered.store(count, ordering: .relaxed) }
    func addDropped(_ count: Int) { self.dropped.wrappingIncrement(by: count, ordering: .relaxed) }
}

/// The usage updates waiting for the store, bounded: past `capacity` entries, new client ids
/// are dropped (counted) while times of ids already held still advance.
public struct UsageBuffer: Sendable {
    public let capacity: Int
    public private(set) var pending = UsageBatch()
    public private(set) var dropped = 0

    public init(capacity: Int) { self.capacity = capacity }

    /// Adds `batch`; returns how many of its entries did not fit.
    @discardableResult
    public mutating func add(_ batch: UsageBatch) -> Int {
        var refused = 0
        func fold(_ source: [String: Int64], into target: inout [String: Int64], count: inout Int) {
            for (key, value) in source {
                if let existing = target[key] {
                    target[key] = max(existing, value)
                } else if count < self.capacity {
                    target[key] = value
                    count += 1
                } else {
                    refused += 1
                }
            }
        }
        var count = self.pending.count
        // Revocations and failure counts first: they matter more than usage times.
        fold(batch.revocations, into: &self.pending.revocations, count: &count)
        fold(batch.unlocks, into: &self.pending.unlocks, count: &count)
        for (key, increment) in batch.failedAuth {
            if let existing = self.pending.failedAuth[key] {
                self.pending.failedAuth[key] = FailureCount.adding(increment, to: existing)
            } else if count < self.capacity {
                self.pending.failedAuth[key] = increment
                count += 1
            } else {
                refused += 1
            }
        }
        fold(batch.lastRedeemed, into: &self.pending.lastRedeemed, count: &count)
        fold(batch.lastUsed, into: &self.pending.lastUsed, count: &count)
        self.dropped += refused
        return refused
    }

    /// Takes everything waiting.
    public mutating func take() -> UsageBatch {
        defer { self.pending = UsageBatch() }
        return self.pending
    }

    /// Puts back a batch whose write failed (newer entries win).
    public mutating func restore(_ batch: UsageBatch) {
        let newer = self.pending
        self.pending = UsageBatch()
        self.add(batch)
        self.add(newer)
    }
}

/// A gateway's side of the store: loads the registry at start (retrying until the store
/// answers), again on every change another process announces and periodically, and writes the
/// usage gathered off the event loops about once a second.
public final class StoreReplica: Sendable {
    public struct Settings: Sendable {
        public var flushInterval: Duration = .seconds(1)
        public var resyncInterval: Duration = .seconds(30)
        public var retryInterval: Duration = .milliseconds(500)
        public var bufferCapacity = 100_000
        public init() {}
    }

    public let store: any ClientStore
    public let status = StoreStatus()
    private let settings: Settings
    private let logger: Logger

    public init(store: any ClientStore, settings: Settings = Settings(), logger: Logger) {
        self.store = store
        self.settings = settings
        self.logger = logger
    }

    /// Loads now; on success the status says loaded and up.
    public func load() async throws(StoreError) -> Registry {
        do {
            let registry = try await self.store.load()
            self.status.markUp(true)
            self.status.markLoaded(atMillis: Int64(Date().timeIntervalSince1970 * 1000))
            return registry
        } catch {
            if error.code == .unavailable { self.status.markUp(false) }
            throw error
        }
    }

    /// Runs until cancelled: `apply` gets every registry loaded (full resync each time),
    /// `collect` is asked for usage once per flush interval.
    public func run(
        apply: @escaping @Sendable (Registry) async -> Void,
        collect: @escaping @Sendable () -> UsageBatch
    ) async {
        await withTaskGroup(of: Void.self) { tasks in
            // Until the first load succeeds, the replica is not ready: retry.
            tasks.addTask {
                if !self.status.hasLoaded { await self.resync(apply) }
            }
            // Changes announced by the store (NOTIFY, a file changed, a reconnect), and the
            // periodic resync: each a full load.
            tasks.addTask {
                for await _ in self.store.changes() {
                    await self.resync(apply)
                }
            }
            tasks.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.settings.resyncInterval)
                    if Task.isCancelled { break }
                    await self.resync(apply)
                }
            }
            tasks.addTask {
                var buffer = UsageBuffer(capacity: self.settings.bufferCapacity)
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.settings.flushInterval)
                    await self.flush(&buffer, collect: collect)
                }
                // One last write at stop.
                await self.flush(&buffer, collect: collect)
            }
            // Every task runs until cancelled but the first-load one.
            await tasks.next()
            if !Task.isCancelled { await tasks.next() }
            tasks.cancelAll()
        }
    }

    /// Loads and applies, retrying until it succeeds: a change announced while the load
    /// fails (the store just came back, a stale connection) must not wait for the periodic one.
    private func resync(_ apply: @Sendable (Registry) async -> Void) async {
        var attempt = 0
        while !Task.isCancelled {
            do {
                let registry = try await self.load()
                await apply(registry)
                return
            } catch {
                if attempt == 0 {
                    self.logger.warning(
                        "store: cannot load the registry; deciding on the last one until it loads",
                        metadata: ["store": "\(self.store.description)", "error": "\(error)"]
                    )
                }
                attempt += 1
                try? await Task.sleep(for: self.settings.retryInterval)
            }
        }
    }

    private func flush(_ buffer: inout UsageBuffer, collect: @Sendable () -> UsageBatch) async {
        let refused = buffer.add(collect())
        if refused > 0 {
            self.status.addDropped(refused)
            self.logger.error("store: usage buffer full; updates dropped", metadata: ["dropped": "\(refused)", "capacity": "\(buffer.capacity)"])
        }
        let batch = buffer.take()
        guard !batch.isEmpty else {
            self.status.setBuffered(0)
            return
        }
        do {
            try await self.store.record(batch)
            self.status.markUp(true)
        } catch {
            buffer.restore(batch)
            if error.code == .unavailable { self.status.markUp(false) }
            self.logger.warning("store: usage updates wait for the store", metadata: ["buffered": "\(buffer.pending.count)", "error": "\(error)"])
        }
        self.status.setBuffered(buffer.pending.count)
    }
}
