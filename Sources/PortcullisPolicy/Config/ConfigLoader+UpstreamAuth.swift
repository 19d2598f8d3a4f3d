extension ConfigLoader {
    static let upstreamAuthKeys = ["header", "client_credentials"]
    static let upstreamAuthHeaderKeys = ["name", "value_file"]
    static let clientCredentialsKeys = ["token_url", "client_id", "client_secret_file", "scope"]

    /// `upstream.auth`: exactly one of `header` or `client_credentials`. Credential files must be
    /// readable now; their contents are checked but never reported.
    static func upstreamAuth(_ node: ConfigNode, _ errors: inout [ConfigError]) -> UpstreamAuthConfig? {
        guard let entries = node.mapping(&errors) else { return nil }
        node.checkKeys(entries, known: Self.upstreamAuthKeys, &errors)
        let header = entries.first { $0.key == "header" }
        let clientCredentials = entries.first { $0.key == "client_credentials" }
        switch (header, clientCredentials) {
        case (nil, nil):
            errors.append(node.error("expected header: {name, value_file} or client_credentials: {token_url, client_id, client_secret_file, scope}"))
            return nil
        case (.some, .some(let second)):
            errors.append(ConfigError(second.keyLocation, key: node.childPath(second.key), "give either header or client_credentials, not both"))
            return nil
        case (.some(let header), nil):
            return Self.headerCredential(header.value, &errors).map(UpstreamAuthConfig.header)
        case (nil, .some(let credentials)):
            return Self.clientCredentials(credentials.value, &errors).map(UpstreamAuthConfig.clientCredentials)
        }
    }

    private static func headerCredential(_ node: ConfigNode, _ errors: inout [ConfigError]) -> UpstreamAuthConfig.HeaderCredential? {
        guard let entries = node.mapping(&errors) else { return nil }
        node.checkKeys(entries, known: Self.upstreamAuthHeaderKeys, &errors)
        func value(_ key: String) -> ConfigNode? { entries.first { $0.key == key }?.value }
        let errorCount = errors.count
        var name = ""
        if let nameNode = value("name") {
            if let text = nameNode.string(&errors) {
                if let problem = UpstreamAuthConfig.headerNameProblem(text) { errors.append(nameNode.error(problem)) }
                name = text
            }
        } else {
            errors.append(node.error("missing name, the header to send, e.g. \"x-functions-key\""))
        }
        let file = Self.credentialFile(value("value_file"), key: "value_file", in: node, &errors)
        guard errors.count == errorCount, let file else { return nil }
        return UpstreamAuthConfig.HeaderCredential(name: name, valueFile: file)
    }

    private static func clientCredentials(_ node: ConfigNode, _ errors: inout [ConfigError]) -> UpstreamAuthConfig.ClientCredentials? {
        guard let entries = node.mapping(&errors) else { return nil }
        node.checkKeys(entries, known: Self.clientCredentialsKeys, &errors)
        func value(_ key: String) -> ConfigNode? { entries.first { $0.key == key }?.value }
        let errorCount = errors.count
        var tokenURL = ""
        if let urlNode = value("token_url") {
            if let text = urlNode.string(&errors) {
                if let problem = Self.tokenURLProblem(text) { errors.append(urlNode.error(problem)) }
                tokenURL = text
            }
        } else {
            errors.append(node.error("missing token_url, e.g. \"https://login.microsoftonline.com/TENANT/oauth2/v2.0/token\""))
        }
        var clientID = ""
        if let idNode = value("client_id") {
            if let text = idNode.string(&errors) {
                if text.isEmpty { errors.append(idNode.error("expected the client id the token endpoint knows")) }
                clientID = text
            }
        } else {
            errors.append(node.error("missing client_id"))
        }
        var scope: String?
        if let scopeNode = value("scope"), let text = scopeNode.string(&errors) {
            if text.isEmpty { errors.append(scopeNode.error("expected a scope, e.g. \"api://APPID/.default\", or leave scope out")) }
            scope = text
        }
        let file = Self.credentialFile(value("client_secret_file"), key: "client_secret_file", in: node, &errors)
        guard errors.count == errorCount, let file else { return nil }
        return UpstreamAuthConfig.ClientCredentials(tokenURL: tokenURL, clientID: clientID, clientSecretFile: file, scope: scope)
    }

    /// A required credential file: resolved, and readable and well-formed now.
    private static func credentialFile(
        _ fileNode: ConfigNode?,
        key: String,
        in node: ConfigNode,
        _ errors: inout [ConfigError]
    ) -> String? {
        guard let fileNode else {
            errors.append(node.error("missing \(key) (a file holding the value, so that it is not written in the config)"))
            return nil
        }
        guard let path = fileNode.string(&errors) else { return nil }
        guard !path.isEmpty else {
            errors.append(fileNode.error("expected a file path"))
            return nil
        }
        let resolved = Self.resolve(path, relativeTo: fileNode.file)
        if case .failure(let problem) = UpstreamAuthConfig.readCredentialFile(resolved) {
            errors.append(fileNode.error("\(problem)"))
            return nil
        }
        return resolved
    }

    /// The token endpoint gets the client secret: https only, plain http only to loopback.
    static func tokenURLProblem(_ url: String) -> String? {
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
            return "expected an https:// URL"
        }
        if url.contains("#") { return "a token URL has no fragment (#)" }
        guard let problem = Self.keyURLProblem(url) else { return nil }
        return problem.replacingOccurrences(of: "keys must be fetched", with: "the client secret must be sent")
            .replacingOccurrences(of: "a key URL", with: "a token URL")
    }
}
