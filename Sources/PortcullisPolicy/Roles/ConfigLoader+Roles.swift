import Foundation

extension ConfigLoader {
    static let roleKeys = ["description", "allow", "deny", "tenants", "permissions", "limits"]
    static let ruleKeys = ["methods", "paths", "any_tenant"]
    static let catalogKeys = ["openapi", "permission_field", "any_tenant_field"]

    /// The names the `roles:` mapping defines, even those whose bodies have errors, so that
    /// `clients[].roles` is checked against what the operator wrote.
    static func roleNames(_ node: ConfigNode) -> [String] {
        guard case .mapping(let mapping) = node.node else { return [] }
        return mapping.compactMap { key, _ in key.scalar?.string }
    }

    /// `catalog: {openapi: FILE, permission_field: x-cipp-role, any_tenant_field: x-cipp-any-tenant}`.
    static func catalog(_ node: ConfigNode, _ errors: inout [ConfigError]) -> PermissionCatalog? {
        guard let entries = node.mapping(&errors) else { return nil }
        node.checkKeys(entries, known: Self.catalogKeys, &errors)
        func value(_ key: String) -> ConfigNode? { entries.first { $0.key == key }?.value }
        let errorCount = errors.count
        var permissionField = "x-cipp-role"
        if let field = value("permission_field"), let text = field.string(&errors) {
            if text.isEmpty { errors.append(field.error("expected the vendor field naming each operation's permission, e.g. x-cipp-role")) }
            permissionField = text
        }
        var anyTenantField = "x-cipp-any-tenant"
        if let field = value("any_tenant_field"), let text = field.string(&errors) {
            if text.isEmpty { errors.append(field.error("expected the vendor field marking endpoints without a tenant check")) }
            anyTenantField = text
        }
        guard let fileNode = value("openapi") else {
            errors.append(node.error("missing openapi (the OpenAPI 3 JSON document, relative to this file)"))
            return nil
        }
        guard let path = fileNode.string(&errors), errors.count == errorCount else { return nil }
        let resolved = Self.resolve(path, relativeTo: fileNode.file)
        switch PermissionCatalog.load(file: resolved, permissionField: permissionField, anyTenantField: anyTenantField) {
        case .success(let catalog):
            return catalog
        case .failure(let error):
            // An unused permission field is the field's mistake when it was written out.
            let node = error.permissionFieldUnused ? value("permission_field") ?? fileNode : fileNode
            for problem in error.problems { errors.append(node.error(problem)) }
            return nil
        }
    }

