import Foundation
import Logging
import PortcullisAuth
import PortcullisPolicy

extension TokenAuthenticator {
    /// Compiles the `issuers:` and `clients:` of a configuration. Key sets come from `keys` (by
    /// issuer name: the fetched ones of `jwks_url` and discovery issuers); a `jwks_file` issuer
    /// missing there has its file read now, so a bad file fails the (re)load that names it.
    static func compile(
        _ config: GatewayConfig,
        keys: [String: any IssuerKeyProvider],
        builtin: TokenService? = nil,
        usage: ClientUsageTable? = nil,
        now: Int64 = Int64(Date().timeIntervalSince1970)
    ) throws -> TokenAuthenticator {
        let settings = config.issuers.first(where: \.builtin)?.builtinSettings
        var issuers: [(iss: String, issuer: TrustedIssuer)] = []
        if let builtin {
            issuers.append((builtin.issuer.issuer, builtin.issuer.trustedIssuer))
        }
        for issuer in config.issuers where !issuer.builtin {
            let place = issuer.location.map { "\($0): " } ?? ""
            let provider: any IssuerKeyProvider
            if let given = keys[issuer.name] {
                provider = given
            } else if case .file(let path)? = issuer.keySource {
                provider = FixedKeys(try Self.readKeySet(path, place: place, issuer: issuer.name))
            } else {
                throw GatewayError(.invalidSetting, reason: "\(place)issuers[\(issuer.name)]: no key set has been fetched for this issuer")
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
        let clients = config.clients.map { client in
            let isBuiltin = client.issuer == builtin?.issuer.name
            // Secrets past their end are left out: the snapshot is compiled again at each end.
            let live = isBuiltin ? client.liveSecrets(issuer: settings).filter { ($0.notAfter ?? Int64.max) > now } : []
            let current = live.first { !$0.retired }.map { ClientSecret.credentialVersion(sha256Hex: $0.secretSHA256) }
            return ClientRecord(
                id: client.id,
                name: client.name,
                enabled: client.enabled,
                issuer: client.issuer,
                policyIndex: config.policy.clientIndex(id: client.id) ?? -1,
                allowedIPs: client.allowedIPs,
                // Without a secret no token of its can be current.
                credentialVersion: isBuiltin ? client.publicKey.map(ClientKey.credentialVersion) ?? current ?? "" : nil,
                graceCredentialVersions: live.filter(\.retired).map { ClientSecret.credentialVersion(sha256Hex: $0.secretSHA256) },
                usage: usage?.clock(for: client.id)
            )
        }
        return TokenAuthenticator(issuers: issuers, clients: clients, issuerState: builtin?.state)
    }

    /// The built-in issuer of a configuration, its signing key read now (a bad key fails the
    /// (re)load), with the limiter and state that outlive reloads.
    static func compileBuiltin(_ config: GatewayConfig, runtime: BuiltinIssuerRuntime?) throws -> TokenService? {
        guard let issuerConfig = config.issuers.first(where: \.builtin), let settings = issuerConfig.builtinSettings else {
            return nil
        }
        guard let runtime else { throw GatewayError(.internalError, reason: "the built-in issuer has no state (internal error)") }
        let place = issuerConfig.location.map { "\($0): " } ?? ""
        let issuer: BuiltinIssuer
        do {
            issuer = try BuiltinIssuer(issuerConfig)
        } catch {
            throw GatewayError(.invalidSetting, reason: "\(place)issuers[\(issuerConfig.name)].signing_key_file: \(error)")
        }
        var clients: [TokenService.Client] = []
        for client in config.clients where client.issuer == issuerConfig.name {
            let lifetime = client.tokenLifetime.map { $0.nanoseconds / 1_000_000_000 }
            if client.secretSHA256 != nil {
                clients.append(
                    TokenService.Client(
                        id: client.id,
                        enabled: client.enabled,
                        secrets: client.liveSecrets(issuer: settings),
                        tokenLifetime: lifetime,
                        allowedIPs: client.allowedIPs
                    )
                )
            } else if let text = client.publicKey {
                let key: ClientKey
                do {
                    key = try ClientKey(text: text)
                } catch {
                    let place = client.location.map { "\($0): " } ?? ""
                    throw GatewayError(.invalidSetting, reason: "\(place)clients[\(client.id)].public_key: \(error.reason)")
                }
                clients.append(
                    TokenService.Client(id: client.id, enabled: client.enabled, key: key, keyText: text, tokenLifetime: lifetime, allowedIPs: client.allowedIPs)
                )
            }
        }
        return TokenService(
            issuer: issuer,
            clients: clients,
            limiter: runtime.limiter,
            maxFailedAuth: settings.maxFailedAuth,
            maxFailedAuthPerAddress: settings.maxFailedAuthPerAddress,
            failureWindow: settings.failureWindow.nanoseconds / 1_000_000_000,
            state: runtime.state,
            assertions: runtime.assertions,
            revocations: runtime.revocations,
            logger: runtime.logger
        )
    }
}

/// What the built-in issuer keeps across reloads: failed-authentication counters and its state
/// (revocations, last redemptions). Made once at start.
struct BuiltinIssuerRuntime: Sendable {
    let limiter: FailedAuthLimiter
    let state: IssuerState
    /// `private_key_jwt` assertions seen (replays are refused across reloads too).
    let assertions = ClientAssertionVerifier()
    /// Self-revocations at `POST /oauth/revoke`, for the audit trail.
    let revocations = RevocationObserver()
    let logger: Logger

    /// Nil without a built-in issuer. Its `state_file` is read now (a later change of the path
    /// needs a restart).
    static func make(_ config: GatewayConfig, logger: Logger) throws -> BuiltinIssuerRuntime? {
        guard let issuer = config.issuers.first(where: \.builtin), let settings = issuer.builtinSettings else { return nil }
        do {
            // With a store, revocations and redemptions live there, not in state_file.
            let state = try IssuerState(
                path: config.store == nil ? settings.stateFile : nil,
                now: Int64(Date().timeIntervalSince1970),
                feedsStore: config.store != nil
            )
            return BuiltinIssuerRuntime(limiter: FailedAuthLimiter(feedsStore: config.store != nil), state: state, logger: logger)
        } catch {
            let place = issuer.location.map { "\($0): " } ?? ""
            throw GatewayError(.invalidSetting, reason: "\(place)issuers[\(issuer.name)].state_file: \(error)")
        }
    }
}

extension TokenAuthenticator {
    static func readKeySet(_ path: String, place: String, issuer: String) throws -> JWKSet {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GatewayError(.invalidSetting, reason: "\(place)issuers[\(issuer)].jwks_file: cannot read \(path)")
        }
        do {
            let set = try JWKSet(json: Array(data))
            if set.isEmpty {
                throw GatewayError(.invalidSetting, reason: "\(place)issuers[\(issuer)].jwks_file: \(path) holds no usable signing key")
            }
            return set
        } catch let error as JWKError {
            throw GatewayError(.invalidSetting, reason: "\(place)issuers[\(issuer)].jwks_file: \(path) is not a JWK Set: \(error)")
        }
    }
}
