import NIOCore
import NIOHTTP1
import PortcullisAuth
import PortcullisPolicy

/// The policy step of the request path, after the client record (DESIGN.md): the client's
/// address allowlist (403 `ip_not_allowed`), the role decision on method and canonical path
/// (403 `insufficient_scope`), and for `profile: cipp` the tenant (`tenantFilter` in the query,
/// else in a JSON body) and every sub-request of `POST /api/$batch`. Pure decisions: the
/// connection handler carries them out.
enum RequestPolicy {
    /// What the access log records of a decision: a stable `reason` code, the deciding rule
    /// (an index into `AccessPolicy.rules`) and the tenant the request named.
    struct Outcome {
        var reason: String
        var rule: Int? = nil
        var tenant: String? = nil
    }

    enum Verdict {
        case allow(Outcome)
        case deny(ErrorResponse, Outcome)
        /// The decision needs the body: read it (at most `max_inspect_body` bytes, else 413),
        /// then call `decide(body:...)`; the bytes are forwarded unchanged if it allows.
        case readBody(BodyCheck)
    }

    enum BodyCheck {
        /// No `tenantFilter` in the query: the body may name the tenant.
        case tenant
        case batch
    }

    struct Request {
        var client: ClientRecord
        var address: IPAddress
        var method: HTTPMethod
        var target: CanonicalTarget
        var hasBody: Bool
        var bodyIsJSON: Bool
    }

    static func decide(_ request: Request, settings: ProxySettings) -> Verdict {
        // Read in place: binding the set would copy it out of the record (three retains).
        if request.client.allowedIPs?.contains(request.address) == false {
            return .deny(.ipNotAllowed, Outcome(reason: "ip_not_allowed"))
        }
        let policy = settings.policy
        let decision = policy.decide(client: request.client.policyIndex, method: request.method.rawValue, path: request.target.path)
        guard decision.isAllowed else {
            return .deny(
                .insufficientScope(decision.outcome == .denyRule ? "a deny rule of the client's roles matches" : "no role of the client allows this request"),
                Outcome(reason: String(code: decision.reason), rule: decision.rule)
            )
        }
        guard settings.cipp else { return .allow(Outcome(reason: "allowed", rule: decision.rule)) }

        if request.method == .POST && Self.isBatch(request.target.path) {
            return .readBody(.batch)
        }
        switch CIPPRequest.tenant(inQuery: request.target.query) {
        case .ambiguous(let why):
            return .deny(.badRequest(why), Outcome(reason: "bad_request", rule: decision.rule))
        case .named(let tenant):
            // A JSON body could name another tenant: read it to refuse the ambiguity.
            if request.hasBody && request.bodyIsJSON { return .readBody(.tenant) }
            return Self.tenantVerdict(policy.checkTenant(tenant, client: request.client.policyIndex, decision: decision), decision, tenant)
        case .none:
            if request.hasBody && request.bodyIsJSON {
                return .readBody(.tenant)
            }
            return Self.tenantVerdict(policy.checkTenant(nil, client: request.client.policyIndex, decision: decision), decision, nil)
        }
    }

    /// The decision once the body is here.
    static func decide(_ request: Request, body: ByteBuffer, check: BodyCheck, settings: ProxySettings) -> Verdict {
        let policy = settings.policy
        let client = request.client.policyIndex
        switch check {
        case .tenant:
            let decision = policy.decide(client: client, method: request.method.rawValue, path: request.target.path)
            let inQuery = CIPPRequest.tenant(inQuery: request.target.query)
            switch (inQuery, CIPPRequest.tenant(inJSONBody: body.readableBytesView)) {
            case (_, .ambiguous(let why)), (.ambiguous(let why), _):
                return .deny(.badRequest(why), Outcome(reason: "bad_request", rule: decision.rule))
            case (.named(let query), .named(let inBody)) where query.lowercased() != inBody.lowercased():
                return .deny(.badRequest("the query and the body name different tenants"), Outcome(reason: "bad_request", rule: decision.rule))
            case (.named(let tenant), _), (.none, .named(let tenant)):
                return Self.tenantVerdict(policy.checkTenant(tenant, client: client, decision: decision), decision, tenant)
            case (.none, .none):
                return Self.tenantVerdict(policy.checkTenant(nil, client: client, decision: decision), decision, nil)
            }
        case .batch:
            let items: [CIPPRequest.BatchItem]
            switch CIPPRequest.batch(inJSONBody: body.readableBytesView) {
            case .success(let parsed): items = parsed
            case .failure(let error): return .deny(.badRequest(error.description), Outcome(reason: "bad_request"))
            }
            // One sub-request denied: the whole batch is (DESIGN.md).
            for item in items {
                guard case .success(let target) = CanonicalPath.canonicalize(item.target) else {
                    return .deny(.badRequest("a $batch url is not a valid path"), Outcome(reason: "bad_request"))
                }
                if let violation = settings.pathFirewall.check(target.path) {
                    return .deny(.badRequest("a $batch url: \(violation)"), Outcome(reason: violation.reason))
                }
                if Self.isBatch(target.path) {
                    return .deny(.badRequest("a $batch may not contain a $batch"), Outcome(reason: "bad_request"))
                }
                let decision = policy.decide(client: client, method: item.method, path: target.path)
                guard decision.isAllowed else {
                    return .deny(
                        .insufficientScope("a $batch sub-request (\(item.method) \(target.path)) is not allowed"),
                        Outcome(reason: String(code: decision.reason), rule: decision.rule)
                    )
                }
                var tenant: String?
                switch CIPPRequest.tenant(inQuery: target.query) {
                case .ambiguous(let why): return .deny(.badRequest(why), Outcome(reason: "bad_request"))
                case .named(let named): tenant = named
                case .none:
                    switch item.bodyTenant {
                    case .ambiguous(let why): return .deny(.badRequest(why), Outcome(reason: "bad_request"))
                    case .named(let named): tenant = named
                    case .none: tenant = nil
                    }
                }
                let verdict = policy.checkTenant(tenant, client: client, decision: decision)
                guard verdict.isAllowed else {
                    return .deny(
                        .insufficientScope("a $batch sub-request (\(item.method) \(target.path)) is outside the client's tenants"),
                        Outcome(reason: String(code: verdict.reason), rule: decision.rule, tenant: tenant)
                    )
                }
            }
            return .allow(Outcome(reason: "allowed"))
        }
    }

    private static func tenantVerdict(_ verdict: TenantVerdict, _ decision: AccessDecision, _ tenant: String?) -> Verdict {
        let outcome = Outcome(reason: String(code: verdict.reason), rule: decision.rule, tenant: tenant)
        switch verdict {
        case .allowed: return .allow(outcome)
        case .tenantRequired: return .deny(.insufficientScope("this endpoint needs a tenantFilter the client's roles cover"), outcome)
        case .tenantNotAllowed: return .deny(.insufficientScope("the tenant is not one of the client's tenants"), outcome)
        case .notAllowed: return .deny(.insufficientScope("no role of the client allows this request"), outcome)
        }
    }

    /// `/api/$batch`, in any case (CIPP endpoint names are case-insensitive).
    static func isBatch(_ path: Substring) -> Bool {
        path.utf8.count == 11 && path.lowercased() == "/api/$batch"
    }
}

extension String {
    /// A stable code kept as a `StaticString` by the policy (short ASCII: no allocation).
    init(code: StaticString) {
        self = code.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
    }
}
