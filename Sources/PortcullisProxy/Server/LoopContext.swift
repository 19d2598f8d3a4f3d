import NIOCore
import PortcullisPolicy

/// The settings of one configuration load that the request path reads, as an immutable value.
struct ProxySettings: Sendable {
    var upstream: UpstreamTarget
    var exchangeTimeout: TimeAmount
    var clientHeaderTimeout: TimeAmount
    var idleTimeout: TimeAmount
    var trustedProxies: CIDRSet

    init(_ config: GatewayConfig) throws {
        self.upstream = try UpstreamTarget(config.upstream)
        self.exchangeTimeout = .nanoseconds(config.upstream.timeout.nanoseconds)
        self.clientHeaderTimeout = .nanoseconds(config.limits.clientHeaderTimeout.nanoseconds)
        self.idleTimeout = .nanoseconds(config.limits.idleTimeout.nanoseconds)
        self.trustedProxies = config.trustedProxies
    }
}

/// Per-event-loop state shared by the connections of that loop: the upstream pool, the
/// request-id generator and the current settings. Touched only on its loop, so no locks.
final class LoopContext {
    let eventLoop: EventLoop
    private(set) var settings: ProxySettings
    let pool: UpstreamPool
    var requestIDs = RequestIDGenerator()
    var isDraining = false

    init(eventLoop: EventLoop, settings: ProxySettings) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.pool = UpstreamPool(eventLoop: eventLoop, target: settings.upstream)
    }

    /// A new configuration: requests in flight keep the settings they started with.
    func update(_ settings: ProxySettings) {
        self.settings = settings
        self.pool.update(target: settings.upstream)
    }
}

@available(*, unavailable)
extension LoopContext: Sendable {}
