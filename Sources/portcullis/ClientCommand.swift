import ArgumentParser
import Foundation
import PortcullisAuth
import PortcullisPolicy

/// `portcullis client add|rotate|enable|disable|remove|list`: edits the `clients:` list of a
/// config directory through ``ClientsFile`` (atomic, validated, serialised) and prints a new
/// secret once.
struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "Manage API clients: add, rotate, enable, disable, remove, list.",
        discussion: """
            Changes are validated against the whole configuration and written atomically to the file \
            that holds clients: (clients.yaml when none does). A running gateway picks them up within \
            about a second, or at once on SIGHUP. Secrets are printed once and stored only as SHA-256.
            """,
        subcommands: [Add.self, Rotate.self, Enable.self, Disable.self, Remove.self, List.self]
    )

    struct ConfigOption: ParsableArguments {
        @Option(name: .long, help: "The policy directory: every *.yaml file in it is read.")
        var config: String
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a client; for the built-in issuer, print its new secret once."
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

        @Flag(name: .long, help: "Add it disabled.")
        var disabled = false

        func run() throws {
            let builtin = ClientCommand.isBuiltinIssuer(self.issuer, directory: self.options.config)
            let secret = builtin ? ClientSecret.generate() : nil
            let draft = ClientDraft(
                id: self.id,
                name: self.name,
                issuer: self.issuer,
                roles: self.role,
                allowedIPs: self.allowedIPs.isEmpty ? nil : self.allowedIPs,
                tokenLifetime: self.tokenLifetime,
                secretSHA256: secret.map { ClientSecret.sha256Hex($0) },
                enabled: !self.disabled
            )
            let client = try ClientCommand.apply(.add(draft), directory: self.options.config)
            print("client_id: \(self.id)")
            if let secret {
                print("client_secret: \(secret)")
                ClientCommand.note("the secret is shown only this once; \(ClientCommand.file(of: client)) keeps only its SHA-256")
            }
            ClientCommand.noteReload()
        }
    }

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a client a new secret (printed once); its old secret and tokens stop working."
        )

        @Argument(help: "The client id.")
        var id: String

        @OptionGroup var options: ConfigOption

        func run() throws {
            let secret = ClientSecret.generate()
            let client = try ClientCommand.apply(.rotate(id: self.id, secretSHA256: ClientSecret.sha256Hex(secret)), directory: self.options.config)
            print("client_id: \(self.id)")
            print("client_secret: \(secret)")
            ClientCommand.note("the secret is shown only this once; \(ClientCommand.file(of: client)) keeps only its SHA-256")
            ClientCommand.noteReload()
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a client.")

        @Argument(help: "The client id.")
        var id: String

        @OptionGroup var options: ConfigOption

        func run() throws {
            _ = try ClientCommand.apply(.setEnabled(id: self.id, enabled: true), directory: self.options.config)
            print("enabled: \(self.id)")
            ClientCommand.noteReload()
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a client: its tokens are refused (401) from the reload on.")

        @Argument(help: "The client id.")
        var id: String

        @OptionGroup var options: ConfigOption

        func run() throws {
            _ = try ClientCommand.apply(.setEnabled(id: self.id, enabled: false), directory: self.options.config)
            print("disabled: \(self.id)")
            ClientCommand.noteReload()
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a client.")

        @Argument(help: "The client id.")
        var id: String

        @OptionGroup var options: ConfigOption

        func run() throws {
            _ = try ClientCommand.apply(.remove(id: self.id), directory: self.options.config)
            print("removed: \(self.id)")
            ClientCommand.noteReload()
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the clients: id, name, enabled, issuer, roles, allowed IPs, token lifetime, last modified, last redeemed."
        )

        @OptionGroup var options: ConfigOption

        @Flag(name: .long, help: "Print a JSON array instead of a table.")
        var json = false

        func run() throws {
            let config = try loadOrExit(self.options.config)
            let rows = ClientCommand.rows(config)
            print(self.json ? ClientCommand.json(rows) : ClientCommand.table(rows), terminator: "")
        }
    }

    // MARK: - Shared

    static func apply(_ mutation: ClientMutation, directory: String) throws -> ClientConfig? {
        do {
            return try ClientsFile.apply(mutation, directory: directory)
        } catch {
            FileHandle.standardError.write(Data("portcullis: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// Whether `name` is the built-in issuer; an invalid config or unknown issuer is reported by
    /// the mutation itself.
    static func isBuiltinIssuer(_ name: String, directory: String) -> Bool {
        (try? ConfigLoader.load(directory: directory))?.issuers.first { $0.name == name }?.builtin ?? false
    }

    static func file(of client: ClientConfig?) -> String {
        client?.location.map { ($0.file as NSString).lastPathComponent } ?? "the clients file"
    }

    static func note(_ text: String) {
        FileHandle.standardError.write(Data("portcullis: \(text)\n".utf8))
    }

    static func noteReload() {
        Self.note("a running gateway picks this up within about 1s (it watches the *.yaml files; SIGHUP reloads at once)")
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
        var builtin: Bool
    }

    static func rows(_ config: GatewayConfig) -> [Row] {
        let builtin = config.issuers.first(where: \.builtin)
        let redeemed = builtin?.builtinSettings.map { Self.lastRedeemed(stateFile: $0.stateFile) } ?? [:]
        return config.clients.map { client in
            let isBuiltin = client.issuer == builtin?.name
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
                builtin: isBuiltin
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
        let header = ["ID", "NAME", "ENABLED", "ISSUER", "ROLES", "ALLOWED_IPS", "TOKEN_LIFETIME", "LAST_MODIFIED", "LAST_REDEEMED"]
        let cells = rows.map { row in
            [
                row.id, row.name, row.enabled ? "yes" : "no", row.issuer, row.roles.joined(separator: ","),
                row.allowedIPs.map { $0.isEmpty ? "none" : $0.joined(separator: ",") } ?? "any",
                row.tokenLifetime ?? "-", row.lastModified ?? "-",
                row.builtin ? (row.lastRedeemed ?? "never") : "-",
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
            ]
        }
        let data = (try? JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
