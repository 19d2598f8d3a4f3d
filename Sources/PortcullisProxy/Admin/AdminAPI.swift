import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import PortcullisAuth
import PortcullisPolicy
import PortcullisStore

/// How the admin API writes with `store:` configured: through the store, never the config
/// directory. Supplied by the command, which knows the declared configuration.
public struct AdminStoreHooks: Sendable {
    /// Writes one change to the store and applies the new registry to every loop before it
    /// returns, so the next request sees it.
    public var mutate: @Sendable (ClientMutation) async throws(StoreError) -> Void
    /// Writes a revocation to the store (every replica refuses the token).
    public var revoke: @Sendable (_ tokenID: String, _ until: Int64) async throws(StoreError) -> Void
    /// Client id -> last-used second, as the store and this replica know them.
    public var lastUsed: @Sendable () -> [String: Int64]
    /// Client id -> last-redeemed second, every replica's.
    public var lastRedeemed: @Sendable () -> [String: Int64]

    public init(
        mutate: @escaping @Sendable (ClientMutation) async throws(StoreError) -> Void,
        revoke: @escaping @Sendable (String, Int64) async throws(StoreError) -> Void,
        lastUsed: @escaping @Sendable () -> [String: Int64],
        lastRedeemed: @escaping @Sendable () -> [String: Int64]
    ) {
        self.mutate = mutate
        self.revoke = revoke
        self.lastUsed = lastUsed
        self.lastRedeemed = lastRedeemed
    }
}

/// The admin API under `/api/v1/` on the admin listener, modelled on Jamf Pro's
/// `api-integrations` and `api-roles`: clients (list, create, rotate, enable, disable, delete),
/// roles, the permission catalogue's privileges, reload, and revocation by token id.
///
/// Every call needs `Authorization: Bearer <admin token>` (the contents of `admin.token_file`,
/// compared as SHA-256 digests in constant time); without a token file the API is off.
/// With `store:`, mutations go to the store through ``AdminStoreHooks`` (checked against the
/// running issuers and roles only) and are applied to every loop before the answer. Without
/// it, mutations edit the clients file through ``ClientsFile`` (lock, validate the whole
/// config, write, fsync, rename), on a thread pool, then reload; concurrent mutations, from
/// here or from `portcullis client`, are serialised by the clients file's lock. Off the
/// request path.
final class AdminAPI: Sendable {
    /// The running configuration and the admin token's digest, swapped on every (re)load.
    private struct Snapshot: Sendable {
        var config: GatewayConfig
        var tokenDigest: String?
    }

    private let snapshot: NIOLockedValueBox<Snapshot>
    private let state: IssuerState?
    /// The token endpoint's failed-authentication counters (unlock); nil without a built-in issuer.
    let limiter: FailedAuthLimiter?
    /// Reloads the directory as SIGHUP does, throwing what made it fail; set by the command.
    private let reloader = NIOLockedValueBox<(@Sendable () async throws -> Void)?>(nil)
    private let storeHooks = NIOLockedValueBox<AdminStoreHooks?>(nil)

    init(config: GatewayConfig, state: IssuerState?, limiter: FailedAuthLimiter? = nil) throws {
        self.snapshot = NIOLockedValueBox(Snapshot(config: config, tokenDigest: try Self.readToken(config.admin)))
        self.state = state
        self.limiter = limiter
    }

    /// A new configuration was applied: the token file is read again (a rotated admin token
    /// takes effect with the reload; an unreadable one fails it).
    func update(_ config: GatewayConfig) throws {
        let digest = try Self.readToken(config.admin)
        self.snapshot.withLockedValue { $0 = Snapshot(config: config, tokenDigest: digest) }
    }

    func setReloader(_ reload: @escaping @Sendable () async throws -> Void) {
        self.reloader.withLockedValue { $0 = reload }
    }

    func setStoreHooks(_ hooks: AdminStoreHooks) {
        self.storeHooks.withLockedValue { $0 = hooks }
    }

