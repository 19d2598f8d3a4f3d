import Foundation
import Yams

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A client to add to the clients file (`portcullis client add`, the admin API's create).
public struct ClientDraft: Sendable {
    public var id: String
    public var name: String
    public var issuer: String
    public var roles: [String]
    /// `allowed_ips` as written; nil leaves the key out (any address), empty allows none.
    public var allowedIPs: [String]?
    /// A duration such as `15m`; nil takes the issuer's `token_lifetime`.
    public var tokenLifetime: String?
    /// Lowercase hex SHA-256 of the secret (``ClientSecret`` in PortcullisAuth); required for
    /// clients of the built-in issuer, refused for the others.
    public var secretSHA256: String?
    /// A `private_key_jwt` client's public key (PEM or JWK), instead of a secret.
    public var publicKey: String?
    /// `public_key_file` as written in a declared client, kept when the file is rewritten.
    public var publicKeyFile: String?
    public var enabled: Bool
    /// Its own limits (the most specific level); nil: its roles' and `client_limits`.
    public var limits: ClientLimits?
    /// When the secret was made (RFC 3339 UTC); set by the editors when they write one.
    public var secretCreated: String?
    /// A duration such as `90d`; nil takes the issuer's `secret_lifetime`.
    public var secretLifetime: String?
    public var retiredSecrets: [RetiredSecret] = []

    public init(
        id: String,
        name: String? = nil,
        issuer: String,
        roles: [String],
        allowedIPs: [String]? = nil,
        tokenLifetime: String? = nil,
        secretSHA256: String? = nil,
        publicKey: String? = nil,
        enabled: Bool = true,
        secretLifetime: String? = nil,
        limits: ClientLimits? = nil
    ) {
        self.secretLifetime = secretLifetime
        self.publicKey = publicKey
        self.limits = limits
        self.id = id
        self.name = name ?? id
        self.issuer = issuer
        self.roles = roles
        self.allowedIPs = allowedIPs
        self.tokenLifetime = tokenLifetime
        self.secretSHA256 = secretSHA256
        self.enabled = enabled
    }
}

extension ClientDraft {
    /// The draft of a client as it is configured (what the editors change and write back).
    public init(_ client: ClientConfig) {
        self.init(
            id: client.id,
            name: client.name,
            issuer: client.issuer,
            roles: client.roles,
            allowedIPs: client.allowedIPsText,
            tokenLifetime: client.tokenLifetime?.description,
            secretSHA256: client.secretSHA256,
            publicKey: client.publicKey,
            enabled: client.enabled,
            secretLifetime: client.secretLifetime?.description,
            limits: client.limits
        )
        self.publicKeyFile = client.publicKeyFile
        self.secretCreated = client.secretCreated
        self.retiredSecrets = client.retiredSecrets
    }
}

/// One change to the `clients:` list.
public enum ClientMutation: Sendable {
    case add(ClientDraft)
    /// Replaces the stored secret hash. Without a grace the old secret and its tokens stop
    /// working at once; with one they keep working until it ends.
    case rotate(id: String, secretSHA256: String, grace: ConfigDuration?)
    case setEnabled(id: String, enabled: Bool)
    /// Changes the fields `update` sets, never the secret.
    case update(id: String, ClientUpdate)
    /// Sets or clears a client's own limits (`portcullis client limits`, `PUT .../limits`).
    case setLimits(id: String, LimitsEdit)
    case remove(id: String)

    /// The client it changes.
    public var clientID: String {
        switch self {
        case .add(let draft): return draft.id
        case .rotate(let id, _, _), .setEnabled(let id, _), .update(let id, _), .remove(let id), .setLimits(let id, _): return id
        }
    }
}

/// What `portcullis client update` and `PATCH /api/v1/clients/{id}` change: each field nil is
/// left as it is; `.some(nil)` clears an optional one (back to its default).
public struct ClientUpdate: Sendable, Equatable {
    public var name: String?
    public var roles: [String]?
    public var allowedIPs: [String]??
    public var tokenLifetime: String??
    public var secretLifetime: String??

    public init(
        name: String? = nil,
        roles: [String]? = nil,
        allowedIPs: [String]?? = nil,
        tokenLifetime: String?? = nil,
        secretLifetime: String?? = nil
    ) {
        self.name = name
        self.roles = roles
        self.allowedIPs = allowedIPs
        self.tokenLifetime = tokenLifetime
        self.secretLifetime = secretLifetime
    }

    public var isEmpty: Bool {
        self.name == nil && self.roles == nil && self.allowedIPs == nil && self.tokenLifetime == nil && self.secretLifetime == nil
    }

    /// Applies the update to a draft.
    public func apply(to draft: inout ClientDraft) {
        if let name = self.name { draft.name = name }
        if let roles = self.roles { draft.roles = roles }
        if let allowedIPs = self.allowedIPs { draft.allowedIPs = allowedIPs }
        if let tokenLifetime = self.tokenLifetime { draft.tokenLifetime = tokenLifetime }
        if let secretLifetime = self.secretLifetime { draft.secretLifetime = secretLifetime }
    }
}

extension ClientDraft {
    /// Its secrets, as rotation sees them.
    public var secrets: ClientSecrets {
        get { ClientSecrets(currentSHA256: self.secretSHA256, created: self.secretCreated, retired: self.retiredSecrets) }
        set {
            self.secretSHA256 = newValue.currentSHA256
            self.secretCreated = newValue.created
            self.retiredSecrets = newValue.retired
        }
    }
}

/// Why `ClientsFile` refused or failed a change, worded for the admin API's answer or the CLI.
///
/// `description` is the reason alone (what users read); `debugDescription` adds the code and
/// the throw site. Errors compare equal when their codes do.
public struct ClientsFileError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case unknownClient
            case duplicateClient
            case invalid
            case notBuiltin
            case io
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        public static let unknownClient = Code(.unknownClient)
        public static let duplicateClient = Code(.duplicateClient)
        /// The whole configuration would not validate after the change; nothing was written.
        public static let invalid = Code(.invalid)
        /// A secret operation on a client of an outside issuer.
        public static let notBuiltin = Code(.notBuiltin)
        /// Reading, locking or writing the files failed.
        public static let io = Code(.io)

        public var description: String { "\(self.backing)" }
    }

    public let code: Code
    /// The client the change names, for `unknownClient`, `duplicateClient` and `notBuiltin`.
    public let clientID: String?
    /// For `invalid`: every error of the configuration the change would make.
    public let configErrors: [ConfigError]
    public let reason: String
    public let file: String
    public let line: UInt

    public init(
        _ code: Code,
        reason: String,
        clientID: String? = nil,
        configErrors: [ConfigError] = [],
        file: String = #fileID,
        line: UInt = #line
    ) {
        self.code = code
        self.clientID = clientID
        self.configErrors = configErrors
        self.reason = reason
        self.file = file
        self.line = line
    }

    public static func unknownClient(_ id: String, file: String = #fileID, line: UInt = #line) -> ClientsFileError {
        ClientsFileError(.unknownClient, reason: "no client '\(id)' in the configuration", clientID: id, file: file, line: line)
    }

    public static func duplicateClient(_ id: String, file: String = #fileID, line: UInt = #line) -> ClientsFileError {
        ClientsFileError(.duplicateClient, reason: "a client '\(id)' already exists", clientID: id, file: file, line: line)
    }

    public static func invalid(_ errors: [ConfigError], file: String = #fileID, line: UInt = #line) -> ClientsFileError {
        ClientsFileError(
            .invalid,
            reason: "the configuration would not be valid, nothing was changed:\n" + errors.map(\.description).joined(separator: "\n"),
            configErrors: errors,
            file: file,
            line: line
        )
    }

    public static func notBuiltin(_ id: String, issuer: String, file: String = #fileID, line: UInt = #line) -> ClientsFileError {
        ClientsFileError(
            .notBuiltin,
            reason: "client '\(id)' belongs to the outside issuer '\(issuer)', which holds its credentials: rotate them there",
            clientID: id,
            file: file,
            line: line
        )
    }

    public var description: String { self.reason }

    public var debugDescription: String { "\(self.code): \(self.reason) (\(self.file):\(self.line))" }

}

