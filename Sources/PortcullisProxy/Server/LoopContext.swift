import NIOCore
import PortcullisAuth
import PortcullisPolicy

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-event-loop state shared by the connections of that loop: the upstream pool, the
/// request-id generator and the current settings. Touched only on its loop, so no locks.
final class LoopContext {
    let eventLoop: EventLoop
    private(set) var settings: ProxySettings
    let pool: UpstreamPool
    /// For the buffers the request path builds (bodies read to decide, local requests).
    let allocator = ByteBufferAllocator()
    var requestIDs = RequestIDGenerator()
    /// Access-log lines of exchanges in flight, reused.
    var exchangeLogs = ExchangeLogPool()
    /// The header fields' memory of the heads being read on this loop.
    let fieldsPool = RequestFieldsPool()
    /// Tokens verified on this loop under the current settings.
    var tokenCache: VerifiedTokenCache
    /// The tenant directory last fetched from the upstream (`tenant_directory: {upstream:}`),
    /// handed to every loop by the refresher.
    var fetchedTenantDirectory: TenantDirectory?
    /// The directory that decisions on this loop compare tenants through.
    var tenantDirectory: TenantDirectory? {
        guard let cipp = self.settings.cipp else { return nil }
        if let file = cipp.fileDirectory { return file }
        return cipp.fetchesDirectory ? self.fetchedTenantDirectory ?? CIPPSettings.notFetchedYet : nil
    }
    /// `upstream.max_concurrent`: set once at start, shared by every loop.
    var backendGate: BackendGate?
    /// This loop's side of the gate.
    var backendGateLoop: BackendGate.Loop?
    /// Exchanges of this loop waiting for a backend slot, oldest first.
    private var backendQueue = CircularBuffer<ClientConnectionHandler>()
    /// Requests counted on this loop, read by the admin listener's `/metrics`.
    let metrics = LoopMetrics()
    /// Where finished requests are written; nil when no access log is configured.
    let accessLog: AccessLogWriter?
    /// Lines waiting to be handed to the writer, in one batch every `logBatchInterval`.
    private var pendingLines: [ExchangeRecord] = []
    private var batchScheduled = false
    static let logBatchInterval = TimeAmount.milliseconds(50)
    static let logBatchLimit = 4096
    private(set) var isDraining = false
    /// The open client connections of this loop, for graceful stop; each knows its index
    /// (`connectionSlot`).
    private var connections: [ClientConnectionHandler] = []
    private var drained: EventLoopPromise<Void>?
    /// The connections' deadlines, behind one scheduled task for the earliest.
    private var deadlines = DeadlineHeap<ClientConnectionHandler>()
    private var deadlineTask: Scheduled<Void>?
    private var deadlineTaskAt: NIODeadline?
    /// Set while due deadlines are handed out: the task is armed once, after them.
    private var firingDeadlines = false
    /// The action stack of this loop's connections (`ClientConnectionHandler.handle`): one
    /// array for the loop instead of one per connection.
    var actions: [ConnectionStateMachine.Action] = []

