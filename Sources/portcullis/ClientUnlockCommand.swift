import ArgumentParser
import Foundation
import PortcullisAuth
import PortcullisPolicy
import PortcullisStore

extension ClientCommand {
    /// `portcullis client unlock ID [--address A]`: clears a token-endpoint lockout on every
    /// replica through the store. Without `store:` the counters live only in the gateway's
    /// memory, so the admin API (`POST /api/v1/clients/{id}/unlock`) is the way.
    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Clear a client's token-endpoint lockout (failed secrets), or an address's with --address."
        )

        @Argument(help: "The client id.")
        var id: String

        @OptionGroup var options: ClientCommand.ConfigOption

        @Option(name: .long, help: "Clear this source address's lockout as well (IPv6: its /64).")
        var address: String?

        func run() async throws {
            let context = try ClientCommand.registryContextOrExit(self.options.config)
            var keys = [FailedAuthLimiter.clientKey(self.id)]
            if let text = self.address {
                guard let address = IPAddress(parsing: text) else {
                    ClientCommand.note("--address: '\(text)' is not an IPv4 or IPv6 address")
                    throw ExitCode(1)
                }
                keys.append(FailedAuthLimiter.addressKey(address))
            }
            guard let storeConfig = context.store else {
                ClientCommand.note(
                    "without store: in the configuration, lockouts live in the running gateway's memory: use the admin API (POST /api/v1/clients/\(self.id)/unlock) or restart it"
                )
                throw ExitCode(1)
            }
            let store = try ClientCommand.openOrExit(storeConfig)
            let now = Int64(Date().timeIntervalSince1970)
            do {
                try await store.prepare()
                try await store.record(UsageBatch(unlocks: Dictionary(uniqueKeysWithValues: keys.map { ($0, now) })))
                try await AuditTrail(store: store).record(
                    actor: .operatingSystemUser(),
                    action: "lockout.clear",
                    client: self.id,
                    before: ["lockout": .list(keys)],
                    after: ["lockout": .none]
                )
            } catch {
                await store.close()
                ClientCommand.note("the store (\(store.description)) did not take the unlock: \(error.reason)")
                throw ExitCode(1)
            }
            await store.close()
            print("unlocked: \(keys.joined(separator: ", "))")
            ClientCommand.note("running gateways apply this within about 1s")
        }
    }
}
