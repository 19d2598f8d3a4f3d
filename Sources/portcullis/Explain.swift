import ArgumentParser
import Foundation
import PortcullisPolicy

/// `portcullis explain DIR --client ID --method M --path P [--ip A] [--tenant T] [--body JSON] [--tenants FILE]`: what the
/// gateway would decide for such a request (after a valid token), and the rule that decided.
struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the decision for a request by a client, and the role and rule (file:line) that made it."
    )

    @Argument(help: "The policy directory.")
    var directory: String

    @Option(name: .long, help: "The client id (as its tokens name it).")
    var client: String

    @Option(name: .long, help: "The HTTP method.")
    var method: String

    @Option(name: .long, help: "The request target, e.g. /api/ListUsers?tenantFilter=contoso.onmicrosoft.com")
    var path: String

    @Option(name: .long, help: "The caller's address (checked against allowed_ips).")
    var ip: String?

    @Option(name: .long, help: "The tenant the request names (CIPP profile): added to the query as tenantFilter.")
    var tenant: String?

    @Option(name: .long, help: "The request body (CIPP profile: a JSON body naming a tenant, or a $batch); @FILE reads a file.")
    var body: String?

    @Option(name: .long, help: "CIPP's tenant list (an export of ListTenants), to resolve tenant ids and domains as the gateway does with tenant_directory: {upstream:}.")
    var tenants: String?

    @Flag(name: .long, help: "Print the answer as one JSON object.")
    var json = false

    func run() throws {
        let config = try loadOrExit(self.directory)
        var directory: TenantDirectory?
        if let path = self.tenants {
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            switch TenantDirectory.parse(data, source: path) {
            case .success(let parsed): directory = parsed
            case .failure(let error): throw ValidationError(error.description)
            }
        }
        var body: [UInt8]?
        if let text = self.body {
            if text.hasPrefix("@") {
                guard let data = FileManager.default.contents(atPath: String(text.dropFirst())) else {
                    throw ValidationError("cannot read \(text.dropFirst())")
                }
                body = Array(data)
            } else {
                body = Array(text.utf8)
            }
        }
        let answer = Self.answer(
            config: config,
            client: self.client,
            method: self.method.uppercased(),
            target: self.path,
            ip: self.ip,
            tenant: self.tenant,
            body: body,
            tenants: directory
        )
        print(self.json ? answer.json : answer.lines.joined(separator: "\n"))
        if !answer.allowed { throw ExitCode(2) }
    }

    /// What `explain` answers: the verdict, its access-log reason and status, why, the deciding
    /// rule, and the checks its arguments left out.
    struct Answer {
        var allowed: Bool
        var reason: String
        var status: Int
        var why: String
        var rule: String?
        var tenant: String?
        /// The denial is about the tenant: the answer's first line names it.
        var deniedForTenant = false
        var details: [String] = []
        var notChecked: [String] = []

        static func deny(_ reason: String, _ status: Int, _ why: String) -> Answer {
            Answer(allowed: false, reason: reason, status: status, why: why)
        }

        var lines: [String] {
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

        var json: String {
            var object: [String: Any] = [
                "decision": self.allowed ? "allow" : "deny", "reason": self.reason, "status": self.status,
                "not_checked": self.notChecked, "details": self.details,
            ]
            if !self.why.isEmpty { object["why"] = self.why }
            if let rule = self.rule { object["rule"] = rule }
            if let tenant = self.tenant { object["tenant"] = tenant }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// The decision is `RequestDecision`'s, as in the gateway; the client record and address
    /// checks are those the gateway makes before it.
    static func answer(
        config: GatewayConfig,
        client id: String,
        method: String,
        target: String,
        ip: String?,
        tenant: String?,
        body: [UInt8]? = nil,
        tenants: TenantDirectory? = nil
    ) -> Answer {
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
        var answer: Answer
        switch verdict {
        case .allow(let outcome):
            answer = Answer(allowed: true, reason: outcome.reason.rawValue, status: 200, why: "", tenant: outcome.tenant)
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