/// The editor of the `clients:` list of a config directory, shared by `portcullis client` and
/// the admin API.
///
/// A change is made under an exclusive `flock` on `DIR/.portcullis-clients.lock` (so concurrent
/// editors, in one process or several, are serialised, and a killed editor's lock goes with its
/// process), on the files as they are inside the lock, and is written only when the whole
/// resulting configuration validates with the same loader as `serve` and `check`. The one file
/// that holds `clients:` is replaced atomically (temporary file, fsync, rename, fsync of the
/// directory), so a crash leaves the old file or the new one, never half of one; other files are
/// not touched. A running gateway picks the new file up by its reload.
///
/// Only the `clients:` block of that file is rewritten, from the parsed configuration: the text
/// outside it stays byte for byte, but comments inside the block are lost.
public enum ClientsFile {
    /// The file `clients:` goes into when no config file has it yet.
    public static let defaultFileName = "clients.yaml"
    /// Taken with `flock(LOCK_EX)` around every change.
    public static let lockFileName = ".portcullis-clients.lock"
    /// Milliseconds to wait between writing the temporary file and renaming it over the old one,
    /// so a test can kill the writer mid-change.
    static let testPauseVariable = "PORTCULLIS_TEST_CLIENTS_WRITE_PAUSE_MS"

