import PortcullisAuth
import PortcullisPolicy

/// The access log's `reason`: why an exchange ended as it did (README, "Access log"). The
/// gateway's own outcomes are cases; the codes of the authenticator and of the built-in
/// issuer's endpoints are theirs, carried as they give them.
enum AccessLogReason: Hashable, Sendable {
    case allowed
    // The policy (`RequestDecision.Reason`).
    case roleDenied
    case denyRule
    case tenantRequired
    case tenantDenied
    case tenantUnknown
    case tenantConflict
    case endpointWildcard
    case batchInvalid
    case ipNotAllowed
    // The client's limits and the backend's.
    case rateLimited
    case quotaExceeded
    case concurrencyLimited
    case backendBusy
    // Requests the gateway cannot take.
    case badRequest
    case pathFirewall(PathFirewall.Violation)
    case headerTooLarge
    case tooManyHeaders
    case bodyTooLarge
    case expectationFailed
    case methodNotAllowed
    /// 401: an `AuthFailure` code (`missing_token`, `token_expired`, `unknown_client`, ...).
    case unauthenticated(String)
    /// The built-in issuer answered: its key set, or a token endpoint's code (`token_issued`, ...).
    case jwks
    case tokenEndpoint(String)
    // The exchange failed or was cut.
    case clientTimeout
    case clientClosed
    case connectionError
    case sendTimeout
    case upstreamUnavailable
    case upstreamError
    case upstreamTimeout
    case upstreamAborted
    case upstreamCredentialUnavailable
    case draining
    case shutdown

    init(_ reason: RequestDecision.Reason) {
        switch reason {
        case .allowed: self = .allowed
        case .roleDenied: self = .roleDenied
        case .denyRule: self = .denyRule
        case .tenantRequired: self = .tenantRequired
        case .tenantDenied: self = .tenantDenied
        case .tenantUnknown: self = .tenantUnknown
        case .tenantConflict: self = .tenantConflict
        case .endpointWildcard: self = .endpointWildcard
        case .batchInvalid: self = .batchInvalid
        case .badRequest: self = .badRequest
        }
    }

    init(_ refusal: ClientLimiter.Refusal) {
        switch refusal {
        case .rate: self = .rateLimited
        case .quota: self = .quotaExceeded
        case .concurrency: self = .concurrencyLimited
        }
    }

    /// The upstream (or its credential) failed an exchange the gateway allowed: not a denial.
    var isUpstreamFailure: Bool {
        switch self {
        case .upstreamUnavailable, .upstreamError, .upstreamTimeout, .upstreamAborted, .upstreamCredentialUnavailable:
            return true
        default:
            return false
        }
    }

    /// The code as written to the access log and the metrics' `reason` label.
    var code: String {
        switch self {
        case .allowed: return "allowed"
        case .roleDenied: return "role_denied"
        case .denyRule: return "deny_rule"
        case .tenantRequired: return "tenant_required"
        case .tenantDenied: return "tenant_denied"
        case .tenantUnknown: return "tenant_unknown"
        case .tenantConflict: return "tenant_conflict"
        case .endpointWildcard: return "endpoint_wildcard"
        case .batchInvalid: return "batch_invalid"
        case .ipNotAllowed: return "ip_not_allowed"
        case .rateLimited: return "rate_limited"
        case .quotaExceeded: return "quota_exceeded"
        case .concurrencyLimited: return "concurrency_limited"
        case .backendBusy: return "backend_busy"
        case .badRequest: return "bad_request"
        case .pathFirewall(let violation): return violation.reason
        case .headerTooLarge: return "header_too_large"
        case .tooManyHeaders: return "too_many_headers"
        case .bodyTooLarge: return "body_too_large"
        case .expectationFailed: return "expectation_failed"
        case .methodNotAllowed: return "method_not_allowed"
        case .unauthenticated(let code): return code
        case .jwks: return "jwks"
        case .tokenEndpoint(let code): return code
        case .clientTimeout: return "client_timeout"
        case .clientClosed: return "client_closed"
        case .connectionError: return "connection_error"
        case .sendTimeout: return "send_timeout"
        case .upstreamUnavailable: return "upstream_unavailable"
        case .upstreamError: return "upstream_error"
        case .upstreamTimeout: return "upstream_timeout"
        case .upstreamAborted: return "upstream_aborted"
        case .upstreamCredentialUnavailable: return "upstream_credential_unavailable"
        case .draining: return "draining"
        case .shutdown: return "shutdown"
        }
    }
}
