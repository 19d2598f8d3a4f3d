import ArgumentParser
import Foundation
import PortcullisPolicy
import PortcullisStore

/// `portcullis audit`: the audit trail of the store the config directory's `store:` names, or
/// without one the directory's `audit.jsonl`.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read the audit trail: who changed which client, secret, revocation or lockout, when and from where.",
        discussion: "Secret values never appear in it: a rotation shows when the new secret was made and which old ones are in their grace."
    )

    @OptionGroup var options: ClientCommand.ConfigOption

    @Option(name: .long, help: "Only changes to this client id.")
    var client: String?

    @Option(name: .long, help: "Only changes by this actor (an admin token's name, or an OS user).")
    var actor: String?

    @Option(name: .long, help: "Only this action (client.rotate), or actions starting with it (client.).")
    var action: String?

    @Option(name: .long, help: "Only changes since this UTC time (2026-12-04T10:00:00Z) or this long ago (30d, 12h).")
    var since: String?

    @Option(name: .long, help: "At most this many records, the most recent.")
    var limit = 1000

    @Flag(name: .long, help: "Print JSON lines, one record each, instead of a table.")
    var json = false

    func run() async throws {
        var filter = AuditFilter(clientID: self.client, actor: self.actor, action: self.action, limit: max(1, self.limit))
        if let since = self.since {
            guard let seconds = AuditFilter.since(since, now: Int64(Date().timeIntervalSince1970)) else {
                ClientCommand.note("--since: '\(since)' is neither a UTC time such as 2026-12-04T10:00:00Z nor a duration such as 30d")
                throw ExitCode(1)
            }
            filter.since = seconds
        }
        let context = try ClientCommand.registryContextOrExit(self.options.config)
        let events: [AuditEvent]
        if let storeConfig = context.store {
            let store = try ClientCommand.openOrExit(storeConfig)
            do {
                try await store.prepare()
                events = try await store.audit(filter)
            } catch {
                await store.close()
                ClientCommand.note(error.reason)
                throw ExitCode(1)
            }
            await store.close()
        } else {
            do {
                events = try await AuditTrail(configDirectory: self.options.config).read(filter)
            } catch {
                ClientCommand.note(error.reason)
                throw ExitCode(1)
            }
        }
        if self.json {
            for event in events { FileHandle.standardOutput.write(Data(AuditLogFile.line(event))) }
            return
        }
        print(Self.table(events), terminator: "")
    }

    static func table(_ events: [AuditEvent]) -> String {
        guard !events.isEmpty else { return "no audit records\n" }
        let header = ["TS", "ACTOR", "SOURCE", "ACTION", "CLIENT", "CHANGES"]
        let rows = events.map { event in
            let changes = event.changes.keys.sorted().map { key in
                "\(key): \(Self.text(event.changes[key]!.before)) -> \(Self.text(event.changes[key]!.after))"
            }
            return [event.ts, event.actor, event.source, event.action, event.clientID ?? event.tokenID.map { "token \($0)" } ?? "-", changes.joined(separator: "; ")]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { line in
            line.enumerated().map { index, cell in
                index == line.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    private static func text(_ value: AuditValue) -> String {
        switch value {
        case .text(let text): return text
        case .list(let list): return "[" + list.joined(separator: ",") + "]"
        case .flag(let flag): return flag ? "yes" : "no"
        case .none: return "-"
        }
    }
}
