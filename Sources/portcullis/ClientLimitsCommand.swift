import ArgumentParser
import Foundation
import PortcullisPolicy
import PortcullisStore

extension ClientCommand {
    /// `--rate`, `--burst`, `--quota`, `--concurrency`: a client's own limits on the command line.
    struct LimitOptions: ParsableArguments {
        @Option(name: .long, help: "Its own rate: 10/s, 100/m or 5000/h (a token bucket).")
        var rate: String?

        @Option(name: .long, help: "Requests at once above the rate (default: one second of the rate, at least 1).")
        var burst: Int?

        @Option(name: .long, help: "Its own quota per UTC calendar window: 10000/d or 200000/month.")
        var quota: String?

        @Option(name: .long, help: "Its own cap on exchanges in flight to the backend (per gateway replica).")
        var concurrency: Int?

        var isEmpty: Bool { self.rate == nil && self.burst == nil && self.quota == nil && self.concurrency == nil }

        /// The limits given, checked; a bad value is reported naming its option, then exit 1.
        func limitsOrExit() throws -> ClientLimits {
            do throws(LimitsInputError) {
                return try ClientLimits.parse(rate: self.rate, burst: self.burst, quota: self.quota, concurrency: self.concurrency, prefix: "--")
            } catch {
                ClientCommand.note(error.description)
                throw ExitCode(1)
            }
        }
    }

    struct Limits: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set a client's own limits (stored or declared clients).",
            discussion: """
                Without options, prints the limits in force and where each comes from (client, role NAME \
                or client_limits). With options, sets those fields of the client's own limits and keeps \
                the others; --clear drops its own limits first. For a client declared in the configuration \
                with store: set, the limits are kept in the store and apply over its declared limits:; \
                --clear goes back to the declared ones. Counters are kept: a client that used its burst \
                does not get it back by a change.
                """
        )

        @Argument(help: "The client id.")
        var id: String

        @OptionGroup var options: ConfigOption

        @OptionGroup var limits: LimitOptions

        @Flag(name: .long, help: "Drop the client's own limits (before setting any given here).")
        var clear = false

        func run() async throws {
            guard self.clear || !self.limits.isEmpty else {
                let rows = try await ClientCommand.listRows(directory: self.options.config)
                guard let row = rows.first(where: { $0.id == self.id }) else {
                    ClientCommand.note("no client '\(self.id)'")
                    throw ExitCode(1)
                }
                print("client_id: \(row.id)")
                print("limits: \(row.limits.summary)")
                return
            }
            let edit = LimitsEdit(set: try self.limits.limitsOrExit(), clear: self.clear)
            let written = try await ClientCommand.apply(.setLimits(id: self.id, edit), directory: self.options.config)
            print("limits set: \(self.id)")
            ClientCommand.noteReload(written)
        }
    }
}