    private static func readToken(_ admin: AdminConfig) throws -> String? {
        guard let path = admin.tokenFile else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GatewayError("admin.token_file: cannot read \(path)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.utf8.count >= 16 else {
            throw GatewayError("admin.token_file: \(path) holds \(token.utf8.count) characters; expected a random token of at least 16 (e.g. openssl rand -hex 32)")
        }
        return ClientSecret.sha256Hex(token)
    }

    // MARK: - Authorization

    enum Authorization: Equatable {
        /// The name of the admin token presented.
        case allowed(String)
        /// No token file: the admin API is off.
        case disabled
        case missing
        case wrong
    }

    /// Checks `Authorization: Bearer <token>`; the presented token is hashed and the digests are
    /// compared in constant time.
    func authorize(_ headers: HTTPHeaders) -> Authorization {
        guard let expected = self.snapshot.withLockedValue({ $0.tokenDigest }) else { return .disabled }
        let values = headers[canonicalForm: "authorization"]
        guard values.count == 1, let token = BearerToken.candidate(from: String(values[0])) else {
            return values.isEmpty ? .missing : .wrong
        }
        return ClientSecret.matches(token, sha256Hex: expected) ? .allowed("admin") : .wrong
    }

    /// Whether the admin token with this SHA-256 is still accepted (a console session opened
    /// with it ends when it is rotated away).
    func accepts(tokenSHA256 digest: String) -> Bool {
        self.snapshot.withLockedValue { $0.tokenDigest } == digest
    }

    // MARK: - Routes

    struct Response: Sendable {
        var status: HTTPResponseStatus
        var body: String

        static func json(_ status: HTTPResponseStatus, _ object: Any) -> Response {
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            return Response(status: status, body: String(decoding: data, as: UTF8.self))
        }

        static func error(_ status: HTTPResponseStatus, _ code: String, _ description: String) -> Response {
            .json(status, ["error": code, "error_description": description])
        }
    }

    /// Whether a path belongs to the API (and so needs the admin token).
    static func isAPIPath(_ path: Substring) -> Bool { path.hasPrefix("/api/") }

    func handle(method: HTTPMethod, path: Substring, body: [UInt8]) async -> Response {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map { $0.removingPercentEncoding ?? String($0) }
        guard segments.count >= 3, segments[0] == "api", segments[1] == "v1" else {
            return .error(.notFound, "not_found", "no such admin API resource")
        }
        let rest = Array(segments.dropFirst(2))
        switch (method, rest.count, rest[0]) {
        case (.GET, 1, "clients"):
            return .json(.ok, ["clients": self.config.clients.map(self.clientObject)])
        case (.POST, 1, "clients"):
            return await self.createClient(body)
        case (.GET, 2, "clients"):
            guard let client = self.config.clients.first(where: { $0.id == rest[1] }) else { return Self.unknownClient(rest[1]) }
            return .json(.ok, self.clientObject(client))
        case (.DELETE, 2, "clients"):
            return await self.mutate(.remove(id: rest[1]), status: .noContent)
        case (.POST, 3, "clients") where rest[2] == "client-credentials":
            return await self.rotate(rest[1])
        case (.POST, 3, "clients") where rest[2] == "unlock":
            return self.unlock(FailedAuthLimiter.clientKey(rest[1]), clientID: rest[1])
        case (.GET, 1, "lockouts"):
            return self.lockouts()
        case (.DELETE, 2, "lockouts"):
            return self.unlock(rest[1], clientID: nil)
        case (.POST, 3, "clients") where rest[2] == "enable" || rest[2] == "disable":
            return await self.mutate(.setEnabled(id: rest[1], enabled: rest[2] == "enable"), status: .ok)
        case (.GET, 1, "roles"):
            return .json(.ok, ["roles": self.config.roles.map(Self.roleObject)])
        case (.GET, 1, "privileges"):
            return self.privileges()
        case (.POST, 1, "explain"):
            return self.explain(body)
        case (.POST, 1, "reload"):
            do {
                try await self.reload()
                return .json(.ok, ["status": "reloaded"])
            } catch {
                return .error(.unprocessableEntity, "reload_failed", "\(error)")
            }
        case (.POST, 3, "tokens") where rest[2] == "revoke":
            return await self.revoke(tokenID: rest[1])
        case (_, 1, "clients"), (_, 2, "clients"), (_, 3, "clients"), (_, 1, "roles"), (_, 1, "privileges"), (_, 1, "reload"), (_, 3, "tokens"),
            (_, 1, "lockouts"), (_, 2, "lockouts"), (_, 1, "explain"):
            return .error(.methodNotAllowed, "method_not_allowed", "\(method.rawValue) is not allowed on \(path)")
        default:
            return .error(.notFound, "not_found", "no such admin API resource")
        }
    }

