import Foundation
import PortcullisPolicy

#if canImport(Glibc)
import Glibc
#endif

/// Who makes a change, and from where: a named admin token and the caller's address, or the
/// OS user of `portcullis client` and the host.
public struct AuditActor: Sendable, Equatable {
    public var name: String
    public var source: String

    public init(name: String, source: String) {
        self.name = name
        self.source = source
    }

    /// The user running this process (`root (sudo by alice)` under sudo), from this host.
    public static func operatingSystemUser() -> AuditActor {
        var name = "uid \(geteuid())"
        if let entry = getpwuid(geteuid()), let login = entry.pointee.pw_name {
            name = String(cString: login)
        }
        if let sudoUser = ProcessInfo.processInfo.environment["SUDO_USER"], !sudoUser.isEmpty, sudoUser != name {
            name += " (sudo by \(sudoUser))"
        }
        var host = [CChar](repeating: 0, count: 256)
        let hostName = gethostname(&host, host.count) == 0 ? String(cString: host) : "localhost"
        return AuditActor(name: name, source: "cli@\(hostName)")
    }
}

/// A field's value in an audit record: text, a list, a flag or nothing.
public enum AuditValue: Codable, Sendable, Equatable {
    case text(String)
    case list([String])
    case flag(Bool)
    case none

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .none
        } else if let flag = try? container.decode(Bool.self) {
            self = .flag(flag)
        } else if let list = try? container.decode([String].self) {
            self = .list(list)
        } else {
            self = .text(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .list(let list): try container.encode(list)
        case .flag(let flag): try container.encode(flag)
        case .none: try container.encodeNil()
        }
    }
}

/// One field before and after a change.
public struct AuditFieldChange: Codable, Sendable, Equatable {
    public var before: AuditValue
    public var after: AuditValue

    public init(before: AuditValue, after: AuditValue) {
        self.before = before
        self.after = after
    }
}

/// One line of the audit trail: every change to clients, secrets, revocations and lockouts.
/// Secret values never appear, only when a secret was made and how many are in their grace.
public struct AuditEvent: Codable, Sendable, Equatable {
    /// RFC 3339 UTC.
    public var ts: String
    public var actor: String
    public var source: String
    /// `client.add`, `client.update`, `client.rotate`, `client.enable`, `client.disable`,
    /// `client.remove`, `token.revoke`, `client.unlock`.
    public var action: String
    public var clientID: String?
    /// The token id of a revocation.
    public var tokenID: String?
    /// Field -> before/after.
    public var changes: [String: AuditFieldChange]

    public init(
        ts: String,
        actor: AuditActor,
        action: String,
        clientID: String?,
        tokenID: String? = nil,
        changes: [String: AuditFieldChange] = [:]
    ) {
        self.ts = ts
        self.actor = actor.name
        self.source = actor.source
        self.action = action
        self.clientID = clientID
        self.tokenID = tokenID
        self.changes = changes
    }

    enum CodingKeys: String, CodingKey {
        case ts, actor, source, action, changes
        case clientID = "client_id"
        case tokenID = "token_id"
    }

    /// The record of `change`, made for `mutation` against `registry` (the state before it).
    public static func describe(
        _ mutation: ClientMutation,
        change: StoreChange,
        before registry: Registry,
        context: RegistryContext,
        actor: AuditActor,
        now: Date
    ) -> AuditEvent {
        let id = mutation.clientID
        var fieldsBefore: [String: AuditValue] = [:]
        var fieldsAfter: [String: AuditValue] = [:]
        if let stored = registry.clients[id] {
            fieldsBefore = Self.fields(stored.draft)
        } else if let override = registry.overrides[id] {
            fieldsBefore = Self.fields(override)
        } else if context.declaredClientIDs.contains(id) {
            fieldsBefore = Self.fields(ClientOverride(lastModified: ""), declared: context.declaredSecrets[id])
        }
        switch change {
        case .put(let client): fieldsAfter = Self.fields(client.draft)
        case .override(_, let override): fieldsAfter = Self.fields(override, declared: context.declaredSecrets[id])
        case .remove, .revoke: break
        }
        var changes = Self.diff(fieldsBefore, fieldsAfter)
        if case .rotate(_, _, let grace) = mutation { changes["secret"] = Self.rotation(grace: grace) }
        return AuditEvent(
            ts: UTCTime.format(Int64(now.timeIntervalSince1970.rounded(.down))),
            actor: actor,
            action: Self.action(mutation),
            clientID: id,
            changes: changes
        )
    }