    /// Applies one mutation under an exclusive flock on DIR/.portcullis-clients.lock, re-reading
    /// the config inside the lock, validating the WHOLE resulting config (same loader as
    /// serve/check), then writing the one file that holds `clients:` (creating `clients.yaml` if
    /// no file has it) atomically. Returns the resulting client (nil for remove).
    public static func apply(_ mutation: ClientMutation, directory: String, now: Date = Date()) throws -> ClientConfig? {
        let lock = try Self.lock(directory: directory)
        defer { close(lock) }

        let sources: [(file: String, text: String)]
        let current: GatewayConfig
        do throws(ConfigErrors) {
            sources = try ConfigLoader.sources(directory: directory)
            current = try ConfigLoader.load(sources: sources, directory: directory)
        } catch {
            throw ClientsFileError.invalid(error.errors)
        }

        var entries = current.clients.map(Entry.init)
        let stamp = Self.timestamp(now)
        var changedID: String?
        switch mutation {
        case .add(let draft):
            guard !entries.contains(where: { $0.id == draft.id }) else { throw ClientsFileError.duplicateClient(draft.id) }
            var entry = Entry(draft)
            entry.lastModified = stamp
            if entry.draft.secretSHA256 != nil, entry.draft.secretCreated == nil { entry.draft.secretCreated = stamp }
            entries.append(entry)
            changedID = draft.id
        case .rotate(let id, let hash, let grace):
            let index = try Self.index(of: id, in: entries)
            guard entries[index].draft.secretSHA256 != nil else { throw ClientsFileError.notBuiltin(id, issuer: entries[index].draft.issuer) }
            entries[index].draft.secrets = entries[index].draft.secrets.rotated(to: hash, grace: grace, now: now)
            entries[index].lastModified = stamp
            changedID = id
        case .update(let id, let update):
            let index = try Self.index(of: id, in: entries)
            update.apply(to: &entries[index].draft)
            entries[index].lastModified = stamp
            changedID = id
        case .setEnabled(let id, let enabled):
            let index = try Self.index(of: id, in: entries)
            entries[index].draft.enabled = enabled
            entries[index].lastModified = stamp
            changedID = id
        case .remove(let id):
            entries.remove(at: try Self.index(of: id, in: entries))
        case .setLimits(let id, let edit):
            let index = try Self.index(of: id, in: entries)
            entries[index].limits = edit.applied(to: entries[index].limits)
            entries[index].lastModified = stamp
            changedID = id
        }

        let target = try Self.target(sources: sources, directory: directory)
        let newText = target.splice(Self.render(entries))
        var newSources = sources
        if let index = newSources.firstIndex(where: { $0.file == target.path }) {
            newSources[index].text = newText
        } else {
            newSources.append((target.path, newText))
            newSources.sort { $0.file < $1.file }
        }
        let updated: GatewayConfig
        do throws(ConfigErrors) {
            updated = try ConfigLoader.load(sources: newSources, directory: directory)
        } catch {
            throw ClientsFileError.invalid(error.errors)
        }

        try Self.writeAtomically(newText, to: target.path, like: target.exists ? target.path : sources.first?.file)
        return changedID.flatMap { id in updated.clients.first { $0.id == id } }
    }

    // MARK: - The entries

    /// A `clients:` entry as it is written back: a draft, its stamp and its limits.
    struct Entry {
        var draft: ClientDraft
        var lastModified: String?
        var limits: ClientLimits?

        var id: String { self.draft.id }

        init(_ client: ClientConfig) {
            self.draft = ClientDraft(client)
            self.lastModified = client.lastModified
            self.limits = client.limits
        }

        init(_ draft: ClientDraft) {
            self.draft = draft
            self.limits = draft.limits
        }
    }

