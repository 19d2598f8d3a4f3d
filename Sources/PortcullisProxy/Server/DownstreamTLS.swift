import Atomics
import Foundation
import Logging
import NIOSSL
import PortcullisPolicy

/// The TLS side of a `listen[].tls` listener: the server context built from its files, and the
/// slot each accepted connection reads it from.
enum DownstreamTLS {
    /// Reads and parses the PEM files of `config` and builds the server context: TLS 1.2 and 1.3,
    /// ALPN `http/1.1`, and with `client_ca` a client certificate signed by it required.
    /// Errors name the file's place in the config and its key.
    static func makeContext(_ config: ListenerTLSConfig) throws -> NIOSSLContext {
        func fail(_ key: String, _ location: SourceLocation?, _ message: String, line: UInt = #line) -> GatewayError {
            let place = location.map { "\($0): " } ?? ""
            return GatewayError(.invalidSetting, reason: "\(place)\(config.keyPath).\(key): \(message)", line: line)
        }
        func read(_ path: String, _ key: String, _ location: SourceLocation?) throws -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw fail(key, location, "cannot read \(path)")
            }
            return Array(data)
        }
        func certificates(_ path: String, _ key: String, _ location: SourceLocation?) throws -> [NIOSSLCertificate] {
            let bytes = try read(path, key, location)
            let chain: [NIOSSLCertificate]
            do {
                chain = try NIOSSLCertificate.fromPEMBytes(bytes)
            } catch {
                throw fail(key, location, "\(path) is not a PEM certificate file (\(error))")
            }
            guard !chain.isEmpty else { throw fail(key, location, "\(path) holds no PEM certificate") }
            return chain
        }

        let chain = try certificates(config.certificateFile, "certificate", config.certificateLocation)
        let keyBytes = try read(config.keyFile, "key", config.keyLocation)
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw fail("key", config.keyLocation, "\(config.keyFile) is not a PEM private key (\(error))")
        }

        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        tls.minimumTLSVersion = .tlsv12
        tls.maximumTLSVersion = .tlsv13
        tls.applicationProtocols = ["http/1.1"]
        if let caFile = config.clientCAFile {
            let roots = try certificates(caFile, "client_ca", config.clientCALocation)
            tls.certificateVerification = .noHostnameVerification
            tls.trustRoots = .certificates(roots)
        }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch NIOSSLError.failedToLoadPrivateKey {
            // BoringSSL checks the key against the leaf certificate when both are set.
            throw fail(
                "certificate",
                config.certificateLocation,
                "the key in \(config.keyFile) does not match the certificate in \(config.certificateFile)"
            )
        } catch {
            throw fail("certificate", config.certificateLocation, "cannot build a TLS context from \(config.certificateFile) and \(config.keyFile): \(error)")
        }
    }

    /// One immutable context, swappable as a whole.
    final class ContextBox: AtomicReference, Sendable {
        let context: NIOSSLContext
        init(_ context: NIOSSLContext) { self.context = context }
    }

    /// The context of one TLS listener. Accepts read it with one atomic load, once per
    /// connection, which then keeps it; a reload stores a new box for the connections after it.
    /// A `ManagedAtomic` rather than a lock: every event loop's accepts read it and only a reload
    /// writes it, so a reader never waits on the reload or on another loop.
    final class Slot: Sendable {
        let address: HostPort
        private let current: ManagedAtomic<ContextBox>

        init(address: HostPort, context: NIOSSLContext) {
            self.address = address
            self.current = ManagedAtomic(ContextBox(context))
        }

        var context: NIOSSLContext { self.current.load(ordering: .acquiring).context }

        func replace(with context: NIOSSLContext) {
            self.current.store(ContextBox(context), ordering: .releasing)
        }
    }
}

extension DownstreamTLS {
    /// The new context of every running TLS listener, from `config`'s files. A listener is the
    /// same one when its address is; turning TLS on or off on a bound listener needs a restart,
    /// so that is logged and the listener keeps what it has.
    static func reloadedContexts(
        _ config: GatewayConfig,
        slots: [Slot],
        logger: Logger
    ) throws -> [(Slot, NIOSSLContext)] {
        var result: [(Slot, NIOSSLContext)] = []
        for slot in slots {
            guard let listener = config.listeners.first(where: { $0.address == slot.address }), let tls = listener.tls
            else {
                logger.warning(
                    "listener \(slot.address) no longer has tls: in the config; it keeps serving TLS until a restart"
                )
                continue
            }
            result.append((slot, try Self.makeContext(tls)))
        }
        for listener in config.listeners where listener.tls != nil && !slots.contains(where: { $0.address == listener.address }) {
            logger.warning("listener \(listener.address) has tls: now; a bound plain listener starts TLS only after a restart")
        }
        return result
    }
}

extension GatewayServer {
    /// Builds the TLS context of every `listen[].tls` listener as `start` does, so `check` finds
    /// what the loader cannot (it has no TLS library): PEM that does not parse, a key that does
    /// not match its certificate. One message per listener that fails, with file:line and key.
    public static func listenerTLSErrors(_ config: GatewayConfig) -> [String] {
        config.listeners.compactMap { listener in
            guard let tls = listener.tls else { return nil }
            do {
                _ = try DownstreamTLS.makeContext(tls)
                return nil
            } catch {
                return "\(error)"
            }
        }
    }
}
