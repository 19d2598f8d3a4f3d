import ArgumentParser
import PortcullisPolicy

/// `portcullis explain DIR --client ID --method M --path P [--ip A] [--tenant T]`: what the
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

    @Option(name: .long, help: "The tenant the request names (CIPP profile; else read from the query).")
    var tenant: String?

    func run() throws {
        let config = try loadOrExit(self.directory)
        let lines = Self.explain(config: config, client: self.client, method: self.method.uppercased(), target: self.path, ip: self.ip, tenant: self.tenant)
        print(lines.joined(separator: "\n"))
        if lines.first?.hasPrefix("allow") != true { throw ExitCode(2) }
    }

    /// The answer as lines: the verdict first (`allow` or `deny (reason)`), then why.
    static func explain(config: GatewayConfig, client id: String, method: String, target: String, ip: String?, tenant: String?) -> [String] {
        guard let client = config.clients.first(where: { $0.id == id }) else {
            return ["deny (unknown_client): no client '\(id)' in \(config.directory) -> 401"]
        }
        guard client.enabled else { return ["deny (client_disabled): '\(id)' is disabled -> 401"] }
        var lines: [String] = []
        if let ip {
            guard let address = IPAddress(parsing: ip) else { return ["deny: '\(ip)' is not an IP address"] }
            guard client.allowsAddress(address) else {
                return ["deny (ip_not_allowed): \(ip) is not in the allowed_ips of '\(id)' -> 403"]
            }
            lines.append("  address \(ip): allowed (\(client.allowedIPs == nil ? "no allowed_ips: any address" : "in allowed_ips"))")
        }
        let canonical: CanonicalTarget
        switch CanonicalPath.canonicalize(target) {
        case .success(let value): canonical = value
        case .failure(let error): return ["deny (bad_request): \(error) -> 400"]
        }
        if let violation = config.pathFirewall.check(canonical.path) {
            return ["deny (\(violation.reason)): \(violation) -> 400 (path_firewall)"]
        }
        let policy = config.policy
        guard let index = policy.clientIndex(id: id) else { return ["deny (role_denied): '\(id)' has no roles -> 403"] }
        let decision = policy.decide(client: index, method: method, path: canonical.path)
        let roles = client.roles.joined(separator: ", ")
        lines.append("  client \(id) (roles: \(roles.isEmpty ? "none" : roles)), \(method) \(canonical.path)")
        guard decision.isAllowed else {
            let rule = decision.rule.map { "\n  decided by " + policy.rules[$0].description } ?? "\n  no allow rule of the client's roles matches (deny by default)"
            return ["deny (\(decision.reason)) -> 403" + rule] + lines
        }
        if let rule = decision.rule { lines.append("  allowed by " + policy.rules[rule].description) }
        if config.upstream.profile == "cipp" {
            var named = tenant
            if named == nil, case .named(let fromQuery) = CIPPRequest.tenant(inQuery: canonical.query) { named = fromQuery }
            let verdict = policy.checkTenant(named, client: index, decision: decision)
            guard verdict.isAllowed else {
                return ["deny (\(verdict.reason)): tenant \(named ?? "(none named)") -> 403"] + lines
            }
            lines.append("  tenant \(named ?? "(none named)"): allowed")
        }
        return ["allow"] + lines
    }
}
