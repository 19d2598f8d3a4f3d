import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum PortcullisProcessError: Error, CustomStringConvertible {
    case binaryNotFound(searched: [String])
    case exitedBeforeReady(status: Int32, output: String)
    case notReady(timeout: Double, output: String)

    var description: String {
        switch self {
        case .binaryNotFound(let searched):
            return "no `portcullis` executable found (build it, or set PORTCULLIS_BIN); looked in: "
                + searched.joined(separator: ", ")
        case .exitedBeforeReady(let status, let output):
            return "portcullis exited with status \(status) before it was ready. Output:\n\(output)"
        case .notReady(let timeout, let output):
            return "portcullis did not write its ready file within \(timeout) s. Output:\n\(output)"
        }
    }
}

/// The built `portcullis` binary run as a child process for end-to-end tests.
///
/// The helper adds `--ready-file PATH`; the binary writes that file (atomically, by rename) once
/// its listeners are bound, one URL per line, optionally after a label (`admin http://127.0.0.1:9090`).
/// The initializer returns once the file is there. Output (stdout and stderr) goes to a file,
/// readable through `output`. The process is killed when this object goes away.
final class PortcullisProcess: @unchecked Sendable {
    // Everything is set in init and never changes; Process itself is thread-safe.
    let pid: Int32
    /// Every URL in the ready file, in order.
    let urls: [String]
    /// The ready file's lines as (label, url); the label is nil on one-word lines.
    let listeners: [(label: String?, url: String)]
    /// A fresh temporary directory holding the ready file, the output file and, for `serve`, the config.
    let workDirectory: URL
    /// The `--config` directory for `serve`.
    let configDirectory: URL?
    let outputPath: String

    private let process: Process

    /// Runs `portcullis demo-backend --listen 127.0.0.1:0`.
    static func demoBackend(
        extraArguments: [String] = [],
        environment: [String: String] = [:]
    ) throws -> PortcullisProcess {
        try PortcullisProcess(
            arguments: ["demo-backend", "--listen", "127.0.0.1:0"] + extraArguments,
            environment: environment
        )
    }

    /// Writes `configYAML` as `portcullis.yaml` (and `extraFiles`, relative path -> contents) into
    /// a fresh directory and runs `portcullis serve --config DIR` there with `PORTCULLIS_THREADS=2`.
    /// A config without `issuers:` gets `TestIdentity`'s issuer and client.
    static func serve(
        configYAML: String,
        extraFiles: [String: String] = [:],
        extraArguments: [String] = [],
        environment: [String: String] = [:]
    ) throws -> PortcullisProcess {
        let work = try Self.makeWorkDirectory()
        let config = work.appendingPathComponent("config", isDirectory: true)
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        var configYAML = configYAML
        var extraFiles = extraFiles
        // Every gateway authenticates: configs without issuers get the tests' own.
        if !configYAML.contains("issuers:") {
            configYAML += TestIdentity.configYAML()
        }
        if extraFiles[TestIdentity.jwksFileName] == nil {
            extraFiles[TestIdentity.jwksFileName] = TestIdentity.signer.publicJWKSet
        }
        try configYAML.write(to: config.appendingPathComponent("portcullis.yaml"), atomically: true, encoding: .utf8)
        for (path, contents) in extraFiles {
            let file = config.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            try contents.write(to: file, atomically: true, encoding: .utf8)
        }
        var environment = environment
        if environment["PORTCULLIS_THREADS"] == nil {
            environment["PORTCULLIS_THREADS"] = "2"
        }
        return try PortcullisProcess(
            arguments: ["serve", "--config", config.path] + extraArguments,
            environment: environment,
            workDirectory: work,
            configDirectory: config
        )
    }

