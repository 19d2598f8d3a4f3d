/// Where each of a client's limits in force comes from, for `portcullis client list` and the
/// admin API: its own (`client`), a role (`role NAME`) or `client_limits`.
public struct LimitSources: Sendable, Equatable {
    public var limits: ClientLimits
    public var rate: String?
    public var quota: String?
    public var concurrency: String?

    /// `rate 10/s burst 20 (role ops), quota 10000/d (client_limits)`; `-` with none.
    public var summary: String {
        var parts: [String] = []
        if let rate = self.limits.rate { parts.append("rate \(rate) burst \(self.limits.effectiveBurst) (\(self.rate ?? "-"))") }
        if let quota = self.limits.quota { parts.append("quota \(quota) (\(self.quota ?? "-"))") }
        if let concurrency = self.limits.concurrency { parts.append("concurrency \(concurrency) (\(self.concurrency ?? "-"))") }
        return parts.isEmpty ? "-" : parts.joined(separator: ", ")
    }

    /// `{"rate": "10/s", "burst": 20, ..., "sources": {"rate": "role ops", ...}}`.
    public var jsonObject: [String: Any] {
        var object = self.limits.jsonObject
        if self.limits.rate != nil { object["burst"] = self.limits.effectiveBurst }
        var sources: [String: Any] = [:]
        if self.limits.rate != nil { sources["rate"] = self.rate }
        if self.limits.quota != nil { sources["quota"] = self.quota }
        if self.limits.concurrency != nil { sources["concurrency"] = self.concurrency }
        object["sources"] = sources
        return object
    }
}

extension GatewayConfig {
    /// The limits in force for `client` (as ``limits(of:)``) and the level each comes from.
    public func limitSources(of client: ClientConfig) -> LimitSources {
        let limits = self.limits(of: client)
        let roles = client.roles.compactMap { name in self.roles.first { $0.name == name } }
        func source(_ value: (ClientLimits) -> AnyHashable?) -> String? {
            guard let wanted = value(limits) else { return nil }
            if let own = client.limits, value(own) == wanted { return "client" }
            if let role = roles.first(where: { $0.limits.map(value) == wanted }) { return "role \(role.name)" }
            return "client_limits"
        }
        return LimitSources(
            limits: limits,
            rate: source { $0.rate },
            quota: source { $0.quota },
            concurrency: source { $0.concurrency }
        )
    }
}
