import NIOCore
import NIOHTTP1
import PortcullisPolicy

/// A client connection as a pure state machine: the handler (`ClientConnectionHandler`) feeds it
/// events (bytes read, a decision made, upstream head/body/end/closed, writability, a timer) and
/// runs the actions it returns (write, flush, lease or release an upstream, read, arm the timer,
/// close, end the exchange). It owns the request parser, the bytes waiting to be parsed, the
/// exchange in flight (`ClientExchange`), its deadlines (`ConnectionTimers`) and its access-log
/// line; it never touches a channel, a clock or the loop, so it is tested with plain values.
///
/// Decisions about a request (the stages of `RequestStages`) are the handler's: `nextParsed`
/// hands out each head, inspected body and built-in issuer request, and the verdict comes back
/// through `headDecided`, `inspectionDecided` or `localAnswered`.
struct ConnectionStateMachine {
    /// What the connection takes from the gateway's settings at each request head: one
    /// instance per configuration (`ProxySettings.connection`), which every connection points at.
    final class Config: Sendable {
        let clientHeaderTimeout: TimeAmount
        let idleTimeout: TimeAmount
        let exchangeTimeout: TimeAmount
        let clientBodyTimeout: TimeAmount
        let bodyCheckInterval: TimeAmount
        let sendTimeout: TimeAmount
        let backendQueueTimeout: TimeAmount
        let maxInspectBody: Int
        let compression: CompressionSettings?

        init(
            clientHeaderTimeout: TimeAmount,
            idleTimeout: TimeAmount,
            exchangeTimeout: TimeAmount,
            clientBodyTimeout: TimeAmount,
            bodyCheckInterval: TimeAmount,
            sendTimeout: TimeAmount,
            backendQueueTimeout: TimeAmount,
            maxInspectBody: Int,
            compression: CompressionSettings?
        ) {
            self.clientHeaderTimeout = clientHeaderTimeout
            self.idleTimeout = idleTimeout
            self.exchangeTimeout = exchangeTimeout
            self.clientBodyTimeout = clientBodyTimeout
            self.bodyCheckInterval = bodyCheckInterval
            self.sendTimeout = sendTimeout
            self.backendQueueTimeout = backendQueueTimeout
            self.maxInspectBody = maxInspectBody
            self.compression = compression
        }
    }

    enum Action {
        /// Bytes for the client, flushed by a later `flushAtTickEnd` or `writeAndClose`.
        case write(ByteBuffer)
        /// Bytes for the client, sent now (`100 Continue`).
        case writeAndFlush(ByteBuffer)
        /// Flush the client's writes: at once on a quiet loop, else when this event-loop tick ends.
        case flushAtTickEnd
        /// The connection's last bytes: write, flush, close once they are written.
        case writeAndClose(ByteBuffer)
        /// Close now; `flushFirst`: writes waiting for the tick's flush go out first.
        case close(flushFirst: Bool)
        /// Lease an upstream connection (`fresh`: a new one, not from the pool), then report
        /// `upstreamAttached`, `upstreamConnecting`, `backendQueued` or `backendQueueFull`.
        case leaseUpstream(fresh: Bool)
        case leaveBackendQueue
        case upstreamWriteHead(ByteBuffer, isHEAD: Bool)
        case upstreamWrite(ByteBuffer)
        case upstreamFlush
        case upstreamFlushAtTickEnd
        /// End the lease: back to the pool when `reusable` (and the connection still is).
        case releaseUpstream(reusable: Bool)
        case resumeUpstreamReads
        /// Reads were held and may go on.
        case read
        case armTimer(NIODeadline)
        /// The exchange is over, however it ended: give back what it held (limits, backend
        /// slot) and hand its log line (`takeLog`) to the loop.
        case endExchange
        /// Bytes of a pipelined request wait: parse them (`nextParsed`).
        case parse
    }

    /// What `nextParsed` found that needs a decision from the request path.
    enum Parsed {
        /// A request head: run the stages, then `headDecided`.
        case head(ParsedRequestHead)
        /// The whole body of a request whose decision needs it: `inspectionDecided`.
        case inspectedBody(RequestPolicy.Request, RequestDecision.BodyCheck, ByteBuffer)
        /// The form body of a token or revocation request arrived whole: `localAnswered`.
        case localRequest(LocalRequest)
        /// Nothing more to decide until more bytes come or the exchange in flight ends.
        case none
    }

    /// The request path's verdict on a head.
    enum HeadVerdict {
        case answer(RequestStages.Answer)
        case forward(Forward)
        /// A built-in issuer request: read its form body.
        case local(LocalRequest, expectContinue: Bool)
    }