    /// Starts `portcullis ARGUMENTS --ready-file PATH` and waits up to `readyTimeout` seconds for the ready file.
    init(
        arguments: [String],
        environment: [String: String] = [:],
        workDirectory: URL? = nil,
        configDirectory: URL? = nil,
        readyTimeout: Double = 20
    ) throws {
        let work = try workDirectory ?? Self.makeWorkDirectory()
        let readyFile = work.appendingPathComponent("ready")
        let outputPath = work.appendingPathComponent("output.log").path
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        guard let output = FileHandle(forWritingAtPath: outputPath) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: outputPath])
        }
        defer { try? output.close() }

        let process = Process()
        process.executableURL = try Self.executableURL()
        process.arguments = arguments + ["--ready-file", readyFile.path]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.currentDirectoryURL = configDirectory ?? work
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.run()

        self.process = process
        self.pid = process.processIdentifier
        self.workDirectory = work
        self.configDirectory = configDirectory
        self.outputPath = outputPath

        let deadline = Deadline(seconds: readyTimeout)
        var listeners: [(label: String?, url: String)]?
        while listeners == nil {
            if let text = try? String(contentsOf: readyFile, encoding: .utf8) {
                listeners = Self.parseReadyFile(text)
                break
            }
            if !process.isRunning {
                // The file may have appeared just before the exit.
                if let text = try? String(contentsOf: readyFile, encoding: .utf8) {
                    listeners = Self.parseReadyFile(text)
                    break
                }
                throw PortcullisProcessError.exitedBeforeReady(
                    status: process.terminationStatus,
                    output: Self.readOutput(outputPath)
                )
            }
            if deadline.remainingMilliseconds <= 0 {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw PortcullisProcessError.notReady(timeout: readyTimeout, output: Self.readOutput(outputPath))
            }
            usleep(20_000)
        }
        self.listeners = listeners ?? []
        self.urls = self.listeners.map(\.url)
    }

    deinit {
        if self.process.isRunning {
            kill(self.pid, SIGKILL)
            self.process.waitUntilExit()
        }
        if ProcessInfo.processInfo.environment["PORTCULLIS_KEEP_TMP"] == nil {
            try? FileManager.default.removeItem(at: self.workDirectory)
        }
    }

    // MARK: - Listeners

    /// The URL labelled `label`; with no label, the first unlabelled URL (else the first URL).
    func url(label: String? = nil) -> String? {
        if let label {
            return self.listeners.first { $0.label == label }?.url
        }
        return self.listeners.first { $0.label == nil }?.url ?? self.listeners.first?.url
    }

    /// The port of `url(label:)`; 0 when there is no such listener (connecting then fails loudly).
    func port(label: String? = nil) -> Int {
        guard let url = self.url(label: label) else { return 0 }
        return Self.port(of: url) ?? 0
    }

    static func port(of url: String) -> Int? {
        if let port = URLComponents(string: url)?.port {
            return port
        }
        // `host:port` without a scheme.
        return url.split(separator: ":").last.flatMap { Int($0) }
    }

    static func parseReadyFile(_ text: String) -> [(label: String?, url: String)] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let words = line.split(whereSeparator: \.isWhitespace)
            switch words.count {
            case 0: return nil
            case 1: return (nil, String(words[0]))
            default: return (String(words[0]), String(words[1]))
            }
        }
    }

    // MARK: - Process control

    var isRunning: Bool { self.process.isRunning }

    /// Everything the process wrote to stdout and stderr so far.
    var output: String {
        Self.readOutput(self.outputPath)
    }

    /// Sends `signal` (e.g. SIGTERM, SIGHUP) to the process.
    func signal(_ signal: Int32) {
        kill(self.pid, signal)
    }

    /// The exit status once the process has exited within `timeout` seconds (for a death by
    /// signal, the signal number: see `exitedBySignal`), else nil.
    func waitForExit(timeout: Double = 10) -> Int32? {
        let deadline = Deadline(seconds: timeout)
        while self.process.isRunning {
            if deadline.remainingMilliseconds <= 0 { return nil }
            usleep(20_000)
        }
        return self.process.terminationStatus
    }

    /// Whether the process ended by an uncaught signal rather than by exiting.
    var exitedBySignal: Bool {
        !self.process.isRunning && self.process.terminationReason == .uncaughtSignal
    }

    /// SIGTERM, then SIGKILL when it has not exited within `grace` seconds. Returns the exit status.
    @discardableResult
    func terminate(grace: Double = 5) -> Int32 {
        guard self.process.isRunning else { return self.process.terminationStatus }
        self.signal(SIGTERM)
        if let status = self.waitForExit(timeout: grace) {
            return status
        }
        self.signal(SIGKILL)
        self.process.waitUntilExit()
        return self.process.terminationStatus
    }

    /// Peak resident set size (VmHWM) in KiB, nil once the process has gone.
    var peakRSSKiB: Int? {
        self.procStatusField("VmHWM")
    }

    /// Current resident set size (VmRSS) in KiB, nil once the process has gone.
    var rssKiB: Int? {
        self.procStatusField("VmRSS")
    }

    /// The anonymous part of the RSS (heap, stacks): the process's own memory, without the
    /// pages of its executable.
    var anonymousKiB: Int? {
        self.procStatusField("RssAnon")
    }

    /// Open file descriptors (/proc/PID/fd); nil once the process has gone.
    var openDescriptors: Int? {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(self.pid)/fd"))?.count
    }

    /// Open TCP connections of this process to `port` on the other end (its pooled upstream
    /// connections, when `port` is the backend's): its socket inodes matched in /proc/net/tcp.
    func connections(toPort port: Int) -> Int {
        let fdDirectory = "/proc/\(self.pid)/fd"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: fdDirectory) else { return 0 }
        var inodes = Set<Substring>()
        for entry in entries {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDirectory)/\(entry)"),
                target.hasPrefix("socket:[")
            else { continue }
            inodes.insert(target.dropFirst("socket:[".count).dropLast())
        }
        let portHex = String(format: "%04X", port)
        var count = 0
        for table in ["/proc/\(self.pid)/net/tcp", "/proc/\(self.pid)/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
                let fields = line.split(separator: " ")
                guard fields.count > 9, fields[2].hasSuffix(":" + portHex), inodes.contains(fields[9]) else { continue }
                count += 1
            }
        }
        return count
    }

    /// User and system CPU time so far, in seconds (/proc/PID/stat); 0 once the process has gone.
    var cpuSeconds: Double {
        guard let text = try? String(contentsOfFile: "/proc/\(self.pid)/stat", encoding: .utf8),
            let end = text.lastIndex(of: ")")
        else { return 0 }
        // After "pid (comm)": state is field 3, utime and stime are fields 14 and 15.
        let fields = text[text.index(after: end)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private func procStatusField(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(self.pid)/status", encoding: .utf8) else {
            return nil
        }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            return line.split(whereSeparator: \.isWhitespace).dropFirst().first.flatMap { Int($0) }
        }
        return nil
    }

    // MARK: - Locating the binary

    /// `PORTCULLIS_BIN`, else the first folder holding a `portcullis` file on the way up from the
    /// running test binary (`.build/debug/` under `swift test`), else `.build/debug` of this package.
    static func executableURL() throws -> URL {
        try self.located.get()
    }

    private static let located: Result<URL, PortcullisProcessError> = {
        let fileManager = FileManager.default
        if let path = ProcessInfo.processInfo.environment["PORTCULLIS_BIN"], !path.isEmpty {
            return .success(URL(fileURLWithPath: path))
        }
        var starts: [URL] = []
        if let exe = try? fileManager.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            starts.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        if let argument = CommandLine.arguments.first {
            let cwd = URL(fileURLWithPath: fileManager.currentDirectoryPath, isDirectory: true)
            starts.append(URL(fileURLWithPath: argument, relativeTo: cwd).standardizedFileURL.deletingLastPathComponent())
        }
        var packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while packageRoot.path != "/" && !fileManager.fileExists(atPath: packageRoot.appendingPathComponent("Package.swift").path) {
            packageRoot.deleteLastPathComponent()
        }
        let packageBuild = packageRoot.appendingPathComponent(".build/debug", isDirectory: true)

        var searched: [String] = []
        for start in starts {
            var directory = start.resolvingSymlinksInPath()
            while true {
                searched.append(directory.path)
                if let found = PortcullisProcess.executable(in: directory) {
                    return .success(found)
                }
                if directory.path == "/" { break }
                directory.deleteLastPathComponent()
            }
        }
        searched.append(packageBuild.path)
        if let found = PortcullisProcess.executable(in: packageBuild) {
            return .success(found)
        }
        var seen = Set<String>()
        return .failure(.binaryNotFound(searched: searched.filter { seen.insert($0).inserted }))
    }()

    private static func executable(in directory: URL) -> URL? {
        let candidate = directory.appendingPathComponent("portcullis")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory),
            !isDirectory.boolValue, FileManager.default.isExecutableFile(atPath: candidate.path)
        else { return nil }
        return candidate
    }

    // MARK: - Files

    private static func makeWorkDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("portcullis-e2e-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    private static func readOutput(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }
}
