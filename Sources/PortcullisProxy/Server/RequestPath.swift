import NIOCore
import PortcullisAuth
import PortcullisPolicy

/// The request path of one client connection: each request head through the stages of
/// `RequestStages`, top to bottom, to a verdict for `ConnectionStateMachine`; and the later
/// decisions of an exchange (an inspected body, a built-in issuer request). The stages fill in
/// the exchange's log line as they learn the path, the client and the rule.
struct RequestPath {
    let loop: LoopContext
    let peer: IPAddress
    /// Accepted on a TLS listener: `X-Forwarded-Proto: https`.
    let isTLS: Bool

    private var forwardedProto: String { self.isTLS ? "https" : "http" }
    private var allocator: ByteBufferAllocator { self.loop.allocator }

    typealias Answer = RequestStages.Answer
    typealias Verdict = ConnectionStateMachine.HeadVerdict

    /// A request head. `heldLimit`: the client's limiter, when the request holds one of its
    /// concurrency slots until the exchange ends.
    func head(
        _ parsed: ParsedRequestHead,
        peerText: String,
        settings: ProxySettings,
        requestID: String,
        log: inout ExchangeRecord,
        heldLimit: inout ClientLimiter?,
        nowNanos: UInt64
    ) -> Verdict {
        if case .answer(let answer) = RequestStages.admit(parsed, isDraining: self.loop.isDraining) {
            log.path = Self.pathForLog(parsed.uri)
            return .answer(answer)
        }
        let target: CanonicalTarget
        switch RequestStages.canonicalise(parsed) {
        case .proceed(let canonical): target = canonical
        case .answer(let answer):
            log.path = Self.pathForLog(parsed.uri)
            return .answer(answer)
        }
        log.path = String(target.path)
        if case .answer(let answer) = RequestStages.screen(target, parsed, firewall: settings.pathFirewall) {
            return .answer(answer)
        }
        // RFC 9110 10.1.1: no interim response to an HTTP/1.0 client.
        let expectContinue = parsed.expectsContinue && parsed.version.minor >= 1

        let client = RequestStages.clientAddress(parsed, peer: self.peer, peerText: peerText, trusted: settings.trustedProxies)
        if client.address != self.peer { log.sourceIP = client.address.description }
        if let service = settings.tokenService, let route = LocalRoute(path: target.path) {
            switch RequestStages.localRoute(route, service: service, parsed, address: client.address) {
            case .proceed(let request):
                let body = self.allocator.buffer(capacity: min(parsed.contentLength ?? 256, LocalRoute.maxBody))
                return .local(LocalRequest(route: route, service: service, request: request, body: body), expectContinue: expectContinue)
            case .answer(let answer):
                return .answer(answer)
            }
        }
        let caller: ClientRecord
        let now = self.loop.nowSeconds
        switch RequestStages.authenticate(parsed, authenticator: settings.authenticator, cache: &self.loop.tokenCache, now: now, tokenID: &log.tokenID) {
        case .proceed(let record): caller = record
        case .answer(let answer):
            log.clientID = answer.clientID
            return .answer(answer)
        }
        caller.usage?.touch(now)
        log.clientID = caller.id
        log.clientName = caller.name

        let request = RequestPolicy.Request(client: caller, address: client.address, method: parsed.method, target: target, hasBody: parsed.hasBody)
        var rateLimitLines: String?
        var inspection: (request: RequestPolicy.Request, check: RequestDecision.BodyCheck, buffer: ByteBuffer)?
        switch RequestPolicy.decide(request, settings: settings, directory: self.loop.tenantDirectory) {
        case .allow(let outcome):
            log.record(outcome, settings: settings)
            switch self.admitLimits(caller, cost: outcome.cost, settings: settings, heldLimit: &heldLimit, nowNanos: nowNanos) {
            case .proceed(let lines): rateLimitLines = lines
            case .answer(let answer): return .answer(answer)
            }
        case .deny(let error, let outcome):
            log.record(outcome, settings: settings)
            return .answer(Answer(response: error, close: false, reason: outcome.reason))
        case .readBody(let check):
            let expected = parsed.contentLength ?? 4096
            inspection = (request, check, self.allocator.buffer(capacity: min(expected, settings.connection.maxInspectBody)))
        }

        let credentialLine: [UInt8]?
        switch RequestStages.upstreamCredential(settings, nowNanos: nowNanos) {
        case .proceed(let line): credentialLine = line
        case .answer(let answer): return .answer(answer)
        }
        let upstreamHead = RequestStages.upstreamHead(
            parsed,
            target: target,
            client: caller,
            address: client,
            credentialLine: credentialLine,
            requestID: requestID,
            newParentID: parsed.traceID == nil ? self.loop.requestIDs.makeSpanID() : nil,
            forwardedProto: self.forwardedProto,
            settings: settings,
            allocator: self.allocator
        )
        return .forward(
            .init(upstreamHead: upstreamHead, expectContinue: expectContinue, upgrade: parsed.upgrade, rateLimitLines: rateLimitLines, inspection: inspection)
        )
    }

    /// The whole body of an inspected request arrived: decide.
    func inspected(
        _ request: RequestPolicy.Request,
        check: RequestDecision.BodyCheck,
        body: ByteBuffer,
        settings: ProxySettings,
        log: ExchangeLog?,
        heldLimit: inout ClientLimiter?,
        nowNanos: UInt64
    ) -> ConnectionStateMachine.InspectionVerdict {
        switch RequestPolicy.decide(request, body: body, check: check, settings: settings, directory: self.loop.tenantDirectory) {
        case .allow(let outcome):
            log?.record.record(outcome, settings: settings)
            switch self.admitLimits(request.client, cost: outcome.cost, settings: settings, heldLimit: &heldLimit, nowNanos: nowNanos) {
            case .proceed(let lines): return .forward(body, rateLimitLines: lines)
            case .answer(let answer): return .answer(answer)
            }
        case .deny(let error, let outcome):
            log?.record.record(outcome, settings: settings)
            return .answer(Answer(response: error, close: false, reason: outcome.reason))
        case .readBody:
            return .answer(Answer(response: .badRequest("the request cannot be decided"), close: true, reason: .badRequest))
        }
    }

    /// The form body of a token or revocation request arrived whole: its answer.
    func local(_ local: LocalRequest, log: ExchangeLog?) -> Answer {
        var request = local.request
        request.body = Array(local.body.readableBytesView)
        let now = self.loop.nowSeconds
        let result = local.route == .token ? local.service.token(request, now: now) : local.service.revoke(request, now: now)
        if let id = result.clientID { log?.record.clientID = id }
        return Answer(response: ErrorResponse(result), close: false, reason: .tokenEndpoint(result.reason))
    }

    /// The client's limits (`RequestStages.admitLimits`): the `RateLimit` lines for the
    /// response, or the 429.
    private func admitLimits(
        _ client: ClientRecord,
        cost: Int,
        settings: ProxySettings,
        heldLimit: inout ClientLimiter?,
        nowNanos: UInt64
    ) -> RequestStages.Step<String?> {
        switch RequestStages.admitLimits(client, cost: cost, settings: settings, nowNanos: nowNanos, nowSeconds: self.loop.nowSeconds) {
        case .proceed(let admission):
            heldLimit = admission.heldLimit
            return .proceed(admission.rateLimitLines)
        case .answer(let answer):
            return .answer(answer)
        }
    }

    /// A target that was not canonicalized, as sent but without its query: a query may carry a
    /// secret (RFC 6750's `access_token`), and no log holds one.
    static func pathForLog(_ uri: String) -> String {
        String(uri.prefix { $0 != "?" })
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
