import PortcullisPolicy

/// A client created at run time (`portcullis client add`, `POST /api/v1/clients`), as the store
/// keeps it: the same fields as a `clients:` entry, the secret only as its SHA-256.
public struct StoredClient: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var issuer: String
    public var roles: [String]
    /// nil: any address; empty: none.
    public var allowedIPs: [String]?
    public var tokenLifetime: String?
    public var secretSHA256: String?
    /// A `private_key_jwt` client's public key (PEM or JWK).
    public var publicKey: String?
    public var enabled: Bool
    /// Its own limits; nil (and absent from files written before limits existed): none.
    public var limits: ClientLimits?
    /// RFC 3339 UTC, seconds.
    public var lastModified: String
    public var secretCreated: String?
    public var secretLifetime: String?
    public var retiredSecrets: [RetiredSecret]?

    public init(_ draft: ClientDraft, lastModified: String) {
        self.secretCreated = draft.secretCreated
        self.secretLifetime = draft.secretLifetime
        self.retiredSecrets = draft.retiredSecrets.isEmpty ? nil : draft.retiredSecrets
        self.id = draft.id
        self.name = draft.name
        self.issuer = draft.issuer
        self.roles = draft.roles
        self.allowedIPs = draft.allowedIPs
        self.tokenLifetime = draft.tokenLifetime
        self.secretSHA256 = draft.secretSHA256
        self.publicKey = draft.publicKey
        self.enabled = draft.enabled
        self.limits = draft.limits
        self.lastModified = lastModified
    }

    public var draft: ClientDraft {
        get {
            var draft = ClientDraft(
                id: self.id,
                name: self.name,
                issuer: self.issuer,
                roles: self.roles,
                allowedIPs: self.allowedIPs,
                tokenLifetime: self.tokenLifetime,
                secretSHA256: self.secretSHA256,
                publicKey: self.publicKey,
                enabled: self.enabled,
                secretLifetime: self.secretLifetime,
                limits: self.limits
            )
            draft.secretCreated = self.secretCreated
            draft.retiredSecrets = self.retiredSecrets ?? []
            return draft
        }
        set { self = StoredClient(newValue, lastModified: self.lastModified) }
    }

    enum CodingKeys: String, CodingKey {
        case id, name, issuer, roles, enabled, limits
        case allowedIPs = "allowed_ips"
        case tokenLifetime = "token_lifetime"
        case secretSHA256 = "secret_sha256"
        case publicKey = "public_key"
        case lastModified = "last_modified"
        case secretCreated = "secret_created"
        case secretLifetime = "secret_lifetime"
        case retiredSecrets = "retired_secrets"
    }
}

/// A run-time change to a client declared in the config directory (GitOps): it wins over the
/// declared value, so an emergency disable or rotation works whatever the YAML says.
public struct ClientOverride: Codable, Sendable, Equatable {
    public var enabled: Bool?
    public var secretSHA256: String?
    /// Limits set at run time, field by field over the declared client's own `limits:`.
    public var limits: ClientLimits?
    public var lastModified: String
    /// With `secretSHA256`: when it was made, and the secrets it replaced still in their grace.
    public var secretCreated: String?
    public var retiredSecrets: [RetiredSecret]?

    public init(enabled: Bool? = nil, secretSHA256: String? = nil, limits: ClientLimits? = nil, lastModified: String) {
        self.enabled = enabled
        self.secretSHA256 = secretSHA256
        self.limits = limits
        self.lastModified = lastModified
    }

    enum CodingKeys: String, CodingKey {
        case enabled, limits
        case secretSHA256 = "secret_sha256"
        case lastModified = "last_modified"
        case secretCreated = "secret_created"
        case retiredSecrets = "retired_secrets"
    }
}

/// Everything a store holds, as one value: what a replica compiles its snapshot from.
public struct Registry: Sendable, Equatable {
    public var clients: [String: StoredClient]
    public var overrides: [String: ClientOverride]
    /// Token id -> its `exp` (seconds); refused until then.
    public var revocations: [String: Int64]
    /// Client id -> seconds since the epoch.
    public var lastRedeemed: [String: Int64]
    public var lastUsed: [String: Int64]
    /// Failed client authentications at the token endpoint, by limiter key, every replica's.
    public var failedAuth: [String: FailureCount] = [:]
    /// Lockouts an admin cleared: limiter key -> when. A replica drops its failures for the key
    /// that started before then.
    public var unlocks: [String: Int64] = [:]

    public init(
        clients: [String: StoredClient] = [:],
        overrides: [String: ClientOverride] = [:],
        revocations: [String: Int64] = [:],
        lastRedeemed: [String: Int64] = [:],
        lastUsed: [String: Int64] = [:]
    ) {
        self.clients = clients
        self.overrides = overrides
        self.revocations = revocations
        self.lastRedeemed = lastRedeemed
        self.lastUsed = lastUsed
    }

