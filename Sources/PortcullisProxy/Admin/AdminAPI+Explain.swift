import Foundation
import PortcullisPolicy

/// `POST /api/v1/explain`: what the gateway would decide for a request, as `portcullis explain`
/// answers, from the running configuration.
extension AdminAPI {
    /// `{"client", "method", "path", "ip"?, "tenant"?, "body"?}`; the answer is
    /// ``DecisionExplanation/jsonObject`` (200 for an allow and a deny alike).
    func explain(_ body: [UInt8]) -> Response {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            return .error(.badRequest, "invalid_request", "expected a JSON object with client, method and path")
        }
        let known: Set = ["client", "method", "path", "ip", "tenant", "body"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            return .error(.badRequest, "invalid_request", "unknown field '\(unknown)'; expected \(known.sorted().joined(separator: ", "))")
        }
        var text: [String: String] = [:]
        for key in known.sorted() {
            guard let value = object[key], !(value is NSNull) else { continue }
            guard let string = value as? String else { return .error(.badRequest, "invalid_request", "\(key) must be a string") }
            // An empty optional field is left out, as a form sends it.
            if !string.isEmpty { text[key] = string }
        }
        guard let client = text["client"], let method = text["method"], let path = text["path"] else {
            return .error(.badRequest, "invalid_request", "client, method and path are required")
        }
        guard method.utf8.allSatisfy({ (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }), method.utf8.count <= 16 else {
            return .error(.badRequest, "invalid_request", "method must be an HTTP method such as GET")
        }
        let answer = DecisionExplanation.explain(
            config: self.config,
            client: client,
            method: method.uppercased(),
            target: path,
            ip: text["ip"],
            tenant: text["tenant"],
            body: text["body"].map { Array($0.utf8) }
        )
        return .json(.ok, answer.jsonObject)
    }
}