    /// A rotation, said in words (the secrets themselves are never recorded).
    public static func rotation(grace: ConfigDuration?) -> AuditFieldChange {
        let after = grace.map { "new secret; the previous one accepted for \($0) more" } ?? "new secret; the previous one refused at once"
        return AuditFieldChange(before: .text("previous secret"), after: .text(after))
    }

    /// A record of `action` on a client whose fields were `before` and are now `after`.
    public static func describe(
        action: String,
        clientID: String?,
        tokenID: String? = nil,
        before: [String: AuditValue],
        after: [String: AuditValue],
        actor: AuditActor,
        now: Date = Date()
    ) -> AuditEvent {
        AuditEvent(
            ts: UTCTime.format(Int64(now.timeIntervalSince1970.rounded(.down))),
            actor: actor,
            action: action,
            clientID: clientID,
            tokenID: tokenID,
            changes: Self.diff(before, after)
        )
    }

    public static func action(_ mutation: ClientMutation) -> String {
        switch mutation {
        case .add: return "client.add"
        case .update: return "client.update"
        case .rotate: return "client.rotate"
        case .setEnabled(_, let enabled): return enabled ? "client.enable" : "client.disable"
        case .remove: return "client.remove"
        case .setLimits: return "client.limits"
        }
    }

    /// The fields of a client as the trail shows them; the secret only by its creation time.
    public static func fields(_ draft: ClientDraft) -> [String: AuditValue] {
        var fields: [String: AuditValue] = [
            "name": .text(draft.name),
            "issuer": .text(draft.issuer),
            "roles": .list(draft.roles),
            "allowed_ips": draft.allowedIPs.map(AuditValue.list) ?? .none,
            "token_lifetime": draft.tokenLifetime.map(AuditValue.text) ?? .none,
            "secret_lifetime": draft.secretLifetime.map(AuditValue.text) ?? .none,
            "enabled": .flag(draft.enabled),
            "limits": draft.limits.map { AuditValue.text($0.summary) } ?? .none,
        ]
        if draft.publicKey != nil { fields["public_key"] = .text("registered (private_key_jwt)") }
        if draft.secretSHA256 != nil {
            fields["secret_created"] = draft.secretCreated.map(AuditValue.text) ?? .text("unknown")
            fields["secrets_in_grace"] = .list(draft.retiredSecrets.map { "until \($0.until)" })
        }
        return fields
    }

    private static func fields(_ override: ClientOverride, declared: ClientSecrets? = nil) -> [String: AuditValue] {
        var fields: [String: AuditValue] = [:]
        if let enabled = override.enabled { fields["enabled"] = .flag(enabled) }
        if let limits = override.limits { fields["limits"] = .text(limits.summary) }
        if override.secretSHA256 != nil {
            fields["secret_created"] = override.secretCreated.map(AuditValue.text) ?? .text("unknown")
            fields["secrets_in_grace"] = .list((override.retiredSecrets ?? []).map { "until \($0.until)" })
        } else if let declared, declared.currentSHA256 != nil {
            fields["secret_created"] = declared.created.map(AuditValue.text) ?? .text("unknown")
            fields["secrets_in_grace"] = .list([])
        }
        return fields
    }

    private static func diff(_ before: [String: AuditValue], _ after: [String: AuditValue]) -> [String: AuditFieldChange] {
        var changes: [String: AuditFieldChange] = [:]
        for key in Set(before.keys).union(after.keys) {
            let old = before[key] ?? .none
            let new = after[key] ?? .none
            if old != new { changes[key] = AuditFieldChange(before: old, after: new) }
        }
        return changes
    }
}

/// Which audit records to read; every field set must match.
public struct AuditFilter: Sendable, Equatable {
    public var clientID: String?
    public var actor: String?
    /// Seconds since the epoch: records at or after it.
    public var since: Int64?
    /// An action (`client.rotate`) or its prefix (`client.`).
    public var action: String?
    /// The most recent this many, oldest first.
    public var limit: Int

    public init(clientID: String? = nil, actor: String? = nil, since: Int64? = nil, action: String? = nil, limit: Int = 1000) {
        self.clientID = clientID
        self.actor = actor
        self.since = since
        self.action = action
        self.limit = limit
    }

    /// `since` as given: an RFC 3339 UTC time, or a duration back from `now` (`30d`, `12h`).
    public static func since(_ text: String, now: Int64) -> Int64? {
        if let seconds = UTCTime.seconds(text) { return seconds }
        return ConfigDuration(parsing: text).map { now - $0.wholeSeconds }
    }

