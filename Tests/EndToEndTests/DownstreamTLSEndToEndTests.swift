import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway CA with a server certificate for `IP:127.0.0.1`, a client certificate it signed
/// and a self-signed client certificate, made with the openssl command line.
struct DownstreamPKI {
    let directory: URL

    func path(_ name: String) -> String { self.directory.appendingPathComponent(name).path }
    var caCertificate: String { self.path("ca.crt") }

    static func make() throws -> DownstreamPKI {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-dtls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let pki = DownstreamPKI(directory: directory)
        try pki.run(
            """
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt \
              -subj '/CN=Portcullis Downstream Test CA' -days 1 \
              -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign'
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout client.key -out client.csr \
              -subj '/CN=tls-client'
            printf 'extendedKeyUsage=clientAuth\\n' > client.cnf
            openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -set_serial 0x77 -out client.crt -days 1 \
              -extfile client.cnf
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout selfsigned.key \
              -out selfsigned.crt -subj '/CN=tls-client' -days 1
            """
        )
        try pki.issueServerCertificate(serial: "1001", certificate: "server.crt", key: "server.key")
        return pki
    }

    /// A new server key and a certificate for it (CA-signed, `IP:127.0.0.1`) with `serial` (hex).
    func issueServerCertificate(serial: String, certificate: String, key: String) throws {
        try self.run(
            """
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout '\(key)' -out server-\(serial).csr \
              -subj '/CN=portcullis-\(serial)'
            printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.cnf
            openssl x509 -req -in server-\(serial).csr -CA ca.crt -CAkey ca.key -set_serial 0x\(serial) \
              -out '\(certificate)' -days 1 -extfile server.cnf
            """
        )
    }

    func run(_ script: String) throws {
        let status = try runShell("set -e\ncd '\(self.directory.path)'\n{\n\(script)\n} >/dev/null 2>&1")
        guard status == 0 else { throw GatewayTestError("openssl failed with status \(status)") }
    }
}

/// What one curl run printed and how it ended.
struct CurlResult {
    var exitCode: Int32
    var stdout: String
    var stderr: String
}

func curl(_ arguments: [String]) throws -> CurlResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["curl", "--silent", "--show-error", "--max-time", "10"] + arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CurlResult(
        exitCode: process.terminationStatus,
        stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self)
    )
}

@Suite("Downstream TLS end to end", .serialized, .enabled(if: commandExists("openssl") && commandExists("curl"), "needs openssl and curl"))
struct DownstreamTLSEndToEndTests {
    let pki: DownstreamPKI
    let backend: PortcullisProcess

    init() throws {
        self.pki = try DownstreamPKI.make()
        self.backend = try PortcullisProcess.demoBackend()
    }

    /// A gateway whose one listener is TLS with the PKI's files copied next to its config
    /// (relative paths), in front of the demo backend.
    func gateway(clientCA: Bool = false, limits: String = "") throws -> PortcullisProcess {
        var files: [String: String] = [
            "tls/server.crt": try String(contentsOfFile: self.pki.path("server.crt"), encoding: .utf8),
            "tls/server.key": try String(contentsOfFile: self.pki.path("server.key"), encoding: .utf8),
        ]
        if clientCA {
            files["tls/clients-ca.crt"] = try String(contentsOfFile: self.pki.caCertificate, encoding: .utf8)
        }
        let clientCALine = clientCA ? ", client_ca: tls/clients-ca.crt" : ""
        return try PortcullisProcess.serve(
            configYAML: """
                listen:
                  - address: "127.0.0.1:0"
                    tls: { certificate: tls/server.crt, key: tls/server.key\(clientCALine) }
                upstream:
                  url: "http://127.0.0.1:\(self.backend.port())"
                \(limits)
                """,
            extraFiles: files
        )
    }

    func url(_ gateway: PortcullisProcess, _ path: String) -> String {
        "https://127.0.0.1:\(gateway.port())\(path)"
    }