    struct Forward {
        var upstreamHead: ByteBuffer
        var expectContinue: Bool
        /// No upgrade is made, and what a client sends after asking for one may not be HTTP: the
        /// connection ends with this exchange.
        var upgrade: Bool
        var rateLimitLines: String?
        /// The decision needs the body: it is read (into `buffer`, up to `max_inspect_body`) first.
        var inspection: (request: RequestPolicy.Request, check: RequestDecision.BodyCheck, buffer: ByteBuffer)?
    }

    /// The verdict on an inspected body: forward it as it came, or answer.
    enum InspectionVerdict {
        case forward(ByteBuffer, rateLimitLines: String?)
        case answer(RequestStages.Answer)
    }

    enum UpstreamLease: Equatable {
        case none
        /// `leaseUpstream` was returned; its outcome not reported yet.
        case leasing
        /// Waiting in the loop's queue for one of `upstream.max_concurrent`'s slots.
        case queued
        case connecting
        case attached
    }

    private(set) var phase: ConnectionPhase = .idle
    private(set) var exchange = ClientExchange()
    private(set) var upstream: UpstreamLease = .none
    private(set) var timers = ConnectionTimers()
    /// The access-log line of the exchange in flight; the request path fills in what it
    /// learns (client, rule, tenant).
    var log: ExchangeLog?

    private var config: Config
    /// One for every connection: a stored copy would be 32 bytes in each connection's handler.
    private static let allocator = ByteBufferAllocator()
    private var allocator: ByteBufferAllocator { Self.allocator }
    /// The client's address as text, for the log lines (those of requests that never came
    /// whole too).
    let peerText: String
    private var parser: RequestParser
    /// Bytes read but not parsed: a pipelined request waiting for the exchange in flight.
    private var inbound: ByteBuffer?
    /// Request body bytes, already framed, that arrived while the upstream was being set up.
    private var pendingParts: [ByteBuffer] = []
    private var upstreamNeedsFlush = false
    private var upstreamWritable = true
    /// Between a read and its read-complete: upstream writes are flushed at read-complete.
    private var inReadBurst = false
    private var burstBeforeParsing = false
    private var readPending = false
    private var exchangesStarted = 0

    init(config: Config, parser: RequestParser, peerText: String) {
        self.config = config
        self.parser = parser
        self.peerText = peerText
    }

    var isOpen: Bool { self.phase != .closed }
    /// The last response is written, or the connection is cut: nothing more is read.
    var isClosing: Bool { self.phase == .closing || self.phase == .closed }
    /// A connect is in flight for this exchange: its connection is wanted when it comes.
    var isAwaitingConnection: Bool { self.upstream == .connecting && self.isOpen && self.exchange.response == .waiting }

    /// The log line of an exchange that ended (`Action.endExchange`).
    mutating func takeLog() -> ExchangeLog? { self.log.take() }

    // MARK: - Reading requests

    /// The first request head must arrive within `client_header_timeout` of the accept.
    mutating func accepted(now: NIODeadline, into actions: inout [Action]) {
        self.timers.head = now + self.config.clientHeaderTimeout
        self.armTimer(&actions)
    }

    /// Bytes from the client; true when there is something to parse.
    mutating func bytesRead(_ bytes: ByteBuffer, now: NIODeadline, into actions: inout [Action]) -> Bool {
        self.inReadBurst = true
        guard !self.isClosing else { return false }
        self.timers.bodyProgress.madeProgress()
        self.headBytesArrived(now: now)
        if self.inbound != nil {
            var bytes = bytes
            self.inbound!.writeBuffer(&bytes)
        } else {
            self.inbound = bytes
        }
        self.armTimer(&actions)
        return true
    }

    /// Starts a parsing pass over the waiting bytes (`nextParsed` until `.none`, then
    /// `finishParsing`); false when there are none. `config`: the settings for a head parsed now.
    mutating func startParsing(config: Config) -> Bool {
        guard self.inbound != nil else { return false }
        if self.exchange.request == .idle && self.parser.isAtMessageBoundary {
            self.config = config
            self.parser.readsAcceptEncoding = config.compression != nil
        }
        self.burstBeforeParsing = self.inReadBurst
        // Writes upstream wait for the end of the pass, so a parse error later in these bytes
        // still stops the request (unflushed writes die with the upstream connection).
        self.inReadBurst = true
        return true
    }

    /// Parses up to the next thing that needs a decision; a pipelined request stays unparsed
    /// until the exchange before it has ended.
    mutating func nextParsed(
        ids: inout RequestIDGenerator,
        logs: inout ExchangeLogPool,
        fields: RequestFieldsPool,
        now: NIODeadline,
        into actions: inout [Action]
    ) -> Parsed {
        while !self.isClosing && self.exchange.request != .complete && self.inbound != nil {
            let event: RequestParser.Event?
            do throws(RequestParseError) {
                event = try self.parser.next(&self.inbound!, fields: fields)
            } catch {
                self.parseFailed(error, ids: &ids, now: now, into: &actions)
                return .none
            }
            switch event {
            case .none:
                return .none
            case .head(let head):
                self.startExchange(head, requestID: ids.make(), logs: &logs, now: now)
                return .head(head)
            case .body(let buffer):
                if let parsed = self.requestBody(buffer, now: now, into: &actions) { return parsed }
            case .end:
                if let parsed = self.requestEnd(now: now, into: &actions) { return parsed }
            }
        }
        return .none
    }

