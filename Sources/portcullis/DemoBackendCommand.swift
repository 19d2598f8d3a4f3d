import ArgumentParser
import NIOPosix
import PortcullisDemo
import PortcullisPolicy
import UnixSignals

struct DemoBackendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-backend",
        abstract: "Run only the built-in CIPP-like demo backend (used by tests and benchmarks)."
    )

    @Option(name: .long, help: "host:port to listen on (port 0 picks a free one).")
    var listen = "127.0.0.1:8091"

    @Option(name: .long, help: "Write the bound URL to this file once ready.")
    var readyFile: String?

    func run() async throws {
        guard let address = HostPort(parsing: self.listen) else {
            throw ValidationError("--listen: expected host:port, e.g. 127.0.0.1:8091")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend = try await DemoBackend.start(host: address.host, port: address.port, group: group)
        if let readyFile = self.readyFile {
            try writeAtomically("http://\(urlHost(backend.localAddress))\n", to: readyFile)
        }
        print("demo backend listening on http://\(urlHost(backend.localAddress))")
        for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { break }
        try await backend.close()
        try await group.shutdownGracefully()
    }
}
