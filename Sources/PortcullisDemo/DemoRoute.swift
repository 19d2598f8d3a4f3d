/// What the demo backend does with one request, decided from its head alone.
enum DemoRoute {
    /// A CIPP-style endpoint: the lower-cased name after `/api/`, e.g. `listusers`.
    case api(endpoint: String)
    case index
    case echo
    case slow(milliseconds: Int64)
    case slowBody(milliseconds: Int64)
    case stream(bytes: Int64, framing: DemoStreamFraming)
    case upload
    case close
    case reset
    case hang
    case stats
    case statsReset
    case notFound

    /// The longest delay `slow` and `slowbody` accept: the proxy's default exchange timeout.
    static let maximumDelayMilliseconds: Int64 = 600_000

    init(target: DemoRequestTarget) {
        let path = target.path
        if path.hasPrefix("/api/") {
            let endpoint = path.dropFirst("/api/".count)
            self = endpoint.isEmpty || endpoint.contains("/") ? .notFound : .api(endpoint: String(endpoint))
            return
        }
        if path == "/demo/echo" || path.hasPrefix("/demo/echo/") {
            self = .echo
            return
        }
        switch path {
        case "/", "/demo":
            self = .index
        case "/demo/slow":
            self = .slow(milliseconds: Self.delay(target))
        case "/demo/slowbody":
            self = .slowBody(milliseconds: Self.delay(target))
        case "/demo/stream":
            let bytes = Int64(target.queryValue("bytes") ?? "") ?? 1_048_576
            let framing: DemoStreamFraming
            if target.queryFlag("eof") {
                framing = .endOfFile
            } else if target.queryFlag("chunked") {
                framing = .chunked
            } else {
                framing = .contentLength
            }
            self = .stream(bytes: max(0, bytes), framing: framing)
        case "/demo/upload":
            self = .upload
        case "/demo/close":
            self = .close
        case "/demo/reset":
            self = .reset
        case "/demo/hang":
            self = .hang
        case "/demo/stats":
            self = .stats
        case "/demo/stats/reset":
            self = .statsReset
        default:
            self = .notFound
        }
    }

    /// Whether the request body is kept (bounded) for the route to look inside.
    var collectsBody: Bool {
        if case .api = self { return true }
        return false
    }

    private static func delay(_ target: DemoRequestTarget) -> Int64 {
        let requested = Int64(target.queryValue("ms") ?? "") ?? 2000
        return min(max(0, requested), Self.maximumDelayMilliseconds)
    }
}

/// How `/demo/stream` delimits its body.
enum DemoStreamFraming {
    case contentLength
    case chunked
    /// Neither header: the body ends when the connection closes.
    case endOfFile
}