    /// `roles:`: a mapping of role name to `{description, allow, deny, tenants, permissions}`.
    ///
    /// `catalogConfigured` is true when a `catalog:` section exists, even one that failed to
    /// load (its errors are reported already; permissions are then not checked against it).
    /// `profile` is nil when `upstream` did not load.
    static func roles(
        _ node: ConfigNode,
        catalog: PermissionCatalog?,
        catalogConfigured: Bool,
        profile: UpstreamProfile?,
        _ errors: inout [ConfigError],
        _ warnings: inout [ConfigError]
    ) -> [RoleConfig] {
        guard let entries = node.mapping(&errors) else { return [] }
        var roles: [RoleConfig] = []
        var extensionMethods: [String] = []
        for entry in entries {
            let body = entry.value
            let errorCount = errors.count
            if entry.key.isEmpty || entry.key.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
                errors.append(ConfigError(entry.keyLocation, key: body.keyPath, "a role name must be non-empty, without spaces or control characters"))
            }
            var role = RoleConfig(name: entry.key, location: entry.keyLocation)
            if case .scalar(let scalar) = body.node, scalar.string.isEmpty {
                errors.append(body.error("role '\(entry.key)' is empty: give allow, deny or permissions"))
                continue
            }
            guard let keys = body.mapping(&errors) else { continue }
            body.checkKeys(keys, known: Self.roleKeys, &errors)
            for key in keys {
                let value = key.value
                switch key.key {
                case "description":
                    if let text = value.string(&errors) { role.description = text }
                case "allow":
                    role.allow = Self.rules(value, allow: true, &extensionMethods, &errors)
                    if profile == .cipp {
                        for rule in role.allow where rule.methods != nil {
                            warnings.append(
                                ConfigError(
                                    rule.location,
                                    key: "\(rule.key).methods",
                                    "under profile: cipp the method is no boundary: CIPP runs an endpoint's handler for every method, so this rule's methods do not make it read-only; grant catalogue permissions (*.Read) instead"
                                )
                            )
                        }
                    }
                case "deny":
                    role.deny = Self.rules(value, allow: false, &extensionMethods, &errors)
                case "tenants":
                    role.tenants = Self.tenants(value, &errors)
                    if let profile, profile != .cipp {
                        errors.append(
                            ConfigError(
                                key.keyLocation,
                                key: value.keyPath,
                                "tenants apply only with upstream.profile: cipp (the tenant is read from tenantFilter); the profile is \(profile)"
                            )
                        )
                    }
                case "limits":
                    role.limits = Self.clientLimits(value, &errors)
                case "permissions":
                    role.permissions = Self.permissions(value, keyLocation: key.keyLocation, &errors)
                    if let selection = role.permissions {
                        if let catalog {
                            Self.checkSelection(selection, value, catalog: catalog, &errors, &warnings)
                        } else if !catalogConfigured {
                            errors.append(
                                ConfigError(
                                    key.keyLocation,
                                    key: value.keyPath,
                                    "permissions need a permission catalogue: add catalog: {openapi: FILE, permission_field: x-cipp-role}"
                                )
                            )
                        }
                    }
                default:
                    break
                }
            }
            if errors.count == errorCount { roles.append(role) }
        }
        return roles
    }

    private static func rules(
        _ node: ConfigNode,
        allow: Bool,
        _ extensionMethods: inout [String],
        _ errors: inout [ConfigError]
    ) -> [RouteRule] {
        guard let items = node.sequence(&errors) else { return [] }
        var rules: [RouteRule] = []
        for item in items {
            guard let entries = item.mapping(&errors) else { continue }
            item.checkKeys(entries, known: Self.ruleKeys, &errors)
            func value(_ key: String) -> ConfigNode? { entries.first { $0.key == key }?.value }
            let errorCount = errors.count

            var methods: [String]?
            if let node = value("methods"), let list = node.sequence(&errors) {
                if list.isEmpty { errors.append(node.error("expected at least one method; leave methods out for any method")) }
                var names: [String] = []
                for element in list {
                    guard let text = element.string(&errors) else { continue }
                    let name = text.uppercased()
                    if text == "*" {
                        errors.append(element.error("leave methods out to allow any method"))
                    } else if !HTTPMethodName.isToken(text) || !text.unicodeScalars.allSatisfy(\.isASCII) {
                        errors.append(element.error("'\(text)' is not an HTTP method name (letters, digits and !#$%&'*+-.^_`|~)"))
                    } else if !names.contains(name) {
                        if !HTTPMethodName.standard.contains(name), !extensionMethods.contains(name) {
                            if extensionMethods.count >= RouteMatcher.maximumExtensionMethods {
                                errors.append(element.error("more than \(RouteMatcher.maximumExtensionMethods) distinct non-standard methods"))
                                continue
                            }
                            extensionMethods.append(name)
                        }
                        names.append(name)
                    }
                }
                methods = names
            }

            var paths: [PathPattern] = []
            var locations: [SourceLocation?] = []
            if let node = value("paths"), let list = node.sequence(&errors) {
                if list.isEmpty { errors.append(node.error("expected at least one path pattern, e.g. [\"/api/List*\"]")) }
                for element in list {
                    guard let text = element.string(&errors) else { continue }
                    switch PathPattern.validate(text) {
                    case .success(let pattern):
                        paths.append(pattern)
                        locations.append(element.location)
                    case .failure(let error):
                        errors.append(element.error("\(error)"))
                    }
                }
            } else if value("paths") == nil {
                errors.append(item.error("missing paths, e.g. paths: [\"/api/List*\"]"))
            }

            var anyTenant = false
            if let node = value("any_tenant"), let flag = node.bool(&errors) {
                if !allow { errors.append(node.error("any_tenant applies to allow rules only")) }
                anyTenant = flag
            }
            if errors.count == errorCount {
                rules.append(
                    RouteRule(
                        methods: methods,
                        paths: paths,
                        pathLocations: locations,
                        anyTenant: anyTenant,
                        key: item.keyPath,
                        location: item.location
                    )
                )
            }
        }
        return rules
    }

    /// A list of names without spaces or control characters; each bad one is an error saying
    /// what was `expected`. Also returns how many entries the list had, good or bad.
    private static func names(_ node: ConfigNode, expected: String, _ errors: inout [ConfigError]) -> (Int, [String])? {
        guard let items = node.sequence(&errors) else { return nil }
        var names: [String] = []
        for item in items {
            guard let text = item.string(&errors) else { continue }
            if text.isEmpty || text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
                errors.append(item.error("expected \(expected)"))
                continue
            }
            names.append(text)
        }
        return (items.count, names)
    }

    private static func tenants(_ node: ConfigNode, _ errors: inout [ConfigError]) -> TenantRules? {
        guard let entries = node.mapping(&errors) else { return nil }
        node.checkKeys(entries, known: ["allow", "block"], &errors)
        var rules = TenantRules(allow: nil)
        for entry in entries {
            guard
                let (_, names) = Self.names(
                    entry.value,
                    expected: "a tenant (a domain such as contoso.onmicrosoft.com, or its id) without spaces",
                    &errors
                )
            else { continue }
            switch entry.key {
            case "allow": rules.allow = names
            case "block": rules.block = names
            default: break
            }
        }
        return rules
    }

    private static func permissions(_ node: ConfigNode, keyLocation: SourceLocation?, _ errors: inout [ConfigError]) -> PermissionSelection? {
        guard let entries = node.mapping(&errors) else { return nil }
        node.checkKeys(entries, known: ["include", "exclude"], &errors)
        let errorCount = errors.count
        var selection = PermissionSelection(include: [], location: keyLocation ?? node.location)
        guard entries.contains(where: { $0.key == "include" }) else {
            errors.append(node.error("missing include, e.g. include: [\"*.Read\"]"))
            return nil
        }
        for entry in entries {
            guard let (count, names) = Self.names(entry.value, expected: "a permission name or a glob such as *.Read", &errors)
            else { continue }
            switch entry.key {
            case "include":
                if count == 0 { errors.append(entry.value.error("expected at least one permission, e.g. [\"*.Read\"]")) }
                selection.include = names
            case "exclude":
                selection.exclude = names
            default:
                break
            }
        }
        return errors.count == errorCount ? selection : nil
    }

    /// An include that selects no permission of the catalogue is an error (it grants nothing
    /// the operator meant). An exclude that selects none is a warning: CIPP's own role
    /// definitions exclude permissions its current catalogue no longer has, and a backend update
    /// that drops a permission must not stop a reload.
    private static func checkSelection(
        _ selection: PermissionSelection,
        _ node: ConfigNode,
        catalog: PermissionCatalog,
        _ errors: inout [ConfigError],
        _ warnings: inout [ConfigError]
    ) {
        let known = catalog.permissions
        guard case .mapping(let mapping) = node.node else { return }
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.scalar?.string, key == "include" || key == "exclude",
                case .sequence(let items) = valueNode
            else { continue }
            for (index, item) in items.enumerated() {
                guard let name = item.scalar?.string, !known.contains(where: { PermissionSelection.glob(name, matches: $0) }) else {
                    continue
                }
                let element = node.child(valueNode, key: key).element(item, index: index)
                let near = known.map { ($0, ConfigNode.editDistance(name.lowercased(), $0.lowercased())) }.min { $0.1 < $1.1 }
                let hint = near.map { $0.1 <= 3 ? " (did you mean '\($0.0)'?)" : "" } ?? ""
                let problem = element.error("'\(name)' matches no permission in \(catalog.fileName)\(hint)")
                if key == "include" { errors.append(problem) } else { warnings.append(problem) }
            }
        }
    }

    /// `tenant_directory: {file: tenants.json}` or `{upstream: /api/ListTenants, refresh: 15m}`.
    static func tenantDirectory(_ node: ConfigNode, profile: UpstreamProfile?, _ errors: inout [ConfigError]) -> TenantDirectoryConfig? {
        guard let entries = node.mapping(&errors) else { return nil }
        node.checkKeys(entries, known: ["file", "upstream", "refresh"], &errors)
        func value(_ key: String) -> ConfigNode? { entries.first { $0.key == key }?.value }
        if let profile, profile != .cipp {
            errors.append(node.error("tenant_directory applies only with upstream.profile: cipp; the profile is \(profile)"))
            return nil
        }
        switch (value("file"), value("upstream")) {
        case (let file?, nil):
            if let refresh = value("refresh") {
                errors.append(refresh.error("refresh applies to upstream:; a file is read again at each reload"))
            }
            guard let path = file.string(&errors) else { return nil }
            let resolved = Self.resolve(path, relativeTo: file.file)
            guard let data = FileManager.default.contents(atPath: resolved) else {
                errors.append(file.error("cannot read \(resolved): expected CIPP's tenant list exported as JSON (ListTenants)"))
                return nil
            }
            switch TenantDirectory.parse(data, source: resolved) {
            case .success(let directory): return .file(path: resolved, directory: directory)
            case .failure(let error):
                errors.append(file.error(error.description))
                return nil
            }
        case (nil, let upstream?):
            guard let path = upstream.string(&errors) else { return nil }
            guard path.hasPrefix("/"), !path.contains("#"), !path.contains(" ") else {
                errors.append(upstream.error("expected a path on the upstream, e.g. /api/ListTenants"))
                return nil
            }
            var refresh = ConfigDuration.minutes(15)
            if let node = value("refresh"), let duration = node.duration(&errors) {
                if duration.nanoseconds < ConfigDuration.seconds(10).nanoseconds {
                    errors.append(node.error("expected at least 10s: the tenant list is CIPP's own, fetched from it"))
                } else {
                    refresh = duration
                }
            }
            return .upstream(path: path, refresh: refresh)
        case (nil, nil):
            errors.append(node.error("expected file: (an export of CIPP's ListTenants) or upstream: /api/ListTenants"))
            return nil
        case (_?, _?):
            errors.append(node.error("give file: or upstream:, not both"))
            return nil
        }
    }

    /// Under `profile: cipp`, a role's `tenants` can be enforced only where both forms of a
    /// tenant (id and domain) are known: a `block` list without a directory is refused, and
    /// names a file directory does not hold are warned about.
    static func checkTenantRules(
        _ roles: [RoleConfig],
        _ node: ConfigNode?,
        directory: TenantDirectoryConfig?,
        _ errors: inout [ConfigError],
        _ warnings: inout [ConfigError]
    ) {
        for role in roles {
            guard let rules = role.tenants else { continue }
            let key = "roles.\(role.name).tenants"
            switch directory {
            case nil:
                if !rules.block.isEmpty {
                    errors.append(
                        ConfigError(
                            role.location,
                            key: "\(key).block",
                            "a block list needs tenant_directory: CIPP knows a tenant by its id and by its domain, and a request naming the other form would pass; add tenant_directory: {upstream: /api/ListTenants} or {file: tenants.json}"
                        )
                    )
                } else if rules.allow?.isEmpty == false {
                    warnings.append(
                        ConfigError(
                            role.location,
                            key: "\(key).allow",
                            "without tenant_directory, tenants are compared as written: a request naming an allowed tenant by its other form (id or domain) is refused"
                        )
                    )
                }
            case .file(_, let loaded)?:
                for name in (rules.allow ?? []) + rules.block where loaded.resolve(name) == nil {
                    warnings.append(ConfigError(role.location, key: key, "'\(name)' is not in the tenant directory \(loaded.source)"))
                }
            case .upstream?:
                break
            }
        }
    }
}
