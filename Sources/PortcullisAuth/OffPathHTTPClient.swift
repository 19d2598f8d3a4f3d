import AsyncHTTPClient
import Logging
import NIOCore

extension HTTPClient {
    /// The client of every fetch Portcullis makes off the request path (JWK sets, discovery,
    /// upstream tokens): no redirects, no decompression, bounded connect and read.
    static func offPath(
        connectTimeout: TimeAmount,
        readTimeout: TimeAmount,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: HTTPClient.Configuration.Timeout(connect: connectTimeout, read: readTimeout)
        )
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration, backgroundActivityLogger: logger)
    }
}
