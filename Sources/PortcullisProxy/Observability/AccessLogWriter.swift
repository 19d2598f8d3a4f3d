import Atomics
import PortcullisPolicy
import Dispatch
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The access log of DESIGN.md: one JSON object per line for every request, written off the
/// event loops by one thread of its own.
///
/// Event loops hand over batches of `ExchangeRecord`s (`submit`) through a lock-free stack; the
/// writer thread takes them all at once, formats them and writes each file with one `write(2)`
/// per pass. Nothing on an event loop waits for the disk.
///
/// When the disk is slower than the traffic, at most `maxQueuedLines` wait in memory. Beyond
/// that a batch is dropped, never waited for: the drop is counted (`droppedLines`, the metric
/// `portcullis_access_log_dropped_lines_total`), marked in the access log itself by a line
/// `{"event":"access_log_dropped","lines":N}` at the place of the loss, and logged as a
/// warning. So a line is never lost silently, and an auditor can see where lines are missing.
///
/// `reopen()` (SIGUSR1) closes every file and opens it again by name (for logrotate).
/// `shutdown()` writes everything handed over so far, fsyncs and closes.
public final class AccessLogWriter: AccessLogStats, @unchecked Sendable {
    public struct Configuration: Sendable {
        /// A file path, `-` for standard output, or nil for none.
        public var path: String?
        /// One file per client id in this directory as well (`<id>.log`), opened lazily.
        public var perClientDirectory: String?
        public var maxQueuedLines: Int
        public var maxOpenClientFiles: Int

        public init(path: String?, perClientDirectory: String?, maxQueuedLines: Int = 100_000, maxOpenClientFiles: Int = 64) {
            self.path = path
            self.perClientDirectory = perClientDirectory
            self.maxQueuedLines = maxQueuedLines
            self.maxOpenClientFiles = maxOpenClientFiles
        }
    }

    private final class Batch: AtomicReference {
        let records: [ExchangeRecord]
        var next: Batch?
        init(_ records: [ExchangeRecord]) { self.records = records }
    }

