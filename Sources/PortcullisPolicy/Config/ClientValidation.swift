import Foundation
import Yams

/// What a change to one client is checked against: the issuers and role names, and the store
/// and the declared client ids. Read from a config directory section by section, so an error in
/// an unrelated section (a listener, the upstream, a role's body) does not stop an emergency
/// `portcullis client disable`.
public struct RegistryContext: Sendable {
    public var store: StoreConfig?
    public var issuers: [IssuerConfig]
    public var roleNames: [String]
    /// Ids of the `clients:` entries of the config directory (GitOps), even those with errors.
    public var declaredClientIDs: [String]
    /// The secrets the `clients:` entries declare (a rotation with grace keeps the declared one).
    public var declaredSecrets: [String: ClientSecrets]

    public init(
        store: StoreConfig?,
        issuers: [IssuerConfig],
        roleNames: [String],
        declaredClientIDs: [String],
        declaredSecrets: [String: ClientSecrets] = [:]
    ) {
        self.store = store
        self.issuers = issuers
        self.roleNames = roleNames
        self.declaredClientIDs = declaredClientIDs
        self.declaredSecrets = declaredSecrets
    }

    /// The context of a running (valid) configuration.
    public init(_ config: GatewayConfig) {
        self.store = config.store
        self.issuers = config.issuers
        self.roleNames = config.roles.map(\.name)
        self.declaredClientIDs = config.clients.map(\.id)
        var secrets: [String: ClientSecrets] = [:]
        for client in config.clients where client.secretSHA256 != nil {
            secrets[client.id] = ClientSecrets(currentSHA256: client.secretSHA256, created: client.secretCreated, retired: client.retiredSecrets)
        }
        self.declaredSecrets = secrets
    }

    public var builtinIssuer: IssuerConfig? { self.issuers.first(where: \.builtin) }
}

extension ConfigLoader {
    /// The `store:`, `issuers:`, role names and declared client ids of DIR. Only errors in
    /// `store:` and `issuers:` are reported (a file that does not parse at all is one too);
    /// the rest of the configuration is not validated here.
    public static func registryContext(directory: String) throws(ConfigErrors) -> RegistryContext {
        let sources = try Self.sources(directory: directory)
        var errors: [ConfigError] = []
        var sections: [String: ConfigNode] = [:]
        for (file, text) in sources {
            guard let root = try? ConfigYAML.compose(text) else {
                // Only what these sections need is reported; the file may hold none of them.
                if text.contains("store:") || text.contains("issuers:") {
                    errors.append(ConfigError(SourceLocation(file: file, line: 1, column: 1), key: "", "not valid YAML"))
                }
                continue
            }
            guard case .mapping(let mapping) = root else { continue }
            for (key, value) in mapping {
                guard let name = key.string, ["store", "issuers", "roles", "clients"].contains(name), sections[name] == nil else { continue }
                sections[name] = ConfigNode(node: value, file: file, keyPath: name)
            }
        }
        let store = sections["store"].flatMap { Self.store($0, &errors) }
        let issuers = sections["issuers"].map { Self.issuers($0, &errors) } ?? []
        let roleNames = sections["roles"].map(Self.roleNames) ?? []
        var declared: [String] = []
        var secrets: [String: ClientSecrets] = [:]
        if case .sequence(let items)? = sections["clients"]?.node {
            for item in items {
                guard case .mapping(let entries) = item, let id = entries["id"]?.string else { continue }
                declared.append(id)
                if let hash = entries["secret_sha256"]?.string {
                    secrets[id] = ClientSecrets(currentSHA256: hash, created: entries["secret_created"]?.string, retired: [])
                }
            }
        }
        if !errors.isEmpty { throw ConfigErrors(errors) }
        return RegistryContext(store: store, issuers: issuers, roleNames: roleNames, declaredClientIDs: declared, declaredSecrets: secrets)
    }

    /// One client checked exactly as a `clients:` entry is, against `context` only.
    public static func validateClient(_ draft: ClientDraft, lastModified: String?, context: RegistryContext) throws(ConfigErrors) -> ClientConfig {
        var entry = ClientsFile.Entry(draft)
        entry.lastModified = lastModified
        let text = ClientsFile.render([entry])
        guard case .mapping(let mapping)? = try? ConfigYAML.compose(text), let list = mapping["clients"] else {
            throw ConfigErrors([ConfigError(nil, key: "clients", "the client cannot be written as YAML")])
        }
        var errors: [ConfigError] = []
        let clients = Self.clients(
            ConfigNode(node: list, file: "store", keyPath: "clients"),
            issuers: context.issuers,
            roleNames: context.roleNames,
            &errors
        )
        guard errors.isEmpty, let client = clients.first else {
            // The YAML above is ours, not the operator's: its lines and the list index mean nothing.
            throw ConfigErrors(errors.map { error in
                let key = error.key.hasPrefix("clients[0].") ? String(error.key.dropFirst("clients[0].".count)) : error.key
                return ConfigError(nil, key: "client '\(draft.id)' \(key)", error.message)
            })
        }
        var result = client
        result.location = nil
        return result
    }
}

extension GatewayConfig {
    /// The same configuration with `clients` as its client list, the access policy compiled
    /// anew for them.
    public func replacingClients(_ clients: [ClientConfig]) -> GatewayConfig {
        var config = self
        config.clients = clients
        config.policy = AccessPolicy(
            roles: self.roles,
            catalog: self.catalog,
            clients: clients,
            caseInsensitivePaths: self.upstream.pathsAreCaseInsensitive,
            permissionsCoverEveryMethod: self.upstream.profile == .cipp
        )
        return config
    }
}