    mutating func finishParsing(now: NIODeadline, into actions: inout [Action]) {
        if self.isClosing || self.inbound?.readableBytes == 0 { self.inbound = nil }
        if !self.burstBeforeParsing {
            self.inReadBurst = false
            self.flushUpstreamIfNeeded(&actions)
            if !self.parser.isAtMessageBoundary { self.headBytesArrived(now: now) }
            self.startBodyCheckIfNeeded(now: now)
        }
        self.resumeReadingIfPossible(&actions)
        self.armTimer(&actions)
    }

    mutating func readComplete(now: NIODeadline, into actions: inout [Action]) {
        self.inReadBurst = false
        self.flushUpstreamIfNeeded(&actions)
        self.startBodyCheckIfNeeded(now: now)
        self.armTimer(&actions)
    }

    /// The channel asks to read: true to read now, false while reads are held (a pipelined
    /// request waits, or the request body has nowhere to go yet).
    mutating func readRequested() -> Bool {
        if self.shouldHoldReads {
            self.readPending = true
            return false
        }
        return true
    }

    /// The first bytes of a request head start its `client_header_timeout`, so an idle
    /// keep-alive connection (closed quietly after `idle_timeout`) is told apart from a slow
    /// request head (408).
    private mutating func headBytesArrived(now: NIODeadline) {
        guard self.phase == .idle else { return }
        self.phase = .readingHead
        // The first head's deadline runs from the accept; later ones from their first byte.
        if self.exchangesStarted > 0 { self.timers.head = now + self.config.clientHeaderTimeout }
    }

    private mutating func startExchange(_ head: ParsedRequestHead, requestID: String, logs: inout ExchangeLogPool, now: NIODeadline) {
        precondition(!self.isClosing && self.exchange.request == .idle, "request head in \(self.phase), request \(self.exchange.request)")
        self.exchangesStarted += 1
        self.exchange.start(head, requestID: requestID)
        self.phase = .exchange
        self.timers.head = nil
        self.timers.bodyProgress.stop()
        self.log = logs.make(ExchangeRecord(
            startMillis: 0,
            requestID: requestID,
            sourceIP: self.peerText,
            method: head.method.rawValue,
            path: "",
            status: 0,
            decision: .allow,
            reason: .allowed,
            bytesIn: 0,
            bytesOut: 0,
            userAgent: head.userAgent,
            traceID: head.traceID ?? requestID,
            startUptimeNanos: now.uptimeNanoseconds
        ))
    }

    mutating func headDecided(_ verdict: HeadVerdict, now: NIODeadline, into actions: inout [Action]) {
        switch verdict {
        case .answer(let answer):
            self.respondLocally(answer.response, close: answer.close, reason: answer.reason, now: now, into: &actions)
        case .local(let local, let expectContinue):
            self.exchange.localRequest = local
            self.timers.exchange = now + self.config.exchangeTimeout
            if expectContinue { actions.append(.writeAndFlush(Self.continueResponse)) }
        case .forward(let forward):
            self.exchange.upstreamHead = forward.upstreamHead
            self.exchange.rateLimitLines = forward.rateLimitLines
            if forward.upgrade { self.exchange.closeAfterResponse = true }
            if let inspection = forward.inspection {
                self.exchange.inspection = PendingInspection(request: inspection.request, check: inspection.check)
                self.exchange.inspectedBody = inspection.buffer
            }
            self.timers.exchange = now + self.config.exchangeTimeout
            if forward.expectContinue { actions.append(.writeAndFlush(Self.continueResponse)) }
            // A request being inspected goes upstream once its body has been read and allowed.
            if forward.inspection == nil { self.lease(fresh: false, into: &actions) }
        }
        self.armTimer(&actions)
    }

    private static let continueResponse = ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n")

    private mutating func requestBody(_ buffer: ByteBuffer, now: NIODeadline, into actions: inout [Action]) -> Parsed? {
        if self.exchange.request == .idle || buffer.readableBytes == 0 { return nil }
        self.log?.record.bytesIn += buffer.readableBytes
        if self.exchange.inspectedBody != nil {
            guard self.exchange.inspectedBody!.readableBytes + buffer.readableBytes <= self.config.maxInspectBody else {
                self.respondLocally(.bodyTooLarge, close: true, reason: .bodyTooLarge, now: now, into: &actions)
                return nil
            }
            var buffer = buffer
            self.exchange.inspectedBody!.writeBuffer(&buffer)
            return nil
        }
        if let local = self.exchange.localRequest {
            guard local.body.readableBytes + buffer.readableBytes <= LocalRoute.maxBody else {
                self.respondLocally(.bodyTooLarge, close: true, reason: .bodyTooLarge, now: now, into: &actions)
                return nil
            }
            var buffer = buffer
            local.body.writeBuffer(&buffer)
            return nil
        }
        if self.exchange.requestChunked {
            self.sendRequestBytes(ChunkedFraming.sizeLine(buffer.readableBytes, allocator: self.allocator), into: &actions)
            self.sendRequestBytes(buffer, into: &actions)
            self.sendRequestBytes(ChunkedFraming.crlf, into: &actions)
        } else {
            self.sendRequestBytes(buffer, into: &actions)
        }
        return nil
    }

