import Foundation
import Yams

/// Reads every `*.yaml` file of a directory (one level), merges their top-level keys and
/// validates the result, reporting every error with its file, line and key.
public enum ConfigLoader {
    /// Every top-level key of the schema in DESIGN.md.
    public static let topLevelKeys = [
        "listen", "admin", "trusted_proxies", "upstream", "issuers", "roles", "clients", "logging", "limits",
        "catalog", "compression", "tenant_directory", "client_limits", "path_firewall", "store",
    ]

    public static func load(directory: String) throws(ConfigErrors) -> GatewayConfig {
        try self.load(sources: try self.sources(directory: directory), directory: directory)
    }

    /// The config files of a directory (every `*.yaml` and `*.yml`, sorted; dotfiles such as
    /// `.clients.yaml.tmp-42` do not end in `.yaml`) as `(path, text)`, what `load(sources:)` takes.
    public static func sources(directory: String) throws(ConfigErrors) -> [(file: String, text: String)] {
        let files: [String]
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw ConfigErrors([ConfigError(nil, key: "", "\(directory) does not exist; expected the directory that holds the *.yaml files")])
        }
        guard isDirectory.boolValue else {
            throw ConfigErrors([
                ConfigError(nil, key: "", "\(directory) is a file; expected the directory that holds it and the other *.yaml files (\((directory as NSString).deletingLastPathComponent.isEmpty ? "." : (directory as NSString).deletingLastPathComponent))")
            ])
        }
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory)
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
                .sorted()
        } catch {
            throw ConfigErrors([ConfigError(nil, key: "", "cannot read the config directory \(directory): \(Self.readableReason(directory))")])
        }
        guard !files.isEmpty else {
            throw ConfigErrors([ConfigError(nil, key: "", "no *.yaml files in \(directory)")])
        }
        var sources: [(file: String, text: String)] = []
        var errors: [ConfigError] = []
        for name in files {
            let path = (directory as NSString).appendingPathComponent(name)
            do {
                sources.append((path, try String(contentsOfFile: path, encoding: .utf8)))
            } catch {
                errors.append(ConfigError(SourceLocation(file: path, line: 1, column: 1), key: "", "cannot read: \(Self.readableReason(path))"))
            }
        }
        if !errors.isEmpty { throw ConfigErrors(errors) }
        return sources
    }

    /// Why `path` cannot be read, in words (not Foundation's error domain and code).
    public static func readableReason(_ path: String) -> String {
        if !FileManager.default.fileExists(atPath: path) { return "no such file or directory" }
        if !FileManager.default.isReadableFile(atPath: path) { return "permission denied (the user running portcullis cannot read it)" }
        if FileManager.default.contents(atPath: path).flatMap({ String(data: $0, encoding: .utf8) }) == nil {
            return "it is not UTF-8 text"
        }
        return "it cannot be read"
    }

    /// Loads from in-memory sources: `(file name for messages, YAML text)`.
    public static func load(sources: [(file: String, text: String)], directory: String) throws(ConfigErrors) -> GatewayConfig {
        var errors: [ConfigError] = []
        var sections: [String: ConfigNode] = [:]
        var unparsedFiles = 0
        for (file, text) in sources {
            let root: Node?
            do {
                root = try ConfigYAML.compose(text)
            } catch let error as YamlError {
                errors.append(contentsOf: Self.describe(error, file: file, text: text))
                unparsedFiles += 1
                continue
            } catch {
                errors.append(ConfigError(SourceLocation(file: file, line: 1, column: 1), key: "", "\(error)"))
                continue
            }
            guard let root else { continue }  // an empty file is allowed
            let top = ConfigNode(node: root, file: file, keyPath: "")
            guard let entries = top.mapping(&errors) else { continue }
            top.checkKeys(entries, known: Self.topLevelKeys, &errors)
            for entry in entries where Self.topLevelKeys.contains(entry.key) {
                if let first = sections[entry.key] {
                    let where_ = first.location.map { " (already set at \($0))" } ?? ""
                    errors.append(ConfigError(entry.keyLocation, key: entry.key, "set in more than one file\(where_)"))
                    continue
                }
                sections[entry.key] = entry.value
            }
        }

        let listeners = sections["listen"].map { Self.listeners($0, &errors) }
        // A file that did not parse may well hold the missing section: don't claim it is missing.
        if sections["listen"] == nil && unparsedFiles == 0 {
            errors.append(ConfigError(nil, key: "listen", "missing: at least one listener is required"))
        }
        let admin = sections["admin"].map { Self.admin($0, &errors) } ?? AdminConfig()
        let upstream = sections["upstream"].flatMap { Self.upstream($0, &errors) }
        if sections["upstream"] == nil && unparsedFiles == 0 {
            errors.append(ConfigError(nil, key: "upstream", "missing: the backend to forward to is required"))
        }
        // Port 0 asks for any free port, so two of them never clash.
        if let address = admin.address, address.port != 0, listeners?.contains(where: { $0.address == address }) == true {
            errors.append(
                ConfigError(admin.location, key: "admin.address", "\(address) is also a listen address; the admin listener needs its own")
            )
        }
        let trusted = sections["trusted_proxies"].map { Self.cidrList($0, &errors) } ?? .empty
        let logging = sections["logging"].map { Self.logging($0, &errors) } ?? LoggingConfig()
        let limits = sections["limits"].map { Self.limits($0, &errors) } ?? Limits()
        let compression = sections["compression"].map { Self.compression($0, &errors) } ?? CompressionConfig()
        let pathFirewall = sections["path_firewall"].map { Self.pathFirewall($0, &errors) } ?? PathFirewall()
        let issuers = sections["issuers"].map { Self.issuers($0, &errors) } ?? []
        let store = sections["store"].flatMap { Self.store($0, &errors) }
        let catalog = sections["catalog"].flatMap { Self.catalog($0, &errors) }
        var warnings: [ConfigError] = []
        let roles =
            sections["roles"].map {
                Self.roles($0, catalog: catalog, catalogConfigured: sections["catalog"] != nil, profile: upstream?.profile, &errors, &warnings)
            } ?? []
        let clientLimits = sections["client_limits"].flatMap { Self.clientLimits($0, &errors) }
        let tenantDirectory = sections["tenant_directory"].flatMap { Self.tenantDirectory($0, profile: upstream?.profile, &errors) }
        if upstream?.profile == .cipp {
            Self.checkTenantRules(roles, sections["roles"], directory: tenantDirectory, &errors, &warnings)
        }
        let roleNames = sections["roles"].map(Self.roleNames) ?? []
        let clients = sections["clients"].map { Self.clients($0, issuers: issuers, roleNames: roleNames, &errors) } ?? []
        guard errors.isEmpty, let listeners, let upstream else {
            throw ConfigErrors(errors.sorted { ($0.location?.file ?? "", $0.location?.line ?? 0) < ($1.location?.file ?? "", $1.location?.line ?? 0) })
        }
        var config = GatewayConfig(
            directory: directory,
            listeners: listeners,
            admin: admin,
            upstream: upstream,
            trustedProxies: trusted,
            logging: logging,
            limits: limits,
            issuers: issuers,
            clients: clients,
            roles: roles,
            catalog: catalog
        )
        config.compression = compression
        config.store = store
        config.tenantDirectory = tenantDirectory
        config.clientLimits = clientLimits
        config.warnings = warnings.sorted { ($0.location?.file ?? "", $0.location?.line ?? 0) < ($1.location?.file ?? "", $1.location?.line ?? 0) }
        config.pathFirewall = pathFirewall
        return config
    }

    private static func describe(_ error: YamlError, file: String, text: String) -> [ConfigError] {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return [ConfigError(SourceLocation(file: file, line: mark.line, column: mark.column), key: "", "invalid YAML: \(problem)")]
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams names the mapping; point at the repeated key's own line when we can find it.
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            return duplicates.map { key in
                var seen = 0
                var line = context.mark.line
                for index in max(0, context.mark.line - 1)..<lines.count {
                    let trimmed = lines[index].drop { $0 == " " || $0 == "-" }
                    if trimmed.hasPrefix("\(key):") || trimmed.hasPrefix("\"\(key)\":") {
                        seen += 1
                        if seen == 2 {
                            line = index + 1
                            break
                        }
                    }
                }
                return ConfigError(SourceLocation(file: file, line: line, column: 1), key: key, "duplicate key")
            }
        default:
            return [ConfigError(SourceLocation(file: file, line: 1, column: 1), key: "", "invalid YAML")]
        }
    }

    // MARK: - Sections

    static func listeners(_ node: ConfigNode, _ errors: inout [ConfigError]) -> [ListenerConfig] {
        guard let items = node.sequence(&errors) else { return [] }
        if items.isEmpty { errors.append(node.error("expected at least one listener")) }
        var result: [ListenerConfig] = []
        for item in items {
            guard let entries = item.mapping(&errors) else { continue }
            item.checkKeys(entries, known: ["address", "tls"], &errors)
            guard let addressNode = entries.first(where: { $0.key == "address" })?.value else {
                errors.append(item.error("missing address, e.g. \"0.0.0.0:8080\" or \"[::]:8080\""))
                continue
            }
            guard let address = Self.listenAddress(addressNode, &errors) else { continue }
            if result.contains(where: { $0.address == address }) {
                errors.append(addressNode.error("\(address) is listed twice"))
                continue
            }
            let tls = entries.first(where: { $0.key == "tls" }).flatMap { Self.listenerTLS($0.value, &errors) }
            result.append(ListenerConfig(address: address, tls: tls, location: addressNode.location))
        }
        return result
    }

    /// A listener's `address`: an IP (or `localhost`) and a port.
    static func listenAddress(_ node: ConfigNode, _ errors: inout [ConfigError]) -> HostPort? {
        guard let text = node.string(&errors) else { return nil }
        guard let address = HostPort(parsing: text), IPAddress(parsing: address.host) != nil || address.host == "localhost"
        else {
            errors.append(node.error("'\(text)' is not an address; expected IP:port such as \"0.0.0.0:8080\" or \"[::]:8443\""))
            return nil
        }
        return address
    }

    static func admin(_ node: ConfigNode, _ errors: inout [ConfigError]) -> AdminConfig {
        var admin = AdminConfig()
        guard let entries = node.mapping(&errors) else { return admin }
        node.checkKeys(entries, known: ["address", "token_file", "tokens", "tls"], &errors)
        for entry in entries {
            switch entry.key {
            case "address":
                admin.address = Self.listenAddress(entry.value, &errors)
                admin.location = entry.value.location
            case "token_file":
                if let path = entry.value.string(&errors) {
                    if path.isEmpty {
                        errors.append(entry.value.error("expected a file path"))
                    } else {
                        admin.tokenFile = Self.resolve(path, relativeTo: node.file)
                    }
                }
            case "tokens":
                admin.tokens = Self.adminTokens(entry.value, &errors)
            case "tls":
                admin.tls = Self.listenerTLS(entry.value, &errors)
            default:
                break
            }
        }
        return admin
    }

    /// `admin.tokens: [{name, token_sha256 | token_file}]`.
    static func adminTokens(_ node: ConfigNode, _ errors: inout [ConfigError]) -> [AdminTokenConfig] {
        guard let items = node.sequence(&errors) else { return [] }
        var tokens: [AdminTokenConfig] = []
        for item in items {
            guard let entries = item.mapping(&errors) else { continue }
            item.checkKeys(entries, known: ["name", "token_sha256", "token_file"], &errors)
            func value(_ key: String) -> ConfigNode? { entries.first { $0.key == key }?.value }
            guard let nameNode = value("name"), let name = nameNode.string(&errors) else {
                if value("name") == nil { errors.append(item.error("missing name (who the audit trail says made a change with this token)")) }
                continue
            }
            if name.isEmpty || name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                errors.append(nameNode.error("expected a non-empty name without control characters"))
                continue
            }
            if tokens.contains(where: { $0.name == name }) {
                errors.append(nameNode.error("admin token name '\(name)' is used twice"))
                continue
            }
            var token = AdminTokenConfig(name: name)
            let errorCount = errors.count
            if let node = value("token_sha256"), let hash = node.string(&errors) {
                if Self.isSHA256Hex(hash) {
                    token.tokenSHA256 = hash
                } else {
                    errors.append(node.error("expected the SHA-256 of the token as 64 lowercase hex digits (printf %s TOKEN | sha256sum)"))
                }
            }
            if let node = value("token_file"), let path = node.string(&errors) {
                if path.isEmpty { errors.append(node.error("expected a file path")) } else { token.tokenFile = Self.resolve(path, relativeTo: node.file) }
            }
            guard errors.count == errorCount else { continue }
            if (token.tokenSHA256 == nil) == (token.tokenFile == nil) {
                errors.append(item.error("admin token '\(name)': give exactly one of token_sha256 and token_file"))
                continue
            }
            tokens.append(token)
        }
        return tokens
    }

    static func upstream(_ node: ConfigNode, _ errors: inout [ConfigError]) -> UpstreamConfig? {
        guard let entries = node.mapping(&errors) else { return nil }
        node.checkKeys(
            entries,
            known: [
                "url", "profile", "timeout", "connect_timeout", "ca_file", "auth", "keepalive_timeout", "max_idle_connections",
                "receive_buffer", "case_insensitive_paths", "drop_headers_with_underscores", "max_concurrent", "queue",
            ],
            &errors
        )
        guard let urlNode = entries.first(where: { $0.key == "url" })?.value else {
            errors.append(node.error("missing url, e.g. \"https://cipp-xyz.azurewebsites.net\""))
            return nil
        }
        guard let urlText = urlNode.string(&errors) else { return nil }
        guard let (scheme, host, port) = UpstreamConfig.parseURL(urlText) else {
            errors.append(urlNode.error("'\(urlText)' is not an upstream URL; expected http://host[:port] or https://host[:port] with no path"))
            return nil
        }
        var upstream = UpstreamConfig(scheme: scheme, host: host, port: port)
        var caseSensitiveNode: ConfigNode?
        for entry in entries {
            let value = entry.value
            switch entry.key {
            case "timeout":
                if let d = value.duration(&errors) {
                    if d.nanoseconds <= 0 { errors.append(value.error("must be more than 0")) } else { upstream.timeout = d }
                }
            case "connect_timeout":
                if let d = value.duration(&errors) {
                    if d.nanoseconds <= 0 { errors.append(value.error("must be more than 0")) } else { upstream.connectTimeout = d }
                }
            case "keepalive_timeout":
                if let d = value.duration(&errors) { upstream.keepaliveTimeout = d }
            case "max_idle_connections":
                if let n = value.integer(&errors, in: 0...100_000) { upstream.maxIdleConnections = n }
            case "receive_buffer":
                if let n = value.integer(&errors, in: 0...(1 << 30)) { upstream.receiveBuffer = n }
            case "ca_file":
                if let path = value.string(&errors) {
                    if scheme != .https { errors.append(value.error("ca_file needs an https:// upstream url")) }
                    upstream.caFile = Self.resolve(path, relativeTo: node.file)
                }
            case "profile":
                if let text = value.string(&errors) {
                    if let profile = UpstreamProfile(rawValue: text) {
                        upstream.profile = profile
                    } else {
                        let profile = text
                        errors.append(value.error("unknown profile '\(profile)'; expected cipp or generic"))
                    }
                }
            case "auth":
                upstream.authLocation = value.location
                upstream.auth = Self.upstreamAuth(value, &errors)
            case "drop_headers_with_underscores":
                if let b = value.bool(&errors) { upstream.dropHeadersWithUnderscores = b }
            case "max_concurrent":
                upstream.maxConcurrent = value.integer(&errors, in: 1...1_000_000)
            case "queue":
                guard let fields = value.mapping(&errors) else { break }
                value.checkKeys(fields, known: ["size", "timeout"], &errors)
                for field in fields {
                    switch field.key {
                    case "size":
                        if let n = field.value.integer(&errors, in: 0...1_000_000) { upstream.queueSize = n }
                    case "timeout":
                        if let d = Self.positive(field.value, &errors) { upstream.queueTimeout = d }
                    default:
                        break
                    }
                }
            case "case_insensitive_paths":
                if let b = value.bool(&errors) {
                    upstream.caseInsensitivePaths = b
                    if !b { caseSensitiveNode = value }
                }
            default:
                break
            }
        }
        if upstream.maxConcurrent == nil, let queue = entries.first(where: { $0.key == "queue" })?.value {
            errors.append(queue.error("queue needs max_concurrent beside it"))
        }
        if let caseSensitiveNode, upstream.profile == .cipp {
            errors.append(caseSensitiveNode.error("profile cipp routes paths case-insensitively; case_insensitive_paths cannot be false"))
        }
        return upstream
    }

    static func cidrList(_ node: ConfigNode, _ errors: inout [ConfigError]) -> CIDRSet {
        guard let items = node.sequence(&errors) else { return .empty }
        var prefixes: [CIDRPrefix] = []
        for item in items {
            guard let text = item.string(&errors) else { continue }
            switch CIDRPrefix.validate(Substring(text)) {
            case .success(let prefix): prefixes.append(prefix)
            case .failure(let error): errors.append(item.error("\(error)"))
            }
        }
        return CIDRSet(prefixes)
    }

    static func logging(_ node: ConfigNode, _ errors: inout [ConfigError]) -> LoggingConfig {
        var logging = LoggingConfig()
        guard let entries = node.mapping(&errors) else { return logging }
        node.checkKeys(entries, known: ["access_log", "per_client_dir", "level"], &errors)
        for entry in entries {
            switch entry.key {
            case "access_log":
                if ConfigYAML.bool(entry.value.node) == false || entry.value.node.string == "off" || entry.value.node.null != nil {
                    logging.accessLog = nil
                } else if let text = entry.value.string(&errors) {
                    if text.isEmpty {
                        errors.append(entry.value.error("expected a file path, \"-\" for stdout, or off"))
                    } else {
                        logging.accessLog = text == "-" ? "-" : Self.resolve(text, relativeTo: node.file)
                    }
                }
            case "per_client_dir":
                if let text = entry.value.string(&errors) {
                    logging.perClientDirectory = Self.resolve(text, relativeTo: node.file)
                }
            case "level":
                if let text = entry.value.string(&errors) {
                    let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
                    if levels.contains(text) {
                        logging.level = text
                    } else {
                        errors.append(entry.value.error("unknown level '\(text)'; expected one of \(levels.joined(separator: ", "))"))
                    }
                }
            default:
                break
            }
        }
        return logging
    }

    static func limits(_ node: ConfigNode, _ errors: inout [ConfigError]) -> Limits {
        var limits = Limits()
        guard let entries = node.mapping(&errors) else { return limits }
        node.checkKeys(
            entries,
            known: ["client_header_timeout", "idle_timeout", "client_body_timeout", "send_timeout", "max_connections",
                "max_header_bytes", "max_header_count", "max_inspect_body", "drain_timeout", "token_cache_size",
                "client_send_buffer", "max_batch_items"],
            &errors
        )
        for entry in entries {
            let value = entry.value
            switch entry.key {
            case "client_header_timeout":
                if let d = Self.positive(value, &errors) { limits.clientHeaderTimeout = d }
            case "idle_timeout":
                if let d = Self.positive(value, &errors) { limits.idleTimeout = d }
            case "client_body_timeout":
                if let d = Self.positive(value, &errors) { limits.clientBodyTimeout = d }
            case "send_timeout":
                if let d = Self.positive(value, &errors) { limits.sendTimeout = d }
            case "drain_timeout":
                if let d = value.duration(&errors) { limits.drainTimeout = d }
            case "max_connections":
                if let n = value.integer(&errors, in: 1...1_000_000) { limits.maxConnections = n }
            case "max_header_bytes":
                if let n = value.integer(&errors, in: 1024...1_048_576) { limits.maxHeaderBytes = n }
            case "max_header_count":
                if let n = value.integer(&errors, in: 1...10_000) { limits.maxHeaderCount = n }
            case "token_cache_size":
                if let n = value.integer(&errors, in: 0...1_000_000) { limits.tokenCacheSize = n }
            case "client_send_buffer":
                if let n = value.integer(&errors, in: 0...(1 << 30)) { limits.clientSendBuffer = n }
            case "max_inspect_body":
                if let n = value.integer(&errors, in: 0...1_073_741_824) { limits.maxInspectBody = n }
            case "max_batch_items":
                if let n = value.integer(&errors, in: 1...1000) { limits.maxBatchItems = n }
            default:
                break
            }
        }
        return limits
    }

    static func compression(_ node: ConfigNode, _ errors: inout [ConfigError]) -> CompressionConfig {
        var compression = CompressionConfig()
        guard let entries = node.mapping(&errors) else { return compression }
        node.checkKeys(entries, known: ["enabled", "min_bytes", "types"], &errors)
        for entry in entries {
            let value = entry.value
            switch entry.key {
            case "enabled":
                if let b = value.bool(&errors) { compression.enabled = b }
            case "min_bytes":
                if let n = value.integer(&errors, in: 0...1_073_741_824) { compression.minBytes = n }
            case "types":
                guard let items = value.sequence(&errors) else { break }
                var types: [String] = []
                for item in items {
                    guard let text = item.string(&errors) else { continue }
                    let type = text.trimmingCharacters(in: .whitespaces).lowercased()
                    let parts = type.split(separator: "/", omittingEmptySubsequences: false)
                    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, parts[0] != "*", !type.contains(";") else {
                        errors.append(item.error("\"\(text)\" is not a media type (type/subtype or type/*)"))
                        continue
                    }
                    if type == "text/event-stream" {
                        errors.append(item.error("text/event-stream is never compressed (it would stop streaming)"))
                        continue
                    }
                    types.append(type)
                }
                compression.types = types
            default:
                break
            }
        }
        return compression
    }

    static func pathFirewall(_ node: ConfigNode, _ errors: inout [ConfigError]) -> PathFirewall {
        var firewall = PathFirewall()
        guard let entries = node.mapping(&errors) else { return firewall }
        node.checkKeys(entries, known: ["allow_semicolon", "allow_encoded_percent", "allow_non_ascii", "allow_trailing_dot"], &errors)
        for entry in entries {
            let value = entry.value
            switch entry.key {
            case "allow_semicolon": if let b = value.bool(&errors) { firewall.allowSemicolon = b }
            case "allow_encoded_percent": if let b = value.bool(&errors) { firewall.allowEncodedPercent = b }
            case "allow_non_ascii": if let b = value.bool(&errors) { firewall.allowNonASCII = b }
            case "allow_trailing_dot": if let b = value.bool(&errors) { firewall.allowTrailingDot = b }
            default: break
            }
        }
        return firewall
    }

    private static func positive(_ node: ConfigNode, _ errors: inout [ConfigError]) -> ConfigDuration? {
        guard let d = node.duration(&errors) else { return nil }
        guard d.nanoseconds > 0 else {
            errors.append(node.error("must be more than 0"))
            return nil
        }
        return d
    }

    /// Paths in a config file are relative to the file's directory.
    static func resolve(_ path: String, relativeTo file: String) -> String {
        if path.hasPrefix("/") { return path }
        let directory = (file as NSString).deletingLastPathComponent
        return directory.isEmpty ? path : (directory as NSString).appendingPathComponent(path)
    }
}
