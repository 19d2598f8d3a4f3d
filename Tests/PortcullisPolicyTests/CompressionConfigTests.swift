import Testing

@testable import PortcullisPolicy

@Suite struct CompressionConfigTests {
    static func load(_ extra: String) throws(ConfigErrors) -> GatewayConfig {
        try ConfigLoader.load(
            sources: [(file: "gateway.yaml", text: ConfigLoaderTests.minimal + "\n" + extra)],
            directory: "/etc/portcullis"
        )
    }

    static func errors(_ extra: String) -> [ConfigError] {
        do throws(ConfigErrors) {
            _ = try Self.load(extra)
            Issue.record("configuration loaded but was expected to fail")
            return []
        } catch {
            return error.errors
        }
    }

    @Test func offByDefaultWithTheDocumentedDefaults() throws {
        let config = try Self.load("")
        #expect(config.compression == CompressionConfig())
        #expect(!config.compression.enabled)
        #expect(config.compression.minBytes == 1024)
        #expect(config.compression.types == ["text/*", "application/json", "application/javascript", "application/xml", "image/svg+xml"])
    }

    @Test func sectionIsRead() throws {
        let config = try Self.load(
            """
            compression:
              enabled: true
              min_bytes: 200
              types: [Application/JSON, "text/*"]
            """
        )
        #expect(config.compression == CompressionConfig(enabled: true, minBytes: 200, types: ["application/json", "text/*"]))
    }

    @Test func unknownKeyNamesFileLineAndKey() throws {
        let errors = Self.errors("compression:\n  enabled: true\n  level: 9\n")
        #expect(errors.count == 1)
        let error = try #require(errors.first)
        #expect(error.key == "compression.level")
        #expect(error.location?.file == "gateway.yaml")
        #expect(error.location?.line == 7)
    }

    @Test(arguments: ["enabled: maybe", "min_bytes: -1", "types: text/html", "types: [html]", "types: [\"*/*\"]", "types: [text/event-stream]"])
    func badValuesAreRefused(entry: String) {
        let errors = Self.errors("compression:\n  \(entry)\n")
        #expect(errors.count == 1, "\(errors)")
        #expect(errors.first?.key.hasPrefix("compression.") == true, "\(errors)")
    }
}
