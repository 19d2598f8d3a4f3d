import ArgumentParser
import Foundation
import PortcullisPolicy
import PortcullisStore

/// `portcullis store migrate|export|import`: the store named by the config directory's
/// `store:`. Export and import move a registry between stores (an embedded directory into
/// PostgreSQL and back) as one JSON document; it holds secrets only as SHA-256.
struct StoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "The run-time store: create or migrate its schema, export it, import into it.",
        subcommands: [Migrate.self, Export.self, Import.self]
    )

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or migrate the store's schema (a gateway also does this at start)."
        )

        @OptionGroup var options: ClientCommand.ConfigOption

        func run() async throws {
            let store = try StoreCommand.open(self.options.config)
            do {
                try await store.prepare()
            } catch {
                await store.close()
                ClientCommand.note("\(error)")
                throw ExitCode(1)
            }
            await store.close()
            print("ready: \(store.description)")
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the whole store as JSON (to stdout, or --output FILE).")

        @OptionGroup var options: ClientCommand.ConfigOption

        @Option(name: .long, help: "Write here (mode 0600) instead of stdout.")
        var output: String?

        func run() async throws {
            let registry = try await loadRegistryOrExit(try StoreCommand.open(self.options.config))
            let data = try RegistryDocument.encode(registry)
            if let output = self.output {
                guard FileManager.default.createFile(atPath: output, contents: data, attributes: [.posixPermissions: 0o600]) else {
                    ClientCommand.note("cannot write \(output)")
                    throw ExitCode(1)
                }
                ClientCommand.note("exported \(registry.clients.count) clients, \(registry.overrides.count) overrides, \(registry.revocations.count) revocations to \(output)")
            } else {
                FileHandle.standardOutput.write(data)
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the whole store with an exported JSON document; running gateways apply it within about a second."
        )

        @OptionGroup var options: ClientCommand.ConfigOption

        @Argument(help: "A file written by `portcullis store export`.")
        var file: String

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: self.file) else {
                ClientCommand.note("cannot read \(self.file)")
                throw ExitCode(1)
            }
            let registry: Registry
            do {
                registry = try RegistryDocument.decode(data)
            } catch {
                ClientCommand.note("\(self.file): \(error)")
                throw ExitCode(1)
            }
            let store = try StoreCommand.open(self.options.config)
            do {
                try await store.prepare()
                try await store.replaceAll(with: registry)
            } catch {
                await store.close()
                ClientCommand.note("\(error)")
                throw ExitCode(1)
            }
            await store.close()
            ClientCommand.note("imported \(registry.clients.count) clients, \(registry.overrides.count) overrides, \(registry.revocations.count) revocations into \(store.description)")
        }
    }

    static func open(_ directory: String) throws -> any ClientStore {
        let context = try ClientCommand.registryContextOrExit(directory)
        guard let config = context.store else {
            ClientCommand.note("\(directory) has no store: section (store: {path: DIR} or store: {postgres: {url_file: FILE}})")
            throw ExitCode(1)
        }
        return try ClientCommand.openOrExit(config)
    }
}
