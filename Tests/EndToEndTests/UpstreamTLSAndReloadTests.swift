import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway CA and a `localhost` server certificate made with the openssl command line.
struct ThrowawayPKI {
    let directory: URL
    var caCertificate: String { self.directory.appendingPathComponent("ca.crt").path }
    var serverCertificate: String { self.directory.appendingPathComponent("server.crt").path }
    var serverKey: String { self.directory.appendingPathComponent("server.key").path }

    static func make() throws -> ThrowawayPKI {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = """
            set -e
            cd '\(directory.path)'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt \
              -subj '/CN=Portcullis Test CA' -days 1 \
              -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign' 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr \
              -subj '/CN=localhost' 2>/dev/null
            printf 'subjectAltName=DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 \
              -extfile ext.cnf 2>/dev/null
            """
        let status = try runShell(script)
        guard status == 0 else { throw GatewayTestError("openssl failed with status \(status)") }
        return ThrowawayPKI(directory: directory)
    }
}

/// An HTTPS backend (Python's http.server over ssl) that reports the SNI it saw.
func startHTTPSBackend(pki: ThrowawayPKI) throws -> PythonBackend {
    try PythonBackend(
        "https",
        script: """
            import http.server, json, ssl
            seen = {"sni": None}
            class Handler(http.server.BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"
                def do_GET(self):
                    body = json.dumps({"tls": True, "sni": seen["sni"], "path": self.path,
                                       "host": self.headers.get("Host")}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *args):
                    pass
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[1], sys.argv[2])
            def remember(sock, name, ctx):
                seen["sni"] = name
            context.sni_callback = remember
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            announce(server.server_address[1])
            server.serve_forever()
            """,
        arguments: [pki.serverCertificate, pki.serverKey]
    )
}

@Suite("Upstream TLS and reload", .serialized)
struct UpstreamTLSAndReloadTests {
    static func gateway(to backend: PythonBackend, caFile: String?) throws -> PortcullisProcess {
        try PortcullisProcess.serve(
            configYAML: """
                listen:
                  - address: "127.0.0.1:0"
                upstream:
                  url: "https://localhost:\(backend.port)"
                \(caFile.map { "  ca_file: \"\($0)\"" } ?? "")
                """
        )
    }

    @Test(.enabled(if: commandExists("openssl") && commandExists("python3"), "needs openssl and python3"))
    func httpsUpstreamIsVerifiedWithCAFileAndSNI() throws {
        let pki = try ThrowawayPKI.make()
        let backend = try startHTTPSBackend(pki: pki)
        let gateway = try Self.gateway(to: backend, caFile: pki.caCertificate)
        let response = RawHTTPClient.request("GET", "/api/ListTenants", port: gateway.port())
        #expect(response.status == 200)
        #expect(response.json?["tls"] as? Bool == true)
        #expect(response.json?["sni"] as? String == "localhost")
        #expect(response.json?["host"] as? String == "localhost:\(backend.port)")
    }

    @Test(.enabled(if: commandExists("openssl") && commandExists("python3"), "needs openssl and python3"))
    func httpsUpstreamWithAnUntrustedCertificateGives502() throws {
        let pki = try ThrowawayPKI.make()
        let backend = try startHTTPSBackend(pki: pki)
        // The system bundle does not know the throwaway CA: the handshake must fail.
        let gateway = try Self.gateway(to: backend, caFile: nil)
        let response = RawHTTPClient.request("GET", "/api/ListTenants", port: gateway.port())
        #expect(response.status == 502)
        #expect(response.json?["error"] as? String == "upstream_unavailable")
    }

    @Test func sighupReloadsAndABadConfigKeepsTheRunningOne() throws {
        let system = try GatewayUnderTest.start()
        let directory = try #require(system.gateway.configDirectory)
        let file = directory.appendingPathComponent("portcullis.yaml")
        let good = try String(contentsOf: file, encoding: .utf8)

        try (good + "\nupstrem: {}\n").write(to: file, atomically: true, encoding: .utf8)
        system.gateway.signal(SIGHUP)
        #expect(waitForOutput(system.gateway, containing: "reload failed"))
        #expect(system.gateway.output.contains("unknown key (did you mean 'upstream'?)"))
        #expect(RawHTTPClient.request("GET", "/api/ListTenants", port: system.port).status == 200)

        try good.replacingOccurrences(of: "upstream:\n", with: "upstream:\n  timeout: 300ms\n")
            .write(to: file, atomically: true, encoding: .utf8)
        system.gateway.signal(SIGHUP)
        #expect(waitForOutput(system.gateway, containing: "configuration reloaded"))
        let response = RawHTTPClient.request("GET", "/demo/hang", port: system.port)
        #expect(response.status == 504)
    }
}

struct GatewayTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func waitForOutput(_ process: PortcullisProcess, containing text: String, timeout: Double = 5) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if process.output.contains(text) { return true }
        usleep(20_000)
    }
    return false
}

@discardableResult
func runShell(_ script: String) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script]
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

func commandExists(_ name: String) -> Bool {
    (try? runShell("command -v \(name) >/dev/null 2>&1")) == 0
}
