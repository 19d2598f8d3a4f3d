import NIOCore
import NIOHTTP1
import PortcullisAuth
import PortcullisPolicy

/// One client connection: reads its bytes with `RequestParser`, runs one request at a time
/// (pipelined bytes wait unparsed in `inbound`) through the stages of `RequestStages`, then
/// leases an upstream connection and streams both ways with backpressure.
///
/// Where the connection is: `ConnectionPhase`; the exchange in flight: `ClientExchange`, which
/// also decides what a timeout or a lost upstream does; its deadlines: `ConnectionTimers`.
/// Both channels live on this loop.
final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum UpstreamState {
        case none
        case connecting
        case attached(UpstreamConnection)
    }

    private let loop: LoopContext
    private let forwardedProto: String
    private var parser: RequestParser
    /// Bytes read but not parsed: a pipelined request waiting for the exchange in flight.
    private var inbound: ByteBuffer?
    private var parsing = false
    private var context: ChannelHandlerContext!
    private var peer: IPAddress = .v4(0)
    private var peerText = ""
    private var phase: ConnectionPhase = .idle
    private var exchangesStarted = 0

    // The settings and the exchange in flight, both replaced by each request head.
    private var settings: ProxySettings
    private var exchange = ClientExchange()
    private var upstream: UpstreamState = .none
    /// Request body bytes, already framed, that arrived while the upstream was being set up.
    private var pendingParts: CircularBuffer<ByteBuffer> = CircularBuffer(initialCapacity: 4)
    private var upstreamNeedsFlush = false
    /// Between channelRead and channelReadComplete.
    private var inReadBurst = false
    /// The access-log line of the exchange in flight; emitted once, when it ends (`emitLog`).
    private var log: ExchangeRecord?
    /// The client's limiter while this exchange holds one of its concurrency slots; given back
    /// when the exchange ends (`emitLog`), however it ends.
    private var heldLimit: ClientLimiter?
    /// This exchange holds one of `upstream.max_concurrent`'s slots (given back in `emitLog`).
    private var holdsBackendSlot = false

    private var readPending = false

    /// The deadlines: one scheduled task, re-armed lazily for the earliest.
    private var timers = ConnectionTimers()
    private var timerTask: Scheduled<Void>?

    init(loop: LoopContext, forwardedProto: String, maxHeadBytes: Int) {
        self.loop = loop
        self.settings = loop.settings
        self.forwardedProto = forwardedProto
        self.parser = RequestParser(maxHeadBytes: maxHeadBytes, maxFields: loop.settings.maxHeaderCount)
        self.parser.readsAcceptEncoding = loop.settings.compression != nil
    }

    // MARK: - Connection lifecycle

    private var isOpen: Bool { self.phase != .closed }
    /// The last response is written, or the connection is cut: nothing more is read.
    private var isClosing: Bool { self.phase == .closing || self.phase == .closed }

    private func startClosing() {
        if self.phase != .closed { self.phase = .closing }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.loop.register(self)
        if let remote = context.channel.remoteAddress, let text = remote.ipAddress,
            let address = IPAddress(parsing: text)
        {
            self.peer = address.unmappedIPv4
            self.peerText = self.peer.description
        }
        // The first request head must arrive within client_header_timeout of the accept.
        self.timers.head = context.eventLoop.now + self.settings.clientHeaderTimeout
        self.rearmTimer()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if self.log != nil && self.log!.reason == .allowed { self.log!.reason = .clientClosed }
        self.emitLog()
        self.phase = .closed
        self.loop.unregister(self)
        self.timerTask?.cancel()
        self.timerTask = nil
        self.timers.disarmed()
        if case .attached(let connection) = self.upstream {
            // The client left mid-exchange: the upstream connection is in an unknown state.
            connection.close()
        }
        self.upstream = .none
        self.pendingParts.removeAll()
        self.inbound = nil
        self.exchange.compressor = nil
        context.fireChannelInactive()
    }

    /// The context holds this handler and this handler holds the context: letting go of it
    /// here is what frees both once the channel has closed.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// The first bytes of a request head start its `client_header_timeout`, so an idle
    /// keep-alive connection (closed quietly after `idle_timeout`) is told apart from a slow
    /// request head (408).
    private func headBytesArrived() {
        if self.phase == .idle {
            self.phase = .readingHead
            // The first head's deadline runs from the accept; later ones from their first byte.
            if self.exchangesStarted > 0 {
                self.timers.head = self.context.eventLoop.now + self.settings.clientHeaderTimeout
                self.rearmTimer()
            }
        }
    }

    // MARK: - Request side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.inReadBurst = true
        var bytes = self.unwrapInboundIn(data)
        if self.isClosing { return }
        self.timers.bodyProgress.madeProgress()
        self.headBytesArrived()
        if self.inbound != nil {
            self.inbound!.writeBuffer(&bytes)
        } else {
            self.inbound = bytes
        }
        self.parseAvailable()
    }

    /// Parses and handles what has been read, up to the end of the request in flight: a
    /// pipelined request stays unparsed until the exchange before it has finished.
    private func parseAvailable() {
        guard !self.parsing, var bytes = self.inbound else { return }
        self.inbound = nil
        self.parsing = true
        let wasInReadBurst = self.inReadBurst
        // Writes upstream wait for the end of this pass (see `attach`).
        self.inReadBurst = true
        while self.isOpen && !self.isClosing && self.exchange.request != .complete {
            let event: RequestParser.Event?
            do throws(RequestParseError) {
                event = try self.parser.next(&bytes)
            } catch {
                self.parseFailed(error)
                break
            }
            guard let event else { break }
            switch event {
            case .head(let head): self.requestHeadReceived(head)
            case .body(let buffer): self.requestBodyReceived(buffer)
            case .end: self.requestEndReceived()
            }
        }
        if bytes.readableBytes > 0 && self.isOpen && !self.isClosing { self.inbound = bytes }
        self.parsing = false
        if !wasInReadBurst {
            self.inReadBurst = false
            self.flushUpstreamIfNeeded()
            if !self.parser.isAtMessageBoundary { self.headBytesArrived() }
            self.startBodyCheckIfNeeded()
        }
        self.resumeReadingIfPossible()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.inReadBurst = false
        self.flushUpstreamIfNeeded()
        self.startBodyCheckIfNeeded()
    }

    /// A body still arriving when a read pass ends gets its check; a body that came whole
    /// with its head never needs one.
    private func startBodyCheckIfNeeded() {
        if self.exchange.request == .streamingBody && self.exchange.requestHasBody && !self.timers.bodyProgress.isRunning && !self.isClosing
            && self.isOpen
        {
            self.timers.bodyProgress.start(now: self.context.eventLoop.now, interval: self.settings.bodyCheckInterval)
            self.rearmTimer()
        }
    }

    private func flushUpstreamIfNeeded() {
        if self.upstreamNeedsFlush, case .attached(let connection) = self.upstream {
            self.upstreamNeedsFlush = false
            self.loop.flushAtTickEnd(connection)
        }
    }

    var flushDeferred = false

    func flushNow() {
        if self.isOpen { self.context?.flush() }
    }

    /// A request head: the stages of `RequestStages`, top to bottom, then the upstream lease.
    private func requestHeadReceived(_ parsed: ParsedRequestHead) {
        if self.isClosing { return }
        self.startExchange(parsed)
        let settings = self.settings
        let now = self.context.eventLoop.now.uptimeNanoseconds
        self.log = ExchangeRecord(
            startMillis: self.loop.wallMillis(uptimeNanos: now),
            requestID: self.exchange.requestID,
            sourceIP: self.peerText,
            method: parsed.method.rawValue,
            path: "",
            status: 0,
            decision: .allow,
            reason: .allowed,
            bytesIn: 0,
            bytesOut: 0,
            userAgent: parsed.userAgent,
            traceID: parsed.traceID ?? self.exchange.requestID,
            startUptimeNanos: now
        )
        // Known before any local answer: a bodyless request needs no drain, so a 401 or 403
        // can leave the connection open.
        self.exchange.requestHasBody = parsed.hasBody

        if case .answer(let answer) = RequestStages.admit(parsed, isDraining: self.loop.isDraining) {
            self.log!.path = Self.pathForLog(parsed.uri)
            return self.respondLocally(answer)
        }
        let target: CanonicalTarget
        switch RequestStages.canonicalise(parsed) {
        case .proceed(let canonical): target = canonical
        case .answer(let answer):
            self.log!.path = Self.pathForLog(parsed.uri)
            return self.respondLocally(answer)
        }
        self.log!.path = String(target.path)
        if case .answer(let answer) = RequestStages.screen(target, parsed, firewall: settings.pathFirewall) {
            return self.respondLocally(answer)
        }
        // RFC 9110 10.1.1: no interim response to an HTTP/1.0 client.
        let expectContinue = parsed.expectsContinue && parsed.version.minor >= 1

        let client = RequestStages.clientAddress(parsed, peer: self.peer, peerText: self.peerText, trusted: settings.trustedProxies)
        if client.address != self.peer { self.log!.sourceIP = client.address.description }
        if let service = settings.tokenService, let route = LocalRoute(path: target.path) {
            switch RequestStages.localRoute(route, service: service, parsed, address: client.address) {
            case .proceed(let request): return self.readLocalRequest(route, service: service, request, parsed, expectContinue: expectContinue)
            case .answer(let answer): return self.respondLocally(answer)
            }
        }
        let caller: ClientRecord
        let authenticated = RequestStages.authenticate(
            parsed,
            authenticator: settings.authenticator,
            cache: &self.loop.tokenCache,
            now: self.loop.nowSeconds,
            tokenID: &self.log!.tokenID
        )
        switch authenticated {
        case .proceed(let record): caller = record
        case .answer(let answer):
            self.log!.clientID = answer.clientID
            return self.respondLocally(answer)
        }
        caller.usage?.touch(self.loop.nowSeconds)
        self.log!.clientID = caller.id
        self.log!.clientName = caller.name

        let policyRequest = RequestPolicy.Request(
            client: caller,
            address: client.address,
            method: parsed.method,
            target: target,
            hasBody: self.exchange.requestHasBody
        )
        switch RequestPolicy.decide(policyRequest, settings: settings, directory: self.loop.tenantDirectory) {
        case .allow(let outcome):
            self.log!.record(outcome, settings: settings)
            guard self.admitLimits(caller, cost: outcome.cost) else { return }
        case .deny(let error, let outcome):
            self.log!.record(outcome, settings: settings)
            return self.respondLocally(error, close: false, reason: outcome.reason)
        case .readBody(let check):
            let expected = parsed.contentLength ?? 4096
            self.exchange.inspectedBody = self.context.channel.allocator.buffer(capacity: min(expected, settings.maxInspectBody))
            self.exchange.inspection = (policyRequest, check)
        }

        let credentialLine: [UInt8]?
        switch RequestStages.upstreamCredential(settings, nowNanos: self.context.eventLoop.now.uptimeNanoseconds) {
        case .proceed(let line): credentialLine = line
        case .answer(let answer): return self.respondLocally(answer)
        }
        self.exchange.upstreamHead = RequestStages.upstreamHead(
            parsed,
            target: target,
            client: caller,
            address: client,
            credentialLine: credentialLine,
            requestID: self.exchange.requestID,
            newParentID: parsed.traceID == nil ? self.loop.requestIDs.makeSpanID() : nil,
            forwardedProto: self.forwardedProto,
            settings: settings,
            allocator: self.context.channel.allocator
        )
        self.exchange.isHEAD = parsed.method == .HEAD
        self.exchange.requestChunked = parsed.chunked
        // No upgrade is made (`Upgrade` is not forwarded), and what a client sends after asking
        // for one may not be HTTP: the connection ends with this exchange.
        if parsed.upgrade { self.exchange.closeAfterResponse = true }

        self.timers.exchange = self.context.eventLoop.now + settings.exchangeTimeout
        self.rearmTimer()
        if expectContinue {
            self.context.writeAndFlush(self.wrapOutboundOut(Self.continueResponse), promise: nil)
        }
        // A request being inspected goes upstream once its body has been read and allowed.
        if self.exchange.inspection == nil { self.lease(fresh: false) }
    }

    /// A target that was not canonicalized, as sent but without its query: a query may carry a
    /// secret (RFC 6750's `access_token`), and no log holds one.
    static func pathForLog(_ uri: String) -> String {
        String(uri.prefix { $0 != "?" })
    }

    /// The whole body of an inspected request arrived: decide, then forward it or answer.
    private func inspectedBodyComplete() {
        guard let (request, check) = self.exchange.inspection, let body = self.exchange.inspectedBody else { return }
        self.exchange.inspection = nil
        self.exchange.inspectedBody = nil
        switch RequestPolicy.decide(request, body: body, check: check, settings: self.settings, directory: self.loop.tenantDirectory) {
        case .allow(let outcome):
            self.log?.record(outcome, settings: self.settings)
            guard self.admitLimits(request.client, cost: outcome.cost) else { return }
            // The bytes go upstream as they came, framed as the upstream head says.
            if self.exchange.requestChunked {
                if body.readableBytes > 0 {
                    self.pendingParts.append(ChunkedFraming.sizeLine(body.readableBytes, allocator: self.context.channel.allocator))
                    self.pendingParts.append(body)
                    self.pendingParts.append(ChunkedFraming.crlf)
                }
                self.pendingParts.append(ChunkedFraming.lastChunk)
            } else if body.readableBytes > 0 {
                self.pendingParts.append(body)
            }
            self.lease(fresh: false)
        case .deny(let error, let outcome):
            self.log?.record(outcome, settings: self.settings)
            self.respondLocally(error, close: false, reason: outcome.reason)
        case .readBody:
            self.respondLocally(.badRequest("the request cannot be decided"), close: true, reason: .badRequest)
        }
    }

    /// The client's limits (`RequestStages.admitLimits`): admitted, or answered 429 here.
    private func admitLimits(_ client: ClientRecord, cost: Int) -> Bool {
        let now = self.context.eventLoop.now.uptimeNanoseconds
        switch RequestStages.admitLimits(client, cost: cost, settings: self.settings, nowNanos: now, nowSeconds: self.loop.nowSeconds) {
        case .proceed(let admission):
            self.heldLimit = admission.heldLimit
            self.exchange.rateLimitLines = admission.rateLimitLines
            return true
        case .answer(let answer):
            self.respondLocally(answer)
            return false
        }
    }

    // MARK: - The built-in issuer's routes

    /// A token or revocation request: its form body is read, then answered
    /// (`localRequestComplete`).
    private func readLocalRequest(
        _ route: LocalRoute,
        service: TokenService,
        _ request: TokenService.Request,
        _ parsed: ParsedRequestHead,
        expectContinue: Bool
    ) {
        self.exchange.localRequest = LocalRequest(
            route: route,
            service: service,
            request: request,
            body: self.context.channel.allocator.buffer(capacity: min(parsed.contentLength ?? 256, LocalRoute.maxBody))
        )
        self.timers.exchange = self.context.eventLoop.now + self.settings.exchangeTimeout
        self.rearmTimer()
        if expectContinue {
            self.context.writeAndFlush(self.wrapOutboundOut(Self.continueResponse), promise: nil)
        }
    }
    /// The form body of a token or revocation request arrived whole: answer it.
    private func localRequestComplete() {
        guard let local = self.exchange.localRequest else { return }
        self.exchange.localRequest = nil
        var request = local.request
        request.body = Array(local.body.readableBytesView)
        let now = self.loop.nowSeconds
        let result = local.route == .token ? local.service.token(request, now: now) : local.service.revoke(request, now: now)
        if let id = result.clientID { self.log?.clientID = id }
        self.respondLocally(ErrorResponse(result), close: false, reason: .tokenEndpoint(result.reason))
    }

    private static let continueResponse = ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n")

    private func startExchange(_ parsed: ParsedRequestHead) {
        precondition(!self.isClosing && self.exchange.request == .idle, "request head in \(self.phase), request \(self.exchange.request)")
        self.settings = self.loop.settings
        self.exchangesStarted += 1
        self.exchange = ClientExchange(starting: parsed, requestID: self.loop.requestIDs.make())
        self.phase = .exchange
        self.timers.head = nil
        self.timers.bodyProgress.stop()
    }

    private func requestBodyReceived(_ buffer: ByteBuffer) {
        if self.exchange.request == .idle || buffer.readableBytes == 0 { return }
        self.log?.bytesIn += buffer.readableBytes
        if self.exchange.inspectedBody != nil {
            guard self.exchange.inspectedBody!.readableBytes + buffer.readableBytes <= self.settings.maxInspectBody else {
                self.exchange.inspection = nil
                self.exchange.inspectedBody = nil
                return self.respondLocally(.bodyTooLarge, close: true, reason: .bodyTooLarge)
            }
            var buffer = buffer
            self.exchange.inspectedBody!.writeBuffer(&buffer)
            return
        }
        if let local = self.exchange.localRequest {
            guard local.body.readableBytes + buffer.readableBytes <= LocalRoute.maxBody else {
                return self.respondLocally(.bodyTooLarge, close: true, reason: .bodyTooLarge)
            }
            var buffer = buffer
            local.body.writeBuffer(&buffer)
            return
        }
        if self.exchange.requestChunked {
            self.sendRequestBytes(ChunkedFraming.sizeLine(buffer.readableBytes, allocator: self.context.channel.allocator))
            self.sendRequestBytes(buffer)
            self.sendRequestBytes(ChunkedFraming.crlf)
        } else {
            self.sendRequestBytes(buffer)
        }
    }

    /// Request bytes, framed, to the upstream connection or to wait for it.
    private func sendRequestBytes(_ bytes: ByteBuffer) {
        switch (self.exchange.response, self.upstream) {
        case (.complete, _):
            break  // already answered locally; the connection closes after the response
        case (_, .attached(let connection)):
            connection.write(bytes)
            self.upstreamNeedsFlush = true
        case (_, .connecting):
            self.pendingParts.append(bytes)
        case (_, .none):
            break
        }
    }

    /// Trailers of a chunked request body are not forwarded.
    private func requestEndReceived() {
        if self.isClosing && self.exchange.request == .idle { return }
        self.exchange.request = .complete
        self.timers.bodyProgress.stop()
        if self.exchange.inspection != nil {
            return self.inspectedBodyComplete()
        }
        if self.exchange.localRequest != nil {
            return self.localRequestComplete()
        }
        if self.exchange.requestChunked {
            self.sendRequestBytes(ChunkedFraming.lastChunk)
        }
        if self.exchange.response == .complete {
            self.finishExchange()
        }
    }

    // MARK: - Upstream lease

    private func lease(fresh: Bool) {
        guard let head = self.exchange.upstreamHead else { return }
        if let cap = self.settings.maxConcurrent, !self.holdsBackendSlot {
            guard let gate = self.loop.backendGate else { return }
            if gate.tryAcquire(cap: cap) {
                self.holdsBackendSlot = true
            } else {
                return self.waitForBackendSlot()
            }
        }
        if self.log != nil && self.log!.upstreamStartUptimeNanos == nil {
            self.log!.upstreamStartUptimeNanos = self.context.eventLoop.now.uptimeNanoseconds
        }
        switch self.loop.pool.acquire(fresh: fresh) {
        case .ready(let connection):
            self.exchange.leasedReusedConnection = true
            self.attach(connection, head: head)
        case .connecting(let future):
            self.upstream = .connecting
            self.exchange.leasedReusedConnection = false
            let handler = NIOLoopBound(self, eventLoop: self.context.eventLoop)
            future.whenComplete { result in
                handler.value.connectCompleted(result)
            }
        }
    }

    /// The backend is at `upstream.max_concurrent`: wait in the loop's queue, or 503 when the
    /// queue is full.
    private func waitForBackendSlot() {
        // Body bytes wait in `pendingParts` and reads are held, as while connecting.
        self.upstream = .connecting
        self.timers.backendQueue = self.context.eventLoop.now + self.settings.backendQueueTimeout
        guard self.loop.waitForBackend(self, queueSize: self.settings.backendQueueSize) else {
            self.timers.backendQueue = nil
            return self.respondLocally(.backendBusy("the backend is at its limit of exchanges and the queue is full"), close: false, reason: .backendBusy)
        }
        if self.timers.backendQueue != nil { self.rearmTimer() }
    }

    /// A slot came free for this waiting exchange (called by the loop).
    func backendSlotGranted() {
        self.timers.backendQueue = nil
        self.holdsBackendSlot = true
        guard self.isOpen, self.exchange.response == .waiting, case .connecting = self.upstream else { return }
        self.upstream = .none
        self.lease(fresh: false)
    }

    private func connectCompleted(_ result: Result<UpstreamConnection, Error>) {
        guard case .connecting = self.upstream, self.isOpen, self.exchange.response == .waiting else {
            // Nobody waits for this connection any more (answered, timed out or gone).
            if case .success(let connection) = result { self.loop.pool.release(connection) }
            return
        }
        switch result {
        case .success(let connection):
            guard let head = self.exchange.upstreamHead else { return }
            self.attach(connection, head: head)
        case .failure:
            self.upstream = .none
            self.pendingParts.removeAll()
            self.respondLocally(.badGateway, close: self.exchange.request != .complete, reason: .upstreamUnavailable)
        }
    }

    private func attach(_ connection: UpstreamConnection, head: ByteBuffer) {
        self.upstream = .attached(connection)
        connection.lease(to: self)
        connection.writeHead(head, isHEAD: self.exchange.isHEAD)
        while let part = self.pendingParts.popFirst() {
            connection.write(part)
        }
        if self.inReadBurst {
            // A parser error later in this read must still be able to stop the request:
            // unflushed writes die with the upstream connection, so flush at read-complete.
            self.upstreamNeedsFlush = true
        } else {
            self.upstreamNeedsFlush = false
            connection.flush()
        }
        self.resumeReadingIfPossible()
    }

    /// Ends the lease: back to the pool only after a complete request and response.
    private func releaseUpstream(reusable: Bool) {
        guard case .attached(let connection) = self.upstream else {
            self.upstream = .none
            return
        }
        self.upstream = .none
        connection.detach()
        if reusable && connection.isUsable {
            self.loop.pool.release(connection)
        } else {
            connection.close()
        }
    }

    // MARK: - Response side (UpstreamExchange)

    var downstreamIsWritable: Bool { self.context.channel.isWritable }

    func upstreamResponseHead(_ head: UpstreamResponseHead) {
        guard self.exchange.response == .waiting else { return }
        self.log?.status = head.status
        var encoding: ContentCoding?
        if let coding = self.exchange.compressionCoding(for: head, self.settings.compression),
            let compressor = ResponseCompressor(coding, allocator: self.context.channel.allocator)
        {
            encoding = coding
            self.exchange.compressor = compressor
        }
        self.exchange.responseStarted(head, compressed: encoding != nil)
        // Room for the gateway's headers and, when it is small, the body that usually follows.
        let body = min(head.contentLength ?? 0, Self.coalescedBodyLimit)
        var bytes = self.context.channel.allocator.buffer(capacity: head.bytes.readableBytes + 128 + body)
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
        self.exchange.heldHead = bytes
        self.log?.bytesOut += bytes.readableBytes
    }

    /// Bodies up to this size ride in the head's buffer.
    private static let coalescedBodyLimit = 4096

    private func writeHeldHead() {
        if let head = self.exchange.heldHead {
            self.exchange.heldHead = nil
            self.context.write(self.wrapOutboundOut(head), promise: nil)
        }
    }

    func upstreamResponseBody(_ buffer: ByteBuffer) {
        guard self.exchange.response == .streaming else { return }
        if let compressor = self.exchange.compressor {
            // Written compressed at the end of the read burst (`upstreamReadComplete`).
            return compressor.write(buffer)
        }
        self.log?.bytesOut += buffer.readableBytes
        if var head = self.exchange.heldHead, self.exchange.responseFraming == .asReceived, buffer.readableBytes <= Self.coalescedBodyLimit {
            self.exchange.heldHead = nil
            var body = buffer
            head.writeBuffer(&body)
            self.context.write(self.wrapOutboundOut(head), promise: nil)
            return
        }
        self.writeHeldHead()
        self.writeBody(buffer)
    }

    /// Body bytes in the response's framing.
    private func writeBody(_ buffer: ByteBuffer) {
        if self.exchange.responseFraming == .chunked {
            self.context.write(self.wrapOutboundOut(ChunkedFraming.sizeLine(buffer.readableBytes, allocator: self.context.channel.allocator)), promise: nil)
            self.context.write(self.wrapOutboundOut(buffer), promise: nil)
            self.context.write(self.wrapOutboundOut(ChunkedFraming.crlf), promise: nil)
        } else {
            self.context.write(self.wrapOutboundOut(buffer), promise: nil)
        }
    }

    func upstreamResponseEnd() {
        guard self.exchange.response == .streaming else { return }
        if self.log != nil { self.log!.upstreamEndUptimeNanos = self.context.eventLoop.now.uptimeNanoseconds }
        self.writeHeldHead()
        if let compressor = self.exchange.compressor {
            self.exchange.compressor = nil
            if let last = compressor.finish() {
                self.log?.bytesOut += last.readableBytes
                self.writeBody(last)
            }
        }
        self.exchange.response = .complete
        self.releaseUpstream(reusable: self.exchange.request == .complete)
        if self.exchange.request == .complete {
            self.finishExchange()
        }
        self.writeEnd(self.exchange.responseFraming == .chunked ? ChunkedFraming.lastChunk : nil)
        self.parseAvailable()
    }

    func upstreamReadComplete() {
        self.writeHeldHead()
        // What this burst brought, decodable by the client now: streaming still streams.
        if let compressor = self.exchange.compressor, self.exchange.response == .streaming, let bytes = compressor.flush() {
            self.log?.bytesOut += bytes.readableBytes
            self.writeBody(bytes)
        }
        self.loop.flushAtTickEnd(self)
    }

    func upstreamWritabilityChanged() {
        self.resumeReadingIfPossible()
    }

    func upstreamClosed(_ connection: UpstreamConnection, error: Error?) {
        guard case .attached(let current) = self.upstream, current === connection else { return }
        self.upstream = .none
        switch self.exchange.upstreamLoss(responseBytesCameBack: connection.hasReceivedResponseBytes) {
        case .retry:
            self.exchange.retried = true
            self.lease(fresh: true)
        case .answer(let close):
            if let head = self.exchange.heldHead.take() {
                self.exchange.compressor = nil
                self.log?.bytesOut -= head.readableBytes
                self.exchange.response = .waiting
            }
            self.respondLocally(.badGateway, close: close, reason: .upstreamError)
        case .cut:
            self.abortConnection(reason: .upstreamAborted)
        case .nothing:
            break
        }
    }

    // MARK: - Ending exchanges

    /// Writes the response's last bytes (if its framing has any) and flushes; closes after
    /// them when the connection ends with this response.
    private func writeEnd(_ last: ByteBuffer?) {
        if self.exchange.closeAfterResponse {
            self.startClosing()
            self.writeAndClose(last ?? self.context.channel.allocator.buffer(capacity: 0))
        } else {
            // The lease may already be over, so its read-complete will not flush for us.
            if let last { self.context.write(self.wrapOutboundOut(last), promise: nil) }
            self.loop.flushAtTickEnd(self)
        }
    }

    /// Both sides complete: wait for the next request on this connection.
    private func finishExchange() {
        self.emitLog()
        // For the next request head (a reload may have turned compression on or off).
        self.parser.readsAcceptEncoding = self.loop.settings.compression != nil
        self.exchange.request = .idle
        self.exchange.response = .complete
        self.timers.exchange = nil
        self.exchange.upstreamHead = nil
        if !self.exchange.closeAfterResponse {
            if !self.isClosing { self.phase = .idle }
            self.timers.head = self.context.eventLoop.now + self.settings.idleTimeout
            self.rearmTimer()
        }
    }

    private func respondLocally(_ answer: RequestStages.Answer) {
        self.respondLocally(answer.response, close: answer.close, reason: answer.reason)
    }

    /// Answers from the gateway itself; the upstream, if any, is let go.
    private func respondLocally(_ error: ErrorResponse, close: Bool, reason: AccessLogReason) {
        guard self.exchange.response == .waiting else { return }
        if self.timers.backendQueue != nil {
            self.timers.backendQueue = nil
            self.loop.leaveBackendQueue(self)
        }
        if self.log != nil {
            self.log!.status = Int(error.status.code)
            self.log!.reason = reason
            // The gateway refused (not the upstream failing an allowed request, nor the
            // built-in issuer answering).
            if !reason.isUpstreamFailure && error.status.code >= 400 { self.log!.decision = .deny }
        }
        if case .attached = self.upstream { self.releaseUpstream(reusable: false) }
        self.upstream = .none
        self.pendingParts.removeAll()
        self.exchange.inspection = nil
        self.exchange.inspectedBody = nil
        self.exchange.localRequest = nil
        self.exchange.response = .complete
        // A body still on its way would have to be read and dropped: close instead.
        if close || (self.exchange.request != .complete && self.exchange.requestHasBody) { self.exchange.closeAfterResponse = true }
        if self.exchange.requestID.isEmpty { self.exchange.requestID = self.loop.requestIDs.make() }
        let bytes = error.rawBytes(
            requestID: self.exchange.requestID,
            http10: self.exchange.requestVersion.minor == 0,
            close: self.exchange.closeAfterResponse,
            omitBody: self.exchange.isHEAD,
            allocator: self.context.channel.allocator
        )
        self.log?.bytesOut += bytes.readableBytes
        self.context.write(self.wrapOutboundOut(bytes), promise: nil)
        if self.exchange.request == .complete {
            self.finishExchange()
        }
        self.writeEnd(nil)
        self.parseAvailable()
    }

    private func abortConnection(reason: AccessLogReason) {
        if self.log != nil && self.log!.reason == .allowed { self.log!.reason = reason }
        self.emitLog()
        self.startClosing()
        self.releaseUpstream(reusable: false)
        self.exchange.compressor = nil  // deflateEnd
        self.exchange.closeAfterResponse = true
        if self.isOpen { self.context.close(promise: nil) }
    }

    // MARK: - Timers

    private func rearmTimer() {
        guard let deadline = self.timers.rearm() else { return }
        self.timerTask?.cancel()
        let handler = NIOLoopBound(self, eventLoop: self.context.eventLoop)
        self.timerTask = self.context.eventLoop.scheduleTask(deadline: deadline) {
            handler.value.timerFired()
        }
    }

    private func timerFired() {
        self.timerTask = nil
        self.timers.disarmed()
        guard self.isOpen else { return }
        let now = self.context.eventLoop.now
        if self.timers.take(.backendQueue, dueAt: now) {
            if self.loop.leaveBackendQueue(self) {
                self.respondLocally(.backendBusy("no backend slot came free within upstream.queue.timeout"), close: self.exchange.request != .complete, reason: .backendBusy)
            }
        }
        if self.timers.take(.exchange, dueAt: now) {
            self.expire(self.exchange.exchangeExpiry)
        }
        if let deadline = self.timers.bodyProgress.nextCheck, deadline <= now, self.isOpen && !self.isClosing {
            if self.exchange.request != .streamingBody || !self.exchange.requestHasBody {
                self.timers.bodyProgress.stop()
            } else if self.timers.bodyProgress.check(
                now: now,
                readsHeld: self.readPending,
                timeout: self.settings.clientBodyTimeout,
                interval: self.settings.bodyCheckInterval
            ) {
                self.expire(self.exchange.bodyExpiry)
            }
        }
        if self.timers.take(.sendStall, dueAt: now) {
            if !self.context.channel.isWritable && self.isOpen { self.abortConnection(reason: .sendTimeout) }
        }
        if self.timers.take(.close, dueAt: now) {
            if self.isOpen { self.abortConnection(reason: .sendTimeout) }
        }
        if self.timers.take(.head, dueAt: now) {
            if self.phase == .idle || self.phase == .readingHead {
                if self.phase == .readingHead {
                    self.startClosing()
                    let id = self.loop.requestIDs.make()
                    let bytes = ErrorResponse.requestTimeout.rawBytes(requestID: id, allocator: self.context.channel.allocator)
                    // A head that never came whole is a request all the same: logged.
                    var log = self.newLog(requestID: id)
                    log.status = 408
                    log.reason = .clientTimeout
                    log.bytesOut = bytes.readableBytes
                    self.log = log
                    self.emitLog()
                    self.writeAndClose(bytes)
                } else {
                    self.flushIfDeferred()
                    self.context.close(promise: nil)
                }
            }
        }
        if self.isOpen { self.rearmTimer() }
    }

    /// A timeout ends the exchange (`ClientExchange.Expiry`); the upstream connection, if
    /// any, is closed, never pooled.
    private func expire(_ expiry: ClientExchange.Expiry) {
        switch expiry {
        case .answer(let response, let close, let reason):
            self.releaseUpstream(reusable: false)
            self.respondLocally(response, close: close, reason: reason)
        case .cut(let reason):
            self.abortConnection(reason: reason)
        case .nothing:
            break
        }
    }

    // MARK: - Backpressure and errors

    /// Reads stop while a pipelined request waits, and while the request body has nowhere to
    /// go (upstream connecting or not writable). A client that does neither never toggles
    /// read interest, so the usual request costs no epoll_ctl.
    private var shouldHoldReads: Bool {
        if self.inbound != nil { return true }
        if self.exchange.request == .streamingBody && self.exchange.response != .complete {
            switch self.upstream {
            case .connecting: return true
            case .attached(let connection): return !connection.isWritable
            case .none: return false
            }
        }
        return false
    }

    func read(context: ChannelHandlerContext) {
        if self.shouldHoldReads {
            self.readPending = true
        } else {
            context.read()
        }
    }

    private func resumeReadingIfPossible() {
        if self.readPending && !self.shouldHoldReads && self.isOpen {
            self.readPending = false
            // Time the gateway held reads is not the client's gap.
            self.timers.bodyProgress.madeProgress()
            self.context.read()
        }
    }

    /// Graceful stop: an idle connection closes now, a busy one after its response.
    func quiesce() {
        self.inbound = nil
        if self.exchange.request == .idle {
            self.startClosing()
            // A response finished earlier in this tick waits for the tick's end: send it first.
            self.flushIfDeferred()
            self.context.close(promise: nil)
        } else {
            self.exchange.closeAfterResponse = true
        }
    }

    /// The drain timeout passed: the exchange in flight is cut (and logged).
    func closeNow() {
        guard self.isOpen else { return }
        self.abortConnection(reason: .shutdown)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.timers.sendStall = nil
            if case .attached(let connection) = self.upstream { connection.resumeReading() }
        } else if self.isOpen {
            // The client is not taking what is written: send_timeout from now. Upstream reads
            // stop meanwhile (`UpstreamConnection.read`), so what waits is bounded.
            self.timers.sendStall = context.eventLoop.now + self.settings.sendTimeout
            self.rearmTimer()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // After the last response, e.g. a read error once we closed: nothing to answer.
        guard self.isOpen && !self.isClosing else { return }
        self.abortConnection(reason: .connectionError)
    }

    /// A request that cannot be read: 400 (431 for an oversized head) and close. Nothing of it
    /// reaches the upstream: writes of this read pass are not flushed yet and die with the
    /// upstream connection.
    private func parseFailed(_ error: RequestParseError) {
        self.inbound = nil
        if self.exchange.request == .idle {
            self.exchange.requestVersion = .http1_1
            self.exchange.request = .complete
            self.exchange.response = .waiting
            self.exchange.requestID = self.loop.requestIDs.make()
            self.log = self.newLog(requestID: self.exchange.requestID)
        }
        guard self.exchange.response == .waiting else { return self.abortConnection(reason: .badRequest) }
        self.releaseUpstream(reusable: false)
        self.pendingParts.removeAll()
        switch error.kind {
        case .headTooLarge: self.respondLocally(.headerTooLarge, close: true, reason: .headerTooLarge)
        case .tooManyFields: self.respondLocally(.tooManyHeaderFields, close: true, reason: .tooManyHeaders)
        case .malformed: self.respondLocally(.badRequest(error.description), close: true, reason: .badRequest)
        }
    }

    /// Writes bytes that end the connection, then closes it.
    private func writeAndClose(_ bytes: ByteBuffer) {
        self.timers.close = self.context.eventLoop.now + self.settings.sendTimeout
        self.rearmTimer()
        let context = NIOLoopBound(self.context!, eventLoop: self.context.eventLoop)
        self.context.writeAndFlush(self.wrapOutboundOut(bytes)).whenComplete { _ in
            context.value.close(promise: nil)
        }
    }
}

