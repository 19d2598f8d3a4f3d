import ArgumentParser
import Foundation
import NIOPosix
import PortcullisDemo
import PortcullisPolicy
import PortcullisProxy

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the built-in CIPP-like demo backend and the gateway in front of it on policies/demo/."
    )

    @Option(name: .long, help: "The policy directory (default: policies/demo of the checkout).")
    var config: String?

    @OptionGroup var runtime: RuntimeOptions

    func run() async throws {
        let directory = try self.config ?? Self.findDemoPolicies()
        let config = try loadOrExit(directory)
        let logger = makeLogger(level: config.logging.level)

        // The backend listens where the demo config's upstream points.
        let backendGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backend: DemoBackend
        do {
            backend = try await DemoBackend.start(host: config.upstream.host, port: config.upstream.port, group: backendGroup)
        } catch {
            logger.critical("cannot start the demo backend on \(config.upstream.host):\(config.upstream.port): \(error)")
            throw ExitCode(1)
        }
        let backendURL = "http://\(urlHost(backend.localAddress))"
        try await runGateway(config: config, runtime: self.runtime, logger: logger, extraReadyLines: ["backend \(backendURL)"]) { server in
            let base = server.boundAddresses.first.map { "http://\(urlHost($0))" } ?? "http://127.0.0.1:8080"
            print(Self.banner(gateway: base, backend: backendURL, directory: directory))
            fflush(stdout)
        }
        try await backend.close()
        try await backendGroup.shutdownGracefully()
    }

    static func banner(gateway: String, backend: String, directory: String) -> String {
        """

        Portcullis demo: gateway \(gateway) -> built-in CIPP-like backend \(backend)
        policy directory: \(directory)    stop with Ctrl-C (drains, then exits)

        Try:
          curl -s \(gateway)/api/ListTenants
          curl -s '\(gateway)/api/ListUsers?tenantFilter=contoso.onmicrosoft.com'
          curl -s -X POST \(gateway)/api/ExecResetPass -H 'Content-Type: application/json' \\
               -d '{"tenantFilter":"contoso.onmicrosoft.com","ID":"adele@contoso.onmicrosoft.com"}'
          curl -s \(gateway)/demo/echo              # what the backend receives (X-Forwarded-*, X-Request-Id)
          curl -s --path-as-is '\(gateway)/api/../../etc/passwd'   # 400: climbs above /
          curl -s -o /dev/null -w '%{http_code} %{size_download} bytes\\n' '\(gateway)/demo/stream?bytes=1073741824'

        Bearer tokens, roles and allowlists are not enforced yet: this stage forwards every
        well-formed request (see README.md, "Status").

        """
    }

    /// policies/demo from the working directory, or from the checkout the binary was built in.
    static func findDemoPolicies() throws -> String {
        var candidates = ["policies/demo"]
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = executable.deletingLastPathComponent()
        for _ in 0..<4 {
            folder = folder.deletingLastPathComponent()
            candidates.append(folder.appendingPathComponent("policies/demo").path)
        }
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate) {
            return candidate
        }
        throw ValidationError("policies/demo not found; run from the checkout or pass --config DIR")
    }
}
