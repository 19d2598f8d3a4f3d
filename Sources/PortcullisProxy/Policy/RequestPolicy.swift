import NIOCore
import NIOHTTP1
import PortcullisAuth
import PortcullisPolicy

/// The policy step of the request path, after the client record (DESIGN.md): the client's
/// address allowlist (403 `ip_not_allowed`), then `RequestDecision`, the decision that
/// `portcullis explain` makes too. Pure: the connection handler carries the verdict out.
enum RequestPolicy {
    /// What the access log records of a decision: a stable `reason` code, the deciding rule
    /// (an index into `AccessPolicy.rules`) and the tenant the request named.
    struct Outcome {
        var reason: AccessLogReason
        var rule: Int? = nil
        var tenant: String? = nil
        /// What the request counts as against the client's rate and quota.
        var cost = 1

        init(reason: AccessLogReason, rule: Int? = nil, tenant: String? = nil) {
            self.reason = reason
            self.rule = rule
            self.tenant = tenant
        }

        init(_ outcome: RequestDecision.Outcome) {
            self.init(reason: AccessLogReason(outcome.reason), rule: outcome.rule, tenant: outcome.tenant)
            self.cost = outcome.cost
        }
    }

    enum Verdict {
        case allow(Outcome)
        case deny(ErrorResponse, Outcome)
        /// The decision needs the body: read it (at most `max_inspect_body` bytes, else 413),
        /// then call `decide(body:...)`; the bytes are forwarded unchanged if it allows.
        case readBody(RequestDecision.BodyCheck)
    }

    struct Request {
        var client: ClientRecord
        var address: IPAddress
        var method: HTTPMethod
        var target: CanonicalTarget
        var hasBody: Bool

        var input: RequestDecision.Input {
            RequestDecision.Input(
                client: self.client.policyIndex,
                method: self.method.rawValue,
                path: self.target.path,
                query: self.target.query,
                hasBody: self.hasBody
            )
        }
    }

    /// `directory` is read only under `profile: cipp`.
    static func decide(_ request: Request, settings: ProxySettings, directory: @autoclosure () -> TenantDirectory?) -> Verdict {
        // Read in place: binding the set would copy it out of the record (three retains).
        if request.client.allowedIPs?.contains(request.address) == false {
            return .deny(.ipNotAllowed, Outcome(reason: .ipNotAllowed))
        }
        guard let profile = settings.cipp else {
            let client = request.client.policyIndex
            return Self.verdict(RequestDecision.decideRoute(client: client, method: request.method.rawValue, path: request.target.path, policy: settings.policy))
        }
        let cipp = RequestDecision.CIPP(directory: directory(), maxBatchItems: profile.maxBatchItems)
        return Self.verdict(RequestDecision.decide(request.input, policy: settings.policy, cipp: cipp))
    }

    /// The decision once the body is here.
    static func decide(
        _ request: Request,
        body: ByteBuffer,
        check: RequestDecision.BodyCheck,
        settings: ProxySettings,
        directory: TenantDirectory?
    ) -> Verdict {
        guard let profile = settings.cipp else {
            return .deny(.badRequest("the request cannot be decided"), Outcome(reason: .badRequest))
        }
        let cipp = RequestDecision.CIPP(directory: directory, maxBatchItems: profile.maxBatchItems)
        return Self.verdict(
            RequestDecision.decide(request.input, body: body.readableBytesView, check: check, policy: settings.policy, cipp: cipp)
        )
    }

    private static func verdict(_ verdict: RequestDecision.Verdict) -> Verdict {
        switch verdict {
        case .allow(let outcome):
            return .allow(Outcome(outcome))
        case .deny(.forbidden(let why), let outcome):
            return .deny(.insufficientScope(why), Outcome(outcome))
        case .deny(.badRequest(let why), let outcome):
            return .deny(.badRequest(why), Outcome(outcome))
        case .needsBody(let check):
            return .readBody(check)
        }
    }
}
