import ArgumentParser
import Foundation
import PortcullisPolicy
import PortcullisProxy

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the policy directory DIR: print every error with file:line, or a summary."
    )

    @Argument(help: "The policy directory.")
    var directory: String

    func run() throws {
        let config = try loadOrExit(self.directory)
        let tlsErrors = GatewayServer.listenerTLSErrors(config)
        guard tlsErrors.isEmpty else {
            let text = tlsErrors.joined(separator: "\n")
            FileHandle.standardError.write(Data("portcullis: the configuration in \(self.directory) is not valid:\n\(text)\n".utf8))
            throw ExitCode(1)
        }
        let listeners = config.listeners.map { "\($0.address)" }.joined(separator: ", ")
        let upstream = "\(config.upstream.scheme.rawValue)://\(config.upstream.authority)"
        print("ok: \(self.directory): \(config.listeners.count) listener(s) (\(listeners)), upstream \(upstream), timeout \(config.upstream.timeout)")
        for warning in config.warnings { print("warning: \(warning)") }
    }
}
