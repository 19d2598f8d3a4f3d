import Foundation

/// The `/api/*` endpoints: a small, fixed imitation of CIPP's Function App answers.
enum DemoCIPPAPI {
    /// Request bodies larger than this are answered with 413; the demo only needs small JSON bodies.
    static let maximumBodyBytes = 1 << 20

    static func answer(
        endpoint: String,
        method: String,
        target: DemoRequestTarget,
        body: [UInt8]
    ) -> DemoJSONResponse {
        switch endpoint {
        case "listlogs":
            return DemoJSONResponse(DemoData.logs)
        case "listtenants":
            return DemoJSONResponse(DemoData.tenants.map(DemoData.tenantJSON))
        case "listusers":
            return self.withTenant(target, body) { tenant in
                DemoJSONResponse(DemoData.users(of: tenant).map { DemoData.userJSON($0, tenant) })
            }
        case "listmailboxes":
            return self.withTenant(target, body) { tenant in
                DemoJSONResponse(DemoData.users(of: tenant).map { DemoData.mailboxJSON($0, tenant) })
            }
        case "execresetpass":
            return self.execOnUser(method: method, target: target, body: body) { upn in
                "Successfully reset the password for \(upn). User must change their password at next logon."
            }
        case "execresetmfa":
            return self.execOnUser(method: method, target: target, body: body) { upn in
                "Successfully reset the MFA methods for \(upn)."
            }
        case "$batch":
            return self.batch(method: method, body: body)
        default:
            return .error(404, "Unknown endpoint: /api/\(endpoint)")
        }
    }

    private static func withTenant(
        _ target: DemoRequestTarget,
        _ body: [UInt8],
        _ answer: (DemoData.Tenant) -> DemoJSONResponse
    ) -> DemoJSONResponse {
        let filter = target.queryValue("tenantFilter") ?? self.jsonObject(body)?["tenantFilter"] as? String
        guard let filter, !filter.isEmpty else {
            return .error(400, "tenantFilter is required")
        }
        guard let tenant = DemoData.tenant(matching: filter) else {
            return .error(404, "Tenant not found: \(filter)")
        }
        return answer(tenant)
    }

    private static func execOnUser(
        method: String,
        target: DemoRequestTarget,
        body: [UInt8],
        result: (String) -> String
    ) -> DemoJSONResponse {
        guard method == "POST" else {
            return .error(405, "Use POST with a JSON body {\"tenantFilter\":...,\"ID\":...}")
        }
        guard let fields = self.jsonObject(body) else {
            return .error(400, "The body must be a JSON object")
        }
        let filter = fields["tenantFilter"] as? String ?? target.queryValue("tenantFilter")
        guard let filter, !filter.isEmpty else {
            return .error(400, "tenantFilter is required")
        }
        guard let tenant = DemoData.tenant(matching: filter) else {
            return .error(404, "Tenant not found: \(filter)")
        }
        guard let identifier = fields["ID"] as? String ?? fields["id"] as? String, !identifier.isEmpty else {
            return .error(400, "ID is required")
        }
        guard let user = DemoData.user(identifier, in: tenant) else {
            return .error(404, "User not found in \(tenant.defaultDomainName): \(identifier)")
        }
        return DemoJSONResponse(["Results": result(DemoData.userPrincipalName(user, tenant))])
    }

    /// `{"requests":[{"id","method","url","query"?,"body"?}]}` where `url` names the endpoint.
    private static func batch(method: String, body: [UInt8]) -> DemoJSONResponse {
        guard method == "POST" else {
            return .error(405, "Use POST with a JSON body {\"requests\":[...]}")
        }
        guard let requests = self.jsonObject(body)?["requests"] as? [Any] else {
            return .error(400, "The body must be a JSON object with a \"requests\" array")
        }
        var responses: [Any] = []
        for item in requests {
            guard let request = item as? [String: Any] else {
                return .error(400, "Each batch request must be a JSON object")
            }
            let id: Any = request["id"] ?? NSNull()
            let itemMethod = (request["method"] as? String ?? "GET").uppercased()
            var url = Substring(request["url"] as? String ?? "")
            while url.hasPrefix("/") {
                url = url.dropFirst()
            }
            if url.lowercased().hasPrefix("api/") {
                url = url.dropFirst(4)
            }
            // As CIPP does: the item's query object is its query.
            var query = ""
            if let fields = request["query"] as? [String: Any] {
                var allowed = CharacterSet.alphanumerics
                allowed.insert(charactersIn: "-._~")
                query = fields.keys.sorted().compactMap { key in
                    let value = fields[key] as? String ?? (fields[key] as? [String: Any])?["value"] as? String
                    guard let value else { return nil }
                    return "\(key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
                }.joined(separator: "&")
            }
            let itemTarget = DemoRequestTarget(uri: "/api/" + url + (query.isEmpty ? "" : "?" + query))
            let itemBody = request["body"].map { DemoJSONResponse.encode($0) } ?? []
            let answer: DemoJSONResponse
            if case .api(let endpoint) = DemoRoute(target: itemTarget), endpoint != "$batch" {
                answer = self.answer(endpoint: endpoint, method: itemMethod, target: itemTarget, body: itemBody)
            } else {
                answer = .error(404, "Unknown endpoint in batch: \(url)")
            }
            responses.append(["id": id, "status": answer.status, "body": answer.object])
        }
        return DemoJSONResponse(["responses": responses])
    }

    private static func jsonObject(_ body: [UInt8]) -> [String: Any]? {
        guard !body.isEmpty else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    }
}
