import ArgumentParser
import Foundation
import PortcullisPolicy

/// `portcullis explain DIR --client ID --method M --path P [--ip A] [--tenant T] [--body JSON] [--tenants FILE]`: what the
/// gateway would decide for such a request (after a valid token), and the rule that decided;
/// with `store:`, for the clients in the store as well.
struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the decision for a request by a client, and the role and rule (file:line) that made it."
    )

    @Argument(help: "The policy directory.")
    var directory: String

    @Option(name: .long, help: "The client id (as its tokens name it).")
    var client: String

    @Option(name: .long, help: "The HTTP method.")
    var method: String

    @Option(name: .long, help: "The request target, e.g. /api/ListUsers?tenantFilter=contoso.onmicrosoft.com")
    var path: String

    @Option(name: .long, help: "The caller's address (checked against allowed_ips).")
    var ip: String?

    @Option(name: .long, help: "The tenant the request names (CIPP profile): added to the query as tenantFilter.")
    var tenant: String?

    @Option(name: .long, help: "The request body (CIPP profile: a JSON body naming a tenant, or a $batch); @FILE reads a file.")
    var body: String?

    @Option(name: .long, help: "CIPP's tenant list (an export of ListTenants), to resolve tenant ids and domains as the gateway does with tenant_directory: {upstream:}.")
    var tenants: String?

    @Flag(name: .long, help: "Print the answer as one JSON object.")
    var json = false

    func run() async throws {
        // With store:, the clients created at run time (and their limits) are explained too.
        let config = try await ClientCommand.effectiveConfig(directory: self.directory).config
        var directory: TenantDirectory?
        if let path = self.tenants {
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            switch TenantDirectory.parse(data, source: path) {
            case .success(let parsed): directory = parsed
            case .failure(let error): throw ValidationError(error.description)
            }
        }
        var body: [UInt8]?
        if let text = self.body {
            if text.hasPrefix("@") {
                guard let data = FileManager.default.contents(atPath: String(text.dropFirst())) else {
                    throw ValidationError("cannot read \(text.dropFirst())")
                }
                body = Array(data)
            } else {
                body = Array(text.utf8)
            }
        }
        let answer = DecisionExplanation.explain(
            config: config,
            client: self.client,
            method: self.method.uppercased(),
            target: self.path,
            ip: self.ip,
            tenant: self.tenant,
            body: body,
            tenants: directory
        )
        print(self.json ? answer.json : answer.lines.joined(separator: "\n"))
        if !answer.allowed { throw ExitCode(2) }
    }
}
