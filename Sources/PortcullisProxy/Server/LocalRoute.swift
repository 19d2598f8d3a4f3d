/// The built-in issuer's paths, served by the gateway itself when a built-in issuer is
/// configured (DESIGN.md: local routes come before the bearer token).
enum LocalRoute: Equatable {
    case token
    case revoke
    case jwks

    /// A token request's form body is small; more is refused with 413.
    static let maxBody = 16 * 1024

    init?(path: Substring) {
        switch path {
        case "/oauth/token": self = .token
        case "/oauth/revoke": self = .revoke
        case "/.well-known/jwks.json": self = .jwks
        default: return nil
        }
    }
}