    /// `curl` trusting the throwaway CA, with the tests' bearer token.
    func request(_ gateway: PortcullisProcess, _ path: String, _ extra: [String] = []) throws -> CurlResult {
        let (name, value) = TestIdentity.authorizationHeader
        return try curl(
            ["--cacert", self.pki.caCertificate, "-H", "\(name): \(value)", "-w", "\n%{http_code}"] + extra
                + [self.url(gateway, path)]
        )
    }

    /// The serial (hex, as openssl prints it) of the certificate a fresh connection is served.
    func servedSerial(_ gateway: PortcullisProcess) throws -> String? {
        let file = self.pki.path("served-\(UUID().uuidString)")
        _ = try runShell(
            "openssl s_client -connect 127.0.0.1:\(gateway.port()) </dev/null 2>/dev/null | openssl x509 -noout -serial > '\(file)' 2>/dev/null"
        )
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return text.split(separator: "=").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    static func statusAndBody(_ result: CurlResult) -> (status: Int?, body: String) {
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (lines.last.flatMap { Int($0) }, lines.dropLast().joined(separator: "\n"))
    }

    @Test func httpsReachesTheBackendWhichSeesForwardedProtoHTTPS() throws {
        let gateway = try self.gateway()
        #expect(gateway.url()?.hasPrefix("https://") == true, "ready file: \(gateway.urls)")
        let result = try self.request(gateway, "/demo/echo", ["--http1.1"])
        #expect(result.exitCode == 0, "\(result.stderr)")
        let (status, body) = Self.statusAndBody(result)
        #expect(status == 200)
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        let headers = (json?["headers"] as? [[String]]) ?? []
        let proto = headers.filter { $0.first?.lowercased() == "x-forwarded-proto" }.map { $0.last ?? "" }
        #expect(proto == ["https"], "headers the backend saw: \(headers)")
    }

    @Test func alpnOffersHTTP11Only() throws {
        let gateway = try self.gateway()
        // curl asks for h2 and http/1.1 by default; the gateway must pick http/1.1.
        let result = try self.request(gateway, "/api/ListTenants", ["--http2", "-v"])
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(Self.statusAndBody(result).status == 200)
        #expect(result.stderr.contains("ALPN: server accepted http/1.1"), "\(result.stderr)")
    }

    @Test func anH2OnlyClientGetsNoALPNAndItsPrefaceA400() throws {
        let gateway = try self.gateway()
        let file = self.pki.path("h2-\(UUID().uuidString)")
        _ = try runShell(
            """
            printf 'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n' | timeout 10 openssl s_client -alpn h2 -ign_eof \
              -CAfile '\(self.pki.caCertificate)' -connect 127.0.0.1:\(gateway.port()) > '\(file)' 2>&1
            """
        )
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        #expect(text.contains("No ALPN negotiated"), "\(text)")
        #expect(text.contains("HTTP/1.1 400 Bad Request"), "\(text)")
    }

    @Test func tls11IsRefused() throws {
        let gateway = try self.gateway()
        // SECLEVEL=0 lets this client offer TLS 1.1 at all, so the refusal is the server's.
        let result = try self.request(gateway, "/api/ListTenants", ["--tlsv1.1", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0"])
        #expect(result.exitCode == 35, "\(result.exitCode): \(result.stderr)")
        #expect(result.stderr.contains("alert protocol version"), "\(result.stderr)")
        // TLS 1.2 and 1.3 both work.
        for version in ["1.2", "1.3"] {
            let ok = try self.request(gateway, "/api/ListTenants", ["--tlsv\(version)", "--tls-max", version])
            #expect(ok.exitCode == 0, "TLS \(version): \(ok.stderr)")
            #expect(Self.statusAndBody(ok).status == 200)
        }
    }

    @Test func clientCARequiresACertificateItSigned() throws {
        let gateway = try self.gateway(clientCA: true)
        let none = try self.request(gateway, "/api/ListTenants")
        #expect(none.exitCode != 0 && Self.statusAndBody(none).status != 200, "no client certificate: \(none)")
        #expect(none.stderr.contains("certificate required"), "\(none.stderr)")

        let other = try self.request(
            gateway, "/api/ListTenants", ["--cert", self.pki.path("selfsigned.crt"), "--key", self.pki.path("selfsigned.key")]
        )
        #expect(other.exitCode != 0 && Self.statusAndBody(other).status != 200, "self-signed client certificate: \(other)")
        #expect(other.stderr.contains("unknown ca"), "\(other.stderr)")

        let good = try self.request(
            gateway, "/api/ListTenants", ["--cert", self.pki.path("client.crt"), "--key", self.pki.path("client.key")]
        )
        #expect(good.exitCode == 0, "\(good.stderr)")
        #expect(Self.statusAndBody(good).status == 200)
    }

    @Test func aClientThatNeverFinishesTheHandshakeIsClosedByTheHeaderTimeout() throws {
        let gateway = try self.gateway(limits: "limits:\n  client_header_timeout: 1s")
        let silent = try RawHTTPClient.connect(port: gateway.port())
        // Half a handshake: the first bytes of a TLS record, then nothing.
        let partial = try RawHTTPClient.connect(port: gateway.port())
        _ = partial.send([0x16, 0x03, 0x01, 0x00, 0xF0, 0x01])
        let started = Date()
        #expect(silent.isClosedByPeer(timeout: 8))
        #expect(partial.isClosedByPeer(timeout: 8))
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed > 0.5 && elapsed < 4, "closed after \(elapsed) s")
        // Still serving.
        #expect(Self.statusAndBody(try self.request(gateway, "/api/ListTenants")).status == 200)
    }

    @Test func certificateReloadUnderLoadFailsNoRequestAndNewConnectionsGetTheNewCertificate() throws {
        let gateway = try self.gateway()
        let config = try #require(gateway.configDirectory)
        #expect(try self.servedSerial(gateway) == "1001")

        // Requests on fresh connections (one curl each) in a loop until told to stop.
        let codes = self.pki.path("codes")
        let stop = self.pki.path("stop")
        let (name, value) = TestIdentity.authorizationHeader
        let loop = Process()
        loop.executableURL = URL(fileURLWithPath: "/bin/sh")
        loop.arguments = [
            "-c",
            """
            while [ ! -e '\(stop)' ]; do
              code=$(curl --silent --max-time 10 -o /dev/null -w '%{http_code}' --cacert '\(self.pki.caCertificate)' \
                -H '\(name): \(value)' '\(self.url(gateway, "/api/ListTenants"))')
              echo "$? $code" >> '\(codes)'
            done
            """,
        ]
        try loop.run()
        defer { if loop.isRunning { loop.terminate() } }
        usleep(700_000)

        // The new pair is written next to the old one and renamed over it, key first.
        try self.pki.issueServerCertificate(serial: "2002", certificate: "next.crt", key: "next.key")
        #expect(rename(self.pki.path("next.key"), config.appendingPathComponent("tls/server.key").path) == 0)
        #expect(rename(self.pki.path("next.crt"), config.appendingPathComponent("tls/server.crt").path) == 0)
        gateway.signal(SIGHUP)
        #expect(waitForOutput(gateway, containing: "configuration reloaded"))
        usleep(700_000)
        FileManager.default.createFile(atPath: stop, contents: nil)
        loop.waitUntilExit()

        let lines = try String(contentsOfFile: codes, encoding: .utf8).split(separator: "\n")
        let failures = lines.filter { $0 != "0 200" }
        print("TLS reload under load: \(lines.count) requests, \(failures.count) failed")
        #expect(lines.count >= 10, "only \(lines.count) requests ran")
        #expect(failures.isEmpty, "failed: \(failures)")
        #expect(!gateway.output.contains("reload failed"), "\(gateway.output)")
        #expect(try self.servedSerial(gateway) == "2002")

        // A garbage certificate: the reload fails, saying where, and the last good one stays.
        try "not a certificate\n".write(to: config.appendingPathComponent("tls/server.crt"), atomically: true, encoding: .utf8)
        gateway.signal(SIGHUP)
        #expect(waitForOutput(gateway, containing: "reload failed"))
        #expect(gateway.output.contains("listen[0].tls.certificate"), "\(gateway.output)")
        #expect(try self.servedSerial(gateway) == "2002")
        #expect(Self.statusAndBody(try self.request(gateway, "/api/ListTenants")).status == 200)
    }

    @Test func anOpenConnectionOutlivesACertificateReload() throws {
        let gateway = try self.gateway()
        let config = try #require(gateway.configDirectory)
        // One curl, two transfers on one connection: a slow one the reload happens during, then
        // another on the same (reused: num_connects 0) connection.
        let (name, value) = TestIdentity.authorizationHeader
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "curl", "--silent", "--max-time", "10", "--cacert", self.pki.caCertificate, "-H", "\(name): \(value)",
            "-w", "%{http_code} %{num_connects}\n",
            "-o", "/dev/null", self.url(gateway, "/demo/slow?ms=1500"),
            "-o", "/dev/null", self.url(gateway, "/api/ListTenants"),
        ]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        usleep(400_000)
        try self.pki.issueServerCertificate(serial: "4004", certificate: "next.crt", key: "next.key")
        #expect(rename(self.pki.path("next.key"), config.appendingPathComponent("tls/server.key").path) == 0)
        #expect(rename(self.pki.path("next.crt"), config.appendingPathComponent("tls/server.crt").path) == 0)
        gateway.signal(SIGHUP)
        #expect(waitForOutput(gateway, containing: "configuration reloaded"))
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(printed == "200 1\n200 0\n", "\(printed)")
        #expect(try self.servedSerial(gateway) == "4004")
    }

    @Test func aKeyThatDoesNotMatchTheCertificateStopsTheStartNamingTheCertificate() throws {
        try self.pki.issueServerCertificate(serial: "3003", certificate: "other.crt", key: "other.key")
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-dtls-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: self.pki.path("server.crt"), toPath: config.appendingPathComponent("tls.crt").path)
        try FileManager.default.copyItem(atPath: self.pki.path("other.key"), toPath: config.appendingPathComponent("tls.key").path)
        try TestIdentity.signer.publicJWKSet.write(
            to: config.appendingPathComponent(TestIdentity.jwksFileName), atomically: true, encoding: .utf8
        )
        let yaml =
            """
            listen:
              - address: "127.0.0.1:0"
                tls: { certificate: tls.crt, key: tls.key }
            upstream:
              url: "http://127.0.0.1:\(self.backend.port())"
            """ + TestIdentity.configYAML()
        try yaml.write(to: config.appendingPathComponent("portcullis.yaml"), atomically: true, encoding: .utf8)
        let result = try runPortcullis(["serve", "--config", config.path])
        #expect(result.status != 0)
        #expect(result.output.contains("portcullis.yaml:3:"), "\(result.output)")
        #expect(result.output.contains("listen[0].tls.certificate"), "\(result.output)")
        #expect(result.output.contains("does not match"), "\(result.output)")
    }

