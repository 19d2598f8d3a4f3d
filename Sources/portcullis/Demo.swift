import ArgumentParser
import Foundation
import NIOPosix
import PortcullisAuth
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
        // The demo issuer's key is made for this run: a temporary copy of the directory gets
        // its public half, and the banner prints tokens signed with it.
        let signer = JWSSigner.generate(.es256, keyID: "demo-\(UInt32.random(in: 0...UInt32.max))")!
        let runDirectory = try Self.copyWithDemoKey(directory, signer: signer)
        defer { try? FileManager.default.removeItem(atPath: runDirectory) }
        let config = try loadOrExit(runDirectory)
        let logger = makeLogger(level: config.logging.level)
        let tokens = try Self.tokens(for: config, signer: signer)

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
            let admin = server.adminAddress.map { "http://\(urlHost($0))" }
            print(Self.banner(gateway: base, backend: backendURL, admin: admin, directory: directory, tokens: tokens))
            fflush(stdout)
        }
        try await backend.close()
        try await backendGroup.shutdownGracefully()
    }

    static func banner(gateway: String, backend: String, admin: String? = nil, directory: String, tokens: [DemoToken]) -> String {
        guard let first = tokens.first(where: \.enabled) else {
            return "\nPortcullis demo: gateway \(gateway) -> backend \(backend)\n(no enabled client of the demo issuer: no token to show)\n"
        }
        var text = """

            Portcullis demo: gateway \(gateway) -> built-in CIPP-like backend \(backend)
            policy directory: \(directory)    stop with Ctrl-C (drains, then exits)

            A token for the client '\(first.client)' (roles \(first.roles), ES256, valid 1 hour):
              TOKEN=\(first.token)

            Try:
              curl -s \(gateway)/api/ListTenants -H "Authorization: Bearer $TOKEN"
              curl -s '\(gateway)/api/ListUsers?tenantFilter=contoso.onmicrosoft.com' -H "Authorization: Bearer $TOKEN"
              curl -s \(gateway)/demo/echo -H "Authorization: Bearer $TOKEN"   # what the backend receives
              curl -s -i \(gateway)/api/ListTenants                            # 401: no token
              curl -s -X POST \(gateway)/api/ExecResetPass -H "Authorization: Bearer $TOKEN"   # 403: read-only
              curl -s \(gateway)/api/ListOffboardTenants -H "Authorization: Bearer $TOKEN"     # 403: a deny rule
            \(admin.map { "  curl -s \($0)/metrics                                        # Prometheus metrics\n" } ?? "")
            The demo config writes the access log to standard output: one JSON line per request.

            Other clients of the demo issuer:

            """
        for token in tokens where token.client != first.client {
            if token.enabled {
                text += "  a token for '\(token.client)' (roles \(token.roles)): \(token.token)\n"
            } else {
                text += "  a token for '\(token.client)' (disabled in the config: 401): \(token.token)\n"
            }
        }
        text += """

            e.g. with HELPDESK set to psa-sync's token, a password reset is allowed for contoso only:
              curl -s -X POST \(gateway)/api/ExecResetPass -H "Authorization: Bearer $HELPDESK" \\
                   -H 'Content-Type: application/json' -d '{"tenantFilter":"contoso.onmicrosoft.com","ID":"adele.vance@contoso.onmicrosoft.com"}'
              (the same with "tenantFilter":"northwind.onmicrosoft.com" is 403)

            """
        return text
    }

    struct DemoToken {
        var client: String
        var roles: String
        var enabled: Bool
        var token: String
    }

    /// A temporary copy of `directory` whose demo-jwks.json holds `signer`'s public key.
    static func copyWithDemoKey(_ directory: String, signer: JWSSigner) throws -> String {
        let files = FileManager.default
        let copy = files.temporaryDirectory.appendingPathComponent("portcullis-demo-\(getpid())").path
        try? files.removeItem(atPath: copy)
        try files.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for name in try files.contentsOfDirectory(atPath: directory) {
            try files.copyItem(atPath: (directory as NSString).appendingPathComponent(name), toPath: (copy as NSString).appendingPathComponent(name))
        }
        let jwks = (copy as NSString).appendingPathComponent("demo-jwks.json")
        try? files.removeItem(atPath: jwks)
        try signer.publicJWKSet.write(toFile: jwks, atomically: true, encoding: .utf8)
        return copy
    }

    /// One token per client of the issuer whose key file is demo-jwks.json, enabled ones first.
    static func tokens(for config: GatewayConfig, signer: JWSSigner) throws -> [DemoToken] {
        guard
            let issuer = config.issuers.first(where: {
                if case .file(let path)? = $0.keySource { return path.hasSuffix("demo-jwks.json") }
                return false
            })
        else { return [] }
        let now = Int(Date().timeIntervalSince1970)
        let clients = config.clients.filter { $0.issuer == issuer.name }.sorted { $0.enabled && !$1.enabled }
        return try clients.map { client in
            let claims = #"{"iss":"\#(issuer.issuer)","aud":"\#(issuer.audiences.first ?? "")","\#(issuer.clientClaim)":"\#(client.id)","iat":\#(now),"exp":\#(now + 3600)}"#
            return DemoToken(
                client: client.id,
                roles: client.roles.joined(separator: ", "),
                enabled: client.enabled,
                token: try signer.sign(claimsJSON: claims)
            )
        }
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
