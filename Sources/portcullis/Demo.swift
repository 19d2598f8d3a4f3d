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
        var secrets = DemoSecrets()
        let runDirectory = try Self.copyWithDemoKey(directory, signer: signer, secrets: &secrets)
        let demoSecrets = secrets
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
            var text = Self.banner(gateway: base, backend: backendURL, admin: admin, directory: directory, tokens: tokens)
            text += Self.issuerBanner(config: config, gateway: base, admin: admin, secrets: demoSecrets)
            print(text)
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

    /// Made for each run: the built-in issuer's key, the admin token, and client secrets.
    struct DemoSecrets {
        var signingKeyPEM = BuiltinIssuer.newSigningKeyPEM()
        var adminToken = ClientSecret.generate()
        /// By client id: the new secret of each built-in issuer client of the demo config.
        var clientSecrets: [String: String] = [:]
    }

    /// Curl lines for the built-in issuer and the admin API, when the config has them.
    static func issuerBanner(config: GatewayConfig, gateway: String, admin: String?, secrets: DemoSecrets) -> String {
        var text = ""
        if let issuer = config.issuers.first(where: \.builtin),
            let client = config.clients.first(where: { $0.issuer == issuer.name && $0.enabled }),
            let secret = secrets.clientSecrets[client.id]
        {
            text += """

                Portcullis's own token endpoint (OAuth2 client_credentials, issuer '\(issuer.name)'):
                  client_id \(client.id), client_secret \(secret)   (made for this run)
                  TOKEN2=$(curl -s -u '\(client.id):\(secret)' -d grant_type=client_credentials \(gateway)/oauth/token | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')
                  curl -s \(gateway)/api/ListTenants -H "Authorization: Bearer $TOKEN2"
                  curl -s \(gateway)/.well-known/jwks.json                        # its public key

                """
        }
        if let admin, config.admin.tokenFile != nil {
            text += """

                Admin API (admin token made for this run: \(secrets.adminToken)):
                  curl -s \(admin)/api/v1/clients -H "Authorization: Bearer \(secrets.adminToken)"
                  curl -s -X POST \(admin)/api/v1/clients -H "Authorization: Bearer \(secrets.adminToken)" \\
                       -H 'Content-Type: application/json' -d '{"id":"new-script","roles":["readonly"]}'   # shows its secret once
                The admin console: \(admin)/ui/ (sign in with the admin token above)

                """
        }
        return text
    }

    struct DemoToken {
        var client: String
        var roles: String
        var enabled: Bool
        var token: String
    }

    /// A temporary copy of `directory` whose demo-jwks.json holds `signer`'s public key.
    /// Its built-in issuer gets `secrets`' signing key, admin token, and a new secret for every
    /// built-in client (the committed hashes are replaced in the copy's portcullis.yaml).
    static func copyWithDemoKey(_ directory: String, signer: JWSSigner, secrets: inout DemoSecrets) throws -> String {
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
        try Self.replaceIssuerSecrets(in: copy, with: &secrets)
        return copy
    }

    /// Writes the run's signing key and admin token over the files the copied config names, and
    /// gives each client with a `secret_sha256` a new secret (its hash replaces the old one).
    static func replaceIssuerSecrets(in copy: String, with secrets: inout DemoSecrets) throws {
        let config = try ConfigLoader.load(directory: copy)
        let files = FileManager.default
        if let settings = config.issuers.first(where: \.builtin)?.builtinSettings {
            try? files.removeItem(atPath: settings.signingKeyFile)
            try secrets.signingKeyPEM.write(toFile: settings.signingKeyFile, atomically: true, encoding: .utf8)
            try? files.removeItem(atPath: settings.stateFile)
        }
        if let tokenFile = config.admin.tokenFile {
            try? files.removeItem(atPath: tokenFile)
            try (secrets.adminToken + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        }
        for client in config.clients {
            guard let hash = client.secretSHA256, let written = client.location?.file else { continue }
            let file = written.hasPrefix("/") ? written : (copy as NSString).appendingPathComponent((written as NSString).lastPathComponent)
            let secret = ClientSecret.generate()
            let text = try String(contentsOfFile: file, encoding: .utf8)
            try text.replacingOccurrences(of: hash, with: ClientSecret.sha256Hex(secret)).write(toFile: file, atomically: true, encoding: .utf8)
            secrets.clientSecrets[client.id] = secret
        }
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