    private let configuration: Configuration
    private let logger: Logger
    /// The admin console's recent lines and counts, fed by the writer's thread once per pass.
    public let recent: RecentRequests?
    private let pending = ManagedAtomic<Batch?>(nil)
    private let queued = ManagedAtomic<Int>(0)
    private let written = ManagedAtomic<Int>(0)
    private let dropped = ManagedAtomic<Int>(0)
    /// Dropped lines not yet marked in the log.
    private let unmarkedDrops = ManagedAtomic<Int>(0)
    private let reopenRequested = ManagedAtomic<Bool>(false)
    private let stopRequested = ManagedAtomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)

    // Writer thread only.
    private var files = FileSet()
    private var encoder = AccessLogEncoder()

    public var queuedLines: Int { self.queued.load(ordering: .relaxed) }
    public var writtenLines: Int { self.written.load(ordering: .relaxed) }
    public var droppedLines: Int { self.dropped.load(ordering: .relaxed) }

    /// Opens the files (the main one at once, so a bad path fails here) and starts the thread.
    public init(_ configuration: Configuration, logger: Logger, recent: RecentRequests? = nil) throws {
        self.configuration = configuration
        self.logger = logger
        self.recent = recent
        self.files = FileSet(
            mainPath: configuration.path,
            clientDirectory: configuration.perClientDirectory,
            maxOpenClientFiles: configuration.maxOpenClientFiles
        )
        if let directory = configuration.perClientDirectory {
            try FileSet.makeDirectory(directory)
        }
        try self.files.openMain()
        // A queue of its own: its one thread writes for as long as the gateway runs.
        DispatchQueue(label: "portcullis.access-log").async { self.run() }
    }

    /// Hands over records from an event loop. Never blocks.
    func submit(_ records: [ExchangeRecord]) {
        guard !records.isEmpty else { return }
        let count = records.count
        if self.queued.wrappingIncrementThenLoad(by: count, ordering: .relaxed) > self.configuration.maxQueuedLines {
            self.queued.wrappingDecrement(by: count, ordering: .relaxed)
            self.dropped.wrappingIncrement(by: count, ordering: .relaxed)
            self.unmarkedDrops.wrappingIncrement(by: count, ordering: .relaxed)
            return
        }
        let batch = Batch(records)
        var head = self.pending.load(ordering: .relaxed)
        while true {
            batch.next = head
            let (exchanged, original) = self.pending.weakCompareExchange(
                expected: head,
                desired: batch,
                successOrdering: .releasing,
                failureOrdering: .relaxed
            )
            if exchanged { return }
            head = original
        }
    }

    /// Closes every file and opens it again by name, at the writer's next pass.
    public func reopen() {
        self.reopenRequested.store(true, ordering: .relaxed)
    }

    /// Writes what has been submitted, fsyncs, closes. Records submitted later are not written.
    public func shutdown() {
        guard !self.stopRequested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        self.stopped.wait()
    }

    // MARK: - Writer thread

    private func run() {
        var idleSleeps = 0
        while true {
            let stopping = self.stopRequested.load(ordering: .acquiring)
            if self.reopenRequested.exchange(false, ordering: .relaxed) {
                self.files.reopenAll(logger: self.logger)
            }
            let didWork = self.writePending()
            if stopping && !didWork {
                self.files.closeAll(sync: true)
                self.stopped.signal()
                return
            }
            // Loops hand over every 50 ms: few, large passes, so the writer seldom preempts an
            // event loop that shares its core (measured: passes every 2-5 ms cost the loops
            // more than the writing itself).
            if didWork {
                idleSleeps = 0
                usleep(20_000)
            } else {
                idleSleeps = min(idleSleeps + 1, 5)
                usleep(UInt32(idleSleeps) * 10_000)
            }
        }
    }

    /// One pass: every batch handed over so far, in the order each loop submitted them.
    private func writePending() -> Bool {
        let drops = self.unmarkedDrops.exchange(0, ordering: .relaxed)
        var batches: [Batch] = []
        var node = self.pending.exchange(nil, ordering: .acquiring)
        while let batch = node {
            batches.append(batch)
            node = batch.next
            batch.next = nil
        }
        if batches.isEmpty && drops == 0 { return false }
        if drops > 0 {
            self.logger.warning(
                "access log: the writer fell behind; lines dropped and marked in the log",
                metadata: ["lines": "\(drops)", "dropped_total": "\(self.droppedLines)"]
            )
            self.encoder.dropMarker(lines: drops, nowMillis: Self.nowMillis()).withUnsafeBytes { self.files.appendMain($0) }
        }
        // Locals for the pass: no exclusivity check per line on the class's properties.
        var encoder = self.encoder
        var files = self.files
        self.files = FileSet()
        defer {
            self.encoder = encoder
            self.files = files
        }
        var count = 0
        var recentEntries: [RecentRequests.Entry] = []
        let perClient = files.writesPerClientFiles
        for batch in batches.reversed() {
            // Borrowed in place: a line's strings are not retained for a copy and released.
            batch.records.withUnsafeBufferPointer { records in
                for index in records.indices {
                    encoder.withLine(records[index]) { line in
                        files.appendMain(line)
                        if perClient, let client = records[index].clientID { files.appendClient(client, line) }
                        if self.recent != nil {
                            let record = records[index]
                            recentEntries.append(
                                RecentRequests.Entry(
                                    clientID: record.clientID ?? RecentRequests.anonymous,
                                    millis: record.startMillis,
                                    statusClass: record.statusClass,
                                    tokenID: record.tokenID,
                                    line: String(decoding: UnsafeRawBufferPointer(rebasing: line.dropLast()), as: UTF8.self)
                                )
                            )
                        }
                    }
                }
            }
            count += batch.records.count
        }
        self.recent?.append(recentEntries)
        let failed = files.flush(logger: self.logger)
        self.queued.wrappingDecrement(by: count, ordering: .relaxed)
        self.written.wrappingIncrement(by: count - min(failed, count), ordering: .relaxed)
        if failed > 0 { self.dropped.wrappingIncrement(by: min(failed, count), ordering: .relaxed) }
        return true
    }

    static func nowMillis() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

/// The files of the access log: the main one and, lazily, one per client (least recently
/// used closed first beyond `maxOpenClientFiles`). Bytes are gathered per file and written
/// with one `write(2)` each per pass.
struct FileSet {
    private struct OpenFile {
        var descriptor: Int32
        var buffer: [UInt8] = []
        var lastUse: Int = 0
        /// Lines in `buffer`, for counting failed writes.
        var lines = 0
    }

    private var mainPath: String?
    private var clientDirectory: String?
    private var maxOpenClientFiles = 64
    private var main: OpenFile?
    private var clients: [String: OpenFile] = [:]
    private var useCounter = 0

    init() {}

