import Foundation

/// The JSON of `portcullis store export` and `import`: every part of a ``Registry``.
public enum RegistryDocument {
    static let format = "portcullis-store/1"

    private struct Document: Codable {
        var format: String
        var clients: [StoredClient]
        var overrides: [String: ClientOverride]
        var revocations: [String: Int64]
        var lastUsed: [String: Int64]
        var lastRedeemed: [String: Int64]

        enum CodingKeys: String, CodingKey {
            case format, clients, overrides, revocations
            case lastUsed = "last_used"
            case lastRedeemed = "last_redeemed"
        }
    }

    public static func encode(_ registry: Registry) throws -> Data {
        let document = Document(
            format: Self.format,
            clients: registry.clients.values.sorted { $0.id < $1.id },
            overrides: registry.overrides,
            revocations: registry.revocations,
            lastUsed: registry.lastUsed,
            lastRedeemed: registry.lastRedeemed
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(document) + Data("\n".utf8)
    }

    public static func decode(_ data: Data) throws -> Registry {
        let document = try JSONDecoder().decode(Document.self, from: data)
        guard document.format == Self.format else {
            throw StoreError(.invalid, reason: "not a Portcullis store export (format \(document.format), expected \(Self.format))")
        }
        var registry = Registry(overrides: document.overrides, revocations: document.revocations, lastRedeemed: document.lastRedeemed, lastUsed: document.lastUsed)
        for client in document.clients { registry.clients[client.id] = client }
        return registry
    }
}