    /// Trailers of a chunked request body are not forwarded.
    private mutating func requestEnd(now: NIODeadline, into actions: inout [Action]) -> Parsed? {
        if self.isClosing && self.exchange.request == .idle { return nil }
        self.exchange.request = .complete
        self.timers.bodyProgress.stop()
        if let inspection = self.exchange.inspection, let body = self.exchange.inspectedBody.take() {
            self.exchange.inspection = nil
            return .inspectedBody(inspection.request, inspection.check, body)
        }
        if let local = self.exchange.localRequest.take() {
            return .localRequest(local)
        }
        if self.exchange.requestChunked { self.sendRequestBytes(ChunkedFraming.lastChunk, into: &actions) }
        if self.exchange.response == .complete { self.finishExchange(now: now, into: &actions) }
        return nil
    }

    /// The bytes go upstream as they came, framed as the upstream head says.
    mutating func inspectionDecided(_ verdict: InspectionVerdict, now: NIODeadline, into actions: inout [Action]) {
        switch verdict {
        case .forward(let body, let rateLimitLines):
            self.exchange.rateLimitLines = rateLimitLines
            if self.exchange.requestChunked {
                if body.readableBytes > 0 {
                    self.pendingParts.append(ChunkedFraming.sizeLine(body.readableBytes, allocator: self.allocator))
                    self.pendingParts.append(body)
                    self.pendingParts.append(ChunkedFraming.crlf)
                }
                self.pendingParts.append(ChunkedFraming.lastChunk)
            } else if body.readableBytes > 0 {
                self.pendingParts.append(body)
            }
            self.lease(fresh: false, into: &actions)
        case .answer(let answer):
            self.respondLocally(answer.response, close: answer.close, reason: answer.reason, now: now, into: &actions)
        }
        self.armTimer(&actions)
    }

    mutating func localAnswered(_ answer: RequestStages.Answer, now: NIODeadline, into actions: inout [Action]) {
        self.respondLocally(answer.response, close: answer.close, reason: answer.reason, now: now, into: &actions)
        self.armTimer(&actions)
    }

    /// A request that cannot be read: 400 (431 for an oversized head) and close. Nothing of it
    /// reaches the upstream: writes of this read pass are not flushed yet and die with the
    /// upstream connection.
    private mutating func parseFailed(_ error: RequestParseError, ids: inout RequestIDGenerator, now: NIODeadline, into actions: inout [Action]) {
        self.inbound = nil
        if self.exchange.request == .idle {
            self.exchange.failedBeforeHead(requestID: ids.make())
            self.log = ExchangeLog(self.failureLog(requestID: self.exchange.requestID, now: now))
        }
        guard self.exchange.response == .waiting else { return self.abort(.badRequest, into: &actions) }
        self.releaseUpstream(reusable: false, into: &actions)
        self.pendingParts.removeAll()
        switch error.kind {
        case .headTooLarge: self.respondLocally(.headerTooLarge, close: true, reason: .headerTooLarge, now: now, into: &actions)
        case .tooManyFields: self.respondLocally(.tooManyHeaderFields, close: true, reason: .tooManyHeaders, now: now, into: &actions)
        case .malformed: self.respondLocally(.badRequest(error.description), close: true, reason: .badRequest, now: now, into: &actions)
        }
    }

    /// A line for a request that never came whole.
    private func failureLog(requestID: String, now: NIODeadline) -> ExchangeRecord {
        ExchangeRecord(
            startMillis: 0,
            requestID: requestID,
            sourceIP: self.peerText,
            method: "",
            path: "",
            status: 0,
            decision: .deny,
            reason: .badRequest,
            bytesIn: 0,
            bytesOut: 0,
            startUptimeNanos: now.uptimeNanoseconds
        )
    }

    // MARK: - The upstream lease

    private mutating func lease(fresh: Bool, into actions: inout [Action]) {
        guard self.exchange.upstreamHead != nil else { return }
        self.upstream = .leasing
        actions.append(.leaseUpstream(fresh: fresh))
    }

