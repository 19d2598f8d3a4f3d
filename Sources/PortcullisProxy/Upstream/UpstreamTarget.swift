import NIOCore
import NIOSSL
import PortcullisPolicy

/// Where and how to connect upstream; built once per configuration load.
struct UpstreamTarget: Sendable {
    var host: String
    var port: Int
    var authority: String
    var connectTimeout: TimeAmount
    var keepaliveTimeout: TimeAmount
    var maxIdleConnections: Int
    /// SO_RCVBUF in bytes; 0 leaves the kernel's autotuning.
    var receiveBuffer: Int
    /// Set for `https://` upstreams: the system CA bundle, or `ca_file` alone.
    var tls: NIOSSLContext?
    /// SNI: the host name, unless the upstream is addressed by IP.
    var serverHostname: String?

    init(_ config: UpstreamConfig) throws {
        self.host = config.host
        self.port = config.port
        self.authority = config.authority
        self.connectTimeout = .nanoseconds(config.connectTimeout.nanoseconds)
        self.keepaliveTimeout = .nanoseconds(config.keepaliveTimeout.nanoseconds)
        self.maxIdleConnections = config.maxIdleConnections
        self.receiveBuffer = config.receiveBuffer
        if config.scheme == .https {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.applicationProtocols = ["http/1.1"]
            if let caFile = config.caFile {
                tls.trustRoots = .file(caFile)
            }
            self.tls = try NIOSSLContext(configuration: tls)
            self.serverHostname = IPAddress(parsing: config.host) == nil ? config.host : nil
        } else {
            self.tls = nil
            self.serverHostname = nil
        }
    }
}