    /// The clients a gateway serves: the declared ones with their overrides, then the stored
    /// ones, each checked against `context` (a stored client whose role or issuer is gone from
    /// the configuration is left out, with a warning, rather than served with fewer rules).
    public func effectiveClients(declared: [ClientConfig], context: RegistryContext) -> (clients: [ClientConfig], warnings: [String]) {
        var warnings: [String] = []
        var result: [ClientConfig] = declared.map { client in
            guard let override = self.overrides[client.id] else { return client }
            var changed = client
            if let enabled = override.enabled { changed.enabled = enabled }
            if let hash = override.secretSHA256, client.secretSHA256 != nil {
                changed.secretSHA256 = hash
                changed.secretCreated = override.secretCreated
                changed.retiredSecrets = override.retiredSecrets ?? []
            }
            if let limits = override.limits { changed.limits = limits.over(client.limits ?? ClientLimits()) }
            changed.lastModified = override.lastModified
            return changed
        }
        let declaredIDs = Set(declared.map(\.id))
        for stored in self.clients.values.sorted(by: { $0.id < $1.id }) {
            if declaredIDs.contains(stored.id) {
                warnings.append("store: client '\(stored.id)' is also declared in the configuration; the declared one is served")
                continue
            }
            do {
                result.append(try ConfigLoader.validateClient(stored.draft, lastModified: stored.lastModified, context: context))
            } catch {
                warnings.append("store: client '\(stored.id)' is not served: \(error)")
            }
        }
        return (result, warnings)
    }

    /// Applies a written change to this value (what the store wrote, without reading it back).
    public mutating func apply(_ change: StoreChange) {
        switch change {
        case .put(let client): self.clients[client.id] = client
        case .override(let id, let override): self.overrides[id] = override
        case .remove(let id):
            self.clients.removeValue(forKey: id)
            self.overrides.removeValue(forKey: id)
        case .revoke(let id, let until): self.revocations[id] = max(until, self.revocations[id] ?? 0)
        }
    }

    /// Adds usage times and revocations (later times win).
    public mutating func apply(_ batch: UsageBatch) {
        for (id, seconds) in batch.lastUsed where (self.lastUsed[id] ?? 0) < seconds { self.lastUsed[id] = seconds }
        for (id, seconds) in batch.lastRedeemed where (self.lastRedeemed[id] ?? 0) < seconds { self.lastRedeemed[id] = seconds }
        for (id, exp) in batch.revocations where (self.revocations[id] ?? 0) < exp { self.revocations[id] = exp }
        for (key, increment) in batch.failedAuth {
            self.failedAuth[key] = FailureCount.adding(increment, to: self.failedAuth[key])
        }
        // After the failures: those counted before the unlock, in the same batch, go too.
        for (key, at) in batch.unlocks {
            self.unlocks[key] = max(at, self.unlocks[key] ?? 0)
            if let count = self.failedAuth[key], count.start <= at { self.failedAuth.removeValue(forKey: key) }
        }
    }

    /// Drops revocations whose tokens have expired, and failure windows that have ended.
    public mutating func pruneRevocations(now: Int64) {
        self.revocations = self.revocations.filter { $0.value > now }
        self.failedAuth = self.failedAuth.filter { $0.value.start + $0.value.window > now }
        self.unlocks = self.unlocks.filter { $0.value > now - Self.unlockMemory }
    }

    /// How long an unlock is kept: the longest `failure_window`.
    public static let unlockMemory: Int64 = 86_400
}

/// One write to the registry.
public enum StoreChange: Sendable, Equatable {
    case put(StoredClient)
    case override(id: String, ClientOverride)
    case remove(id: String)
    case revoke(tokenID: String, until: Int64)
}

/// Usage times and revocations gathered off the event loops and written together, about once
/// a second. Later times win when two batches merge.
public struct UsageBatch: Sendable, Equatable {
    public var lastUsed: [String: Int64]
    public var lastRedeemed: [String: Int64]
    public var revocations: [String: Int64]
    /// Failures counted since the last batch (increments), by limiter key.
    public var failedAuth: [String: FailureCount]
    /// Lockouts cleared here since the last batch: limiter key -> when.
    public var unlocks: [String: Int64]

    public init(
        lastUsed: [String: Int64] = [:],
        lastRedeemed: [String: Int64] = [:],
        revocations: [String: Int64] = [:],
        failedAuth: [String: FailureCount] = [:],
        unlocks: [String: Int64] = [:]
    ) {
        self.unlocks = unlocks
        self.lastUsed = lastUsed
        self.lastRedeemed = lastRedeemed
        self.revocations = revocations
        self.failedAuth = failedAuth
    }

    public var isEmpty: Bool {
        self.lastUsed.isEmpty && self.lastRedeemed.isEmpty && self.revocations.isEmpty && self.failedAuth.isEmpty && self.unlocks.isEmpty
    }
    public var count: Int {
        self.lastUsed.count + self.lastRedeemed.count + self.revocations.count + self.failedAuth.count + self.unlocks.count
    }
}

/// A limiter key's failures in one window (`failure_window` seconds from `start`).
public struct FailureCount: Codable, Sendable, Equatable {
    public var start: Int64
    public var failures: Int
    public var window: Int64

    public init(start: Int64, failures: Int, window: Int64) {
        self.start = start
        self.failures = failures
        self.window = window
    }

    /// `increment` counted into `existing`: the same window (it started before `existing`
    /// ends) adds up, a later one starts afresh.
    public static func adding(_ increment: FailureCount, to existing: FailureCount?) -> FailureCount {
        guard let existing, increment.start < existing.start + existing.window else { return increment }
        return FailureCount(start: existing.start, failures: existing.failures + increment.failures, window: existing.window)
    }
}
