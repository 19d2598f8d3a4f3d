import ArgumentParser
import Foundation
import PortcullisAuth
import Logging
import PortcullisPolicy
import PortcullisStore

/// `portcullis client add|rotate|enable|disable|remove|list`: writes the store the config
/// directory's `store:` names (checked against its issuers and roles only), or without one
/// edits the `clients:` list of the directory through ``ClientsFile``; prints a new secret once.
struct ClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Manage API clients: add, update, rotate, enable, disable, remove, list, limits, unlock.",
        discussion: """
            With store: in the configuration, changes go to that store (checked against the issuers and \
            roles only, so an error elsewhere in the configuration does not block them) and every \
            running gateway applies them within about a second. Without it, they are validated against \
            the whole configuration and written atomically to the file that holds clients: (clients.yaml \
            when none does). Secrets are printed once and stored only as SHA-256.
            """,
        subcommands: [Add.self, Update.self, Rotate.self, Enable.self, Disable.self, Remove.self, List.self, Limits.self, Unlock.self]
    )

    struct ConfigOption: ParsableArguments {
        @Option(name: .long, help: "The policy directory: every *.yaml file in it is read.")
        var config: String
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a client; for the built-in issuer, print its new secret once.",
            aliases: ["create"]
        )

        @Argument(help: "The client id (as its tokens name it).")
        var id: String

        @OptionGroup var options: ConfigOption

        @Option(name: .long, help: "The issuers[].name whose tokens name this client.")
        var issuer: String

        @Option(name: .long, help: "A role the client holds (repeat for more; privileges add up).")
        var role: [String] = []

        @Option(name: .long, help: "A display name (sent upstream as X-Portcullis-Client-Name). Default: the id.")
        var name: String?

        @Option(name: .customLong("allowed-ip"), help: "An address or CIDR range it may call from (repeat for more). Default: any.")
        var allowedIPs: [String] = []

        @Option(name: .customLong("token-lifetime"), help: "Its tokens' lifetime, e.g. 15m (built-in issuer; default the issuer's).")
        var tokenLifetime: String?

        @Option(name: .customLong("public-key"), help: "A PEM public key or JWK file: the client authenticates with private_key_jwt, and gets no secret.")
        var publicKey: String?
        @Option(name: .customLong("secret-lifetime"), help: "How long its secret is accepted, e.g. 90d (built-in issuer; default the issuer's, else no expiry).")
        var secretLifetime: String?

        @Flag(name: .long, help: "Add it disabled.")
        var disabled = false

        @OptionGroup var limits: LimitOptions

        func run() async throws {
            let limits = try self.limits.limitsOrExit()
            let builtin = ClientCommand.isBuiltinIssuer(self.issuer, directory: self.options.config)
            var keyText: String?
            if let path = self.publicKey {
                guard let data = FileManager.default.contents(atPath: path) else {
                    ClientCommand.note("--public-key: cannot read \(path)")
                    throw ExitCode(1)
                }
                let text = String(decoding: data, as: UTF8.self)
                do {
                    _ = try ClientKey(text: text)
                } catch {
                    ClientCommand.note("--public-key: \(path): \(error.reason)")
                    throw ExitCode(1)
                }
                keyText = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let secret = builtin && keyText == nil ? ClientSecret.generate() : nil
            let draft = ClientDraft(
                id: self.id,
                name: self.name,
                issuer: self.issuer,
                roles: self.role,
                allowedIPs: self.allowedIPs.isEmpty ? nil : self.allowedIPs,
                tokenLifetime: self.tokenLifetime,
                secretSHA256: secret.map { ClientSecret.sha256Hex($0) },
                publicKey: keyText,
                enabled: !self.disabled,
                secretLifetime: self.secretLifetime,
                limits: self.limits.isEmpty ? nil : limits
            )
            let written = try await ClientCommand.apply(.add(draft), directory: self.options.config)
            print("client_id: \(self.id)")
            if let secret {
                print("client_secret: \(secret)")
                ClientCommand.note("the secret is shown only this once; \(written.keeper) keeps only its SHA-256")
            }
            ClientCommand.noteReload(written)
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a client a new secret (printed once); the old secret and its tokens stop working at once, or when --grace ends."
        )

        @Argument(help: "The client id.")
        var id: String

        @OptionGroup var options: ConfigOption

        @Option(name: .long, help: "Keep the old secret (and its tokens) working this long, e.g. 1h or 7d, while the new one is rolled out.")
        var grace: String?

        func run() async throws {
            var grace: ConfigDuration?
            if let text = self.grace {
                switch ConfigDuration.validate(text) {
                case .success(let duration): grace = duration
                case .failure(let error):
                    ClientCommand.note("--grace: \(error)")
                    throw ExitCode(1)
                }
            }
            let secret = ClientSecret.generate()
            let mutation = ClientMutation.rotate(id: self.id, secretSHA256: ClientSecret.sha256Hex(secret), grace: grace)
            let written = try await ClientCommand.apply(mutation, directory: self.options.config)
            print("client_id: \(self.id)")
            print("client_secret: \(secret)")
            ClientCommand.note("the secret is shown only this once; \(written.keeper) keeps only its SHA-256")
            if let grace {
                ClientCommand.note("the old secret and its tokens keep working for \(grace); then they are refused")
            } else {
                ClientCommand.note("the old secret and its tokens are refused from now on")
            }
            ClientCommand.noteReload(written)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a client's name, roles, allowed IPs or lifetimes; its secret is kept."
        )

        @Argument(help: "The client id.")
        var id: String

        @OptionGroup var options: ConfigOption

        @Option(name: .long, help: "A new display name.")
        var name: String?

        @Option(name: .long, help: "A role the client holds (repeat for more): replaces its roles.")
        var role: [String] = []

        @Option(name: .customLong("allowed-ip"), help: "An address or CIDR range it may call from (repeat for more): replaces the list.")
        var allowedIPs: [String] = []

        @Flag(name: .customLong("any-ip"), help: "Let it call from any address (removes allowed_ips).")
        var anyIP = false

        @Option(name: .customLong("token-lifetime"), help: "Its tokens' lifetime, e.g. 15m; 'default' for the issuer's.")
        var tokenLifetime: String?

        @Option(name: .customLong("secret-lifetime"), help: "How long its secret is accepted, e.g. 90d; 'default' for the issuer's.")
        var secretLifetime: String?

        func run() async throws {
            if self.anyIP && !self.allowedIPs.isEmpty {
                ClientCommand.note("--any-ip and --allowed-ip contradict each other; give one")
                throw ExitCode(1)
            }
            func lifetime(_ text: String?) -> String?? {
                guard let text else { return nil }
                return text == "default" ? .some(nil) : .some(text)
            }
            let update = ClientUpdate(
                name: self.name,
                roles: self.role.isEmpty ? nil : self.role,
                allowedIPs: self.anyIP ? .some(nil) : (self.allowedIPs.isEmpty ? nil : .some(self.allowedIPs)),
                tokenLifetime: lifetime(self.tokenLifetime),
                secretLifetime: lifetime(self.secretLifetime)
            )
            guard !update.isEmpty else {
                ClientCommand.note("nothing to change: give --name, --role, --allowed-ip, --any-ip, --token-lifetime or --secret-lifetime")
                throw ExitCode(1)
            }
            let written = try await ClientCommand.apply(.update(id: self.id, update), directory: self.options.config)
            print("updated: \(self.id)")
            ClientCommand.noteReload(written)
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a client.")

        @Argument(help: "The client id.")
        var id: String

        @OptionGroup var options: ConfigOption

        func run() async throws {
            let written = try await ClientCommand.apply(.setEnabled(id: self.id, enabled: true), directory: self.options.config)
            print("enabled: \(self.id)")
            ClientCommand.noteReload(written)
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a client: its tokens are refused (401) from the reload on.")

        @Argument(help: "The client id.")
        var id: String

        @OptionGroup var options: ConfigOption

        func run() async throws {
            let written = try await ClientCommand.apply(.setEnabled(id: self.id, enabled: false), directory: self.options.config)
            print("disabled: \(self.id)")
            ClientCommand.noteReload(written)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a client.")

        @Argument(help: "The client id.")
        var id: String

        @OptionGroup var options: ConfigOption

        func run() async throws {
            let written = try await ClientCommand.apply(.remove(id: self.id), directory: self.options.config)
            print("removed: \(self.id)")
            ClientCommand.noteReload(written)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "List the clients: id, name, enabled, issuer, roles, allowed IPs, token lifetime, secret expiry, last modified, last used, last redeemed, limits."
        )

        @OptionGroup var options: ConfigOption

        @Flag(name: .long, help: "Print a JSON array instead of a table.")
        var json = false

        @Option(
            name: .customLong("unused-since"),
            help: "Only clients that have neither redeemed a secret nor made a request for this long (e.g. 30d) or since this UTC time."
        )
        var unusedSince: String?

        func run() async throws {
            var cutoff: Int64?
            if let text = self.unusedSince {
                guard let seconds = AuditFilter.since(text, now: Int64(Date().timeIntervalSince1970)) else {
                    ClientCommand.note("--unused-since: '\(text)' is neither a duration such as 30d nor a UTC time such as 2026-12-04T10:00:00Z")
                    throw ExitCode(1)
                }
                cutoff = seconds
            }
            var rows = try await ClientCommand.listRows(directory: self.options.config)
            if let cutoff {
                rows = rows.filter { row in
                    [row.lastUsed, row.lastRedeemed].allSatisfy { time in (time.flatMap(UTCTime.seconds) ?? 0) < cutoff }
                }
            }
            print(self.json ? ClientCommand.json(rows) : ClientCommand.table(rows), terminator: "")
        }
    }

    /// The rows of every client the directory (and its store) serves.
    static func listRows(directory: String) async throws -> [Row] {
        let (config, registry) = try await Self.effectiveConfig(directory: directory)
        return ClientCommand.rows(config, registry: registry)
    }

    /// The configuration of `directory` with the clients a gateway would serve: with `store:`,
    /// the declared ones with their overrides and the stored ones, as `serve` compiles them.
    static func effectiveConfig(directory: String) async throws -> (config: GatewayConfig, registry: Registry?) {
        let config = try loadOrExit(directory)
        guard let storeConfig = config.store else { return (config, nil) }
        let registry = try await loadRegistryOrExit(try ClientCommand.openOrExit(storeConfig))
        let (clients, warnings) = registry.effectiveClients(declared: config.clients, context: RegistryContext(config))
        for warning in warnings { ClientCommand.note(warning) }
        return (config.replacingClients(clients), registry)
    }

    // MARK: - Shared

    /// Where a change went.
    struct Written {
        /// `the store (...)` or the clients file's name.
        var keeper: String
        var toStore: Bool
    }

    /// Writes the store of the directory's `store:`, or without one the clients file. Only
    /// `store:` and `issuers:` must be valid for a store write: an emergency disable works
    /// whatever else the configuration holds.
    static func apply(_ mutation: ClientMutation, directory: String) async throws -> Written {
        let context = try ClientCommand.registryContextOrExit(directory)
        let actor = AuditActor.operatingSystemUser()
        guard let storeConfig = context.store else {
            do {
                let client = try AuditTrail.applyToClientsFile(mutation, directory: directory, actor: actor)
                return Written(keeper: client?.location.map { ($0.file as NSString).lastPathComponent } ?? "the clients file", toStore: false)
            } catch {
                Self.note("\(error)")
                throw ExitCode(1)
            }
        }
        let store = try Self.openOrExit(storeConfig)
        do {
            try await store.prepare()
            _ = try await store.apply(ClientMutationRequest(mutation, context: context, actor: actor))
        } catch {
            await store.close()
            switch error.code {
            case .unavailable: Self.note("the store (\(store.description)) cannot be reached; nothing was changed: \(error.reason)")
            default: Self.note(error.reason)
            }
            throw ExitCode(1)
        }
        await store.close()
        return Written(keeper: "the store (\(store.description))", toStore: true)
    }

    /// The issuers, roles and store of `directory`, or a note and exit 1.
    static func registryContextOrExit(_ directory: String) throws -> RegistryContext {
        do {
            return try ConfigLoader.registryContext(directory: directory)
        } catch {
            Self.note("the configuration in \(directory) cannot be read:\n\(error)")
            throw ExitCode(1)
        }
    }

    static func openOrExit(_ config: StoreConfig) throws -> any ClientStore {
        var logger = Logger(label: "portcullis") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .error
        do {
            return try openStore(config, watch: false, logger: logger)
        } catch {
            Self.note("\(error)")
            throw ExitCode(1)
        }
    }

    /// Whether `name` is the built-in issuer; an unknown issuer is reported by the mutation itself.
    static func isBuiltinIssuer(_ name: String, directory: String) -> Bool {
        (try? ConfigLoader.registryContext(directory: directory))?.issuers.first { $0.name == name }?.builtin ?? false
    }

    static func note(_ text: String) {
        FileHandle.standardError.write(Data("portcullis: \(text)\n".utf8))
    }

    static func noteReload(_ written: Written) {
        if written.toStore {
            Self.note("running gateways apply this within about 1s")
        } else {
            Self.note("a running gateway picks this up within about 1s (it watches the *.yaml files; SIGHUP reloads at once)")
        }
    }

    struct Row {
        var id: String
        var name: String
        var enabled: Bool
        var issuer: String
        var roles: [String]
        var allowedIPs: [String]?
        var tokenLifetime: String?
        var lastModified: String?
        var lastRedeemed: String?
        var lastUsed: String?
        var builtin: Bool
        var limits: LimitSources
        /// Current first: state, created, expires.
        var secrets: [(state: String, created: String?, expires: String?)]
    }

    static func rows(_ config: GatewayConfig, registry: Registry? = nil) -> [Row] {
        let builtin = config.issuers.first(where: \.builtin)
        let redeemed =
            registry.map { $0.lastRedeemed.mapValues(IssuerState.formatTimestamp) }
            ?? builtin?.builtinSettings.map { Self.lastRedeemed(stateFile: $0.stateFile) } ?? [:]
        return config.clients.map { client in
            let isBuiltin = client.issuer == builtin?.name
            let created = [client.secretCreated] + client.retiredSecrets.map(\.created)
            let secrets = zip(client.liveSecrets(issuer: builtin?.builtinSettings), created).map { secret, created in
                (state: secret.retired ? "grace" : "current", created: created, expires: secret.notAfter.map(UTCTime.format))
            }
            let lifetime = isBuiltin ? (client.tokenLifetime ?? builtin?.builtinSettings?.tokenLifetime) : nil
            return Row(
                id: client.id,
                name: client.name,
                enabled: client.enabled,
                issuer: client.issuer,
                roles: client.roles,
                allowedIPs: client.allowedIPsText,
                tokenLifetime: lifetime?.description,
                lastModified: client.lastModified,
                lastRedeemed: isBuiltin ? redeemed[client.id] : nil,
                lastUsed: registry?.lastUsed[client.id].map(IssuerState.formatTimestamp),
                builtin: isBuiltin,
                limits: config.limitSources(of: client),
                secrets: secrets
            )
        }
    }

    /// `last_redeemed` of the built-in issuer's state file; an absent or unreadable file means
    /// no client has redeemed yet as far as can be told.
    static func lastRedeemed(stateFile: String) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: stateFile),
            let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let times = root["last_redeemed"] as? [String: Any]
        else { return [:] }
        return times.compactMapValues { $0 as? String }
    }

    static func table(_ rows: [Row]) -> String {
        guard !rows.isEmpty else { return "no clients\n" }
        let header = [
            "ID", "NAME", "ENABLED", "ISSUER", "ROLES", "ALLOWED_IPS", "TOKEN_LIFETIME", "SECRET_EXPIRES", "IN_GRACE", "LAST_MODIFIED",
            "LAST_USED", "LAST_REDEEMED", "LIMITS",
        ]
        let cells = rows.map { row in
            let current = row.secrets.first { $0.state == "current" }
            let grace = row.secrets.filter { $0.state == "grace" }.compactMap(\.expires)
            return [
                row.id, row.name, row.enabled ? "yes" : "no", row.issuer, row.roles.joined(separator: ","),
                row.allowedIPs.map { $0.isEmpty ? "none" : $0.joined(separator: ",") } ?? "any",
                row.tokenLifetime ?? "-",
                row.builtin ? (current?.expires ?? "never") : "-",
                grace.isEmpty ? "-" : "until " + grace.joined(separator: ","),
                row.lastModified ?? "-",
                row.lastUsed ?? "-",
                row.builtin ? (row.lastRedeemed ?? "never") : "-",
                row.limits.summary,
            ]
        }
        let widths = header.indices.map { column in ([header] + cells).map { $0[column].count }.max() ?? 0 }
        return ([header] + cells).map { line in
            line.enumerated().map { index, cell in
                index == line.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// The rows as a JSON array; absent values (`allowed_ips` any, `last_redeemed` never) are null.
    static func json(_ rows: [Row]) -> String {
        let objects: [[String: Any]] = rows.map { row in
            [
                "id": row.id,
                "name": row.name,
                "enabled": row.enabled,
                "issuer": row.issuer,
                "roles": row.roles,
                "allowed_ips": row.allowedIPs.map { $0 as Any } ?? NSNull(),
                "token_lifetime": row.tokenLifetime.map { $0 as Any } ?? NSNull(),
                "last_modified": row.lastModified.map { $0 as Any } ?? NSNull(),
                "last_redeemed": row.lastRedeemed.map { $0 as Any } ?? NSNull(),
                "last_used": row.lastUsed.map { $0 as Any } ?? NSNull(),
                "limits": row.limits.jsonObject,
                "secrets": row.secrets.map { secret in
                    [
                        "state": secret.state,
                        "created": secret.created.map { $0 as Any } ?? NSNull(),
                        "expires": secret.expires.map { $0 as Any } ?? NSNull(),
                    ] as [String: Any]
                },
            ]
        }
        let data = (try? JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
