import Foundation
import PortcullisPolicy

#if canImport(Glibc)
import Glibc
#endif

/// The embedded store (`store: { path: DIR }`): one replica, a writable directory.
///
/// `DIR/registry.json` holds the clients, overrides and revocations; `DIR/usage.json` the usage
/// times. Every change happens under `flock` on `DIR/.lock` (the gateway and `portcullis client`
/// alike), on the files as they are inside the lock, and each file is replaced atomically
/// (temporary file, fsync, rename, fsync of the directory). Other processes' changes are seen
/// by polling the registry file's identity once a second.
public final class DirectoryStore: ClientStore {
    public let path: String
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let poller: Task<Void, Never>?

    public static let registryFile = "registry.json"
    public static let usageFile = "usage.json"
    /// The audit trail, JSON lines.
    public static let auditFile = "audit.jsonl"
    static let formatVersion = 1

    /// `watch`: poll for other processes' changes (the gateway; the CLI does not).
    public init(path: String, watch: Bool = false) {
        self.path = path
        (self.stream, self.continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        if watch {
            let file = (path as NSString).appendingPathComponent(Self.registryFile)
            let continuation = self.continuation
            self.poller = Task {
                var last = Self.identity(file)
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(250))
                    let now = Self.identity(file)
                    if now != last {
                        last = now
                        continuation.yield()
                    }
                }
            }
        } else {
            self.poller = nil
        }
    }

    public var description: String { "directory \(self.path)" }

    public func prepare() async throws(StoreError) {
        var info = stat()
        if stat(self.path, &info) != 0 {
            guard mkdir(self.path, 0o700) == 0 || errno == EEXIST else {
                throw StoreError(.io, reason: "store.path: cannot create \(self.path): \(Self.lastError())")
            }
        } else if info.st_mode & S_IFMT != S_IFDIR {
            throw StoreError(.io, reason: "store.path: \(self.path) is not a directory")
        }
        guard access(self.path, W_OK) == 0 else {
            throw StoreError(.io, reason: "store.path: \(self.path) is not writable (\(Self.lastError())); give the service a writable state directory")
        }
    }

    public func load() async throws(StoreError) -> Registry {
        let lock = try self.lock()
        defer { Glibc.close(lock) }
        return try self.read()
    }

    public func update(_ decide: @Sendable (Registry) throws(StoreError) -> (StoreChange, AuditEvent?)) async throws(StoreError) -> StoreChange {
        let lock = try self.lock()
        defer { Glibc.close(lock) }
        var registry = try self.read()
        let (change, event) = try decide(registry)
        registry.apply(change)
        registry.pruneRevocations(now: Int64(Date().timeIntervalSince1970))
        // The record first: a change is never made without its record.
        if let event { try self.auditLog.append(event) }
        try self.writeRegistry(registry)
        return change
    }

    public func appendAudit(_ event: AuditEvent) async throws(StoreError) {
        let lock = try self.lock()
        defer { Glibc.close(lock) }
        try self.auditLog.append(event)
    }

    public func audit(_ filter: AuditFilter) async throws(StoreError) -> [AuditEvent] {
        self.auditLog.read(filter)
    }

    private var auditLog: AuditLogFile { AuditLogFile(path: self.file(Self.auditFile)) }

    public func record(_ batch: UsageBatch) async throws(StoreError) {
        guard !batch.isEmpty else { return }
        let lock = try self.lock()
        defer { Glibc.close(lock) }
        var registry = try self.read()
        registry.apply(batch)
        if !batch.revocations.isEmpty || !batch.failedAuth.isEmpty || !batch.unlocks.isEmpty {
            registry.pruneRevocations(now: Int64(Date().timeIntervalSince1970))
            try self.writeRegistry(registry)
        }
        try self.writeUsage(registry)
    }

    public func replaceAll(with registry: Registry) async throws(StoreError) {
        let lock = try self.lock()
        defer { Glibc.close(lock) }
        try self.writeRegistry(registry)
        try self.writeUsage(registry)
    }

    public func changes() -> AsyncStream<Void> { self.stream }

    public func close() async {
        self.poller?.cancel()
        self.continuation.finish()
    }

    // MARK: - Files

    private struct RegistryFile: Codable {
        var version: Int
        var clients: [StoredClient]
        var overrides: [String: ClientOverride]
        var revocations: [String: Int64]
        var failedAuth: [String: FailureCount]?
        var unlocks: [String: Int64]?

        enum CodingKeys: String, CodingKey {
            case version, clients, overrides, revocations, unlocks
            case failedAuth = "failed_auth"
        }
    }

    private struct UsageFile: Codable {
        var lastUsed: [String: Int64]
        var lastRedeemed: [String: Int64]

        enum CodingKeys: String, CodingKey {
            case lastUsed = "last_used"
            case lastRedeemed = "last_redeemed"
        }
    }

    private func file(_ name: String) -> String { (self.path as NSString).appendingPathComponent(name) }

    private func read() throws(StoreError) -> Registry {
        var registry = Registry()
        let registryPath = self.file(Self.registryFile)
        if let data = FileManager.default.contents(atPath: registryPath) {
            let file: RegistryFile
            do {
                file = try JSONDecoder().decode(RegistryFile.self, from: data)
            } catch {
                throw StoreError(.io, reason: "\(registryPath): not a Portcullis registry file: \(error)")
            }
            guard file.version <= Self.formatVersion else {
                throw StoreError(.io, reason: "\(registryPath): written by a newer Portcullis (format \(file.version)); upgrade this one")
            }
            for client in file.clients { registry.clients[client.id] = client }
            registry.overrides = file.overrides
            registry.revocations = file.revocations
            registry.failedAuth = file.failedAuth ?? [:]
            registry.unlocks = file.unlocks ?? [:]
        }
        let usagePath = self.file(Self.usageFile)
        if let data = FileManager.default.contents(atPath: usagePath), let usage = try? JSONDecoder().decode(UsageFile.self, from: data) {
            // Usage times are best effort: a damaged file is started afresh, not a failed start.
            registry.lastUsed = usage.lastUsed
            registry.lastRedeemed = usage.lastRedeemed
        }
        return registry
    }

    private func writeRegistry(_ registry: Registry) throws(StoreError) {
        let file = RegistryFile(
            version: Self.formatVersion,
            clients: registry.clients.values.sorted { $0.id < $1.id },
            overrides: registry.overrides,
            revocations: registry.revocations,
            failedAuth: registry.failedAuth,
            unlocks: registry.unlocks.isEmpty ? nil : registry.unlocks
        )
        try self.write(file, to: Self.registryFile)
    }

    private func writeUsage(_ registry: Registry) throws(StoreError) {
        try self.write(UsageFile(lastUsed: registry.lastUsed, lastRedeemed: registry.lastRedeemed), to: Self.usageFile)
    }

    private func write<Value: Encodable>(_ value: Value, to name: String) throws(StoreError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do {
            data = try encoder.encode(value)
        } catch {
            throw StoreError(.io, reason: "cannot encode \(name): \(error)")
        }
        try AtomicFile.write(Array(data) + [0x0A], to: self.file(name))
    }

    private func lock() throws(StoreError) -> Int32 {
        let path = self.file(".lock")
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError(.io, reason: "cannot open \(path): \(Self.lastError()) (is store.path a writable directory?)")
        }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let message = Self.lastError()
                Glibc.close(fd)
                throw StoreError(.io, reason: "cannot lock \(path): \(message)")
            }
        }
        return fd
    }

    static func identity(_ file: String) -> String {
        var info = stat()
        guard stat(file, &info) == 0 else { return "-" }
        return "\(info.st_ino) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    static func lastError() -> String { String(cString: strerror(errno)) }
}

/// Replaces a file so that a crash leaves the old content or the new, never a mix.
enum AtomicFile {
    static func write(_ bytes: [UInt8], to path: String) throws(StoreError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = directory + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(.io, reason: "cannot write \(temporary): \(DirectoryStore.lastError())") }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                let reason = DirectoryStore.lastError()
                close(fd)
                unlink(temporary)
                throw StoreError(.io, reason: "cannot write \(temporary): \(reason)")
            }
            offset += written
        }
        guard fsync(fd) == 0 else {
            let reason = DirectoryStore.lastError()
            close(fd)
            unlink(temporary)
            throw StoreError(.io, reason: "cannot fsync \(temporary): \(reason)")
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = DirectoryStore.lastError()
            unlink(temporary)
            throw StoreError(.io, reason: "cannot replace \(path): \(reason)")
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }
}
