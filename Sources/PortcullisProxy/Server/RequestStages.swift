import NIOCore
import NIOHTTP1
import PortcullisAuth
import PortcullisPolicy

/// The request path of DESIGN.md as stages, in the order a request meets them: admit,
/// canonicalise, screen the path, client address, local routes, authenticate, authorise
/// (`RequestPolicy.decide`), the client's limits, upstream credential, upstream head. Each takes
/// what the stages before it found and passes the request on or answers it now; none writes to
/// the connection. `ClientConnectionHandler.requestHeadReceived` runs them top to bottom.
enum RequestStages {
    /// An answer from the gateway itself, in place of the upstream's.
    struct Answer {
        var response: ErrorResponse
        /// The connection ends after this answer.
        var close: Bool
        var reason: AccessLogReason
        /// A refused token whose signature verified: the client it names, for the log.
        var clientID: String? = nil
    }

    /// What a stage decided.
    enum Step<Value> {
        case proceed(Value)
        case answer(Answer)
    }

    /// Requests the gateway takes at all: none while draining, no `CONNECT`.
    static func admit(_ head: ParsedRequestHead, isDraining: Bool) -> Step<Void> {
        if isDraining { return .answer(Answer(response: .draining, close: true, reason: .draining)) }
        if head.method == .CONNECT {
            return .answer(Answer(response: .badRequest("CONNECT is not supported"), close: true, reason: .badRequest))
        }
        return .proceed(())
    }

    /// The target in its one canonical form, or 400 for a target that has none.
    static func canonicalise(_ head: ParsedRequestHead) -> Step<CanonicalTarget> {
        switch CanonicalPath.canonicalize(head.uri) {
        case .success(let target): return .proceed(target)
        case .failure(let error): return .answer(Answer(response: .badRequest("\(error)"), close: true, reason: .badRequest))
        }
    }

    /// The path firewall, then expectations the gateway cannot meet (417).
    static func screen(_ target: CanonicalTarget, _ head: ParsedRequestHead, firewall: PathFirewall) -> Step<Void> {
        if let violation = firewall.check(target) {
            return .answer(Answer(response: .badRequest(violation.description), close: true, reason: .pathFirewall(violation)))
        }
        if head.hasUnsupportedExpectation {
            return .answer(Answer(response: .expectationFailed, close: true, reason: .expectationFailed))
        }
        return .proceed(())
    }

    /// The peer, or the address a trusted proxy forwarded for.
    static func clientAddress(_ head: ParsedRequestHead, peer: IPAddress, peerText: String, trusted: CIDRSet?) -> ClientAddress {
        guard let trusted else { return ClientAddress(address: peer, forwardedFor: peerText) }
        return ClientAddress.resolve(peer: peer, peerText: peerText, fields: head.fields, trusted: trusted)
    }

    /// One of the built-in issuer's paths: the key set is answered now; a token or revocation
    /// request proceeds to have its form body read.
    static func localRoute(_ route: LocalRoute, service: TokenService, _ head: ParsedRequestHead, address: IPAddress) -> Step<TokenService.Request> {
        switch route {
        case .jwks:
            guard head.method == .GET || head.method == .HEAD else {
                return .answer(Answer(response: .methodNotAllowed(allow: "GET, HEAD"), close: false, reason: .methodNotAllowed))
            }
            let keys = ErrorResponse(status: .ok, error: "", description: "", rawBody: service.issuer.jwksDocument)
            return .answer(Answer(response: keys, close: false, reason: .jwks))
        case .token, .revoke:
            guard head.method == .POST else {
                return .answer(Answer(response: .methodNotAllowed(allow: "POST"), close: false, reason: .methodNotAllowed))
            }
            if let length = head.contentLength, length > LocalRoute.maxBody {
                return .answer(Answer(response: .bodyTooLarge, close: true, reason: .bodyTooLarge))
            }
            // Two credentials are ambiguous: the endpoint sees a malformed one and refuses.
            let authorization = head.authorizationCount > 1 ? "" : head.authorization
            return .proceed(TokenService.Request(contentType: head.contentType, authorization: authorization, body: [], address: address))
        }
    }

    /// The bearer token -> the verified-token cache, or signature and claims -> the client
    /// record. A 401 keeps the connection.
    /// `tokenID` is set to the token's `jti` whenever its signature verified.
    static func authenticate(
        _ head: ParsedRequestHead,
        authenticator: TokenAuthenticator,
        cache: inout VerifiedTokenCache,
        now: Int64,
        tokenID: inout String?
    ) -> Step<ClientRecord> {
        let result: Result<ClientRecord, AuthFailure>
        if head.authorizationCount > 1 {
            // Two credentials are ambiguous: neither is believed.
            result = .failure(.malformedCredential)
        } else if let authorization = head.authorization {
            result = Self.verify(authorization, authenticator: authenticator, cache: &cache, now: now, tokenID: &tokenID)
        } else {
            result = .failure(.missingToken)
        }
        switch result {
        case .success(let client): return .proceed(client)
        case .failure(let failure):
            return .answer(
                Answer(response: .unauthorized(failure), close: false, reason: .unauthenticated(failure.reason), clientID: failure.clientID)
            )
        }
    }