    init(eventLoop: EventLoop, settings: ProxySettings, accessLog: AccessLogWriter? = nil, connector: any UpstreamConnector = SocketConnector()) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.accessLog = accessLog
        self.pool = UpstreamPool(eventLoop: eventLoop, target: settings.upstream, connector: connector)
        self.tokenCache = VerifiedTokenCache(capacity: settings.tokenCacheSize)
    }

    /// Wall-clock seconds, for token lifetimes (a vDSO call, no syscall).
    var nowSeconds: Int64 { Int64(time(nil)) }

    /// Queues `connection`'s exchange for a backend slot, or says why not: false when the
    /// queue is full. A slot freed meanwhile is taken at once.
    func waitForBackend(_ connection: ClientConnectionHandler, queueSize: Int) -> Bool {
        guard let gate = self.backendGate, let side = self.backendGateLoop else { return false }
        guard gate.waiting.load(ordering: .relaxed) < queueSize else { return false }
        self.backendQueue.append(connection)
        side.waiters.wrappingIncrement(ordering: .sequentiallyConsistent)
        gate.waiting.wrappingIncrement(ordering: .sequentiallyConsistent)
        self.admitBackendWaiters()
        return true
    }

    /// Hands free slots to this loop's waiters, oldest first.
    func admitBackendWaiters() {
        guard let gate = self.backendGate, let cap = self.settings.maxConcurrent else { return }
        while let first = self.backendQueue.first, gate.tryAcquire(cap: cap) {
            self.backendQueue.removeFirst()
            self.backendWaiterLeft()
            first.backendSlotGranted()
        }
    }

    /// Takes `connection` out of the queue (it timed out or went away); false when not there.
    @discardableResult
    func leaveBackendQueue(_ connection: ClientConnectionHandler) -> Bool {
        guard let index = self.backendQueue.firstIndex(where: { $0 === connection }) else { return false }
        self.backendQueue.remove(at: index)
        self.backendWaiterLeft()
        return true
    }

    private func backendWaiterLeft() {
        self.backendGateLoop?.waiters.wrappingDecrement(ordering: .sequentiallyConsistent)
        self.backendGate?.waiting.wrappingDecrement(ordering: .sequentiallyConsistent)
    }

    func register(_ connection: ClientConnectionHandler) {
        precondition(connection.connectionSlot < 0, "a connection registered twice")
        connection.connectionSlot = self.connections.count
        self.connections.append(connection)
    }

    func unregister(_ connection: ClientConnectionHandler) {
        let index = connection.connectionSlot
        guard index >= 0 else { return }
        precondition(self.connections[index] === connection, "a connection's slot points at another connection")
        connection.connectionSlot = -1
        let last = self.connections.removeLast()
        if index < self.connections.count {
            self.connections[index] = last
            last.connectionSlot = index
        }
        if self.connections.isEmpty, let drained = self.drained {
            self.drained = nil
            drained.succeed()
        }
    }

    /// Graceful stop of this loop's connections: idle ones close now, busy ones after their
    /// response. The future completes when the last one has closed.
    func startDraining() -> EventLoopFuture<Void> {
        self.isDraining = true
        guard !self.connections.isEmpty else { return self.eventLoop.makeSucceededVoidFuture() }
        let promise = self.eventLoop.makePromise(of: Void.self)
        self.drained = promise
        for connection in self.connections {
            connection.quiesce()
        }
        return promise.futureResult
    }

    // MARK: - Deadlines

    /// `connection`'s timer fires at `deadline` (`ClientConnectionHandler.timerFired`); the
    /// deadline it had is replaced.
    func setDeadline(_ deadline: NIODeadline, for connection: ClientConnectionHandler) {
        self.deadlines.set(deadline, for: connection)
        self.armDeadlineTask()
    }

    /// `connection` has no deadline any more (it closed). A task armed for it finds nothing
    /// due and arms for the next.
    func clearDeadline(for connection: ClientConnectionHandler) {
        self.deadlines.remove(connection)
    }

    private func armDeadlineTask() {
        guard !self.firingDeadlines, let earliest = self.deadlines.earliest else { return }
        if let armed = self.deadlineTaskAt, armed <= earliest { return }
        self.deadlineTask?.cancel()
        self.deadlineTaskAt = earliest
        let loop = NIOLoopBound(self, eventLoop: self.eventLoop)
        self.deadlineTask = self.eventLoop.scheduleTask(deadline: earliest) { loop.value.deadlinesDue() }
    }

    private func deadlinesDue() {
        self.deadlineTask = nil
        self.deadlineTaskAt = nil
        let now = self.eventLoop.now
        self.firingDeadlines = true
        while let connection = self.deadlines.popDue(at: now) {
            connection.timerFired()
        }
        self.firingDeadlines = false
        self.armDeadlineTask()
    }

    // MARK: - Flushes at the end of the loop tick

    /// Connections with writes to flush once every I/O event of this loop tick has been
    /// handled (an immediate task runs after them): on a busy loop the responses and upstream
    /// requests of one epoll batch leave together, so the processes they wake (clients,
    /// upstream) get them in one burst instead of being woken once per message.
    private var deferredFlushes: [any TickFlushing] = []
    private var flushing: [any TickFlushing] = []
    /// Whether this tick's end-of-tick task is queued.
    private var tickEndQueued = false
    /// Flushes asked for in this tick, and their running average over recent ticks (in
    /// eighths; each tick weighs a quarter). Below `batchingThreshold` the loop is quiet: a
    /// flush would leave alone anyway, and holding it to the tick's end only adds latency
    /// (at half of nginx's maximum rate, the median request took 0.22 ms instead of 0.15).
    private var tickFlushRequests = 0
    var averageFlushRequests = 0
    static let batchingThreshold = 4 * 8

    /// Flushes `connection` now on a quiet loop, else after this tick's I/O events; asking
    /// again before then does nothing.
    func flushAtTickEnd<Connection: TickFlushing>(_ connection: Connection) {
        guard !connection.flushDeferred else { return }
        self.tickFlushRequests += 1
        if !self.tickEndQueued {
            self.tickEndQueued = true
            let loop = NIOLoopBound(self, eventLoop: self.eventLoop)
            self.eventLoop.execute { loop.value.runDeferredFlushes() }
        }
        guard self.averageFlushRequests >= Self.batchingThreshold else {
            connection.flushNow()
            return
        }
        connection.flushDeferred = true
        self.deferredFlushes.append(connection)
    }

    private func runDeferredFlushes() {
        self.tickEndQueued = false
        self.averageFlushRequests += (self.tickFlushRequests * 8 - self.averageFlushRequests) / 4
        self.tickFlushRequests = 0
        swap(&self.deferredFlushes, &self.flushing)
        for connection in self.flushing { connection.flushIfDeferred() }
        self.flushing.removeAll(keepingCapacity: true)
    }

    private var wallSampleUptime: UInt64 = 0
    private var wallSampleMillis: Int64 = 0

    /// Wall-clock milliseconds at a monotonic reading, from an offset sampled at most once a
    /// second (no wall-clock read per request; a clock step shows within a second).
    func wallMillis(uptimeNanos: UInt64) -> Int64 {
        if uptimeNanos &- self.wallSampleUptime > 1_000_000_000 || uptimeNanos < self.wallSampleUptime {
            self.wallSampleUptime = uptimeNanos
            self.wallSampleMillis = AccessLogWriter.nowMillis()
        }
        return self.wallSampleMillis + Int64((uptimeNanos - self.wallSampleUptime) / 1_000_000)
    }

    /// A request has ended: counted now, logged in this loop's next batch.
    func record(_ record: consuming ExchangeRecord) {
        self.metrics.record(record)
        guard self.accessLog != nil else { return }
        self.pendingLines.append(record)
        if self.pendingLines.count >= Self.logBatchLimit {
            self.handOverLines()
        } else if !self.batchScheduled {
            self.batchScheduled = true
            let context = NIOLoopBound(self, eventLoop: self.eventLoop)
            self.eventLoop.scheduleTask(in: Self.logBatchInterval) {
                context.value.batchScheduled = false
                context.value.handOverLines()
            }
        }
    }

    /// Gives the waiting lines to the writer (also at graceful stop).
    func handOverLines() {
        guard let log = self.accessLog, !self.pendingLines.isEmpty else { return }
        let count = self.pendingLines.count
        log.submit(self.pendingLines)
        // The next batch is about as long as this one: its memory is taken once, not grown
        // into by doubling (each doubling a copy of every line so far).
        self.pendingLines = []
        self.pendingLines.reserveCapacity(min(Self.logBatchLimit, max(64, count + count / 4)))
    }

    /// Closes every client connection now (after the drain timeout).
    func closeAllConnections() {
        for connection in self.connections {
            connection.closeNow()
        }
    }

    func metricsSnapshot() -> LoopMetrics.Snapshot {
        self.metrics.snapshot(
            tokenCacheHits: self.tokenCache.hits,
            tokenCacheMisses: self.tokenCache.misses,
            upstreamConnections: self.pool.openConnections
        )
    }

    /// A new configuration: requests in flight keep the settings they started with.
    func update(_ settings: ProxySettings) {
        self.settings = settings
        // A reload may have changed issuers, keys or clients: verify again under the new ones.
        self.metrics.retireTokenCache(hits: self.tokenCache.hits, misses: self.tokenCache.misses)
        self.tokenCache = VerifiedTokenCache(capacity: settings.tokenCacheSize)
        self.pool.update(target: settings.upstream)
    }
}

@available(*, unavailable)
extension LoopContext: Sendable {}

/// A connection whose flush can wait for the end of the loop tick (`LoopContext.flushAtTickEnd`).
protocol TickFlushing: AnyObject {
    /// Set while the connection's flush waits for the end of the tick.
    var flushDeferred: Bool { get set }
    /// Flushes the channel's written bytes now.
    func flushNow()
}

extension TickFlushing {
    /// A flush still waiting for the tick's end runs now: at the tick's end, and before a
    /// close (which drops what was written but not flushed).
    func flushIfDeferred() {
        guard self.flushDeferred else { return }
        self.flushDeferred = false
        self.flushNow()
    }
}
