import Foundation
import PortcullisAuth
import PortcullisPolicy

extension TokenAuthenticator {
    /// Compiles the `issuers:` and `clients:` of a configuration. Key sets come from `keys` (by
    /// issuer name: the fetched ones of `jwks_url` and discovery issuers); a `jwks_file` issuer
    /// missing there has its file read now, so a bad file fails the (re)load that names it.
    static func compile(_ config: GatewayConfig, keys: [String: any IssuerKeyProvider]) throws -> TokenAuthenticator {
        var issuers: [(iss: String, issuer: TrustedIssuer)] = []
        for issuer in config.issuers where !issuer.builtin {
            let place = issuer.location.map { "\($0): " } ?? ""
            let provider: any IssuerKeyProvider
            if let given = keys[issuer.name] {
                provider = given
            } else if case .file(let path)? = issuer.keySource {
                provider = FixedKeys(try Self.readKeySet(path, place: place, issuer: issuer.name))
            } else {
                throw GatewayError("\(place)issuers[\(issuer.name)]: no key set has been fetched for this issuer")
            }
            let algorithms = issuer.algorithms.compactMap { JWSAlgorithm(name: $0) }
            issuers.append(
                (
                    issuer.issuer,
                    TrustedIssuer(
                        name: issuer.name,
                        verifier: JWSVerifier(allowedAlgorithms: algorithms),
                        claims: ClaimsPolicy(
                            issuer: issuer.issuer,
                            audiences: issuer.audiences,
                            leeway: issuer.leeway.nanoseconds / 1_000_000_000
                        ),
                        clientClaim: issuer.clientClaim,
                        keys: provider
                    )
                )
            )
        }
        let clients = config.clients.map {
            ClientRecord(
                id: $0.id,
                name: $0.name,
                enabled: $0.enabled,
                issuer: $0.issuer,
                policyIndex: config.policy.clientIndex(id: $0.id) ?? -1,
                allowedIPs: $0.allowedIPs
            )
        }
        return TokenAuthenticator(issuers: issuers, clients: clients)
    }

    static func readKeySet(_ path: String, place: String, issuer: String) throws -> JWKSet {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GatewayError("\(place)issuers[\(issuer)].jwks_file: cannot read \(path)")
        }
        do {
            let set = try JWKSet(json: Array(data))
            if set.isEmpty {
                throw GatewayError("\(place)issuers[\(issuer)].jwks_file: \(path) holds no usable signing key")
            }
            return set
        } catch let error as JWKError {
            throw GatewayError("\(place)issuers[\(issuer)].jwks_file: \(path) is not a JWK Set: \(error)")
        }
    }
}
