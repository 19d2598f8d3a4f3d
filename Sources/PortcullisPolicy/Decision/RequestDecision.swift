/// The decision on a request once its client is known (DESIGN.md's request path, "decision on
/// method, canonical path, tenant, `$batch` items"): one pure function that the proxy and
/// `portcullis explain` both call, so they cannot disagree.
///
/// A request is decided from its head first; under `profile: cipp` a request with a body needs
/// the body too (the tenant it names, or the items of a `$batch`), and `decide(_:body:...)`
/// finishes the decision once the body has been read.
public enum RequestDecision {
    /// What the request says, as the decision reads it.
    public struct Input: Sendable {
        /// The client's index in `AccessPolicy` (`clientIndex(id:)`).
        public var client: Int
        public var method: String
        /// The canonical path, without the query.
        public var path: Substring
        /// The raw query, after `?`.
        public var query: Substring?
        public var hasBody: Bool

        public init(client: Int, method: String, path: Substring, query: Substring?, hasBody: Bool) {
            self.client = client
            self.method = method
            self.path = path
            self.query = query
            self.hasBody = hasBody
        }
    }

    /// What `profile: cipp` adds to the decision.
    public struct CIPP: Sendable {
        /// Resolves tenant ids and domains; nil compares names as written.
        public var directory: TenantDirectory?
        /// `limits.max_batch_items`.
        public var maxBatchItems: Int

        public init(directory: TenantDirectory?, maxBatchItems: Int) {
            self.directory = directory
            self.maxBatchItems = maxBatchItems
        }
    }

    /// The access log's `reason` for a decision (README, "Access log").
    public enum Reason: String, Sendable, Hashable {
        case allowed
        /// No allow rule of the client's roles matches: deny by default.
        case roleDenied = "role_denied"
        /// A deny rule of one of the client's roles matches.
        case denyRule = "deny_rule"
        /// The endpoint needs a tenant the client's roles cover, and the request names none.
        case tenantRequired = "tenant_required"
        /// No allowing role covers the tenant named.
        case tenantDenied = "tenant_denied"
        /// The tenant named is not in the tenant directory, and a role limits tenants.
        case tenantUnknown = "tenant_unknown"
        /// The request's tenant fields name different tenants (400).
        case tenantConflict = "tenant_conflict"
        /// An endpoint name holds a character the backend reads as a wildcard (400).
        case endpointWildcard = "endpoint_wildcard"
        /// A `$batch` body that cannot be read for sure (400).
        case batchInvalid = "batch_invalid"
        /// A body or query that cannot be read for sure (400).
        case badRequest = "bad_request"
    }

    public struct Outcome: Sendable, Equatable {
        public var reason: Reason
        /// The deciding rule, an index into `AccessPolicy.rules`.
        public var rule: Int?
        /// The tenant the request named, as it named it.
        public var tenant: String?
        /// For a `$batch`, the item that was denied (0-based).
        public var batchItem: Int?
        /// What the request counts as against rate limits and quotas: a `$batch` its items.
        public var cost: Int

        public init(reason: Reason, rule: Int? = nil, tenant: String? = nil, batchItem: Int? = nil, cost: Int = 1) {
            self.reason = reason
            self.rule = rule
            self.tenant = tenant
            self.batchItem = batchItem
            self.cost = cost
        }
    }

    /// How a refusal is answered.
    public enum Refusal: Sendable, Equatable {
        /// 403 `insufficient_scope`, with why.
        case forbidden(String)
        /// 400, with why.
        case badRequest(String)
    }

    public enum Verdict: Sendable, Equatable {
        case allow(Outcome)
        case deny(Refusal, Outcome)
        /// Read the body (at most `limits.max_inspect_body` bytes), then call `decide(_:body:...)`.
        case needsBody(BodyCheck)
    }

    public enum BodyCheck: Sendable, Equatable {
        /// The body may name the tenant.
        case tenant
        /// The items of a `$batch`.
        case batch
    }

    /// The decision from the request head. `cipp` is nil outside `profile: cipp`.
    public static func decide(_ input: Input, policy: AccessPolicy, cipp: CIPP?) -> Verdict {
        guard let cipp else {
            return Self.decideRoute(client: input.client, method: input.method, path: input.path, policy: policy)
        }
        // Before any rule: the rules match the name as written, CIPP's lookup would not.
        if CIPPRequest.hasWildcard(input.path.utf8) {
            return .deny(
                .badRequest("an endpoint name may not hold *, ?, [ or ] (the backend reads them as wildcards)"),
                Outcome(reason: .endpointWildcard)
            )
        }
        let decision = policy.decide(client: input.client, method: input.method, path: input.path)
        guard decision.isAllowed else { return Self.routeDenial(decision) }
        // CIPP batches whatever the method; with no body there is nothing to run.
        if Self.isBatch(input.path) {
            return input.hasBody ? .needsBody(.batch) : .allow(Outcome(reason: .allowed, rule: decision.rule))
        }
        let inQuery = CIPPRequest.tenant(inQuery: input.query)
        if case .ambiguous(let why) = inQuery {
            return .deny(.badRequest(why), Outcome(reason: .badRequest, rule: decision.rule))
        }
        // A body could name another tenant, even one not labelled JSON.
        if input.hasBody { return .needsBody(.tenant) }
        return Self.checkTenant(inQuery, input.client, decision, policy, cipp)
    }

