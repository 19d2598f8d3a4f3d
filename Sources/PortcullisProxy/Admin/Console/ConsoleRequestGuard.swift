import NIOHTTP1

/// What the console checks before a request made with its session cookie is served, and the
/// headers every console response carries. Pure: the request head in, a verdict out.
enum ConsoleRequestGuard {
    static let cookieName = "portcullis_console"
    static let csrfHeader = "x-csrf-token"

    /// No inline script or style, nothing from elsewhere, never framed.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    static let securityHeaders: [(String, String)] = [
        ("Content-Security-Policy", Self.contentSecurityPolicy),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
        ("Cache-Control", "no-store"),
    ]

    enum Verdict: Equatable {
        case allowed
        /// Refused with 403 and this reason.
        case crossSite(String)
        /// A mutating call without the session's CSRF token (403).
        case badCSRF
    }

    /// The listener's own origin as the browser sees it: the scheme and the Host header.
    static func ownOrigin(_ headers: HTTPHeaders, tls: Bool) -> String? {
        let hosts = headers[canonicalForm: "host"]
        guard hosts.count == 1, !hosts[0].isEmpty else { return nil }
        return (tls ? "https://" : "http://") + hosts[0].lowercased()
    }

    static func isMutating(_ method: HTTPMethod) -> Bool {
        !(method == .GET || method == .HEAD || method == .OPTIONS)
    }

    /// Whether the request comes from the console's own pages: `Sec-Fetch-Site`, when sent, is
    /// `same-origin` (or `none`, typed by the user, for a read); `Origin`, when sent, is the
    /// listener's own; a mutating request must send at least one of them (every browser does).
    static func checkOrigin(method: HTTPMethod, headers: HTTPHeaders, tls: Bool) -> Verdict {
        let fetchSites = headers[canonicalForm: "sec-fetch-site"]
        if fetchSites.count > 1 { return .crossSite("more than one Sec-Fetch-Site") }
        if let site = fetchSites.first.map({ $0.lowercased() }) {
            let acceptable = Self.isMutating(method) ? site == "same-origin" : site == "same-origin" || site == "none"
            if !acceptable { return .crossSite("Sec-Fetch-Site: \(site)") }
        }
        let origins = headers[canonicalForm: "origin"]
        if origins.count > 1 { return .crossSite("more than one Origin") }
        if let origin = origins.first {
            guard let own = Self.ownOrigin(headers, tls: tls), origin.lowercased() == own else {
                return .crossSite("Origin \(origin) is not this listener's")
            }
        } else if Self.isMutating(method) && fetchSites.isEmpty {
            return .crossSite("a change needs Origin or Sec-Fetch-Site")
        }
        return .allowed
    }

    /// The origin checks, then for a mutating request the session's CSRF token in `X-CSRF-Token`.
    static func check(method: HTTPMethod, headers: HTTPHeaders, tls: Bool, csrfToken: String) -> Verdict {
        let origin = Self.checkOrigin(method: method, headers: headers, tls: tls)
        guard origin == .allowed, Self.isMutating(method) else { return origin }
        let presented = headers[canonicalForm: Self.csrfHeader]
        guard presented.count == 1, ConsoleSessions.constantTimeEquals(String(presented[0]), csrfToken) else { return .badCSRF }
        return .allowed
    }

    /// The session cookie's value; nil when absent or sent more than once.
    static func sessionID(_ headers: HTTPHeaders) -> String? {
        var found: [Substring] = []
        for header in headers[canonicalForm: "cookie"] {
            for pair in header.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " }
                guard let equals = trimmed.firstIndex(of: "="), trimmed[..<equals] == Self.cookieName else { continue }
                found.append(trimmed[trimmed.index(after: equals)...])
            }
        }
        return found.count == 1 ? String(found[0]) : nil
    }

    /// `Set-Cookie` for a new session (or, with `id` nil, one that clears it).
    static func setCookie(id: String?, maxAgeSeconds: Int64, tls: Bool) -> String {
        var cookie = "\(Self.cookieName)=\(id ?? ""); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(id == nil ? 0 : maxAgeSeconds)"
        if tls { cookie += "; Secure" }
        return cookie
    }
}
