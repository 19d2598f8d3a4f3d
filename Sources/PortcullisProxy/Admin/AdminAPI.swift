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
    /// Writes one change to the store, with its audit record, and applies the new registry to
    /// every loop before it returns, so the next request sees it.
    public var mutate: @Sendable (ClientMutation, AuditActor) async throws(StoreError) -> Void
    /// The store's audit trail.
    public var audit: AuditTrail
    /// Writes a revocation to the store (every replica refuses the token).
    public var revoke: @Sendable (_ tokenID: String, _ until: Int64) async throws(StoreError) -> Void
    /// Client id -> last-used second, as the store and this replica know them.
    public var lastUsed: @Sendable () -> [String: Int64]
    /// Client id -> last-redeemed second, every replica's.
    public var lastRedeemed: @Sendable () -> [String: Int64]

    public init(
        mutate: @escaping @Sendable (ClientMutation, AuditActor) async throws(StoreError) -> Void,
        audit: AuditTrail,
        revoke: @escaping @Sendable (String, Int64) async throws(StoreError) -> Void,
        lastUsed: @escaping @Sendable () -> [String: Int64],
        lastRedeemed: @escaping @Sendable () -> [String: Int64]
    ) {
        self.mutate = mutate
        self.audit = audit
        self.revoke = revoke
        self.lastUsed = lastUsed
        self.lastRedeemed = lastRedeemed
    }
}

