import Foundation

/// What `portcullis explain` and the admin API's `POST /api/v1/explain` answer: the verdict, its access-log reason and status, why, the deciding
/// rule, and the checks its arguments left out.
public struct DecisionExplanation: Sendable {
    public var allowed: Bool
    public var reason: String
    public var status: Int
    public var why: String
    public var rule: String?
    public var tenant: String?
    /// The denial is about the tenant: the answer's first line names it.
    public var deniedForTenant = false
    public var details: [String] = []
    public var notChecked: [String] = []

    static func deny(_ reason: String, _ status: Int, _ why: String) -> DecisionExplanation {
        DecisionExplanation(allowed: false, reason: reason, status: status, why: why)
    }

    /// The answer as `portcullis explain` prints it.
    public var lines: [String] {
        var head = self.allowed ? "allow" : "deny (\(self.reason))"
        if !self.allowed, self.deniedForTenant {
            head += ": tenant \(self.tenant ?? "(none named)")"
        }
        if !self.allowed { head += " -> \(self.status)" }
        var lines = [head]
        if !self.allowed { lines.append("  " + self.why) }
        if let rule = self.rule { lines.append((self.allowed ? "  allowed by " : "  decided by ") + rule) }
        return lines + self.details.map { "  " + $0 } + self.notChecked.map { "  " + $0 }
    }

    /// The answer as one JSON object (`portcullis explain --json`, `POST /api/v1/explain`).
    public var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "decision": self.allowed ? "allow" : "deny", "reason": self.reason, "status": self.status,
            "not_checked": self.notChecked, "details": self.details,
        ]
        if !self.why.isEmpty { object["why"] = self.why }
        if let rule = self.rule { object["rule"] = rule }
        if let tenant = self.tenant { object["tenant"] = tenant }
        return object
    }

    public var json: String {
        let data = (try? JSONSerialization.data(withJSONObject: self.jsonObject, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

extension DecisionExplanation {
    /// The decision is `RequestDecision`'s, as in the gateway; the client record and address
    /// checks are those the gateway makes before it.
    public static func explain(
        config: GatewayConfig,
        client id: String,
        method: String,
        target: String,
        ip: String?,
        tenant: String?,
        body: [UInt8]? = nil,
        tenants: TenantDirectory? = nil
    ) -> DecisionExplanation {
        // In the gateway's order: the path and its firewall come before the token.
        var fullTarget = target
        if let tenant {
            let encoded = tenant.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? tenant
            fullTarget += (target.contains("?") ? "&" : "?") + "tenantFilter=" + encoded
        }
        let canonical: CanonicalTarget
        switch CanonicalPath.canonicalize(fullTarget) {
        case .success(let value): canonical = value
        case .failure(let error): return .deny("bad_request", 400, "\(error)")
        }
        if let violation = config.pathFirewall.check(canonical) {
            return .deny(violation.reason, 400, "\(violation) (path_firewall)")
        }
        guard let client = config.clients.first(where: { $0.id == id }) else {
            return .deny("unknown_client", 401, "no client '\(id)' in \(config.directory)")
        }
        guard client.enabled else { return .deny("client_disabled", 401, "'\(id)' is disabled") }
        var details: [String] = []
        var notChecked: [String] = []
        if let ip {
            guard let address = IPAddress(parsing: ip) else { return .deny("bad_request", 400, "'\(ip)' is not an IP address") }
            guard client.allowsAddress(address) else {
                return .deny("ip_not_allowed", 403, "\(ip) is not in the allowed_ips of '\(id)'")
            }
            details.append("address \(ip): allowed (\(client.allowedIPs == nil ? "no allowed_ips: any address" : "in allowed_ips"))")
        } else if let allowed = client.allowedIPs {
            let ranges = allowed.isEmpty ? "no address at all" : allowed.prefixes.map { "\($0)" }.joined(separator: ", ")
            notChecked.append("address not checked (no --ip); this client is limited to \(ranges)")
        }
        let policy = config.policy
        guard let index = policy.clientIndex(id: id) else { return .deny("role_denied", 403, "'\(id)' has no roles") }
        let roles = client.roles.joined(separator: ", ")
        details.append("client \(id) (roles: \(roles.isEmpty ? "none" : roles)), \(method) \(canonical.path)")

        var cipp: RequestDecision.CIPP?
        if config.upstream.profile == .cipp {
            var directory = tenants
            switch config.tenantDirectory {
            case .file(_, let loaded)?:
                directory = directory ?? loaded
            case .upstream(let path, _)? where directory == nil:
                notChecked.append(
                    "tenants compared as written: the gateway resolves ids and domains through the tenant list it fetches from the upstream (\(path)); pass --tenants FILE (an export of it) to do the same here"
                )
            case .upstream?, nil:
                break
            }
            cipp = RequestDecision.CIPP(directory: directory, maxBatchItems: config.limits.maxBatchItems)
        }
        let input = RequestDecision.Input(
            client: index,
            method: method,
            path: canonical.path,
            query: canonical.query,
            hasBody: body?.isEmpty == false
        )
        var verdict = RequestDecision.decide(input, policy: policy, cipp: cipp)
        if case .needsBody(let check) = verdict, let cipp {
            verdict = RequestDecision.decide(input, body: body ?? [], check: check, policy: policy, cipp: cipp)
        }
        let limits = config.limits(of: client)
        if !limits.isEmpty {
            var parts: [String] = []
            if let rate = limits.rate { parts.append("rate \(rate) (burst \(limits.effectiveBurst))") }
            if let quota = limits.quota { parts.append("quota \(quota) (UTC)") }
            if let concurrency = limits.concurrency { parts.append("concurrency \(concurrency)") }
            notChecked.append("limits apply and are not checked here: " + parts.joined(separator: ", ") + " (429 beyond)")
        }
        var answer: DecisionExplanation
        switch verdict {
        case .allow(let outcome):
            answer = DecisionExplanation(allowed: true, reason: outcome.reason.rawValue, status: 200, why: "", tenant: outcome.tenant)
            answer.rule = outcome.rule.map { policy.rules[$0].description }
            if cipp != nil { details.append("tenant \(outcome.tenant ?? "(none named)"): allowed") }
        case .deny(let refusal, let outcome):
            switch refusal {
            case .forbidden(let why): answer = .deny(outcome.reason.rawValue, 403, why)
            case .badRequest(let why): answer = .deny(outcome.reason.rawValue, 400, why)
            }
            answer.tenant = outcome.tenant
            answer.deniedForTenant = [.tenantDenied, .tenantRequired, .tenantUnknown].contains(outcome.reason)
            answer.rule = outcome.rule.map { policy.rules[$0].description }
            if outcome.rule == nil && outcome.reason == .roleDenied { answer.why += " (deny by default)" }
        case .needsBody:
            answer = .deny("bad_request", 400, "the request cannot be decided")
        }
        answer.details = details
        answer.notChecked = notChecked
        return answer
    }
}
