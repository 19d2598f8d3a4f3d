import Foundation

extension ConfigLoader {
    static let issuerKeys = [
        "name", "issuer", "audiences", "jwks_url", "jwks_file", "discovery", "algorithms", "client_claim", "leeway",
        "jwks_refresh", "builtin", "signing_key_file", "token_lifetime", "max_token_lifetime", "max_failed_auth", "max_failed_auth_per_address",
        "failure_window", "state_file", "secret_lifetime",
    ]
    static let clientKeys = [
        "id", "name", "enabled", "issuer", "roles", "allowed_ips", "secret_sha256", "public_key", "public_key_file", "token_lifetime",
        "last_modified", "limits", "secret_created", "secret_lifetime", "retired_secrets",
    ]
    /// Keys of an outside issuer that the built-in one does not take.
    static let outsideIssuerOnlyKeys = ["jwks_url", "jwks_file", "discovery", "audiences", "algorithms", "client_claim", "jwks_refresh"]
    /// Keys of the built-in issuer that an outside one does not take.
    static let builtinIssuerOnlyKeys = [
        "signing_key_file", "token_lifetime", "max_token_lifetime", "max_failed_auth", "max_failed_auth_per_address", "failure_window", "state_file",
        "secret_lifetime",
    ]
    /// Bounds of the built-in issuer's token lifetimes (`token_lifetime`, `max_token_lifetime`).
    static let tokenLifetimeBounds = ConfigDuration.seconds(1)...ConfigDuration.hours(24)

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
                } else if issuer.builtin, let other = result.first(where: \.builtin) {
                    errors.append(item.error("only one built-in issuer (builtin: true) is allowed; '\(other.name)' is one already"))
                } else if let other = result.first(where: { $0.issuer == issuer.issuer }) {
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
            for key in Self.outsideIssuerOnlyKeys {
                if let node = value(key) { errors.append(node.error("\(key) does not apply to the built-in issuer")) }
            }
            // Kept even when a key is wrong (the load fails anyway), so that its clients are
            // checked against it rather than each reported as naming an unknown issuer.
            return Self.builtinIssuer(name: name, item, value, &errors)
        }
        for key in Self.builtinIssuerOnlyKeys {
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

    /// The built-in issuer's own keys (`builtin: true`); its tokens' `aud` and algorithm are
    /// fixed by Portcullis, so only lifetimes, the signing key and the lockout are configured.
    private static func builtinIssuer(
        name: String,
        _ item: ConfigNode,
        _ value: (String) -> ConfigNode?,
        _ errors: inout [ConfigError]
    ) -> IssuerConfig {
        var signingKeyFile = ""
        if let node = value("signing_key_file") {
            if let path = node.string(&errors) {
                if path.isEmpty {
                    errors.append(node.error("expected the path of a PEM file holding an Ed25519 or P-256 private key"))
                } else {
                    signingKeyFile = Self.resolve(path, relativeTo: node.file)
                    if !FileManager.default.isReadableFile(atPath: signingKeyFile) {
                        errors.append(node.error("cannot read the signing key file \(signingKeyFile): \(Self.readableReason(signingKeyFile))"))
                    }
                }
            }
        } else {
            errors.append(item.error("missing signing_key_file (a PEM file holding the Ed25519 or P-256 key that signs its tokens)"))
        }

        var settings = BuiltinIssuerSettings(
            signingKeyFile: signingKeyFile,
            stateFile: Self.resolve("\(name)-state.json", relativeTo: item.file)
        )
        let maxNode = value("max_token_lifetime")
        var maxValid = true
        if let node = maxNode {
            if let max = Self.tokenLifetime(node, &errors) { settings.maxTokenLifetime = max } else { maxValid = false }
        }
        if let node = value("token_lifetime") {
            if let lifetime = Self.tokenLifetime(node, &errors) {
                if maxValid, lifetime > settings.maxTokenLifetime {
                    let source = maxNode == nil ? "the default max_token_lifetime" : "max_token_lifetime"
                    errors.append(node.error("token_lifetime \(lifetime) is longer than \(source) \(settings.maxTokenLifetime)"))
                }
                settings.tokenLifetime = lifetime
            }
        } else if let maxNode, maxValid, settings.tokenLifetime > settings.maxTokenLifetime {
            errors.append(
                maxNode.error("max_token_lifetime \(settings.maxTokenLifetime) is shorter than the default token_lifetime \(settings.tokenLifetime); set token_lifetime too")
            )
        }
        if let node = value("max_failed_auth"), let count = node.integer(&errors, in: 1...1_000_000) {
            settings.maxFailedAuth = count
        }
        if let node = value("max_failed_auth_per_address"), let count = node.integer(&errors, in: 1...1_000_000) {
            settings.maxFailedAuthPerAddress = count
        }
        if let node = value("failure_window"), let window = node.duration(&errors) {
            if window < .seconds(1) || window > .hours(24) {
                errors.append(node.error("failure_window \(window) is out of range; expected 1s...24h"))
            }
            settings.failureWindow = window
        }
        if let node = value("secret_lifetime") { settings.secretLifetime = Self.secretLifetime(node, &errors) }
        if let node = value("state_file"), let path = node.string(&errors) {
            if path.isEmpty {
                errors.append(node.error("expected a file path (where last_redeemed times and revoked token ids are kept)"))
            } else {
                settings.stateFile = Self.resolve(path, relativeTo: node.file)
            }
        }

        var issuerText = "urn:portcullis:\(name)"
        if let node = value("issuer"), let text = node.string(&errors) {
            if text.isEmpty { errors.append(node.error("expected the iss of its tokens, e.g. \"urn:portcullis:\(name)\" (the default)")) }
            issuerText = text
        }
        var leeway = ConfigDuration.seconds(5)
        if let node = value("leeway"), let duration = node.duration(&errors) {
            if duration > .minutes(10) { errors.append(node.error("leeway above 10m would accept long-expired tokens")) }
            leeway = duration
        }
        return IssuerConfig(
            name: name,
            issuer: issuerText,
            audiences: [],
            keySource: nil,
            algorithms: [],
            leeway: leeway,
            builtin: true,
            builtinSettings: settings,
            location: item.location
        )
    }

    /// A token lifetime: whole seconds (`expires_in` is in seconds) within ``tokenLifetimeBounds``.
    static func tokenLifetime(
        _ node: ConfigNode,
        in bounds: ClosedRange<ConfigDuration> = ConfigLoader.tokenLifetimeBounds,
        _ errors: inout [ConfigError]
    ) -> ConfigDuration? {
        guard let duration = node.duration(&errors) else { return nil }
        guard duration.nanoseconds % 1_000_000_000 == 0 else {
            errors.append(node.error("\(duration) is not whole seconds; expected e.g. 90s, 15m or 1h"))
            return nil
        }
        guard bounds.contains(duration) else {
            errors.append(node.error("\(duration) is out of range; expected \(bounds.lowerBound)...\(bounds.upperBound)"))
            return nil
        }
        return duration
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
            var issuerConfig: IssuerConfig?
            if let node = value("issuer"), let text = node.string(&errors) {
                issuerName = text
                issuerConfig = issuers.first { $0.name == text }
                if issuerConfig == nil {
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
                var ignored: [ConfigError] = []  // cidrList reported them
                client.allowedIPsText = Self.stringList(node, &ignored)
            }
            Self.clientCredentials(&client, value, issuer: issuerConfig, item, &errors)
            if let node = value("limits") { client.limits = Self.clientLimits(node, &errors) }
            if let node = value("last_modified"), let text = node.string(&errors) {
                if Self.isRFC3339UTCSeconds(text) {
                    client.lastModified = text
                } else {
                    errors.append(node.error("'\(text)' is not a UTC time; expected RFC 3339 with seconds and Z, e.g. \"2026-12-04T10:00:00Z\""))
                }
            }
            if errors.count == errorCount { result.append(client) }
        }
        return result
    }

    /// `secret_sha256` and `token_lifetime`: required and allowed (respectively) for clients of
    /// the built-in issuer, refused for clients of an outside one (its IdP holds their secrets).
    private static func clientCredentials(
        _ client: inout ClientConfig,
        _ value: (String) -> ConfigNode?,
        issuer: IssuerConfig?,
        _ item: ConfigNode,
        _ errors: inout [ConfigError]
    ) {
        let builtin = issuer?.builtin == true
        if let node = value("secret_sha256") {
            if let issuer, !builtin {
                errors.append(node.error("secret_sha256 applies only to clients of the built-in issuer; '\(issuer.name)' holds its clients' secrets itself"))
            } else if let text = node.string(&errors) {
                if Self.isSHA256Hex(text) {
                    client.secretSHA256 = text
                } else {
                    errors.append(node.error("expected the SHA-256 of the secret as 64 lowercase hex digits (portcullis client add/rotate writes it)"))
                }
            }
        }
        Self.clientPublicKey(&client, value, issuer: issuer, &errors)
        if let issuer, builtin {
            if value("secret_sha256") == nil && value("public_key") == nil && value("public_key_file") == nil {
                errors.append(
                    item.error(
                        "missing secret_sha256 or public_key: clients of the built-in issuer '\(issuer.name)' need a secret (portcullis client add/rotate writes it) or a key (private_key_jwt)"
                    )
                )
            } else if value("secret_sha256") != nil && (value("public_key") != nil || value("public_key_file") != nil) {
                errors.append(item.error("secret_sha256 and public_key are two credentials: give a client one"))
            }
        }
        if let node = value("token_lifetime") {
            if let issuer, !builtin {
                errors.append(node.error("token_lifetime applies only to clients of the built-in issuer; '\(issuer.name)' sets its own tokens' lifetime"))
            } else {
                let max = issuer?.builtinSettings?.maxTokenLifetime ?? Self.tokenLifetimeBounds.upperBound
                if let lifetime = Self.tokenLifetime(node, in: Self.tokenLifetimeBounds.lowerBound...max, &errors) {
                    client.tokenLifetime = lifetime
                }
            }
        }
        Self.clientSecretSchedule(&client, value, builtin: builtin, issuerName: issuer?.name, &errors)
    }

    /// Bounds of `secret_lifetime`, the issuer's and a client's.
    static let secretLifetimeBounds = ConfigDuration.seconds(1)...ConfigDuration.days(3650)

    static func secretLifetime(_ node: ConfigNode, _ errors: inout [ConfigError]) -> ConfigDuration? {
        guard let duration = node.duration(&errors) else { return nil }
        guard duration.nanoseconds % 1_000_000_000 == 0, Self.secretLifetimeBounds.contains(duration) else {
            errors.append(node.error("secret_lifetime \(duration) is out of range; expected whole seconds within 1s...3650d, e.g. 90d"))
            return nil
        }
        return duration
    }

    /// `secret_created`, `secret_lifetime` and `retired_secrets` of a built-in client.
    private static func clientSecretSchedule(
        _ client: inout ClientConfig,
        _ value: (String) -> ConfigNode?,
        builtin: Bool,
        issuerName: String?,
        _ errors: inout [ConfigError]
    ) {
        for key in ["secret_created", "secret_lifetime", "retired_secrets"] {
            guard let node = value(key), let issuerName, !builtin else { continue }
            errors.append(node.error("\(key) applies only to clients of the built-in issuer; '\(issuerName)' holds its clients' secrets itself"))
            return
        }
        if let node = value("secret_created"), let text = node.string(&errors) {
            if Self.isRFC3339UTCSeconds(text) {
                client.secretCreated = text
            } else {
                errors.append(node.error("'\(text)' is not a UTC time; expected RFC 3339 with seconds and Z, e.g. \"2026-12-04T10:00:00Z\""))
            }
        }
        if let node = value("secret_lifetime") { client.secretLifetime = Self.secretLifetime(node, &errors) }
        if let node = value("retired_secrets"), let items = node.sequence(&errors) {
            for item in items {
                guard let entries = item.mapping(&errors) else { continue }
                item.checkKeys(entries, known: ["secret_sha256", "created", "until"], &errors)
                func field(_ key: String) -> String? {
                    guard let node = entries.first(where: { $0.key == key })?.value else { return nil }
                    return node.string(&errors)
                }
                guard let hash = field("secret_sha256"), Self.isSHA256Hex(hash) else {
                    errors.append(item.error("expected secret_sha256: the SHA-256 of the retired secret as 64 lowercase hex digits"))
                    continue
                }
                guard let until = field("until"), Self.isRFC3339UTCSeconds(until) else {
                    errors.append(item.error("expected until: the end of its grace, e.g. \"2026-12-04T10:00:00Z\""))
                    continue
                }
                let created = field("created")
                if let created, !Self.isRFC3339UTCSeconds(created) {
                    errors.append(item.error("created '\(created)' is not a UTC time such as \"2026-12-04T10:00:00Z\""))
                    continue
                }
                client.retiredSecrets.append(RetiredSecret(secretSHA256: hash, created: created, until: until))
            }
        }
    }

    static func isSHA256Hex(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// `public_key` (inline PEM or JWK) or `public_key_file`: a `private_key_jwt` client's key,
    /// checked for its form here and parsed when the issuer is compiled.
    private static func clientPublicKey(
        _ client: inout ClientConfig,
        _ value: (String) -> ConfigNode?,
        issuer: IssuerConfig?,
        _ errors: inout [ConfigError]
    ) {
        let inline = value("public_key")
        let file = value("public_key_file")
        guard let node = inline ?? file else { return }
        if inline != nil && file != nil {
            errors.append(node.error("public_key and public_key_file are two places for one key: give one"))
            return
        }
        if let issuer, issuer.builtin != true {
            errors.append(node.error("\(inline != nil ? "public_key" : "public_key_file") applies only to clients of the built-in issuer; '\(issuer.name)' authenticates its clients itself"))
            return
        }
        guard let text = node.string(&errors) else { return }
        var key = text
        if file != nil {
            let path = Self.resolve(text, relativeTo: node.file)
            guard let data = FileManager.default.contents(atPath: path) else {
                errors.append(node.error("cannot read \(path); expected a PEM public key or a JWK"))
                return
            }
            key = String(decoding: data, as: UTF8.self)
            client.publicKeyFile = text
        }
        let trimmed = key.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("-----BEGIN PUBLIC KEY-----") || trimmed.hasPrefix("{") else {
            errors.append(node.error("expected a PEM public key (-----BEGIN PUBLIC KEY-----) or a JWK object"))
            return
        }
        client.publicKey = trimmed
    }

    /// `2026-12-04T10:00:00Z`: the form `portcullis client` writes to `last_modified`.
    static func isRFC3339UTCSeconds(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 20, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "Z")
        else { return false }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19)
        else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...12).contains(month) else { return false }
        return (1...days[month - 1]).contains(day) && hour < 24 && minute < 60 && second <= 60
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
