import ArgumentParser

@main
struct Portcullis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portcullis",
        abstract: "An authenticating reverse proxy for internal HTTP APIs.",
        version: PortcullisVersion.text,
        subcommands: [
            Serve.self, Check.self, Explain.self, ClientCommand.self, AuditCommand.self, StoreCommand.self, Demo.self, DemoBackendCommand.self,
        ]
    )
}

/// What `portcullis --version` prints.
enum PortcullisVersion {
    /// This source tree's version; a release changes it with its tag.
    static let number = "0.1.0-dev"
    static var text: String { "portcullis \(Self.number)" }
}
