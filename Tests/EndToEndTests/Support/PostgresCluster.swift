import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster for the tests: `initdb` in a temporary directory, one free
/// loopback port, stopped and removed at the end. Run as the `postgres` user (or `nobody`)
/// when the tests run as root, since the server refuses to run as root.
final class PostgresCluster {
    /// The server binaries of Debian's `postgresql` package; nil when it is not installed.
    static let binDirectory: String? = {
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(base)/\(version)/bin/initdb") {
            return "\(base)/\(version)/bin"
        }
        if let path = ProcessInfo.processInfo.environment["PORTCULLIS_PG_BIN"], FileManager.default.isExecutableFile(atPath: path + "/initdb") {
            return path
        }
        return nil
    }()

    static var isAvailable: Bool { Self.binDirectory != nil }
    static let skipMessage = "needs the PostgreSQL server binaries (Debian package postgresql: apt-get install postgresql)"

    let directory: String
    let port: Int
    private let bin: String
    private let user: String?

    /// `postgres://portcullis@127.0.0.1:PORT/postgres`: trust authentication on loopback only.
    var url: String { "postgres://portcullis:unused@127.0.0.1:\(self.port)/postgres" }

    init() throws {
        guard let bin = Self.binDirectory else { throw ClusterError(Self.skipMessage) }
        self.bin = bin
        self.directory = NSTemporaryDirectory() + "portcullis-pg-\(UUID().uuidString.prefix(8))"
        self.port = try Self.freePort()
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        if geteuid() == 0 {
            let name = getpwnam("postgres") != nil ? "postgres" : "nobody"
            guard let account = getpwnam(name) else { throw ClusterError("no postgres or nobody user to run the server as") }
            chown(self.directory, account.pointee.pw_uid, account.pointee.pw_gid)
            self.user = name
        } else {
            self.user = nil
        }
        try self.run("initdb", ["-D", self.directory + "/data", "-U", "portcullis", "--auth=trust", "-E", "UTF8", "--no-sync"])
        try self.start()
    }

    /// Starts the server and waits until it accepts connections.
    func start() throws {
        try self.run("pg_ctl", [
            "-D", self.directory + "/data", "-l", self.directory + "/server.log", "-w", "-t", "60",
            "-o", "-p \(self.port) -k \(self.directory) -c listen_addresses=127.0.0.1 -c fsync=off", "start",
        ])
    }

    /// Stops the server at once (connections are closed).
    func stop() throws {
        try self.run("pg_ctl", ["-D", self.directory + "/data", "-m", "immediate", "-w", "-t", "60", "stop"])
    }

    var log: String { (try? String(contentsOfFile: self.directory + "/server.log", encoding: .utf8)) ?? "" }

    /// Freezes the server and every process it started (SIGSTOP): connections stay open and
    /// nothing answers, as with a database that hangs. `resume()` undoes it.
    func pause() throws {
        for pid in try self.serverProcesses() { kill(pid, SIGSTOP) }
    }

    func resume() throws {
        for pid in try self.serverProcesses() { kill(pid, SIGCONT) }
    }

    /// The postmaster (from postmaster.pid) and its children (from /proc).
    private func serverProcesses() throws -> [pid_t] {
        let text = try String(contentsOfFile: self.directory + "/data/postmaster.pid", encoding: .utf8)
        guard let first = text.split(separator: "\n").first, let postmaster = pid_t(first) else {
            throw ClusterError("no postmaster pid in \(self.directory)/data/postmaster.pid")
        }
        var pids = [postmaster]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, pid_t(fields[1]) == postmaster { pids.append(pid) }
        }
        return pids
    }

    deinit {
        try? self.stop()
        if ProcessInfo.processInfo.environment["PORTCULLIS_KEEP_TMP"] == nil {
            try? FileManager.default.removeItem(atPath: self.directory)
        }
    }

    /// posix_spawn and waitpid rather than Foundation's Process: Process learns of the exit
    /// through a descriptor the child inherits, which the server pg_ctl starts keeps open.
    private func run(_ tool: String, _ arguments: [String]) throws {
        // In the cluster's directory: the server's user may not enter the test's working directory.
        var argv = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", self.directory]
        if let user = self.user { argv += ["/usr/sbin/runuser", "-u", user, "--"] }
        argv += ["\(self.bin)/\(tool)"] + arguments
        let outputPath = self.directory + "/\(tool).out"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, &cArguments, environ)
        guard spawned == 0 else { throw ClusterError("cannot start \(argv[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED && WEXITSTATUS == 0
        guard status & 0x7F == 0, (status >> 8) & 0xFF == 0 else {
            throw ClusterError("\(tool) failed (wait status \(status)): \(text)\n\(self.log)")
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClusterError("socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ClusterError("bind failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    struct ClusterError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