    /// `admin.tls`: the admin listener speaks HTTPS only, and the console's session cookie is
    /// `Secure` there.
    @Test func theAdminListenerServesHTTPSAndTheConsoleCookieIsSecure() throws {
        let token = "admin-token-over-tls-0123456789abcdef"
        let gateway = try PortcullisProcess.serve(
            configYAML: """
                listen:
                  - address: "127.0.0.1:0"
                upstream:
                  url: "http://127.0.0.1:\(self.backend.port())"
                admin:
                  address: "127.0.0.1:0"
                  token_file: admin-token
                  tls: { certificate: tls/server.crt, key: tls/server.key }
                """,
            extraFiles: [
                "tls/server.crt": try String(contentsOfFile: self.pki.path("server.crt"), encoding: .utf8),
                "tls/server.key": try String(contentsOfFile: self.pki.path("server.key"), encoding: .utf8),
                "admin-token": token + "\n",
            ]
        )
        let admin = try #require(gateway.url(label: "admin"), "\(gateway.output)")
        #expect(admin.hasPrefix("https://"), "\(admin)")
        let health = try curl(["--cacert", self.pki.caCertificate, admin + "/healthz"])
        #expect(health.exitCode == 0 && health.stdout.contains("ok"), "\(health)")
        let plain = try curl([admin.replacingOccurrences(of: "https://", with: "http://") + "/healthz"])
        #expect(!plain.stdout.contains("\"status\":\"ok\""), "plain HTTP is not served: \(plain)")
        let signIn = try curl([
            "--cacert", self.pki.caCertificate, "-D", "-", "-o", "/dev/null", "-H", "Content-Type: application/json", "-H", "Origin: \(admin)",
            "--data", "{\"token\":\"\(token)\"}", admin + "/ui/session",
        ])
        let cookie = signIn.stdout.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") }.map(String.init) ?? ""
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "\(signIn)")
        #expect(cookie.contains("; Secure"), "\(signIn)")
    }
}