    var config: GatewayConfig { self.snapshot.withLockedValue { $0.config } }

    private static func unknownClient(_ id: String) -> Response {
        .error(.notFound, "unknown_client", "no client has id '\(id)'")
    }

    /// `POST /api/v1/clients` with `{"id", "name"?, "issuer"?, "roles", "allowed_ips"?,
    /// "token_lifetime"?, "enabled"?}`. A client of the built-in issuer (the default issuer)
    /// gets a new secret, in this response only.
    private func createClient(_ body: [UInt8]) async -> Response {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            return .error(.badRequest, "invalid_request", "expected a JSON object")
        }
        let known: Set = ["id", "name", "issuer", "roles", "allowed_ips", "token_lifetime", "enabled", "public_key"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            return .error(.badRequest, "invalid_request", "unknown field '\(unknown)'; expected \(known.sorted().joined(separator: ", "))")
        }
        guard let id = object["id"] as? String, !id.isEmpty else {
            return .error(.badRequest, "invalid_request", "id is required (a string)")
        }
        guard let roles = object["roles"] as? [String], !roles.isEmpty else {
            return .error(.badRequest, "invalid_request", "roles is required (a list of role names)")
        }
        let config = self.config
        let builtinName = config.issuers.first(where: \.builtin)?.name
        guard let issuer = (object["issuer"] as? String) ?? builtinName else {
            return .error(.badRequest, "invalid_request", "issuer is required (no built-in issuer is configured)")
        }
        if object["allowed_ips"] != nil && !(object["allowed_ips"] is [String]) {
            return .error(.badRequest, "invalid_request", "allowed_ips must be a list of addresses or CIDR blocks")
        }
        if object["token_lifetime"] != nil && !(object["token_lifetime"] is String) {
            return .error(.badRequest, "invalid_request", "token_lifetime must be a duration such as \"15m\"")
        }
        if object["public_key"] != nil && !(object["public_key"] is String) {
            return .error(.badRequest, "invalid_request", "public_key must be a PEM public key or a JWK, as a string")
        }
        let publicKey = object["public_key"] as? String
        if let publicKey {
            do {
                _ = try ClientKey(text: publicKey)
            } catch {
                return .error(.unprocessableEntity, "invalid_request", "public_key: \(error.reason)")
            }
        }
        let isBuiltin = issuer == builtinName
        // A key client (private_key_jwt) has no secret at all.
        let secret = isBuiltin && publicKey == nil ? ClientSecret.generate() : nil
        let draft = ClientDraft(
            id: id,
            name: (object["name"] as? String) ?? id,
            issuer: issuer,
            roles: roles,
            allowedIPs: object["allowed_ips"] as? [String],
            tokenLifetime: object["token_lifetime"] as? String,
            secretSHA256: secret.map { ClientSecret.sha256Hex($0) },
            publicKey: publicKey,
            enabled: (object["enabled"] as? Bool) ?? true
        )
        var response = await self.mutate(.add(draft), status: .created)
        if let secret, response.status == .created {
            response = self.withSecret(response, clientID: id, secret: secret)
        }
        return response
    }

    /// `POST /api/v1/clients/{id}/client-credentials`: a new secret; the old one and every
    /// token issued under it stop working with the reload.
    private func rotate(_ id: String) async -> Response {
        guard let client = self.config.clients.first(where: { $0.id == id }) else { return Self.unknownClient(id) }
        guard client.secretSHA256 != nil else {
            return .error(.conflict, "not_a_builtin_client", "client '\(id)' belongs to the outside issuer '\(client.issuer)': its credentials live there")
        }
        let secret = ClientSecret.generate()
        let response = await self.mutate(.rotate(id: id, secretSHA256: ClientSecret.sha256Hex(secret)), status: .ok)
        return response.status == .ok ? self.withSecret(response, clientID: id, secret: secret) : response
    }

    private func withSecret(_ response: Response, clientID: String, secret: String) -> Response {
        var object = ((try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any]) ?? [:]
        object["client_id"] = clientID
        object["client_secret"] = secret
        return .json(response.status, object)
    }

    /// One change of the clients file, then the reload that applies it.
    private func mutate(_ mutation: ClientMutation, status: HTTPResponseStatus) async -> Response {
        if let hooks = self.storeHooks.withLockedValue({ $0 }) {
            return await self.mutateStore(mutation, status: status, hooks: hooks)
        }
        let directory = self.config.directory
        let result: ClientConfig?
        do {
            result = try await NIOThreadPool.singleton.runIfActive {
                try ClientsFile.apply(mutation, directory: directory)
            }
        } catch let error as ClientsFileError {
            switch error {
            case .unknownClient(let id): return Self.unknownClient(id)
            case .duplicateClient(let id): return .error(.conflict, "duplicate_client", "a client with id '\(id)' exists")
            case .invalid: return .error(.unprocessableEntity, "invalid_client", "\(error)")
            case .io: return .error(.internalServerError, "write_failed", "\(error)")
            }
        } catch {
            return .error(.internalServerError, "write_failed", "\(error)")
        }
        do {
            try await self.reload()
        } catch {
            return .error(.internalServerError, "reload_failed", "the clients file was written but the reload failed: \(error)")
        }
        guard let client = result else { return Response(status: status, body: "") }
        return .json(status, self.clientObject(client))
    }

    /// One change through the store; the hooks apply it to every loop before returning.
    private func mutateStore(_ mutation: ClientMutation, status: HTTPResponseStatus, hooks: AdminStoreHooks) async -> Response {
        do throws(StoreError) {
            try await hooks.mutate(mutation)
        } catch {
            switch error.code {
            case .unknownClient:
                if case .remove(let id) = mutation { return Self.unknownClient(id) }
                return .error(.notFound, "unknown_client", error.reason)
            case .duplicateClient: return .error(.conflict, "duplicate_client", error.reason)
            case .declaredClient: return .error(.conflict, "declared_client", error.reason)
            case .invalid: return .error(.unprocessableEntity, "invalid_client", error.reason)
            case .unavailable: return .error(.serviceUnavailable, "store_unavailable", "the store cannot be reached; nothing was changed: \(error.reason)")
            case .io: return .error(.internalServerError, "write_failed", error.reason)
            }
        }
        let id: String
        switch mutation {
        case .add(let draft): id = draft.id
        case .rotate(let clientID, _), .setEnabled(let clientID, _): id = clientID
        case .remove: return Response(status: status, body: "")
        }
        guard let client = self.config.clients.first(where: { $0.id == id }) else {
            return .json(status, ["id": id])
        }
        return .json(status, self.clientObject(client))
    }

    private func reload() async throws {
        guard let reload = self.reloader.withLockedValue({ $0 }) else {
            throw GatewayError("this gateway cannot reload itself")
        }
        try await reload()
    }

    /// `POST /api/v1/tokens/{jti}/revoke`: the token id is refused from now on, remembered for
    /// `max_token_lifetime` (no token of this issuer lives longer).
    private func revoke(tokenID: String) async -> Response {
        guard let state = self.state,
            let settings = self.config.issuers.first(where: \.builtin)?.builtinSettings
        else {
            return .error(.notFound, "no_builtin_issuer", "no built-in issuer is configured")
        }
        guard !tokenID.isEmpty, tokenID.utf8.count <= 128 else {
            return .error(.badRequest, "invalid_request", "expected a token id (the jti claim)")
        }
        let now = Int64(Date().timeIntervalSince1970)
        let until = now + settings.maxTokenLifetime.nanoseconds / 1_000_000_000
        if let hooks = self.storeHooks.withLockedValue({ $0 }) {
            do throws(StoreError) {
                try await hooks.revoke(tokenID, until)
            } catch {
                let status: HTTPResponseStatus = error.code == .unavailable ? .serviceUnavailable : .internalServerError
                return .error(status, error.code == .unavailable ? "store_unavailable" : "write_failed", "the revocation was not stored: \(error.reason)")
            }
        }
        state.revoke(tokenID, until: until, now: now)
        return .json(.ok, ["revoked": tokenID])
    }

    private func privileges() -> Response {
        guard let catalog = self.config.catalog else {
            return .json(.ok, ["privileges": [] as [Any]])
        }
        var byPermission: [String: [[String: Any]]] = [:]
        for operation in catalog.operations {
            guard let permission = operation.permission else { continue }
            byPermission[permission, default: []].append(["path": operation.path, "methods": operation.methods])
        }
        let list = byPermission.keys.sorted().map { ["name": $0, "operations": byPermission[$0]!] as [String: Any] }
        return .json(.ok, ["catalog": catalog.fileName, "privileges": list])
    }

    // MARK: - JSON

    private func clientObject(_ client: ClientConfig) -> [String: Any] {
        let hooks = self.storeHooks.withLockedValue { $0 }
        let redeemed = hooks?.lastRedeemed()[client.id] ?? self.state?.lastRedeemed[client.id]
        let used = hooks?.lastUsed()[client.id]
        return [
            "id": client.id,
            "name": client.name,
            "enabled": client.enabled,
            "issuer": client.issuer,
            "roles": client.roles,
            "allowed_ips": client.allowedIPsText.map { $0 as Any } ?? NSNull(),
            "token_lifetime": self.tokenLifetime(client).map { $0 as Any } ?? NSNull(),
            "last_redeemed": redeemed.map { IssuerState.formatTimestamp($0) as Any } ?? NSNull(),
            "last_modified": client.lastModified.map { $0 as Any } ?? NSNull(),
            "last_used": used.map { IssuerState.formatTimestamp($0) as Any } ?? NSNull(),
        ]
    }

    /// A built-in client's lifetime, its own or the issuer's default; nil for outside clients.
    private func tokenLifetime(_ client: ClientConfig) -> String? {
        guard client.secretSHA256 != nil else { return nil }
        if let own = client.tokenLifetime { return own.description }
        return self.config.issuers.first(where: { $0.name == client.issuer })?.builtinSettings?.tokenLifetime.description
    }

    private static func roleObject(_ role: RoleConfig) -> [String: Any] {
        func rules(_ list: [RouteRule]) -> [[String: Any]] {
            list.map { rule in
                ["methods": rule.methods.map { $0 as Any } ?? NSNull(), "paths": rule.paths.map(\.description)]
            }
        }
        var object: [String: Any] = [
            "name": role.name,
            "description": role.description.map { $0 as Any } ?? NSNull(),
            "allow": rules(role.allow),
            "deny": rules(role.deny),
        ]
        if let tenants = role.tenants {
            object["tenants"] = ["allow": tenants.allow.map { $0 as Any } ?? NSNull(), "block": tenants.block]
        }
        if let permissions = role.permissions {
            object["permissions"] = ["include": permissions.include, "exclude": permissions.exclude]
        }
        return object
    }
}
