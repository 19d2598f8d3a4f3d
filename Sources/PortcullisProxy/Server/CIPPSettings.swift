import PortcullisPolicy

/// What `profile: cipp` adds to the settings.
struct CIPPSettings: Sendable {
    let maxBatchItems: Int
    /// `tenant_directory: {file:}`, read with this load; nil when the directory is fetched from
    /// the upstream (each loop then holds the last good copy) or not configured.
    let fileDirectory: TenantDirectory?
    /// `tenant_directory: {upstream:}`: until the first fetch, no tenant resolves.
    let fetchesDirectory: Bool

    init(_ config: GatewayConfig) {
        self.maxBatchItems = config.limits.maxBatchItems
        switch config.tenantDirectory {
        case .file(_, let directory)?:
            self.fileDirectory = directory
            self.fetchesDirectory = false
        case .upstream?:
            self.fileDirectory = nil
            self.fetchesDirectory = true
        case nil:
            self.fileDirectory = nil
            self.fetchesDirectory = false
        }
    }

    static let notFetchedYet = TenantDirectory(tenants: [], source: "the upstream (not fetched yet)")
}