    public func matches(_ event: AuditEvent) -> Bool {
        if let clientID = self.clientID, event.clientID != clientID { return false }
        if let actor = self.actor, event.actor != actor { return false }
        if let since = self.since, (UTCTime.seconds(event.ts) ?? 0) < since { return false }
        if let action = self.action, event.action != action, !(action.hasSuffix(".") && event.action.hasPrefix(action)) { return false }
        return true
    }
}

/// Where audit records go: the store, or without one a JSON lines file in the config directory.
/// The one entry point for changes made outside ``ClientStore/apply(_:)`` (revocations,
/// unlocks, clients file edits).
public struct AuditTrail: Sendable {
    private enum Sink: Sendable {
        case store(any ClientStore)
        case file(AuditLogFile)
    }

    private let sink: Sink

    public init(store: any ClientStore) { self.sink = .store(store) }

    /// Without a store: `DIR/audit.jsonl` of the config directory.
    public init(configDirectory: String) {
        self.sink = .file(AuditLogFile(path: (configDirectory as NSString).appendingPathComponent(Self.fileName)))
    }

    public static let fileName = "audit.jsonl"

    /// Records `action` on `client` (or a token) by `actor`: the fields that differ between
    /// `before` and `after`.
    public func record(
        actor: AuditActor,
        action: String,
        client: String?,
        tokenID: String? = nil,
        before: [String: AuditValue] = [:],
        after: [String: AuditValue] = [:],
        now: Date = Date()
    ) async throws(StoreError) {
        let event = AuditEvent.describe(action: action, clientID: client, tokenID: tokenID, before: before, after: after, actor: actor, now: now)
        switch self.sink {
        case .store(let store): try await store.appendAudit(event)
        case .file(let file): try file.append(event)
        }
    }

    public func read(_ filter: AuditFilter) async throws(StoreError) -> [AuditEvent] {
        switch self.sink {
        case .store(let store): return try await store.audit(filter)
        case .file(let file): return file.read(filter)
        }
    }
}

/// The audit trail as a JSON lines file, one ``AuditEvent`` a line, appended to (the embedded
/// store's `audit.jsonl`, or the config directory's without a store).
public struct AuditLogFile: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// Appends the line with one `write` to a file opened `O_APPEND`, then fsyncs it.
    public func append(_ event: AuditEvent) throws(StoreError) {
        var bytes = Self.line(event)
        let fd = open(self.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(.io, reason: "cannot open the audit trail \(self.path): \(DirectoryStore.lastError())") }
        defer { close(fd) }
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw StoreError(.io, reason: "cannot write the audit trail \(self.path): \(DirectoryStore.lastError())")
            }
            bytes.removeFirst(written)
        }
        guard fsync(fd) == 0 else { throw StoreError(.io, reason: "cannot fsync the audit trail \(self.path): \(DirectoryStore.lastError())") }
    }

    /// The records that match, oldest first; a line that is not a record is skipped.
    public func read(_ filter: AuditFilter) -> [AuditEvent] {
        guard let data = FileManager.default.contents(atPath: self.path) else { return [] }
        let decoder = JSONDecoder()
        var events: [AuditEvent] = []
        for line in data.split(separator: 0x0A) {
            guard let event = try? decoder.decode(AuditEvent.self, from: Data(line)), filter.matches(event) else { continue }
            events.append(event)
        }
        return Array(events.suffix(filter.limit))
    }

    /// One record as a JSON line.
    public static func line(_ event: AuditEvent) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(event)) ?? Data("{}".utf8)) + [0x0A]
    }
}

extension AuditTrail {
    /// ``ClientsFile/apply(_:directory:now:)`` (no store), recorded in the config directory's
    /// `audit.jsonl` once written. Returns the resulting client (nil for remove).
    public static func applyToClientsFile(_ mutation: ClientMutation, directory: String, actor: AuditActor, now: Date = Date()) throws -> ClientConfig? {
        let before = (try? ConfigLoader.load(directory: directory))?.clients.first { $0.id == mutation.clientID }
        let after = try ClientsFile.apply(mutation, directory: directory, now: now)
        var event = AuditEvent.describe(
            action: AuditEvent.action(mutation),
            clientID: mutation.clientID,
            before: before.map { AuditEvent.fields(ClientDraft($0)) } ?? [:],
            after: after.map { AuditEvent.fields(ClientDraft($0)) } ?? [:],
            actor: actor,
            now: now
        )
        if case .rotate(_, _, let grace) = mutation { event.changes["secret"] = AuditEvent.rotation(grace: grace) }
        try AuditLogFile(path: (directory as NSString).appendingPathComponent(Self.fileName)).append(event)
        return after
    }
}