    private static func index(of id: String, in entries: [Entry]) throws -> Int {
        guard let index = entries.firstIndex(where: { $0.id == id }) else { throw ClientsFileError.unknownClient(id) }
        return index
    }

    /// The `clients:` block, every string JSON-quoted (JSON strings are YAML double-quoted
    /// scalars), ending in a newline.
    static func render(_ entries: [Entry]) -> String {
        guard !entries.isEmpty else { return "clients: []\n" }
        var out = "clients:\n"
        for entry in entries {
            let draft = entry.draft
            out += "  - id: \(Self.quoted(draft.id))\n"
            out += "    name: \(Self.quoted(draft.name))\n"
            out += "    enabled: \(draft.enabled)\n"
            out += "    issuer: \(Self.quoted(draft.issuer))\n"
            out += "    roles: \(Self.quotedList(draft.roles))\n"
            if let ips = draft.allowedIPs { out += "    allowed_ips: \(Self.quotedList(ips))\n" }
            if let hash = draft.secretSHA256 { out += "    secret_sha256: \(Self.quoted(hash))\n" }
            if let file = draft.publicKeyFile {
                out += "    public_key_file: \(Self.quoted(file))\n"
            } else if let key = draft.publicKey {
                out += "    public_key: \(Self.quoted(key))\n"
            }
            if let created = draft.secretCreated { out += "    secret_created: \(Self.quoted(created))\n" }
            if let lifetime = draft.secretLifetime { out += "    secret_lifetime: \(Self.quoted(lifetime))\n" }
            if !draft.retiredSecrets.isEmpty {
                out += "    retired_secrets:\n"
                for old in draft.retiredSecrets {
                    var fields = ["secret_sha256: \(Self.quoted(old.secretSHA256))"]
                    if let created = old.created { fields.append("created: \(Self.quoted(created))") }
                    fields.append("until: \(Self.quoted(old.until))")
                    out += "      - { \(fields.joined(separator: ", ")) }\n"
                }
            }
            if let lifetime = draft.tokenLifetime { out += "    token_lifetime: \(Self.quoted(lifetime))\n" }
            if let stamp = entry.lastModified { out += "    last_modified: \(Self.quoted(stamp))\n" }
            if let limits = entry.limits, !limits.isEmpty || limits.burst != nil { out += "    limits: \(Self.render(limits))\n" }
        }
        return out
    }

    /// `{rate: "10/s", burst: 20, quota: "10000/d", concurrency: 4}`, the fields that are set.
    static func render(_ limits: ClientLimits) -> String {
        var fields: [String] = []
        if let rate = limits.rate { fields.append("rate: \(Self.quoted(rate.description))") }
        if let burst = limits.burst { fields.append("burst: \(burst)") }
        if let quota = limits.quota { fields.append("quota: \(Self.quoted(quota.description))") }
        if let concurrency = limits.concurrency { fields.append("concurrency: \(concurrency)") }
        return "{ " + fields.joined(separator: ", ") + " }"
    }

    private static func quotedList(_ items: [String]) -> String {
        "[" + items.map(Self.quoted).joined(separator: ", ") + "]"
    }

