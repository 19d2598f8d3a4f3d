import Foundation

extension ConfigLoader {
    static let issuerKeys = [
        "name", "issuer", "audiences", "jwks_url", "jwks_file", "discovery", "algorithms", "client_claim", "leeway",
        "jwks_refresh", "builtin", "signing_key_file", "token_lifetime",
    ]
    static let clientKeys = [
        "id", "name", "enabled", "issuer", "roles", "allowed_ips", "secret_sha256", "token_lifetime",
    ]

    static func issuers(_ node: ConfigNode, _ errors: inout [ConfigError]) -> [IssuerConfig] {
        guard let items = node.sequence(&errors) else { return [] }
        var result: [IssuerConfig] = []
        for item in items {
            guard let entries = item.mapping(&errors) else { continue }
            item.checkKeys(entries, known: Self.issuerKeys, &errors)
            if let issuer = Self.issuer(item, entries, &errors) {
                if let other = result.first(where: { $0.name == issuer.name }) {
                    let at = other.location.map { " (first at line \($0.line))" } ?? ""
                    errors.append(item.error("issuer name '\(issuer.name)' is used twice\(at)"))
                } else if !issuer.builtin, let other = result.first(where: { !$0.builtin && $0.issuer == issuer.issuer }) {
                    errors.append(item.error("issuer '\(issuer.issuer)' is configured twice (also '\(other.name)'): a token's iss must pick one"))
                } else {
                    result.append(issuer)
                }
            }
        }
        return result
    }

    private static func issuer(_ item: ConfigNode, _ entries: [ConfigNode.Entry], _ errors: inout [ConfigError]) -> IssuerConfig? {
        func value(_ key: String) -> ConfigNode? { entries.first { $0.key == key }?.value }
        let errorCount = errors.count
        guard let nameNode = value("name") else {
            errors.append(item.error("missing name (what clients[].issuer refers to)"))
            return nil
        }
        guard let name = nameNode.string(&errors) else { return nil }
        if name.isEmpty { errors.append(nameNode.error("expected a non-empty name")) }

        var builtin = false
        if let node = value("builtin"), let flag = node.bool(&errors) { builtin = flag }
        if builtin {
            // The built-in issuer (POST /oauth/token) comes with issue 6; its keys are its own.
            for key in ["jwks_url", "jwks_file", "discovery", "audiences", "algorithms"] {
                if let node = value(key) { errors.append(node.error("\(key) does not apply to the built-in issuer")) }
            }
            guard errors.count == errorCount else { return nil }
            return IssuerConfig(name: name, issuer: "", audiences: [], keySource: nil, algorithms: [], builtin: true, location: item.location)
        }
        for key in ["signing_key_file", "token_lifetime"] {
            if let node = value(key) { errors.append(node.error("\(key) applies only to the built-in issuer (builtin: true)")) }
        }

        var issuerText = ""
        if let node = value("issuer") {
            if let text = node.string(&errors) {
                if text.isEmpty { errors.append(node.error("expected the exact iss of the tokens, e.g. \"https://sts.windows.net/TENANT/\"")) }
                issuerText = text
            }
        } else {
            errors.append(item.error("missing issuer (the exact iss of the tokens)"))
        }

        var audiences: [String] = []
        if let node = value("audiences") {
            audiences = Self.stringList(node, &errors)
            if audiences.isEmpty { errors.append(node.error("expected at least one audience")) }
        } else {
            errors.append(item.error("missing audiences (a token's aud must contain one of them)"))
        }

        var algorithms: [String] = []
        if let node = value("algorithms") {
            guard let list = node.sequence(&errors) else { return nil }
            for element in list {
                guard let text = element.string(&errors) else { continue }
                if IssuerConfig.supportedAlgorithms.contains(text) {
                    if !algorithms.contains(text) { algorithms.append(text) }
                } else if text.lowercased() == "none" {
                    errors.append(element.error("'none' is not an algorithm: unsigned tokens are never accepted"))
                } else if text.hasPrefix("HS") {
                    errors.append(element.error("\(text) needs a secret shared with the IdP; expected one of \(IssuerConfig.supportedAlgorithms.joined(separator: ", "))"))
                } else {
                    errors.append(element.error("unknown algorithm '\(text)'; expected one of \(IssuerConfig.supportedAlgorithms.joined(separator: ", "))"))
                }
            }
            if list.isEmpty { errors.append(node.error("expected at least one algorithm, e.g. [RS256]")) }
        } else {
            errors.append(item.error("missing algorithms: pin them, e.g. [RS256] (the token header never chooses)"))
        }

        var keySource: IssuerConfig.KeySource?
        var sources = 0
        if let node = value("jwks_file"), let path = node.string(&errors) {
            sources += 1
            let resolved = Self.resolve(path, relativeTo: node.file)
            if !FileManager.default.isReadableFile(atPath: resolved) {
                errors.append(node.error("cannot read the JWK Set file \(resolved)"))
            }
            keySource = .file(resolved)
        }
        if let node = value("jwks_url"), let url = node.string(&errors) {
            sources += 1
            if let problem = Self.keyURLProblem(url) { errors.append(node.error(problem)) }
            keySource = .url(url)
        }
        if let node = value("discovery"), let flag = node.bool(&errors), flag {
            sources += 1
            if let problem = Self.keyURLProblem(issuerText) {
                errors.append(node.error("discovery fetches issuer + /.well-known/openid-configuration: \(problem)"))
            }
            keySource = .discovery
        }
        if sources == 0 {
            errors.append(item.error("missing keys: give jwks_url, jwks_file, or discovery: true"))
        } else if sources > 1 {
            errors.append(item.error("give only one of jwks_url, jwks_file and discovery: true"))
        }

        var config = IssuerConfig(
            name: name,
            issuer: issuerText,
            audiences: audiences,
            keySource: keySource,
            algorithms: algorithms,
            location: item.location
        )
        if let node = value("client_claim"), let claim = node.string(&errors) {
            if claim.isEmpty { errors.append(node.error("expected a claim name such as appid, azp, client_id or sub")) }
            config.clientClaim = claim
        }
        if let node = value("leeway"), let leeway = node.duration(&errors) {
            if leeway > .minutes(10) { errors.append(node.error("leeway above 10m would accept long-expired tokens")) }
            config.leeway = leeway
        }
        if let node = value("jwks_refresh"), let refresh = node.duration(&errors) {
            if refresh < .seconds(30) { errors.append(node.error("expected at least 30s")) }
            config.jwksRefresh = refresh
        }
        return errors.count == errorCount ? config : nil
    }