extension DownstreamTLSEndToEndTests {
    /// A config directory whose one listener serves `certificate` and `key` (file contents).
    func configDirectory(certificate: String, key: String) throws -> URL {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-dtls-check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: config, withIntermediateDirectories: true)
        try certificate.write(to: config.appendingPathComponent("tls.crt"), atomically: true, encoding: .utf8)
        try key.write(to: config.appendingPathComponent("tls.key"), atomically: true, encoding: .utf8)
        let yaml = """
            listen:
              - address: "127.0.0.1:0"
                tls: { certificate: tls.crt, key: tls.key }
            upstream:
              url: "http://127.0.0.1:\(self.backend.port())"
            """
        try yaml.write(to: config.appendingPathComponent("portcullis.yaml"), atomically: true, encoding: .utf8)
        return config
    }

    @Test func checkReportsABadPEMAndAMismatchedKeyWithFileLineAndKey() throws {
        let certificate = try String(contentsOfFile: self.pki.path("server.crt"), encoding: .utf8)
        let key = try String(contentsOfFile: self.pki.path("server.key"), encoding: .utf8)
        let good = try runPortcullis(["check", try self.configDirectory(certificate: certificate, key: key).path])
        #expect(good.status == 0, "\(good.output)")

        let garbage = try runPortcullis(["check", try self.configDirectory(certificate: "not a certificate\n", key: key).path])
        #expect(garbage.status != 0)
        #expect(garbage.output.contains("portcullis.yaml:3:"), "\(garbage.output)")
        #expect(garbage.output.contains("listen[0].tls.certificate"), "\(garbage.output)")
        #expect(garbage.output.contains("not a PEM certificate"), "\(garbage.output)")

        let badKey = try runPortcullis(["check", try self.configDirectory(certificate: certificate, key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").path])
        #expect(badKey.status != 0)
        #expect(badKey.output.contains("listen[0].tls.key"), "\(badKey.output)")

        try self.pki.issueServerCertificate(serial: "4004", certificate: "check.crt", key: "check.key")
        let otherKey = try String(contentsOfFile: self.pki.path("check.key"), encoding: .utf8)
        let mismatch = try runPortcullis(["check", try self.configDirectory(certificate: certificate, key: otherKey).path])
        #expect(mismatch.status != 0)
        #expect(mismatch.output.contains("does not match"), "\(mismatch.output)")
    }
}

/// Runs the portcullis binary to its exit (for commands that must fail), with stdout and
/// stderr together.
func runPortcullis(_ arguments: [String], timeout: Double = 20) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = try PortcullisProcess.executableURL()
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning { process.terminate() }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