    /// A JSON string literal. Besides what JSON must escape, characters YAML treats as line
    /// breaks or strips (NEL, LS, PS, BOM) and other C1 controls are escaped too.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                let value = scalar.value
                if value < 0x20 || (0x7F...0x9F).contains(value) || value == 0x2028 || value == 0x2029 || value == 0xFEFF {
                    out += String(format: "\\u%04x", value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// `2026-12-04T10:00:00Z`: RFC 3339, UTC, whole seconds.
    static func timestamp(_ date: Date) -> String {
        UTCTime.format(Int64(date.timeIntervalSince1970.rounded(.down)))
    }

    // MARK: - The file

    /// The file that holds (or will hold) `clients:`, and the lines its block spans.
    struct Target {
        var path: String
        var text: String
        var exists: Bool
        /// Byte offsets in `text` of the block (from the start of its `clients:` line to the next
        /// top-level key, less the blank and comment lines just above that key); nil when the file
        /// has no `clients:` yet.
        var block: Range<String.Index>?

        func splice(_ rendered: String) -> String {
            if let block {
                return String(self.text[..<block.lowerBound]) + rendered + String(self.text[block.upperBound...])
            }
            if self.text.isEmpty {
                return "# API clients: written by `portcullis client` and the admin API.\n" + rendered
            }
            return self.text + (self.text.hasSuffix("\n") ? "" : "\n") + rendered
        }
    }

    static func target(sources: [(file: String, text: String)], directory: String) throws -> Target {
        for (file, text) in sources {
            guard case .mapping(let mapping)? = try? ConfigYAML.compose(text) else { continue }
            let keys = mapping.map(\.key)
            guard let position = keys.firstIndex(where: { $0.string == "clients" }) else { continue }
            guard let mark = keys[position].mark, mark.column == 1 else {
                throw ClientsFileError(.io, reason: "cannot edit \(file): its clients: key is not a block key at the start of a line")
            }
            let lines = Self.lineStarts(text)
            let start = lines[min(mark.line - 1, lines.count - 1)]
            var endLine = lines.count - 1  // lines.last is text.endIndex
            if position + 1 < keys.count, let next = keys[position + 1].mark {
                endLine = next.line - 1
                // Blank and comment lines just above the next key belong to it.
                while endLine > mark.line {
                    let line = text[lines[endLine - 1]..<lines[endLine]]
                    let isBlank = line.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
                    guard isBlank || line.hasPrefix("#") else { break }
                    endLine -= 1
                }
            }
            return Target(path: file, text: text, exists: true, block: start..<lines[endLine])
        }
        let path = (directory as NSString).appendingPathComponent(Self.defaultFileName)
        if let existing = sources.first(where: { $0.file == path }) {
            return Target(path: path, text: existing.text, exists: true, block: nil)
        }
        return Target(path: path, text: "", exists: false, block: nil)
    }

    /// The index of the start of every line, then `text.endIndex`.
    private static func lineStarts(_ text: String) -> [String.Index] {
        var starts = [text.startIndex]
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(after: index)
            if text[index].isNewline, next < text.endIndex { starts.append(next) }
            index = next
        }
        if starts.last != text.endIndex { starts.append(text.endIndex) }
        return starts
    }

    private static func lock(directory: String) throws -> Int32 {
        let path = (directory as NSString).appendingPathComponent(Self.lockFileName)
        // flock needs no write access: read-only and world-readable, so the gateway's admin API
        // can still lock a file that `sudo portcullis client` created.
        let fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ClientsFileError(.io, reason: "cannot open the lock file \(path): \(Self.lastError())") }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let message = Self.lastError()
                close(fd)
                throw ClientsFileError(.io, reason: "cannot lock \(path): \(message)")
            }
        }
        return fd
    }

    /// Writes `text` to `DIR/.<name>.tmp-<pid>` (with the mode and owner of `model`), fsyncs it,
    /// renames it over `path` and fsyncs the directory. The temporary name ends in neither
    /// `.yaml` nor `.yml`, so one left by a killed writer is never read as config.
    private static func writeAtomically(_ text: String, to path: String, like model: String?) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let prefix = ".\(name).tmp-"
        // Under the lock, any temporary file of ours is a killed writer's.
        for stale in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where stale.hasPrefix(prefix) {
            unlink((directory as NSString).appendingPathComponent(stale))
        }
        let temporary = (directory as NSString).appendingPathComponent("\(prefix)\(getpid())")

        var mode: mode_t = 0o644
        var owner: (uid_t, gid_t)?
        var info = stat()
        if let model, stat(model, &info) == 0 {
            mode = info.st_mode & 0o7777
            owner = (info.st_uid, info.st_gid)
        }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ClientsFileError(.io, reason: "cannot create \(temporary): \(Self.lastError())") }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(temporary) }
        }
        fchmod(fd, mode)  // open's mode went through the umask
        if let (uid, gid) = owner, geteuid() == 0 { _ = fchown(fd, uid, gid) }

        var bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ClientsFileError(.io, reason: "cannot write \(temporary): \(Self.lastError())")
            }
            written += count
        }
        guard fsync(fd) == 0 else { throw ClientsFileError(.io, reason: "cannot fsync \(temporary): \(Self.lastError())") }
        closed = true
        guard close(fd) == 0 else { throw ClientsFileError(.io, reason: "cannot write \(temporary): \(Self.lastError())") }
        bytes.removeAll()

        if let pause = ProcessInfo.processInfo.environment[Self.testPauseVariable], let milliseconds = UInt32(pause) {
            Thread.sleep(forTimeInterval: Double(milliseconds) / 1000)
        }
        guard rename(temporary, path) == 0 else { throw ClientsFileError(.io, reason: "cannot replace \(path): \(Self.lastError())") }
        renamed = true
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    private static func lastError() -> String {
        String(cString: strerror(errno))
    }
}
