import Foundation
import Testing

/// `portcullis client add --rate ...`, `client limits ID [...]` and the LIMITS of `client list`,
/// with the embedded store and without a store.
@Suite("Client limits command")
struct ClientLimitsCommandEndToEndTests {
    typealias Command = ClientCommandEndToEndTests

    static func check(store: Bool) throws {
        let directory = try Command.makeConfig()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        if store {
            try "store: { path: state }\n".write(toFile: directory + "/store.yaml", atomically: true, encoding: .utf8)
        }
        let added = try Command.run([
            "client", "create", "sync", "--config", directory, "--issuer", "local", "--role", "helpdesk", "--rate", "10/s", "--burst", "20",
        ])
        #expect(added.status == 0, "\(added.stderr)")
        let shown = try Command.run(["client", "limits", "sync", "--config", directory])
        #expect(shown.stdout.contains("limits: rate 10/s burst 20 (client)"), "\(shown.stdout)\(shown.stderr)")

        let set = try Command.run(["client", "limits", "sync", "--config", directory, "--quota", "5000/d", "--concurrency", "2"])
        #expect(set.status == 0, "\(set.stderr)")
        // explain knows the client and its limits, in the store as in the clients file.
        let explained = try Command.run(["explain", directory, "--client", "sync", "--method", "GET", "--path", "/nowhere", "--json"])
        #expect(!explained.stdout.contains("unknown_client"), "\(explained.stdout)\(explained.stderr)")
        #expect(explained.stdout.contains("rate 10/s (burst 20)"), "\(explained.stdout)\(explained.stderr)")
        let listed = try Command.run(["client", "list", "--config", directory, "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]], "\(listed.stdout)")
        let limits = try #require(rows.first?["limits"] as? [String: Any])
        #expect(limits["rate"] as? String == "10/s")
        #expect(limits["quota"] as? String == "5000/d")
        #expect(limits["concurrency"] as? Int == 2)
        let table = try Command.run(["client", "list", "--config", directory])
        #expect(table.stdout.contains("LIMITS"), "\(table.stdout)")

        let bad = try Command.run(["client", "limits", "sync", "--config", directory, "--rate", "fast"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("--rate: expected a rate such as 10/s"), "\(bad.stderr)")
        let orphanBurst = try Command.run(["client", "limits", "sync", "--config", directory, "--clear", "--burst", "5"])
        #expect(orphanBurst.status == 1, "\(orphanBurst.stderr)")
        #expect(orphanBurst.stderr.contains("burst needs a rate beside it"), "\(orphanBurst.stderr)")

        let cleared = try Command.run(["client", "limits", "sync", "--config", directory, "--clear"])
        #expect(cleared.status == 0, "\(cleared.stderr)")
        #expect(try Command.run(["client", "limits", "sync", "--config", directory]).stdout.contains("limits: -"))
    }

    @Test func withTheEmbeddedStore() throws {
        try Self.check(store: true)
    }

    @Test func withoutAStore() throws {
        try Self.check(store: false)
    }
}
