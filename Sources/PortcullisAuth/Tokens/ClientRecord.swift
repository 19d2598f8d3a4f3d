import PortcullisPolicy

/// A configured API client, as the request path needs it.
///
/// A class: the record is immutable and read on every request (the client lookup, the policy,
/// the log), and a struct of seven fields is retained field by field at each of those copies
/// (measured with callgrind: about 30 reference-count operations per request).
public final class ClientRecord: Sendable {
    public let id: String
    public let name: String
    public let enabled: Bool
    /// The `TrustedIssuer.name` whose tokens may name this client.
    public let issuer: String
    /// The client's index in the compiled access policy (its roles).
    public let policyIndex: Int
    /// The addresses it may call from; nil means any.
    public let allowedIPs: CIDRSet?
    /// Clients of the built-in issuer: the `cv` their tokens must carry (from `secret_sha256`).
    public let credentialVersion: String?
    /// The `cv` of secrets replaced with a grace that has not ended: their tokens still pass.
    public let graceCredentialVersions: [String]
    /// Touched by every request it makes (`last_used`); nil when nothing records usage.
    public let usage: UsageClock?

    public init(
        id: String,
        name: String,
        enabled: Bool,
        issuer: String,
        policyIndex: Int = -1,
        allowedIPs: CIDRSet? = nil,
        credentialVersion: String? = nil,
        graceCredentialVersions: [String] = [],
        usage: UsageClock? = nil
    ) {
        self.usage = usage
        self.graceCredentialVersions = graceCredentialVersions
        self.id = id
        self.name = name
        self.enabled = enabled
        self.issuer = issuer
        self.policyIndex = policyIndex
        self.allowedIPs = allowedIPs
        self.credentialVersion = credentialVersion
    }
}
