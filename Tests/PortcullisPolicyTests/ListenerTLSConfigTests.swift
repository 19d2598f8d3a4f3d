import Foundation
import PortcullisPolicy
import Testing

@Suite("listen[].tls")
struct ListenerTLSConfigTests {
    /// A config directory holding `portcullis.yaml` and the given (empty) files.
    static func load(_ tls: String, files: [String] = []) throws(ConfigErrors) -> GatewayConfig {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-tls-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for name in files {
            FileManager.default.createFile(atPath: directory.appendingPathComponent(name).path, contents: Data("x".utf8))
        }
        let yaml = """
            upstream:
              url: "http://127.0.0.1:8091"
            listen:
              - address: "127.0.0.1:8080"
              - address: "[::]:8443"
                tls: \(tls)
            """
        let path = directory.appendingPathComponent("portcullis.yaml").path
        return try ConfigLoader.load(sources: [(file: path, text: yaml)], directory: directory.path)
    }

    static func errors(_ tls: String, files: [String] = []) -> [ConfigError] {
        do throws(ConfigErrors) {
            _ = try Self.load(tls, files: files)
            Issue.record("configuration loaded but was expected to fail")
            return []
        } catch {
            return error.errors
        }
    }

    @Test func pathsAreResolvedAgainstTheConfigFilesDirectory() throws {
        let config = try Self.load("{ certificate: tls.crt, key: tls.key, client_ca: ca.crt }", files: ["tls.crt", "tls.key", "ca.crt"])
        #expect(config.listeners[0].tls == nil)
        let tls = try #require(config.listeners[1].tls)
        #expect(tls.certificateFile == (config.directory as NSString).appendingPathComponent("tls.crt"))
        #expect(tls.keyFile.hasSuffix("/tls.key"))
        #expect(tls.clientCAFile?.hasSuffix("/ca.crt") == true)
        #expect(tls.keyPath == "listen[1].tls")
        #expect(tls.certificateLocation?.line == 6)
    }

    @Test func clientCAIsOptional() throws {
        let config = try Self.load("{ certificate: tls.crt, key: tls.key }", files: ["tls.crt", "tls.key"])
        #expect(config.listeners[1].tls?.clientCAFile == nil)
    }

    @Test func anUnreadableFileIsAnErrorAtItsKey() {
        let errors = Self.errors("{ certificate: tls.crt, key: missing.key }", files: ["tls.crt"])
        #expect(errors.count == 1)
        #expect(errors.first?.key == "listen[1].tls.key")
        #expect(errors.first?.location?.line == 6)
        #expect(errors.first?.message.contains("cannot read") == true)
        #expect(errors.first?.message.contains("missing.key") == true)
    }

    @Test func aMissingClientCAFileIsAnError() {
        let errors = Self.errors("{ certificate: tls.crt, key: tls.key, client_ca: nope.crt }", files: ["tls.crt", "tls.key"])
        #expect(errors.map(\.key) == ["listen[1].tls.client_ca"])
    }

    @Test func certificateAndKeyAreRequired() {
        let errors = Self.errors("{ certificate: tls.crt }", files: ["tls.crt"])
        #expect(errors.map(\.key) == ["listen[1].tls"])
        #expect(errors.first?.message.contains("missing key") == true)
    }

    @Test func unknownKeysAreReported() {
        let errors = Self.errors("{ certificate: tls.crt, key: tls.key, cert: x }", files: ["tls.crt", "tls.key"])
        #expect(errors.map(\.key) == ["listen[1].tls.cert"])
    }
}