    /// The decision once the body is here (after `.needsBody`).
    public static func decide(
        _ input: Input,
        body: some Collection<UInt8>,
        check: BodyCheck,
        policy: AccessPolicy,
        cipp: CIPP
    ) -> Verdict {
        switch check {
        case .tenant:
            let decision = policy.decide(client: input.client, method: input.method, path: input.path)
            guard decision.isAllowed else { return Self.routeDenial(decision) }
            let tenant = CIPPRequest.tenant(inQuery: input.query).merged(with: CIPPRequest.tenant(inJSONBody: body))
            return Self.checkTenant(tenant, input.client, decision, policy, cipp)
        case .batch:
            let items: [CIPPRequest.BatchItem]
            switch CIPPRequest.batch(inJSONBody: body, maximumItems: cipp.maxBatchItems) {
            case .success(let parsed): items = parsed
            case .failure(let error): return .deny(.badRequest(error.description), Outcome(reason: .batchInvalid))
            }
            // One item denied: the whole batch is.
            for (index, item) in items.enumerated() {
                if Self.isBatch(Substring(item.path)) {
                    return .deny(.badRequest("a $batch may not contain a $batch"), Outcome(reason: .batchInvalid, batchItem: index))
                }
                let decision = policy.decide(client: input.client, method: item.method, path: item.path)
                var verdict =
                    decision.isAllowed
                    ? Self.checkTenant(item.tenant, input.client, decision, policy, cipp) : Self.routeDenial(decision)
                guard case .deny(let refusal, var outcome) = verdict else { continue }
                outcome.batchItem = index
                let what = "$batch request \(index) (\(item.method) \(item.path))"
                switch refusal {
                case .forbidden(let why): verdict = .deny(.forbidden("\(what): \(why)"), outcome)
                case .badRequest(let why): verdict = .deny(.badRequest("\(what): \(why)"), outcome)
                }
                return verdict
            }
            return .allow(Outcome(reason: .allowed, rule: nil, cost: max(1, items.count)))
        }
    }

    /// The whole decision outside `profile: cipp`: the method and the canonical path against
    /// the client's roles.
    public static func decideRoute(client: Int, method: String, path: Substring, policy: AccessPolicy) -> Verdict {
        let decision = policy.decide(client: client, method: method, path: path)
        return decision.isAllowed ? .allow(Outcome(reason: .allowed, rule: decision.rule)) : Self.routeDenial(decision)
    }

    /// `/api/$batch` in any letter case.
    public static func isBatch(_ path: Substring) -> Bool {
        path.utf8.count == 11 && path.lowercased() == "/api/$batch"
    }

    private static func routeDenial(_ decision: AccessDecision) -> Verdict {
        if decision.outcome == .denyRule {
            return .deny(.forbidden("a deny rule of the client's roles matches"), Outcome(reason: .denyRule, rule: decision.rule))
        }
        return .deny(.forbidden("no role of the client allows this request"), Outcome(reason: .roleDenied, rule: decision.rule))
    }

    /// The tenant named (by the every-field rule) against the roles that allowed the request.
    private static func checkTenant(
        _ tenant: CIPPRequest.Tenant,
        _ client: Int,
        _ decision: AccessDecision,
        _ policy: AccessPolicy,
        _ cipp: CIPP
    ) -> Verdict {
        let name: String?
        switch tenant {
        case .none:
            name = nil
        case .named(let single):
            name = single
        case .ambiguous(let why):
            return .deny(.badRequest(why), Outcome(reason: .badRequest, rule: decision.rule))
        case .several(let names):
            // One tenant written as its id in one field and its domain in another is one tenant.
            let resolved = names.map { cipp.directory?.resolve($0) }
            guard let first = resolved[0], resolved.allSatisfy({ $0 == first }) else {
                return .deny(
                    .badRequest("the request names different tenants (\(names.joined(separator: ", "))) in its tenantFilter and tenantId fields"),
                    Outcome(reason: .tenantConflict, rule: decision.rule, tenant: names[0])
                )
            }
            name = names[0]
        }
        let outcome = { (reason: Reason) in Outcome(reason: reason, rule: decision.rule, tenant: name) }
        switch policy.checkTenant(name, client: client, decision: decision, directory: cipp.directory) {
        case .allowed:
            return .allow(outcome(.allowed))
        case .tenantRequired:
            return .deny(.forbidden("this endpoint needs a tenantFilter the client's roles cover"), outcome(.tenantRequired))
        case .tenantNotAllowed:
            if let name, let directory = cipp.directory, directory.resolve(name) == nil {
                return .deny(.forbidden("the tenant \(name) is not in the tenant directory"), outcome(.tenantUnknown))
            }
            return .deny(.forbidden("the tenant is not one of the client's tenants"), outcome(.tenantDenied))
        case .notAllowed:
            return Self.routeDenial(decision)
        }
    }
}
