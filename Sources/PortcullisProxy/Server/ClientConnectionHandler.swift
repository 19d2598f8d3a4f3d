import NIOCore
import PortcullisAuth
import PortcullisPolicy

/// One client connection on its event loop. `ConnectionStateMachine` decides what happens;
/// this handler feeds it the channel's and the upstream's events, asks `RequestPath` for the
/// decisions on each request, and runs the actions that come back: writes, flushes, the
/// upstream lease, reads, the one timer, closes and the access-log line.
final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    typealias Action = ConnectionStateMachine.Action

    private let loop: LoopContext
    private var context: ChannelHandlerContext!
    private var machine: ConnectionStateMachine
    /// A constant: its methods are called on it in place, not on a copy.
    private let path: RequestPath
    /// The settings of the exchange in flight, taken at its head.
    private var settings: ProxySettings
    private var upstreamConnection: UpstreamConnection?
    /// The client's limiter while this exchange holds one of its concurrency slots.
    private var heldLimit: ClientLimiter?
    /// This exchange holds one of `upstream.max_concurrent`'s slots.
    private var holdsBackendSlot = false
    private var parsing = false
    var flushDeferred = false
    /// This connection's place in the loop's deadline heap (`LoopContext.deadlines`).
    var deadlineSlot = DeadlineHeapSlot()
    /// This connection's place in the loop's list of open connections.
    var connectionSlot = -1

    /// `peer`: the client's address, as the accepted socket gives it.
    init(loop: LoopContext, peer: SocketAddress?, isTLS: Bool, maxHeadBytes: Int) {
        self.loop = loop
        self.settings = loop.settings
        var parser = RequestParser(maxHeadBytes: maxHeadBytes, maxFields: loop.settings.maxHeaderCount)
        parser.readsAcceptEncoding = loop.settings.connection.compression != nil
        let address = peer?.ipAddress.flatMap { IPAddress(parsing: $0) }?.unmappedIPv4
        self.machine = ConnectionStateMachine(config: loop.settings.connection, parser: parser, peerText: address?.description ?? "")
        self.path = RequestPath(loop: loop, peer: address ?? .v4(0), isTLS: isTLS)
    }

    /// Runs one event through the state machine, then the actions it returned, in order. The
    /// actions go on the loop's action stack: an event handled while another one's actions run
    /// (on this connection or another of the loop) pushes its own above them and pops them
    /// when they have run.
    private func handle<Result>(_ event: (inout ConnectionStateMachine, inout [Action]) -> Result) -> Result {
        let start = self.loop.actions.count
        let result = event(&self.machine, &self.loop.actions)
        if self.loop.actions.count > start { self.runActions(from: start) }
        return result
    }

    private func runActions(from start: Int) {
        var index = start
        while index < self.loop.actions.count {
            // Moved out, a payload-free action left in its place: the bytes an action carries
            // are not retained for a copy and released twice.
            var action = Action.read
            swap(&action, &self.loop.actions[index])
            index += 1
            self.run(action)
        }
        while self.loop.actions.count > start { self.loop.actions.removeLast() }
    }

    private func run(_ action: Action) {
        switch action {
        case .write(let bytes):
            self.context.write(self.wrapOutboundOut(bytes), promise: nil)
        case .writeAndFlush(let bytes):
            self.context.writeAndFlush(self.wrapOutboundOut(bytes), promise: nil)
        case .flushAtTickEnd:
            self.loop.flushAtTickEnd(self)
        case .writeAndClose(let bytes):
            let context = NIOLoopBound(self.context!, eventLoop: self.context.eventLoop)
            self.context.writeAndFlush(self.wrapOutboundOut(bytes)).whenComplete { _ in
                context.value.close(promise: nil)
            }
        case .close(let flushFirst):
            if flushFirst { self.flushIfDeferred() }
            self.context.close(promise: nil)
        case .leaseUpstream(let fresh):
            self.lease(fresh: fresh)
        case .leaveBackendQueue:
            self.loop.leaveBackendQueue(self)
        case .upstreamWriteHead(let head, let isHEAD):
            self.upstreamConnection?.writeHead(head, isHEAD: isHEAD)
        case .upstreamWrite(let bytes):
            self.upstreamConnection?.write(bytes)
        case .upstreamFlush:
            self.upstreamConnection?.flush()
        case .upstreamFlushAtTickEnd:
            if let connection = self.upstreamConnection { self.loop.flushAtTickEnd(connection) }
        case .releaseUpstream(let reusable):
            guard let connection = self.upstreamConnection.take() else { return }
            connection.detach()
            if reusable && connection.isUsable {
                self.loop.pool.release(connection)
            } else {
                connection.close()
            }
        case .resumeUpstreamReads:
            self.upstreamConnection?.resumeReading()
        case .read:
            self.context.read()
        case .armTimer(let deadline):
            self.loop.setDeadline(deadline, for: self)
        case .endExchange:
            self.endExchange()
        case .parse:
            self.parse()
        }
    }

    private var now: NIODeadline { self.context.eventLoop.now }

    // MARK: - The client's channel

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.loop.register(self)
        let now = self.now
        self.handle { $0.accepted(now: now, into: &$1) }
    }

    /// The context holds this handler and this handler holds the context: letting go of it
    /// here is what frees both once the channel has closed. An upstream connection still
    /// leased (the machine releases it on every close; this is the backstop) holds this
    /// handler too: it is closed, which lets go of it.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        if let connection = self.upstreamConnection.take() { connection.close() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let (bytes, now) = (self.unwrapInboundIn(data), self.now)
        if self.handle({ $0.bytesRead(bytes, now: now, into: &$1) }) { self.parse() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        let now = self.now
        self.handle { $0.readComplete(now: now, into: &$1) }
    }

    func read(context: ChannelHandlerContext) {
        if self.machine.readRequested() { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let (isWritable, now) = (context.channel.isWritable, self.now)
        self.handle { $0.writabilityChanged(isWritable: isWritable, now: now, into: &$1) }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.handle { $0.connectionFailed(into: &$1) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.handle { $0.closed(into: &$1) }
        self.loop.unregister(self)
        self.loop.clearDeadline(for: self)
        context.fireChannelInactive()
    }

    /// Parses what has been read, handing each decision to `RequestPath`.
    private func parse() {
        guard !self.parsing, self.machine.startParsing(config: self.loop.settings.connection) else { return }
        self.parsing = true
        parsing: while true {
            let now = self.now
            let parsed = self.handle { $0.nextParsed(ids: &self.loop.requestIDs, logs: &self.loop.exchangeLogs, fields: self.loop.fieldsPool, now: now, into: &$1) }
            let nanos = now.uptimeNanoseconds
            switch parsed {
            case .none:
                break parsing
            case .head(let head):
                self.settings = self.loop.settings
                self.machine.log!.record.startMillis = self.loop.wallMillis(uptimeNanos: nanos)
                let id = self.machine.exchange.requestID
                let verdict = self.path.head(head, peerText: self.machine.peerText, settings: self.settings, requestID: id, log: &self.machine.log!.record, heldLimit: &self.heldLimit, nowNanos: nanos)
                self.handle { $0.headDecided(verdict, now: now, into: &$1) }
            case .inspectedBody(let request, let check, let body):
                let verdict = self.path.inspected(
                    request,
                    check: check,
                    body: body,
                    settings: self.settings,
                    log: self.machine.log,
                    heldLimit: &self.heldLimit,
                    nowNanos: nanos
                )
                self.handle { $0.inspectionDecided(verdict, now: now, into: &$1) }
            case .localRequest(let local):
                let answer = self.path.local(local, log: self.machine.log)
                self.handle { $0.localAnswered(answer, now: now, into: &$1) }
            }
        }
        let now = self.now
        self.handle { $0.finishParsing(now: now, into: &$1) }
        self.parsing = false
    }

    // MARK: - Graceful stop (called by the loop)

    /// An idle connection closes now, a busy one after its response.
    func quiesce() {
        self.handle { $0.quiesce(into: &$1) }
    }

    /// The drain timeout passed: the exchange in flight is cut (and logged).
    func closeNow() {
        self.handle { $0.drainExpired(into: &$1) }
    }

    // MARK: - The upstream lease

    private func lease(fresh: Bool) {
        // An event run between the action and now (the client gone, say) may have ended it.
        guard self.machine.upstream == .leasing else { return }
        let now = self.now
        if let cap = self.settings.maxConcurrent, !self.holdsBackendSlot {
            guard let gate = self.loop.backendGate else { return }
            if gate.tryAcquire(cap: cap) {
                self.holdsBackendSlot = true
            } else {
                // Queued first: a slot freed meanwhile is granted from inside `waitForBackend`.
                self.handle { $0.backendQueued(now: now, into: &$1) }
                if !self.loop.waitForBackend(self, queueSize: self.settings.backendQueueSize) {
                    self.handle { $0.backendQueueFull(now: now, into: &$1) }
                }
                return
            }
        }
        switch self.loop.pool.acquire(fresh: fresh) {
        case .ready(let connection):
            self.attach(connection, reused: true, now: now)
        case .connecting(let future):
            self.machine.upstreamConnecting(now: now)
            let handler = NIOLoopBound(self, eventLoop: self.context.eventLoop)
            future.whenComplete { result in
                handler.value.connectCompleted(result)
            }
        }
    }

    /// A slot of `upstream.max_concurrent` came free for this waiting exchange.
    func backendSlotGranted() {
        self.holdsBackendSlot = true
        self.handle { $0.backendSlotGranted(into: &$1) }
    }

    private func connectCompleted(_ result: Result<UpstreamConnection, Error>) {
        guard self.machine.isAwaitingConnection else {
            // Nobody waits for this connection any more (answered, timed out or gone).
            if case .success(let connection) = result { self.loop.pool.release(connection) }
            return
        }
        let now = self.now
        switch result {
        case .success(let connection): self.attach(connection, reused: false, now: now)
        case .failure: self.handle { $0.upstreamConnectFailed(now: now, into: &$1) }
        }
    }

    private func attach(_ connection: UpstreamConnection, reused: Bool, now: NIODeadline) {
        self.upstreamConnection = connection
        connection.lease(to: self)
        let isWritable = connection.isWritable
        self.handle { $0.upstreamAttached(reused: reused, isWritable: isWritable, now: now, into: &$1) }
    }

    // MARK: - Timer and exchange end

    /// The deadline set by the last `armTimer` came (`LoopContext.deadlines`).
    func timerFired() {
        guard self.context != nil else { return }
        let (now, isWritable) = (self.now, self.context.channel.isWritable)
        self.handle { $0.timerFired(now: now, isWritable: isWritable, ids: &self.loop.requestIDs, into: &$1) }
    }

    /// Gives back what the exchange held and hands its line to the loop (metrics, then the
    /// access-log writer).
    private func endExchange() {
        if let limiter = self.heldLimit.take() { limiter.release() }
        if self.holdsBackendSlot {
            self.holdsBackendSlot = false
            self.loop.backendGate?.release()
        }
        guard let log = self.machine.takeLog() else { return }
        let now = self.now.uptimeNanoseconds
        // A line made by the machine itself (a head that never came whole) starts now.
        if log.record.startMillis == 0 { log.record.startMillis = self.loop.wallMillis(uptimeNanos: log.record.startUptimeNanos) }
        if let start = log.record.upstreamStartUptimeNanos {
            log.record.upstreamNanos = Int64((log.record.upstreamEndUptimeNanos ?? now) &- start)
        }
        log.record.totalNanos = Int64(now &- log.record.startUptimeNanos)
        self.loop.record(self.loop.exchangeLogs.finish(log))
    }
}

// MARK: - The upstream's events

extension ClientConnectionHandler: DeadlineHeapElement {}

extension ClientConnectionHandler: UpstreamExchange {
    var downstreamIsWritable: Bool { self.context.channel.isWritable }

    func upstreamResponseHead(_ head: UpstreamResponseHead) {
        self.machine.responseHead(head)
    }

    func upstreamResponseBody(_ buffer: ByteBuffer) {
        self.handle { $0.responseBody(buffer, into: &$1) }
    }

    func upstreamResponseEnd() {
        let now = self.now
        self.handle { $0.responseEnd(now: now, into: &$1) }
    }

    func upstreamReadComplete() {
        self.handle { $0.upstreamReadComplete(into: &$1) }
    }

    func upstreamWritabilityChanged() {
        let isWritable = self.upstreamConnection?.isWritable ?? true
        self.handle { $0.upstreamWritabilityChanged(isWritable: isWritable, into: &$1) }
    }

    func upstreamClosed(_ connection: UpstreamConnection, error: Error?) {
        guard connection === self.upstreamConnection else { return }
        self.upstreamConnection = nil
        let (responseBytesCameBack, now) = (connection.hasReceivedResponseBytes, self.now)
        self.handle { $0.upstreamClosed(responseBytesCameBack: responseBytesCameBack, now: now, into: &$1) }
    }
}

extension ClientConnectionHandler: TickFlushing {
    func flushNow() {
        if self.machine.isOpen { self.context?.flush() }
    }
}

@available(*, unavailable)
extension ClientConnectionHandler: Sendable {}
