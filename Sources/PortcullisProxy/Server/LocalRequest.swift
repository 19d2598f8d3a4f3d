import NIOCore
import PortcullisAuth

/// A token or revocation request whose form body is being read.
final class LocalRequest {
    let route: LocalRoute
    let service: TokenService
    let request: TokenService.Request
    var body: ByteBuffer

    init(route: LocalRoute, service: TokenService, request: TokenService.Request, body: ByteBuffer) {
        self.route = route
        self.service = service
        self.request = request
        self.body = body
    }
}