    /// The lease gave a connection: `reused` when it came from the pool.
    mutating func upstreamAttached(reused: Bool, isWritable: Bool, now: NIODeadline, into actions: inout [Action]) {
        precondition(self.upstream == .leasing || self.upstream == .connecting, "upstream attached while \(self.upstream)")
        guard let head = self.exchange.upstreamHead else { return }
        if reused { self.exchange.leasedReusedConnection = true }
        self.markUpstreamStart(now)
        self.upstream = .attached
        self.upstreamWritable = isWritable
        actions.append(.upstreamWriteHead(head, isHEAD: self.exchange.isHEAD))
        for part in self.pendingParts { actions.append(.upstreamWrite(part)) }
        self.pendingParts.removeAll(keepingCapacity: true)
        if self.inReadBurst {
            self.upstreamNeedsFlush = true
        } else {
            self.upstreamNeedsFlush = false
            actions.append(.upstreamFlush)
        }
        self.resumeReadingIfPossible(&actions)
    }

    mutating func upstreamConnecting(now: NIODeadline) {
        precondition(self.upstream == .leasing, "upstream connecting while \(self.upstream)")
        self.markUpstreamStart(now)
        self.upstream = .connecting
        self.exchange.leasedReusedConnection = false
    }

    private mutating func markUpstreamStart(_ now: NIODeadline) {
        if self.log != nil && self.log!.record.upstreamStartUptimeNanos == nil { self.log!.record.upstreamStartUptimeNanos = now.uptimeNanoseconds }
    }

    mutating func upstreamConnectFailed(now: NIODeadline, into actions: inout [Action]) {
        self.upstream = .none
        self.pendingParts.removeAll()
        self.respondLocally(.badGateway, close: self.exchange.request != .complete, reason: .upstreamUnavailable, now: now, into: &actions)
        self.armTimer(&actions)
    }

    /// The backend is at `upstream.max_concurrent` and this exchange waits in the loop's queue.
    mutating func backendQueued(now: NIODeadline, into actions: inout [Action]) {
        precondition(self.upstream == .leasing, "queued for the backend while \(self.upstream)")
        self.upstream = .queued
        self.timers.backendQueue = now + self.config.backendQueueTimeout
        self.armTimer(&actions)
    }

    mutating func backendQueueFull(now: NIODeadline, into actions: inout [Action]) {
        self.upstream = .none
        self.respondLocally(
            .backendBusy("the backend is at its limit of exchanges and the queue is full"),
            close: false,
            reason: .backendBusy,
            now: now,
            into: &actions
        )
        self.armTimer(&actions)
    }

    mutating func backendSlotGranted(into actions: inout [Action]) {
        self.timers.backendQueue = nil
        guard self.isOpen, self.exchange.response == .waiting, self.upstream == .queued else { return }
        self.upstream = .none
        self.lease(fresh: false, into: &actions)
    }

    /// Request bytes, framed, to the upstream connection or to wait for it.
    private mutating func sendRequestBytes(_ bytes: ByteBuffer, into actions: inout [Action]) {
        guard self.exchange.response != .complete else { return }  // answered locally; closes after
        switch self.upstream {
        case .attached:
            actions.append(.upstreamWrite(bytes))
            self.upstreamNeedsFlush = true
        case .leasing, .queued, .connecting:
            self.pendingParts.append(bytes)
        case .none:
            break
        }
    }

    private mutating func flushUpstreamIfNeeded(_ actions: inout [Action]) {
        if self.upstreamNeedsFlush && self.upstream == .attached {
            self.upstreamNeedsFlush = false
            actions.append(.upstreamFlushAtTickEnd)
        }
    }

    /// Ends the lease: back to the pool only after a complete request and response.
    private mutating func releaseUpstream(reusable: Bool, into actions: inout [Action]) {
        if self.upstream == .attached { actions.append(.releaseUpstream(reusable: reusable)) }
        self.upstream = .none
    }

    // MARK: - The response

    mutating func responseHead(_ head: UpstreamResponseHead) {
        guard self.exchange.response == .waiting else { return }
        self.log?.record.status = head.status
        var encoding: ContentCoding?
        if let coding = self.exchange.compressionCoding(for: head, self.config.compression),
            let compressor = ResponseCompressor(coding, allocator: self.allocator)
        {
            encoding = coding
            self.exchange.compressor = compressor
        }
        self.exchange.responseStarted(head, compressed: encoding != nil)
        // Room for the gateway's headers and, when it is small, the body that usually follows.
        let body = min(head.contentLength ?? 0, Self.coalescedBodyLimit)
        var bytes = self.allocator.buffer(capacity: head.bytes.readableBytes + 128 + body)
        HeaderRewriter.writeDownstreamHead(
            head,
            http10: self.exchange.requestVersion.minor == 0,
            requestID: self.exchange.requestID,
            chunked: self.exchange.responseFraming == .chunked,
            close: self.exchange.closeAfterResponse,
            encoding: encoding,
            extraLines: self.exchange.rateLimitLines,
            into: &bytes
        )
        // Held until the first body bytes, so that a small response leaves in one buffer.
        self.exchange.heldHead = bytes
        self.log?.record.bytesOut += bytes.readableBytes
    }