// MARK: - Access log

extension ClientConnectionHandler {
    /// A line for the request starting now, filled in as it goes.
    fileprivate func newLog(requestID: String) -> ExchangeRecord {
        let now = self.context.eventLoop.now.uptimeNanoseconds
        return ExchangeRecord(
            startMillis: self.loop.wallMillis(uptimeNanos: now),
            requestID: requestID,
            sourceIP: self.peerText,
            method: "",
            path: "",
            status: 0,
            decision: .deny,
            reason: .badRequest,
            bytesIn: 0,
            bytesOut: 0,
            startUptimeNanos: now
        )
    }

    /// Hands the finished exchange's line to the loop (metrics, then the access-log writer).
    fileprivate func emitLog() {
        if let limiter = self.heldLimit.take() { limiter.release() }
        if self.timers.backendQueue != nil {
            self.timers.backendQueue = nil
            self.loop.leaveBackendQueue(self)
        }
        if self.holdsBackendSlot {
            self.holdsBackendSlot = false
            self.loop.backendGate?.release()
        }
        guard var record = self.log.take() else { return }
        let now = self.context.eventLoop.now.uptimeNanoseconds
        if let start = record.upstreamStartUptimeNanos {
            record.upstreamNanos = Int64((record.upstreamEndUptimeNanos ?? now) &- start)
        }
        record.totalNanos = Int64(now &- record.startUptimeNanos)
        self.loop.record(record)
    }
}

extension ExchangeRecord {
    mutating func record(_ outcome: RequestPolicy.Outcome, settings: ProxySettings) {
        self.reason = outcome.reason
        if let rule = outcome.rule, rule < settings.ruleNames.count { self.rule = settings.ruleNames[rule] }
        self.tenant = outcome.tenant
        self.decision = outcome.reason == .allowed ? .allow : .deny
    }
}

extension ClientConnectionHandler: UpstreamExchange {}

extension ClientConnectionHandler: TickFlushing {}

@available(*, unavailable)
extension ClientConnectionHandler: Sendable {}
