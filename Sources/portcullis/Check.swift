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

    @Flag(name: .long, help: "Print one JSON object: ok, errors (file, line, column, key, message) and warnings.")
    var json = false

    func run() throws {
        let config: GatewayConfig
        do {
            config = try ConfigLoader.load(directory: self.directory)
        } catch {
            try self.fail(error.errors)
        }
        let tlsErrors = GatewayServer.listenerTLSErrors(config)
        guard tlsErrors.isEmpty else {
            try self.fail(tlsErrors.map { ConfigError(nil, key: "", $0) })
        }
        let listeners = config.listeners.map { "\($0.address)" }
        let upstream = "\(config.upstream.scheme.rawValue)://\(config.upstream.authority)"
        if self.json {
            Self.printJSON([
                "ok": true, "directory": self.directory, "listeners": listeners, "upstream": upstream,
                "errors": [] as [Any], "warnings": config.warnings,
            ])
            return
        }
        print("ok: \(self.directory): \(config.listeners.count) listener(s) (\(listeners.joined(separator: ", "))), upstream \(upstream), timeout \(config.upstream.timeout)")
        for warning in config.warnings { print("warning: \(warning)") }
    }

    private func fail(_ errors: [ConfigError]) throws -> Never {
        if self.json {
            let objects: [[String: Any]] = errors.map { error in
                [
                    "file": error.location?.file as Any? ?? NSNull(),
                    "line": error.location?.line as Any? ?? NSNull(),
                    "column": error.location?.column as Any? ?? NSNull(),
                    "key": error.key,
                    "message": error.message,
                ]
            }
            Self.printJSON(["ok": false, "directory": self.directory, "errors": objects, "warnings": [] as [Any]])
        } else {
            let text = errors.map(\.description).joined(separator: "\n")
            FileHandle.standardError.write(Data("portcullis: the configuration in \(self.directory) is not valid:\n\(text)\n".utf8))
        }
        throw ExitCode(1)
    }

    static func printJSON(_ object: [String: Any]) {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        print(String(decoding: data, as: UTF8.self))
    }
}