    /// Bodies up to this size ride in the head's buffer.
    private static let coalescedBodyLimit = 4096

    mutating func responseBody(_ buffer: ByteBuffer, into actions: inout [Action]) {
        guard self.exchange.response == .streaming else { return }
        if let compressor = self.exchange.compressor {
            // Written compressed at the end of the read burst (`upstreamReadComplete`).
            return compressor.write(buffer)
        }
        self.log?.record.bytesOut += buffer.readableBytes
        if var head = self.exchange.heldHead, self.exchange.responseFraming == .asReceived, buffer.readableBytes <= Self.coalescedBodyLimit {
            self.exchange.heldHead = nil
            var body = buffer
            head.writeBuffer(&body)
            actions.append(.write(head))
            return
        }
        self.writeHeldHead(&actions)
        self.writeBody(buffer, into: &actions)
    }

    mutating func responseEnd(now: NIODeadline, into actions: inout [Action]) {
        guard self.exchange.response == .streaming else { return }
        self.log?.record.upstreamEndUptimeNanos = now.uptimeNanoseconds
        self.writeHeldHead(&actions)
        if let compressor = self.exchange.compressor.take(), let last = compressor.finish() {
            self.log?.record.bytesOut += last.readableBytes
            self.writeBody(last, into: &actions)
        }
        self.exchange.response = .complete
        self.releaseUpstream(reusable: self.exchange.request == .complete, into: &actions)
        if self.exchange.request == .complete { self.finishExchange(now: now, into: &actions) }
        self.writeEnd(self.exchange.responseFraming == .chunked ? ChunkedFraming.lastChunk : nil, now: now, into: &actions)
        if self.inbound != nil { actions.append(.parse) }
        self.armTimer(&actions)
    }

    mutating func upstreamReadComplete(into actions: inout [Action]) {
        self.writeHeldHead(&actions)
        // What this burst brought, decodable by the client now: streaming still streams.
        if let compressor = self.exchange.compressor, self.exchange.response == .streaming, let bytes = compressor.flush() {
            self.log?.record.bytesOut += bytes.readableBytes
            self.writeBody(bytes, into: &actions)
        }
        actions.append(.flushAtTickEnd)
    }

    mutating func upstreamWritabilityChanged(isWritable: Bool, into actions: inout [Action]) {
        self.upstreamWritable = isWritable
        self.resumeReadingIfPossible(&actions)
    }

    /// The leased connection closed. `responseBytesCameBack`: the upstream sent a byte after
    /// the request head, so the backend has read the request and it is never sent again.
    mutating func upstreamClosed(responseBytesCameBack: Bool, now: NIODeadline, into actions: inout [Action]) {
        guard self.upstream == .attached else { return }
        self.upstream = .none
        switch self.exchange.upstreamLoss(responseBytesCameBack: responseBytesCameBack) {
        case .retry:
            self.exchange.retried = true
            self.lease(fresh: true, into: &actions)
        case .answer(let close):
            if let head = self.exchange.heldHead.take() {
                self.exchange.compressor = nil
                self.log?.record.bytesOut -= head.readableBytes
                self.exchange.response = .waiting
            }
            self.respondLocally(.badGateway, close: close, reason: .upstreamError, now: now, into: &actions)
        case .cut:
            self.abort(.upstreamAborted, into: &actions)
        case .nothing:
            break
        }
        self.armTimer(&actions)
    }

    private mutating func writeHeldHead(_ actions: inout [Action]) {
        if let head = self.exchange.heldHead.take() { actions.append(.write(head)) }
    }

    /// Body bytes in the response's framing.
    private func writeBody(_ buffer: ByteBuffer, into actions: inout [Action]) {
        if self.exchange.responseFraming == .chunked {
            actions.append(.write(ChunkedFraming.sizeLine(buffer.readableBytes, allocator: self.allocator)))
            actions.append(.write(buffer))
            actions.append(.write(ChunkedFraming.crlf))
        } else {
            actions.append(.write(buffer))
        }
    }

    // MARK: - Ending exchanges

    /// The response's last bytes (if its framing has any), then a flush; the connection closes
    /// after them when it ends with this response.
    private mutating func writeEnd(_ last: ByteBuffer?, now: NIODeadline, into actions: inout [Action]) {
        if self.exchange.closeAfterResponse {
            self.startClosing()
            self.writeAndClose(last ?? self.allocator.buffer(capacity: 0), now: now, into: &actions)
        } else {
            if let last { actions.append(.write(last)) }
            // The lease may already be over, so its read-complete will not flush for us.
            actions.append(.flushAtTickEnd)
        }
    }