/// The admin API under `/api/v1/` on the admin listener, modelled on Jamf Pro's
/// `api-integrations` and `api-roles`: clients (list, create, rotate, enable, disable, delete),
/// roles, the permission catalogue's privileges, reload, and revocation by token id.
///
/// Every call needs `Authorization: Bearer <admin token>`: one of `admin.tokens` (each named,
/// the name recorded in the audit trail) or the contents of `admin.token_file` (named `admin`),
/// compared as SHA-256 digests in constant time; with neither the API is off.
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
        /// Name and SHA-256 of each admin token.
        var tokens: [(name: String, digest: String)]
    }

    private let snapshot: NIOLockedValueBox<Snapshot>
    private let state: IssuerState?
    /// The token endpoint's failed-authentication counters (unlock); nil without a built-in issuer.
    let limiter: FailedAuthLimiter?
    /// Reloads the directory as SIGHUP does, throwing what made it fail; set by the command.
    private let reloader = NIOLockedValueBox<(@Sendable () async throws -> Void)?>(nil)
    private let storeHooks = NIOLockedValueBox<AdminStoreHooks?>(nil)

    init(config: GatewayConfig, state: IssuerState?, limiter: FailedAuthLimiter? = nil) throws {
        self.snapshot = NIOLockedValueBox(Snapshot(config: config, tokens: try Self.readTokens(config.admin)))
        self.state = state
        self.limiter = limiter
    }

    /// The admin tokens of a configuration about to be applied: token files are read again (a
    /// rotated admin token takes effect with the reload; an unreadable one fails it).
    func tokens(of config: GatewayConfig) throws -> AdminTokens {
        AdminTokens(list: try Self.readTokens(config.admin))
    }

    /// A new configuration was applied on every loop: the API answers from it from now on.
    func update(_ config: GatewayConfig, tokens: AdminTokens) {
        self.snapshot.withLockedValue { $0 = Snapshot(config: config, tokens: tokens.list) }
    }

    struct AdminTokens: Sendable {
        fileprivate var list: [(name: String, digest: String)]
    }

    func setReloader(_ reload: @escaping @Sendable () async throws -> Void) {
        self.reloader.withLockedValue { $0 = reload }
    }

    func setStoreHooks(_ hooks: AdminStoreHooks) {
        self.storeHooks.withLockedValue { $0 = hooks }
    }

    private static func readTokens(_ admin: AdminConfig) throws -> [(name: String, digest: String)] {
        var tokens: [(name: String, digest: String)] = []
        if let path = admin.tokenFile { tokens.append(("admin", try Self.readToken(path, key: "admin.token_file"))) }
        for token in admin.tokens {
            if let hash = token.tokenSHA256 {
                tokens.append((token.name, hash))
            } else if let path = token.tokenFile {
                tokens.append((token.name, try Self.readToken(path, key: "admin.tokens[\(token.name)].token_file")))
            }
        }
        return tokens
    }

    private static func readToken(_ path: String, key: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GatewayError(.invalidSetting, reason: "\(key): cannot read \(path)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.utf8.count >= 16 else {
            throw GatewayError(.invalidSetting, reason: "\(key): \(path) holds \(token.utf8.count) characters; expected a random token of at least 16 (e.g. openssl rand -hex 32)")
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
        let tokens = self.snapshot.withLockedValue { $0.tokens }
        guard !tokens.isEmpty else { return .disabled }
        let values = headers[canonicalForm: "authorization"]
        guard values.count == 1, let token = BearerToken.candidate(from: String(values[0])) else {
            return values.isEmpty ? .missing : .wrong
        }
        // Every token is compared, so the time taken does not say which one matched.
        var name: String?
        for candidate in tokens where ClientSecret.matches(token, sha256Hex: candidate.digest) && name == nil {
            name = candidate.name
        }
        return name.map(Authorization.allowed) ?? .wrong
    }

    /// Whether the admin token with this SHA-256 is still accepted (a console session opened
    /// with it ends when it is rotated away).
    func accepts(tokenSHA256 digest: String) -> Bool {
        self.snapshot.withLockedValue { $0.tokens }.contains { $0.digest == digest }
    }

    // MARK: - Routes

    struct Response: Sendable, Error {
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

    func handle(method: HTTPMethod, path: Substring, body: [UInt8], actor: AuditActor) async -> Response {
        let query = path.firstIndex(of: "?").map { String(path[path.index(after: $0)...]) } ?? ""
        let path = path.firstIndex(of: "?").map { path[..<$0] } ?? path
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map { $0.removingPercentEncoding ?? String($0) }
        guard segments.count >= 3, segments[0] == "api", segments[1] == "v1" else {
            return .error(.notFound, "not_found", "no such admin API resource")
        }
        let rest = Array(segments.dropFirst(2))
        switch (method, rest.count, rest[0]) {
        case (.GET, 1, "clients"):
            return .json(.ok, ["clients": self.config.clients.map(self.clientObject)])
        case (.POST, 1, "clients"):
            return await self.createClient(body, actor: actor)
        case (.GET, 2, "clients"):
            guard let client = self.config.clients.first(where: { $0.id == rest[1] }) else { return Self.unknownClient(rest[1]) }
            return .json(.ok, self.clientObject(client))
        case (.DELETE, 2, "clients"):
            return await self.mutate(.remove(id: rest[1]), status: .noContent, actor: actor)
        case (.PATCH, 2, "clients"):
            return await self.updateClient(rest[1], body, actor: actor)
        case (.POST, 3, "clients") where rest[2] == "client-credentials":
            return await self.rotate(rest[1], body, actor: actor)
        case (.POST, 3, "clients") where rest[2] == "unlock":
            return await self.unlock(FailedAuthLimiter.clientKey(rest[1]), clientID: rest[1], actor: actor)
        case (.GET, 1, "lockouts"):
            return self.lockouts()
        case (.DELETE, 2, "lockouts"):
            return await self.unlock(rest[1], clientID: nil, actor: actor)
        case (.POST, 3, "clients") where rest[2] == "enable" || rest[2] == "disable":
            return await self.mutate(.setEnabled(id: rest[1], enabled: rest[2] == "enable"), status: .ok, actor: actor)
        case (.PUT, 3, "clients") where rest[2] == "limits":
            return await self.putLimits(rest[1], body, actor: actor)
        case (.DELETE, 3, "clients") where rest[2] == "limits":
            return await self.mutate(.setLimits(id: rest[1], LimitsEdit(clear: true)), status: .ok, actor: actor)
        case (.GET, 1, "audit"):
            return await self.readAudit(query)
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
            return await self.revoke(tokenID: rest[1], actor: actor)
        case (_, 1, "clients"), (_, 2, "clients"), (_, 3, "clients"), (_, 1, "roles"), (_, 1, "privileges"), (_, 1, "reload"), (_, 3, "tokens"),
            (_, 1, "audit"), (_, 1, "lockouts"), (_, 2, "lockouts"), (_, 1, "explain"):
            return .error(.methodNotAllowed, "method_not_allowed", "\(method.rawValue) is not allowed on \(path)")
        default:
            return .error(.notFound, "not_found", "no such admin API resource")
        }
    }

    var config: GatewayConfig { self.snapshot.withLockedValue { $0.config } }

    private static func unknownClient(_ id: String) -> Response {
        .error(.notFound, "not_found", "no client has id '\(id)'")
    }

    /// The body as a JSON object of the `known` fields only; an empty body is an empty object.
    private static func object(_ body: [UInt8], known: Set<String>) -> Result<[String: Any], Response> {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .success([:]) }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            return .failure(.error(.badRequest, "invalid_request", "expected a JSON object"))
        }
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            return .failure(.error(.badRequest, "invalid_request", "unknown field '\(unknown)'; expected \(known.sorted().joined(separator: ", "))"))
        }
        return .success(object)
    }

    /// `PATCH /api/v1/clients/{id}` with any of `{"name", "roles", "allowed_ips", "token_lifetime",
    /// "secret_lifetime"}`; null clears `allowed_ips` (any address) and the lifetimes (the
    /// issuer's). The secret is not touched.
    private func updateClient(_ id: String, _ body: [UInt8], actor: AuditActor) async -> Response {
        let object: [String: Any]
        switch Self.object(body, known: ["name", "roles", "allowed_ips", "token_lifetime", "secret_lifetime"]) {
        case .success(let parsed): object = parsed
        case .failure(let response): return response
        }
        var update = ClientUpdate()
        if let value = object["name"] {
            guard let name = value as? String else { return .error(.badRequest, "invalid_request", "name must be a string") }
            update.name = name
        }
        if let value = object["roles"] {
            guard let roles = value as? [String], !roles.isEmpty else {
                return .error(.badRequest, "invalid_request", "roles must be a non-empty list of role names")
            }
            update.roles = roles
        }
        if let value = object["allowed_ips"] {
            if value is NSNull {
                update.allowedIPs = .some(nil)
            } else if let list = value as? [String] {
                update.allowedIPs = .some(list)
            } else {
                return .error(.badRequest, "invalid_request", "allowed_ips must be a list of addresses or CIDR blocks, or null for any")
            }
        }
        for key in ["token_lifetime", "secret_lifetime"] {
            guard let value = object[key] else { continue }
            let text: String??
            if value is NSNull {
                text = .some(nil)
            } else if let duration = value as? String {
                text = .some(duration)
            } else {
                return .error(.badRequest, "invalid_request", "\(key) must be a duration such as \"15m\", or null for the issuer's")
            }
            if key == "token_lifetime" { update.tokenLifetime = text } else { update.secretLifetime = text }
        }
        guard !update.isEmpty else {
            return .error(.badRequest, "invalid_request", "nothing to change: give name, roles, allowed_ips, token_lifetime or secret_lifetime")
        }
        return await self.mutate(.update(id: id, update), status: .ok, actor: actor)
    }

    /// `POST /api/v1/clients` with `{"id", "name"?, "issuer"?, "roles", "allowed_ips"?,
    /// "token_lifetime"?, "enabled"?}`. A client of the built-in issuer (the default issuer)
    /// gets a new secret, in this response only.
    private func createClient(_ body: [UInt8], actor: AuditActor) async -> Response {
        let object: [String: Any]
        let known: Set = ["id", "name", "issuer", "roles", "allowed_ips", "token_lifetime", "secret_lifetime", "enabled", "public_key", "limits"]
        switch Self.object(body, known: known) {
        case .success(let parsed) where !parsed.isEmpty: object = parsed
        case .success: return .error(.badRequest, "invalid_request", "expected a JSON object")
        case .failure(let response): return response
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
        for key in ["token_lifetime", "secret_lifetime"] where object[key] != nil && !(object[key] is String) {
            return .error(.badRequest, "invalid_request", "\(key) must be a duration such as \"15m\"")
        }
        if object["public_key"] != nil && !(object["public_key"] is String) {
            return .error(.badRequest, "invalid_request", "public_key must be a PEM public key or a JWK, as a string")
        }
        let publicKey = object["public_key"] as? String
        if let publicKey {
            do {
                _ = try ClientKey(text: publicKey)
            } catch {
                return .error(.badRequest, "invalid_request", "public_key: \(error.reason)")
            }
        }
        var limits: ClientLimits?
        if let value = object["limits"], !(value is NSNull) {
            do throws(LimitsInputError) {
                limits = try ClientLimits.parse(json: value)
            } catch {
                return .error(.badRequest, "invalid_request", error.description)
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
            enabled: (object["enabled"] as? Bool) ?? true,
            secretLifetime: object["secret_lifetime"] as? String,
            limits: limits
        )
        var response = await self.mutate(.add(draft), status: .created, actor: actor)
        if let secret, response.status == .created {
            response = self.withSecret(response, clientID: id, secret: secret)
        }
        return response
    }

    /// `PUT /api/v1/clients/{id}/limits` with `{"rate"?, "burst"?, "quota"?, "concurrency"?}`:
    /// the client's own limits become exactly these (`{}` clears them, as `DELETE` does); for a
    /// declared client they apply over its declared `limits:`.
    private func putLimits(_ id: String, _ body: [UInt8], actor: AuditActor) async -> Response {
        let limits: ClientLimits
        do throws(LimitsInputError) {
            let object = (try? JSONSerialization.jsonObject(with: Data(body))) ?? ()
            limits = try ClientLimits.parse(json: object)
        } catch {
            return .error(.badRequest, "invalid_request", error.description)
        }
        return await self.mutate(.setLimits(id: id, LimitsEdit(set: limits, clear: true)), status: .ok, actor: actor)
    }

    /// `POST /api/v1/clients/{id}/client-credentials`, optionally `{"grace": "1h"}`: a new
    /// secret. Without a grace the old one and every token issued under it stop working at
    /// once; with one, when the grace ends.
    private func rotate(_ id: String, _ body: [UInt8], actor: AuditActor) async -> Response {
        var grace: ConfigDuration?
        switch Self.object(body, known: ["grace"]) {
        case .success(let object):
            if let value = object["grace"] {
                guard let text = value as? String, let duration = ConfigDuration(parsing: text) else {
                    return .error(.badRequest, "invalid_request", "grace must be a duration such as \"1h\" or \"7d\"")
                }
                grace = duration
            }
        case .failure(let response): return response
        }
        guard let client = self.config.clients.first(where: { $0.id == id }) else { return Self.unknownClient(id) }
        guard client.secretSHA256 != nil else {
            return .error(.conflict, "conflict", "client '\(id)' belongs to the outside issuer '\(client.issuer)', which holds its credentials: rotate them there")
        }
        let secret = ClientSecret.generate()
        let response = await self.mutate(.rotate(id: id, secretSHA256: ClientSecret.sha256Hex(secret), grace: grace), status: .ok, actor: actor)
        return response.status == .ok ? self.withSecret(response, clientID: id, secret: secret) : response
    }

    private func withSecret(_ response: Response, clientID: String, secret: String) -> Response {
        var object = ((try? JSONSerialization.jsonObject(with: Data(response.body.utf8))) as? [String: Any]) ?? [:]
        object["client_id"] = clientID
        object["client_secret"] = secret
        return .json(response.status, object)
    }

    /// One change of the clients file, then the reload that applies it.
    private func mutate(_ mutation: ClientMutation, status: HTTPResponseStatus, actor: AuditActor) async -> Response {
        if let hooks = self.storeHooks.withLockedValue({ $0 }) {
            return await self.mutateStore(mutation, status: status, hooks: hooks, actor: actor)
        }
        let directory = self.config.directory
        let result: ClientConfig?
        do {
            result = try await NIOThreadPool.singleton.runIfActive {
                try AuditTrail.applyToClientsFile(mutation, directory: directory, actor: actor)
            }
        } catch let error as ClientsFileError {
            switch error.code {
            case .unknownClient: return Self.unknownClient(error.clientID ?? "")
            case .duplicateClient: return .error(.conflict, "conflict", "a client with id '\(error.clientID ?? "")' exists")
            case .invalid: return .error(.badRequest, "invalid_request", "\(error)")
            case .notBuiltin: return .error(.conflict, "conflict", "\(error)")
            default: return .error(.internalServerError, "write_failed", "\(error)")  // .io
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
    private func mutateStore(_ mutation: ClientMutation, status: HTTPResponseStatus, hooks: AdminStoreHooks, actor: AuditActor) async -> Response {
        do throws(StoreError) {
            try await hooks.mutate(mutation, actor)
        } catch {
            switch error.code {
            case .unknownClient: return Self.unknownClient(mutation.clientID)
            case .duplicateClient, .declaredClient, .notBuiltin: return .error(.conflict, "conflict", error.reason)
            case .invalid: return .error(.badRequest, "invalid_request", error.reason)
            case .unavailable: return .error(.serviceUnavailable, "store_unavailable", "the store cannot be reached; nothing was changed: \(error.reason)")
            default: return .error(.internalServerError, "write_failed", error.reason)  // .io
            }
        }
        if case .remove = mutation { return Response(status: status, body: "") }
        let id = mutation.clientID
        guard let client = self.config.clients.first(where: { $0.id == id }) else {
            return .json(status, ["id": id])
        }
        return .json(status, self.clientObject(client))
    }

    private func reload() async throws {
        guard let reload = self.reloader.withLockedValue({ $0 }) else {
            throw GatewayError(.reloadUnavailable, reason: "this gateway cannot reload itself")
        }
        try await reload()
    }

    /// `POST /api/v1/tokens/{jti}/revoke`: the token id is refused from now on, remembered for
    /// `max_token_lifetime` (no token of this issuer lives longer).
    private func revoke(tokenID: String, actor: AuditActor) async -> Response {
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
        do throws(StoreError) {
            try await self.auditTrail.record(actor: actor, action: "token.revoke", client: nil, tokenID: tokenID)
        } catch {
            return .error(.internalServerError, "audit_failed", "the token is revoked, but its audit record was not written: \(error.reason)")
        }
        return .json(.ok, ["revoked": tokenID])
    }

    /// The store's audit trail, or without one the config directory's `audit.jsonl`.
    var auditTrail: AuditTrail {
        self.storeHooks.withLockedValue { $0 }?.audit ?? AuditTrail(configDirectory: self.config.directory)
    }

    /// `GET /api/v1/audit?client=&actor=&since=&action=&limit=`: the matching records, oldest
    /// first. `since` is an RFC 3339 UTC time or a duration back from now (`30d`).
    private func readAudit(_ query: String) async -> Response {
        var filter = AuditFilter()
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let name = String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "") : ""
            switch name {
            case "client": filter.clientID = value
            case "actor": filter.actor = value
            case "action": filter.action = value
            case "since":
                guard let since = AuditFilter.since(value, now: Int64(Date().timeIntervalSince1970)) else {
                    return .error(.badRequest, "invalid_request", "since must be a UTC time such as 2026-12-04T10:00:00Z or a duration back from now such as 30d")
                }
                filter.since = since
            case "limit":
                guard let limit = Int(value), (1...100_000).contains(limit) else {
                    return .error(.badRequest, "invalid_request", "limit must be a number from 1 to 100000")
                }
                filter.limit = limit
            default:
                return .error(.badRequest, "invalid_request", "unknown parameter '\(name)'; expected client, actor, since, action, limit")
            }
        }
        do throws(StoreError) {
            let events = try await self.auditTrail.read(filter)
            let data = events.map { String(decoding: AuditLogFile.line($0).dropLast(), as: UTF8.self) }
            return Response(status: .ok, body: "{\"events\":[" + data.joined(separator: ",") + "]}")
        } catch {
            let status: HTTPResponseStatus = error.code == .unavailable ? .serviceUnavailable : .internalServerError
            return .error(status, error.code == .unavailable ? "store_unavailable" : "read_failed", error.reason)
        }
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
            "limits": self.config.limitSources(of: client).jsonObject,
            "secret_lifetime": client.secretLifetime(issuer: self.builtinSettings)?.description as Any? ?? NSNull(),
            "secrets": self.secretObjects(client),
        ]
    }

    private var builtinSettings: BuiltinIssuerSettings? { self.config.issuers.first(where: \.builtin)?.builtinSettings }

    /// The client's secrets, current first, by creation and expiry times (never their values).
    private func secretObjects(_ client: ClientConfig) -> [[String: Any]] {
        let settings = self.builtinSettings
        let created = [client.secretCreated] + client.retiredSecrets.map(\.created)
        return zip(client.liveSecrets(issuer: settings), created).map { secret, created in
            [
                "state": secret.retired ? "grace" : "current",
                "created": created.map { $0 as Any } ?? NSNull(),
                "expires": secret.notAfter.map { IssuerState.formatTimestamp($0) as Any } ?? NSNull(),
            ]
        }
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