    private static func verify(
        _ authorization: String,
        authenticator: TokenAuthenticator,
        cache: inout VerifiedTokenCache,
        now: Int64,
        tokenID: inout String?
    ) -> Result<ClientRecord, AuthFailure> {
        guard let token = BearerToken.candidate(from: authorization) else { return .failure(.malformedCredential) }
        // A hit is a token byte-identical to one verified before: its alphabet was checked then.
        if let identity = cache.lookup(token, now: now) {
            tokenID = identity.tokenID
            return authenticator.client(for: identity)
        }
        // The b64token alphabet is checked only to say why a token failed: one that verifies is
        // three strict base64url parts, which that alphabet holds, and one outside it fails
        // before any signature check.
        switch authenticator.verify(token, now: now, headers: &cache.headers) {
        case .success(let identity):
            cache.insert(token, identity)
            tokenID = identity.tokenID
            return authenticator.client(for: identity)
        case .failure(let failure):
            guard BearerToken.isWellFormed(token) else { return .failure(.malformedCredential) }
            tokenID = failure.tokenID
            return .failure(failure)
        }
    }

    /// What an admitted request holds of its client's limits until the exchange ends.
    struct LimitAdmission {
        /// Holds one of the client's concurrency slots (given back when the exchange ends).
        var heldLimit: ClientLimiter?
        /// `RateLimit-Policy` and `RateLimit` for the response.
        var rateLimitLines: String?
    }

    /// The client's rate, quota and concurrency, after the policy allowed the request: a
    /// `$batch` costs its number of items. 429 beyond them.
    static func admitLimits(_ client: ClientRecord, cost: Int, settings: ProxySettings, nowNanos: UInt64, nowSeconds: Int64) -> Step<LimitAdmission> {
        guard settings.hasClientLimits else { return .proceed(LimitAdmission()) }
        let slots = settings.clientLimits
        guard client.policyIndex >= 0, client.policyIndex < slots.count, let slot = slots[client.policyIndex] else {
            return .proceed(LimitAdmission())
        }
        switch slot.limiter.admit(slot.limits, cells: cost, nowNanos: nowNanos, nowSeconds: nowSeconds) {
        case .success(let allowance):
            return .proceed(
                LimitAdmission(
                    heldLimit: slot.limits.concurrency != nil ? slot.limiter : nil,
                    rateLimitLines: slot.admittedLines(allowance)
                )
            )
        case .failure(let refusal):
            return .answer(Answer(response: .limited(refusal, slot: slot), close: false, reason: AccessLogReason(refusal)))
        }
    }

    /// `upstream.auth`: the header line the upstream gets, or 502 while there is none to send.
    static func upstreamCredential(_ settings: ProxySettings, nowNanos: UInt64) -> Step<[UInt8]?> {
        guard let credential = settings.upstreamCredential else { return .proceed(nil) }
        guard let line = credential.headerLine(atUptimeNanoseconds: nowNanos) else {
            return .answer(Answer(response: .upstreamCredentialUnavailable, close: false, reason: .upstreamCredentialUnavailable))
        }
        return .proceed(line)
    }

    /// The request head the upstream gets: the canonical target, the client's fields less
    /// those the gateway drops, then its own (`HeaderRewriter`).
    static func upstreamHead(
        _ head: ParsedRequestHead,
        target: CanonicalTarget,
        client: ClientRecord,
        address: ClientAddress,
        credentialLine: [UInt8]?,
        requestID: String,
        newParentID: UInt64?,
        forwardedProto: String,
        settings: ProxySettings,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var forwarding = HeaderRewriter.Forwarding(
            authority: settings.upstream.authority,
            proto: forwardedProto,
            forwardedFor: address.forwardedFor,
            requestID: requestID,
            chunked: head.chunked,
            clientID: client.id,
            clientName: client.name,
            newParentID: newParentID
        )
        forwarding.credentialLine = credentialLine
        forwarding.credentialHeaderName = settings.credentialHeaderName
        forwarding.dropsUnderscoredNames = settings.dropsUnderscoredHeaderNames
        var bytes = allocator.buffer(capacity: 512)
        HeaderRewriter.writeUpstreamHead(method: head.method, uri: target.uri, fields: head.fields, forwarding, into: &bytes)
        return bytes
    }
}