    private mutating func writeAndClose(_ bytes: ByteBuffer, now: NIODeadline, into actions: inout [Action]) {
        self.timers.close = now + self.config.sendTimeout
        actions.append(.writeAndClose(bytes))
    }

    /// Both sides complete: wait for the next request on this connection.
    private mutating func finishExchange(now: NIODeadline, into actions: inout [Action]) {
        self.endExchange(&actions)
        self.exchange.request = .idle
        self.exchange.response = .complete
        self.exchange.upstreamHead = nil
        // An idle connection holds no heap memory of the exchange before.
        self.exchange.requestID = ""
        self.exchange.rateLimitLines = nil
        self.timers.exchange = nil
        if !self.exchange.closeAfterResponse {
            if !self.isClosing { self.phase = .idle }
            self.timers.head = now + self.config.idleTimeout
        }
    }

    private mutating func endExchange(_ actions: inout [Action]) {
        if self.upstream == .queued {
            self.upstream = .none
            actions.append(.leaveBackendQueue)
        }
        self.timers.backendQueue = nil
        actions.append(.endExchange)
    }

    /// An answer from the gateway itself; the upstream, if any, is let go.
    private mutating func respondLocally(_ error: ErrorResponse, close: Bool, reason: AccessLogReason, now: NIODeadline, into actions: inout [Action]) {
        guard self.exchange.response == .waiting else { return }
        if self.upstream == .queued { actions.append(.leaveBackendQueue) }
        self.timers.backendQueue = nil
        if self.log != nil {
            self.log!.record.status = Int(error.status.code)
            self.log!.record.reason = reason
            // The gateway refused (not the upstream failing an allowed request, nor the
            // built-in issuer answering).
            if !reason.isUpstreamFailure && error.status.code >= 400 { self.log!.record.decision = .deny }
        }
        self.releaseUpstream(reusable: false, into: &actions)
        self.pendingParts.removeAll()
        self.exchange.inspection = nil
        self.exchange.inspectedBody = nil
        self.exchange.localRequest = nil
        self.exchange.response = .complete
        // A body still on its way would have to be read and dropped: close instead.
        if close || (self.exchange.request != .complete && self.exchange.requestHasBody) { self.exchange.closeAfterResponse = true }
        let bytes = error.rawBytes(
            requestID: self.exchange.requestID,
            http10: self.exchange.requestVersion.minor == 0,
            close: self.exchange.closeAfterResponse,
            omitBody: self.exchange.isHEAD,
            allocator: self.allocator
        )
        self.log?.record.bytesOut += bytes.readableBytes
        actions.append(.write(bytes))
        if self.exchange.request == .complete { self.finishExchange(now: now, into: &actions) }
        self.writeEnd(nil, now: now, into: &actions)
        if self.inbound != nil { actions.append(.parse) }
    }

    /// Cuts the connection: the exchange in flight, if any, ends with `reason`.
    private mutating func abort(_ reason: AccessLogReason, into actions: inout [Action]) {
        if self.log != nil && self.log!.record.reason == .allowed { self.log!.record.reason = reason }
        self.endExchange(&actions)
        self.startClosing()
        self.releaseUpstream(reusable: false, into: &actions)
        self.exchange.compressor = nil  // deflateEnd
        self.exchange.closeAfterResponse = true
        if self.isOpen { actions.append(.close(flushFirst: false)) }
    }

    private mutating func startClosing() {
        if self.phase != .closed { self.phase = .closing }
    }

    // MARK: - Connection events

    /// Graceful stop: an idle connection closes now, a busy one after its response.
    mutating func quiesce(into actions: inout [Action]) {
        self.inbound = nil
        if self.exchange.request == .idle {
            self.startClosing()
            // A response finished earlier in this tick waits for the tick's end: send it first.
            actions.append(.close(flushFirst: true))
        } else {
            self.exchange.closeAfterResponse = true
        }
    }

    /// The drain timeout passed: the exchange in flight is cut (and logged).
    mutating func drainExpired(into actions: inout [Action]) {
        guard self.isOpen else { return }
        self.abort(.shutdown, into: &actions)
    }

    mutating func writabilityChanged(isWritable: Bool, now: NIODeadline, into actions: inout [Action]) {
        if isWritable {
            self.timers.sendStall = nil
            if self.upstream == .attached { actions.append(.resumeUpstreamReads) }
        } else if self.isOpen {
            // The client is not taking what is written: send_timeout from now. Upstream reads
            // stop meanwhile (`UpstreamConnection.read`), so what waits is bounded.
            self.timers.sendStall = now + self.config.sendTimeout
            self.armTimer(&actions)
        }
    }

    /// A read or write error on the client's connection.
    mutating func connectionFailed(into actions: inout [Action]) {
        // After the last response, e.g. a read error once we closed: nothing to answer.
        guard self.isOpen && !self.isClosing else { return }
        self.abort(.connectionError, into: &actions)
    }

