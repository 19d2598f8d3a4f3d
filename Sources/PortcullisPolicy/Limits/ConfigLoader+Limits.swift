extension ConfigLoader {
    static let limitKeys = ["rate", "burst", "quota", "concurrency"]

    /// `{rate: 10/s, burst: 20, quota: 10000/d, concurrency: 4}` (`client_limits:`,
    /// `roles.X.limits`, `clients[].limits`).
    static func clientLimits(_ node: ConfigNode, _ errors: inout [ConfigError]) -> ClientLimits? {
        guard let entries = node.mapping(&errors) else { return nil }
        node.checkKeys(entries, known: Self.limitKeys, &errors)
        let errorCount = errors.count
        var limits = ClientLimits()
        for entry in entries {
            let value = entry.value
            switch entry.key {
            case "rate":
                guard let text = value.string(&errors) else { continue }
                guard let rate = RateSpec(parsing: text) else {
                    errors.append(value.error("expected a rate such as 10/s, 100/m or 5000/h"))
                    continue
                }
                limits.rate = rate
            case "burst":
                limits.burst = value.integer(&errors, in: 1...1_000_000)
            case "quota":
                guard let text = value.string(&errors) else { continue }
                guard let quota = QuotaSpec(parsing: text) else {
                    errors.append(value.error("expected a quota such as 10000/d or 200000/month (UTC calendar days and months)"))
                    continue
                }
                limits.quota = quota
            case "concurrency":
                limits.concurrency = value.integer(&errors, in: 1...100_000)
            default:
                break
            }
        }
        if limits.burst != nil && limits.rate == nil && errors.count == errorCount {
            errors.append(node.error("burst needs a rate beside it"))
        }
        return errors.count == errorCount ? limits : nil
    }
}
