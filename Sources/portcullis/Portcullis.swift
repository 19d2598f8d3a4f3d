import ArgumentParser

@main
struct Portcullis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portcullis",
        abstract: "An authenticating reverse proxy for internal HTTP APIs.",
        subcommands: [Serve.self, Check.self, Explain.self, ClientCommand.self, StoreCommand.self, Demo.self, DemoBackendCommand.self]
    )
}