    /// Keys are fetched over https; plain http only from this machine (tests, a local IdP).
    static func keyURLProblem(_ url: String) -> String? {
        let authority = url.drop { $0 != "/" }.dropFirst(2).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if authority.contains("@") {
            return "a key URL must not carry user info (user@host): the host would be ambiguous"
        }
        if url.hasPrefix("https://") {
            return url.count > 8 ? nil : "expected an https:// URL"
        }
        if url.hasPrefix("http://") {
            let rest = url.dropFirst(7)
            let host = rest.hasPrefix("[") ? String(rest.prefix { $0 != "]" }.dropFirst()) : String(rest.prefix { $0 != ":" && $0 != "/" })
            if host == "localhost" || IPAddress(parsing: host).map(Self.isLoopback) == true {
                return nil
            }
            return "keys must be fetched over https:// (plain http is allowed only for loopback addresses)"
        }
        return "expected an https:// URL"
    }

    private static func isLoopback(_ address: IPAddress) -> Bool {
        switch address.unmappedIPv4 {
        case .v4(let value): return value >> 24 == 127
        case .v6(let high, let low): return high == 0 && low == 1
        }
    }

    static func clients(
        _ node: ConfigNode,
        issuers: [IssuerConfig],
        roleNames: [String],
        _ errors: inout [ConfigError]
    ) -> [ClientConfig] {
        guard let items = node.sequence(&errors) else { return [] }
        var result: [ClientConfig] = []
        for item in items {
            guard let entries = item.mapping(&errors) else { continue }
            item.checkKeys(entries, known: Self.clientKeys, &errors)
            func value(_ key: String) -> ConfigNode? { entries.first { $0.key == key }?.value }
            let errorCount = errors.count
            guard let idNode = value("id") else {
                errors.append(item.error("missing id (the client id its tokens carry)"))
                continue
            }
            guard let id = idNode.string(&errors) else { continue }
            if id.isEmpty || id.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
                errors.append(idNode.error("expected a non-empty client id without spaces or control characters"))
            }
            if let other = result.first(where: { $0.id == id }) {
                let at = other.location.map { " (first at line \($0.line))" } ?? ""
                errors.append(idNode.error("client id '\(id)' is used twice\(at)"))
            }
            var issuerName = ""
            if let node = value("issuer"), let text = node.string(&errors) {
                issuerName = text
                if !issuers.contains(where: { $0.name == text }) {
                    let known = issuers.map(\.name)
                    let hint = known.isEmpty ? "no issuers are configured" : "configured: \(known.joined(separator: ", "))"
                    errors.append(node.error("unknown issuer '\(text)' (\(hint))"))
                }
            } else if value("issuer") == nil {
                errors.append(item.error("missing issuer (the issuers[].name whose tokens name this client)"))
            }
            var client = ClientConfig(id: id, name: id, issuer: issuerName, location: item.location)
            if let node = value("name"), let name = node.string(&errors) {
                // Sent upstream as X-Portcullis-Client-Name: one header line.
                if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                    errors.append(node.error("a client name must not contain control characters"))
                }
                client.name = name
            }
            if let node = value("enabled"), let enabled = node.bool(&errors) { client.enabled = enabled }
            if let node = value("roles") {
                client.roles = Self.clientRoles(node, roleNames: roleNames, &errors)
            }
            if let node = value("allowed_ips") {
                // Absent: any address. An empty list: none.
                client.allowedIPs = Self.cidrList(node, &errors)
            }
            if errors.count == errorCount { result.append(client) }
        }
        return result
    }

    /// `clients[].roles`: one or more names of `roles:` entries.
    private static func clientRoles(_ node: ConfigNode, roleNames: [String], _ errors: inout [ConfigError]) -> [String] {
        guard let items = node.sequence(&errors) else { return [] }
        if items.isEmpty { errors.append(node.error("expected at least one role name (a client without roles may call nothing)")) }
        var names: [String] = []
        for item in items {
            guard let name = item.string(&errors) else { continue }
            guard roleNames.contains(name) else {
                let hint = roleNames.isEmpty ? "no roles are configured" : "roles: \(roleNames.joined(separator: ", "))"
                errors.append(item.error("unknown role '\(name)'\(ConfigNode.suggestion(for: name, among: roleNames)) (\(hint))"))
                continue
            }
            if !names.contains(name) { names.append(name) }
        }
        if names.count > AccessPolicy.maximumRolesPerClient {
            errors.append(node.error("a client may hold at most \(AccessPolicy.maximumRolesPerClient) roles"))
        }
        return names
    }

    private static func stringList(_ node: ConfigNode, _ errors: inout [ConfigError]) -> [String] {
        guard let items = node.sequence(&errors) else { return [] }
        return items.compactMap { $0.string(&errors) }
    }
}
