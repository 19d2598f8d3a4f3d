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

    deinit {
        try? self.stop()
        if ProcessInfo.processInfo.environment["PORTCULLIS_KEEP_TMP"] == nil {
            try? FileManager.default.removeItem(atPath: self.directory)
        }
    }

    private func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        if let user = self.user {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
            process.arguments = ["-u", user, "--", "\(self.bin)/\(tool)"] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "\(self.bin)/\(tool)")
            process.arguments = arguments
        }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        process.currentDirectoryURL = URL(fileURLWithPath: self.directory)
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ClusterError("\(tool) exited \(process.terminationStatus): \(text)\n\(self.log)")
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