    init(mainPath: String?, clientDirectory: String?, maxOpenClientFiles: Int) {
        self.mainPath = mainPath
        self.clientDirectory = clientDirectory
        self.maxOpenClientFiles = max(1, maxOpenClientFiles)
    }

    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o750) != 0 && errno != EEXIST {
            throw AccessLogError(.cannotCreateDirectory, reason: "cannot create the per-client log directory \(path): \(String(cString: strerror(errno)))")
        }
    }

    mutating func openMain() throws {
        guard let path = self.mainPath else { return }
        if path == "-" {
            self.main = OpenFile(descriptor: STDOUT_FILENO)
            return
        }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            throw AccessLogError(.cannotOpen, reason: "cannot open the access log \(path): \(String(cString: strerror(errno)))")
        }
        self.main = OpenFile(descriptor: descriptor)
    }

    mutating func appendMain(_ line: UnsafeRawBufferPointer) {
        guard self.main != nil else { return }
        self.main!.buffer.append(contentsOf: line)
        self.main!.lines += 1
    }

    /// Lines go to a file per client as well.
    var writesPerClientFiles: Bool { self.clientDirectory != nil }

    mutating func appendClient(_ clientID: String, _ line: UnsafeRawBufferPointer) {
        guard let directory = self.clientDirectory else { return }
        self.useCounter += 1
        if self.clients[clientID] == nil {
            if self.clients.count >= self.maxOpenClientFiles { self.closeLeastRecentlyUsed() }
            let path = directory + "/" + Self.fileName(for: clientID)
            let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            // A file that cannot be opened loses only its copies: the main log has the lines.
            guard descriptor >= 0 else { return }
            self.clients[clientID] = OpenFile(descriptor: descriptor)
        }
        self.clients[clientID]!.buffer.append(contentsOf: line)
        self.clients[clientID]!.lines += 1
        self.clients[clientID]!.lastUse = self.useCounter
    }

    /// Writes every buffer; returns how many main-log lines could not be written.
    mutating func flush(logger: Logger) -> Int {
        var failed = 0
        if var main = self.main {
            if !Self.writeAll(&main, logger: logger, what: self.mainPath ?? "-") { failed = main.lines }
            main.buffer.removeAll(keepingCapacity: main.buffer.capacity <= 1 << 20)
            main.lines = 0
            self.main = main
        }
        for id in self.clients.keys {
            var file = self.clients[id]!
            guard !file.buffer.isEmpty else { continue }
            _ = Self.writeAll(&file, logger: logger, what: "per-client log of \(id)")
            file.buffer.removeAll(keepingCapacity: file.buffer.capacity <= 1 << 16)
            file.lines = 0
            self.clients[id] = file
        }
        return failed
    }

    private static func writeAll(_ file: inout OpenFile, logger: Logger, what: String) -> Bool {
        var offset = 0
        let total = file.buffer.count
        while offset < total {
            let result = file.buffer.withUnsafeBytes { bytes in
                write(file.descriptor, bytes.baseAddress! + offset, total - offset)
            }
            if result < 0 {
                if errno == EINTR { continue }
                logger.error("access log: write failed", metadata: ["file": "\(what)", "error": "\(String(cString: strerror(errno)))"])
                return false
            }
            offset += result
        }
        return true
    }

    private mutating func closeLeastRecentlyUsed() {
        guard let oldest = self.clients.min(by: { $0.value.lastUse < $1.value.lastUse }) else { return }
        close(oldest.value.descriptor)
        self.clients.removeValue(forKey: oldest.key)
    }

    mutating func reopenAll(logger: Logger) {
        self.closeAll(sync: false)
        do {
            try self.openMain()
        } catch {
            logger.error("access log: reopen failed; lines go to no main file until the next reopen", metadata: ["error": "\(error)"])
        }
        logger.info("access log files reopened")
    }

    mutating func closeAll(sync: Bool) {
        if let main = self.main, main.descriptor != STDOUT_FILENO {
            if sync { fsync(main.descriptor) }
            close(main.descriptor)
        }
        self.main = nil
        for file in self.clients.values {
            if sync { fsync(file.descriptor) }
            close(file.descriptor)
        }
        self.clients.removeAll()
    }

    /// `<id>.log` with bytes other than `A-Z a-z 0-9 . _ -` replaced by `_`; an id that needed
    /// replacing (or starts with a dot) gets a hash of itself too, so two ids never share a file.
    static func fileName(for clientID: String) -> String {
        var safe = ""
        var changed = clientID.isEmpty || clientID.hasPrefix(".")
        for scalar in clientID.unicodeScalars {
            switch scalar {
            case "A"..."Z", "a"..."z", "0"..."9", ".", "_", "-":
                safe.unicodeScalars.append(scalar)
            default:
                safe.append("_")
                changed = true
            }
        }
        if safe.hasPrefix(".") { safe = "_" + safe.dropFirst() }
        if changed {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in clientID.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            let hex = String(hash, radix: 16)
            safe += "-" + String(repeating: "0", count: 16 - hex.count) + hex
        }
        return safe + ".log"
    }
}

/// Why an access log file cannot be used; `description` is the reason alone, `debugDescription`
/// adds the code and the throw site. Errors compare equal when their codes do.
struct AccessLogError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case cannotCreateDirectory
            case cannotOpen
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// The per-client log directory cannot be created.
        static let cannotCreateDirectory = Code(.cannotCreateDirectory)
        /// The log file cannot be opened for appending.
        static let cannotOpen = Code(.cannotOpen)

        var description: String { "\(self.backing)" }
    }

    let code: Code
    let reason: String
    let file: String
    let line: UInt

    init(_ code: Code, reason: String, file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    var description: String { self.reason }

}
