import Foundation

/// `listen[].tls`: the certificate chain and key a listener serves, and optionally the CA that
/// must have signed every client's certificate. Paths are resolved against the config file's
/// directory and are readable when the config loads; their contents are parsed by the proxy
/// when it builds the TLS context (at start and on every reload).
public struct ListenerTLSConfig: Sendable, Equatable {
    /// PEM: the server certificate first, then any intermediates.
    public var certificateFile: String
    /// PEM private key matching the certificate.
    public var keyFile: String
    /// PEM CA certificates; when set, clients must present a certificate one of them signed.
    public var clientCAFile: String?
    /// The key path of this section, e.g. `listen[1].tls`.
    public var keyPath: String
    public var certificateLocation: SourceLocation?
    public var keyLocation: SourceLocation?
    public var clientCALocation: SourceLocation?

    public init(
        certificateFile: String,
        keyFile: String,
        clientCAFile: String? = nil,
        keyPath: String = "listen[0].tls",
        certificateLocation: SourceLocation? = nil,
        keyLocation: SourceLocation? = nil,
        clientCALocation: SourceLocation? = nil
    ) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.clientCAFile = clientCAFile
        self.keyPath = keyPath
        self.certificateLocation = certificateLocation
        self.keyLocation = keyLocation
        self.clientCALocation = clientCALocation
    }
}

extension ConfigLoader {
    static func listenerTLS(_ node: ConfigNode, _ errors: inout [ConfigError]) -> ListenerTLSConfig? {
        guard let entries = node.mapping(&errors) else { return nil }
        node.checkKeys(entries, known: ["certificate", "key", "client_ca"], &errors)
        func file(_ key: String, _ what: String) -> (path: String, location: SourceLocation?)? {
            guard let value = entries.first(where: { $0.key == key })?.value else { return nil }
            guard let path = value.string(&errors) else { return nil }
            guard !path.isEmpty else {
                errors.append(value.error("expected the path of a PEM file holding \(what)"))
                return nil
            }
            let resolved = Self.resolve(path, relativeTo: value.file)
            if !FileManager.default.isReadableFile(atPath: resolved) {
                errors.append(value.error("cannot read \(resolved) (expected a PEM file holding \(what))"))
                return nil
            }
            return (resolved, value.location)
        }
        let certificate = file("certificate", "the server certificate chain")
        let key = file("key", "the certificate's private key")
        let clientCA = file("client_ca", "the CA certificates that sign client certificates")
        for required in ["certificate", "key"] where !entries.contains(where: { $0.key == required }) {
            errors.append(node.error("missing \(required), e.g. tls: { certificate: tls.crt, key: tls.key }"))
        }
        guard let certificate, let key else { return nil }
        if entries.contains(where: { $0.key == "client_ca" }) && clientCA == nil { return nil }
        return ListenerTLSConfig(
            certificateFile: certificate.path,
            keyFile: key.path,
            clientCAFile: clientCA?.path,
            keyPath: node.keyPath,
            certificateLocation: certificate.location,
            keyLocation: key.location,
            clientCALocation: clientCA?.location
        )
    }
}