    /// The client's connection is gone.
    mutating func closed(into actions: inout [Action]) {
        if self.log != nil && self.log!.record.reason == .allowed { self.log!.record.reason = .clientClosed }
        self.endExchange(&actions)
        self.phase = .closed
        self.timers.disarmed()
        // The client left mid-exchange: the upstream connection is in an unknown state.
        self.releaseUpstream(reusable: false, into: &actions)
        self.pendingParts.removeAll()
        self.inbound = nil
        self.exchange.compressor = nil
    }

    // MARK: - Timers

    private mutating func armTimer(_ actions: inout [Action]) {
        guard self.isOpen, let deadline = self.timers.rearm() else { return }
        actions.append(.armTimer(deadline))
    }

    /// The scheduled task ran: every deadline due at `now` takes effect.
    mutating func timerFired(now: NIODeadline, isWritable: Bool, ids: inout RequestIDGenerator, into actions: inout [Action]) {
        self.timers.disarmed()
        guard self.isOpen else { return }
        if self.timers.take(.backendQueue, dueAt: now) && self.upstream == .queued {
            self.upstream = .none
            actions.append(.leaveBackendQueue)
            self.respondLocally(
                .backendBusy("no backend slot came free within upstream.queue.timeout"),
                close: self.exchange.request != .complete,
                reason: .backendBusy,
                now: now,
                into: &actions
            )
        }
        if self.timers.take(.exchange, dueAt: now) {
            self.expire(self.exchange.exchangeExpiry, now: now, into: &actions)
        }
        if let deadline = self.timers.bodyProgress.nextCheck, deadline <= now, !self.isClosing {
            if self.exchange.request != .streamingBody || !self.exchange.requestHasBody {
                self.timers.bodyProgress.stop()
            } else if self.timers.bodyProgress.check(
                now: now,
                readsHeld: self.readPending,
                timeout: self.config.clientBodyTimeout,
                interval: self.config.bodyCheckInterval
            ) {
                self.expire(self.exchange.bodyExpiry, now: now, into: &actions)
            }
        }
        if self.timers.take(.sendStall, dueAt: now) && !isWritable && self.isOpen {
            self.abort(.sendTimeout, into: &actions)
        }
        if self.timers.take(.close, dueAt: now) && self.isOpen {
            self.abort(.sendTimeout, into: &actions)
        }
        if self.timers.take(.head, dueAt: now) {
            if self.phase == .readingHead {
                self.startClosing()
                let id = ids.make()
                let bytes = ErrorResponse.requestTimeout.rawBytes(requestID: id, allocator: self.allocator)
                // A head that never came whole is a request all the same: logged.
                var log = self.failureLog(requestID: id, now: now)
                log.status = 408
                log.reason = .clientTimeout
                log.bytesOut = bytes.readableBytes
                self.log = ExchangeLog(log)
                self.endExchange(&actions)
                self.writeAndClose(bytes, now: now, into: &actions)
            } else if self.phase == .idle {
                actions.append(.close(flushFirst: true))
            }
        }
        self.armTimer(&actions)
    }

    /// A timeout ends the exchange (`ClientExchange.Expiry`); the upstream connection, if
    /// any, is closed, never pooled.
    private mutating func expire(_ expiry: ClientExchange.Expiry, now: NIODeadline, into actions: inout [Action]) {
        switch expiry {
        case .answer(let response, let close, let reason):
            self.releaseUpstream(reusable: false, into: &actions)
            self.respondLocally(response, close: close, reason: reason, now: now, into: &actions)
        case .cut(let reason):
            self.abort(reason, into: &actions)
        case .nothing:
            break
        }
    }

    // MARK: - Backpressure

    /// Reads stop while a pipelined request waits, and while the request body has nowhere to
    /// go (upstream connecting or not writable). A client that does neither never toggles
    /// read interest, so the usual request costs no epoll_ctl.
    private var shouldHoldReads: Bool {
        if self.inbound != nil { return true }
        guard self.exchange.request == .streamingBody && self.exchange.response != .complete else { return false }
        switch self.upstream {
        case .leasing, .queued, .connecting: return true
        case .attached: return !self.upstreamWritable
        case .none: return false
        }
    }

    private mutating func resumeReadingIfPossible(_ actions: inout [Action]) {
        if self.readPending && !self.shouldHoldReads && self.isOpen {
            self.readPending = false
            // Time the gateway held reads is not the client's gap.
            self.timers.bodyProgress.madeProgress()
            actions.append(.read)
        }
    }

    /// A body still arriving when a read pass ends gets its check; a body that came whole
    /// with its head never needs one.
    private mutating func startBodyCheckIfNeeded(now: NIODeadline) {
        if self.exchange.request == .streamingBody && self.exchange.requestHasBody && !self.timers.bodyProgress.isRunning && !self.isClosing {
            self.timers.bodyProgress.start(now: now, interval: self.config.bodyCheckInterval)
        }
    }
}
