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
        let lines = Self.explain(
            config: config,
            client: self.client,
            method: self.method.uppercased(),
            target: self.path,
            ip: self.ip,
            tenant: self.tenant,
            body: body,
            tenants: directory
        )
        print(lines.joined(separator: "\n"))
        if lines.first?.hasPrefix("allow") != true { throw ExitCode(2) }
    }

    /// The answer as lines: the verdict first (`allow` or `deny (reason)`), then why, then the
    /// checks its arguments left out. The decision is `RequestDecision`'s, as in the gateway.
    static func explain(
        config: GatewayConfig,
        client id: String,
        method: String,
        target: String,
        ip: String?,
        tenant: String?,
        body: [UInt8]? = nil,
        tenants: TenantDirectory? = nil
    ) -> [String] {
        guard let client = config.clients.first(where: { $0.id == id }) else {
            return ["deny (unknown_client): no client '\(id)' in \(config.directory) -> 401"]
        }
        guard client.enabled else { return ["deny (client_disabled): '\(id)' is disabled -> 401"] }
        var lines: [String] = []
        var notChecked: [String] = []
        if let ip {
            guard let address = IPAddress(parsing: ip) else { return ["deny: '\(ip)' is not an IP address"] }
            guard client.allowsAddress(address) else {
                return ["deny (ip_not_allowed): \(ip) is not in the allowed_ips of '\(id)' -> 403"]
            }
            lines.append("  address \(ip): allowed (\(client.allowedIPs == nil ? "no allowed_ips: any address" : "in allowed_ips"))")
        } else if let allowed = client.allowedIPs {
            notChecked.append("  address not checked (no --ip); this client is limited to \(allowed.isEmpty ? "no address at all" : allowed.prefixes.map { "\($0)" }.joined(separator: ", "))")
        }
        var fullTarget = target
        if let tenant {
            let encoded = tenant.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? tenant
            fullTarget += (target.contains("?") ? "&" : "?") + "tenantFilter=" + encoded
        }
        let canonical: CanonicalTarget
        switch CanonicalPath.canonicalize(fullTarget) {
        case .success(let value): canonical = value
        case .failure(let error): return ["deny (bad_request): \(error) -> 400"]
        }
        let policy = config.policy
        guard let index = policy.clientIndex(id: id) else { return ["deny (role_denied): '\(id)' has no roles -> 403"] }
        let roles = client.roles.joined(separator: ", ")
        lines.append("  client \(id) (roles: \(roles.isEmpty ? "none" : roles)), \(method) \(canonical.path)")

        var cipp: RequestDecision.CIPP?
        if config.upstream.profile == "cipp" {
            var directory = tenants
            switch config.tenantDirectory {
            case .file(_, let loaded)?:
                directory = directory ?? loaded
            case .upstream(let path, _)? where directory == nil:
                notChecked.append(
                    "  tenants compared as written: the gateway resolves ids and domains through the tenant list it fetches from the upstream (\(path)); pass --tenants FILE (an export of it) to do the same here"
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
        switch verdict {
        case .allow(let outcome):
            if let rule = outcome.rule { lines.append("  allowed by " + policy.rules[rule].description) }
            if cipp != nil {
                lines.append("  tenant \(outcome.tenant ?? "(none named)"): allowed")
            }
            return ["allow"] + lines + notChecked
        case .deny(let refusal, let outcome):
            let status: String
            let why: String
            switch refusal {
            case .forbidden(let text): (status, why) = ("403", text)
            case .badRequest(let text): (status, why) = ("400", text)
            }
            var head = "deny (\(outcome.reason.rawValue))"
            if outcome.reason == .tenantDenied || outcome.reason == .tenantRequired || outcome.reason == .tenantUnknown {
                head += ": tenant \(outcome.tenant ?? "(none named)")"
            }
            var explanation = ["\(head) -> \(status)", "  \(why)"]
            if let rule = outcome.rule {
                explanation.append("  decided by " + policy.rules[rule].description)
            } else if outcome.reason == .roleDenied {
                explanation[1] += " (deny by default)"
            }
            return explanation + lines + notChecked
        case .needsBody:
            return ["deny (bad_request): the request cannot be decided -> 400"] + lines + notChecked
        }
    }
}
