import Foundation
import Testing
import Yams

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks of `deploy/`: the Kubernetes manifests parse and agree with each other and with the
/// Portcullis config they carry, the systemd unit passes `systemd-analyze verify`, and the
/// Containerfile builds the way README.md says and copies nothing that a clone lacks.
@Suite("deploy/")
struct DeployTests {
    // MARK: - Kubernetes

    @Test("every deploy/kubernetes/*.yaml parses and has apiVersion, kind and metadata.name")
    func manifestsParse() throws {
        let files = try Repo.kubernetesFiles()
        #expect(files.count >= 7, "expected at least 7 manifests, found \(files)")
        for file in files {
            let documents = try Repo.documents("deploy/kubernetes/\(file)")
            #expect(!documents.isEmpty, "\(file): no YAML document")
            for (index, document) in documents.enumerated() {
                let place = "\(file) document \(index + 1)"
                #expect(string(document, "apiVersion")?.isEmpty == false, "\(place): no apiVersion")
                #expect(string(document, "kind")?.isEmpty == false, "\(place): no kind")
                #expect(string(document, "metadata", "name")?.isEmpty == false, "\(place): no metadata.name")
            }
        }
    }

    @Test("kustomization.yaml lists exactly the manifests present but the placeholder Secret")
    func kustomizationListsEveryFile() throws {
        let kustomization = try Repo.single("deploy/kubernetes/kustomization.yaml")
        let resources = try #require(value(kustomization, "resources") as? [Any]).compactMap { $0 as? String }
        // Applying secret.yaml would replace the operator's real Secret with placeholders.
        #expect(!resources.contains("secret.yaml"))
        let present = try Repo.kubernetesFiles().filter { $0 != "kustomization.yaml" && $0 != "secret.yaml" }
        #expect(resources.count == Set(resources).count, "a resource is listed twice: \(resources)")
        #expect(Set(resources) == Set(present), "listed \(resources.sorted()), present \(present)")
    }

    @Test("the Deployment: replicas, probes on the admin port, drain time, non-root, mounts")
    func deployment() throws {
        let manifests = try Manifests.load()
        let deployment = manifests.deployment
        let pod = try #require(value(deployment, "spec", "template", "spec") as? [String: Any])
        let container = try #require((value(pod, "containers") as? [Any])?.first as? [String: Any])
        let config = try manifests.portcullisConfig()

        #expect((int(deployment, "spec", "replicas") ?? 0) >= 2)

        // The probes reach the admin listener the config opens.
        let adminAddress = try #require(string(config, "admin", "address"))
        let adminPort = try #require(port(of: adminAddress))
        #expect(adminPort == 9090)
        #expect(!adminAddress.hasPrefix("127.") && !adminAddress.hasPrefix("[::1]"), "the kubelet probes the pod IP, not loopback")
        let ports = (value(container, "ports") as? [Any] ?? []).compactMap { $0 as? [String: Any] }
        func containerPort(named name: String) -> Int? {
            ports.first { string($0, "name") == name }.flatMap { int($0, "containerPort") }
        }
        #expect(containerPort(named: "admin") == adminPort)
        let listen = try #require(value(config, "listen") as? [Any])
        let gatewayPort = try #require((listen.first as? [String: Any]).flatMap { string($0, "address") }.flatMap(port(of:)))
        #expect(containerPort(named: "gateway") == gatewayPort)

        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            #expect(string(container, probe, "httpGet", "path") == path, "\(probe) path")
            let probePort = value(container, probe, "httpGet", "port")
            let resolved = (probePort as? Int) ?? (probePort as? String).flatMap { containerPort(named: $0) }
            #expect(resolved == adminPort, "\(probe) must use the admin port \(adminPort), has \(String(describing: probePort))")
        }

        // SIGTERM comes after preStop; both must fit in the grace period.
        let grace = try #require(int(pod, "terminationGracePeriodSeconds"))
        let drain = try seconds(string(config, "limits", "drain_timeout") ?? "30s")
        let preStop = try #require(value(container, "lifecycle", "preStop", "exec", "command") as? [Any])
        #expect(preStop.first as? String == "/bin/sleep")
        let sleep = try #require((preStop.last as? String).flatMap(Int.init) ?? (preStop.last as? Int))
        #expect(sleep > 0)
        #expect(grace > 30, "terminationGracePeriodSeconds \(grace) must exceed the default drain_timeout 30s")
        #expect(Double(grace) > drain + Double(sleep), "grace \(grace)s <= drain_timeout \(drain)s + preStop \(sleep)s")

        // Non-root, read-only root filesystem, resources.
        #expect(bool(pod, "securityContext", "runAsNonRoot") == true || bool(container, "securityContext", "runAsNonRoot") == true)
        #expect((int(pod, "securityContext", "runAsUser") ?? 0) != 0)
        #expect(bool(container, "securityContext", "readOnlyRootFilesystem") == true)
        #expect(bool(container, "securityContext", "allowPrivilegeEscalation") == false)
        #expect(value(container, "resources", "requests", "memory") != nil)
        #expect(value(container, "resources", "limits", "memory") != nil)

        // Mounts: the ConfigMap at /etc/portcullis, the Secret where the config looks, state.
        let volumes = (value(pod, "volumes") as? [Any] ?? []).compactMap { $0 as? [String: Any] }
        let mounts = (value(container, "volumeMounts") as? [Any] ?? []).compactMap { $0 as? [String: Any] }
        func volume(mountedAt path: String) -> [String: Any]? {
            guard let name = mounts.first(where: { string($0, "mountPath") == path }).flatMap({ string($0, "name") }) else { return nil }
            return volumes.first { string($0, "name") == name }
        }
        let configVolume = try #require(volume(mountedAt: "/etc/portcullis"), "nothing mounted at /etc/portcullis")
        #expect(string(configVolume, "configMap", "name") == string(manifests.configMap, "metadata", "name"))
        #expect(value(container, "args") as? [String] == ["serve", "--config", "/etc/portcullis"])

        let secretMount = try #require(
            mounts.first { mount in string(mount, "name").map { name in volumes.contains { string($0, "name") == name && value($0, "secret") != nil } } == true }
        )
        let secretPath = try #require(string(secretMount, "mountPath"))
        let secretVolume = try #require(volume(mountedAt: secretPath))
        #expect(string(secretVolume, "secret", "secretName") == string(manifests.secret, "metadata", "name"))
        let secretKeys = Set(((value(manifests.secret, "stringData") ?? value(manifests.secret, "data")) as? [String: Any] ?? [:]).keys)
        let builtin = (value(config, "issuers") as? [Any] ?? []).compactMap { $0 as? [String: Any] }.first { bool($0, "builtin") == true }
        var secretFiles = [try #require(string(config, "admin", "token_file"))]
        if let builtin { secretFiles.append(try #require(string(builtin, "signing_key_file"))) }
        for file in secretFiles {
            #expect(file.hasPrefix(secretPath + "/"), "\(file) is not under the Secret's mount \(secretPath)")
            #expect(secretKeys.contains(String(file.dropFirst(secretPath.count + 1))), "\(file): no such key in the Secret \(secretKeys.sorted())")
        }

        // Several replicas share one PostgreSQL store; its URL and CA come from the Secret.
        let urlFile = try #require(string(config, "store", "postgres", "url_file"), "the replicas need store.postgres")
        let caFile = try #require(string(config, "store", "postgres", "tls", "ca_file"), "PostgreSQL off the pod needs tls")
        for file in [urlFile, caFile] {
            #expect(file.hasPrefix(secretPath + "/"), "\(file) is not under the Secret's mount \(secretPath)")
            #expect(secretKeys.contains(String(file.dropFirst(secretPath.count + 1))), "\(file): no such key in the Secret")
        }
    }

    @Test("Service, PodDisruptionBudget and HorizontalPodAutoscaler select the Deployment's pods; 9090 stays private")
    func serviceBudgetAutoscaler() throws {
        let manifests = try Manifests.load()
        let podLabels = try #require(value(manifests.deployment, "spec", "template", "metadata", "labels") as? [String: Any])
        func selects(_ selector: [String: Any]?) -> Bool {
            guard let selector, !selector.isEmpty else { return false }
            return selector.allSatisfy { key, wanted in podLabels[key] as? String == wanted as? String }
        }

        #expect(selects(value(manifests.service, "spec", "selector") as? [String: Any]))
        let servicePorts = (value(manifests.service, "spec", "ports") as? [Any] ?? []).compactMap { $0 as? [String: Any] }
        #expect(servicePorts.contains { int($0, "port") == 8080 })
        for servicePort in servicePorts {
            #expect(int(servicePort, "port") != 9090 && int(servicePort, "targetPort") != 9090 && string(servicePort, "targetPort") != "admin",
                    "the admin listener must not be on the gateway Service")
        }

        #expect(string(manifests.pdb, "apiVersion") == "policy/v1")
        #expect(selects(value(manifests.pdb, "spec", "selector", "matchLabels") as? [String: Any]))

        #expect(string(manifests.hpa, "apiVersion") == "autoscaling/v2")
        #expect(string(manifests.hpa, "spec", "scaleTargetRef", "kind") == "Deployment")
        #expect(string(manifests.hpa, "spec", "scaleTargetRef", "name") == string(manifests.deployment, "metadata", "name"))
        #expect((int(manifests.hpa, "spec", "minReplicas") ?? 0) >= 2)
        #expect((int(manifests.hpa, "spec", "maxReplicas") ?? 0) >= (int(manifests.hpa, "spec", "minReplicas") ?? 0))
    }

    @Test("the Secret holds placeholders only")
    func secretIsPlaceholders() throws {
        let secret = try Manifests.load().secret
        let data = try #require(value(secret, "stringData") as? [String: Any])
        for (key, text) in data {
            #expect((text as? String)?.contains("REPLACE-ME") == true, "\(key) must be a marked placeholder")
        }
    }

    @Test("the ConfigMap's portcullis.yaml parses as a Portcullis config")
    func configMapParses() throws {
        let config = try Manifests.load().portcullisConfig()
        for key in ["listen", "upstream", "admin", "issuers", "clients", "roles"] {
            #expect(config[key] != nil, "no \(key)")
        }
    }

    @Test(
        "the ConfigMap's portcullis.yaml passes `portcullis check`",
        .enabled(if: FileManager.default.isExecutableFile(atPath: Repo.debugBinary), "no \(Repo.debugBinary): build it first")
    )
    func configMapPassesCheck() throws {
        let manifests = try Manifests.load()
        let text = try #require(value(manifests.configMap, "data", "portcullis.yaml") as? String)
        let directory = try Repo.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // `check` reads the files the config names (the signing key must be readable): point
        // the Secret's mount path at stand-ins in the temporary directory; nothing else changes.
        let secretPath = "/run/secrets/portcullis"
        let secrets = directory + "/secrets"
        try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true)
        let data = value(manifests.secret, "stringData") as? [String: Any] ?? [:]
        for (key, placeholder) in data {
            try ((placeholder as? String) ?? "").write(toFile: "\(secrets)/\(key)", atomically: true, encoding: .utf8)
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") {
            _ = try Repo.run("/usr/bin/openssl", ["genpkey", "-algorithm", "ed25519", "-out", "\(secrets)/signing.pem"])
        }
        let config = directory + "/config"
        try FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
        try text.replacingOccurrences(of: secretPath + "/", with: secrets + "/")
            .write(toFile: config + "/portcullis.yaml", atomically: true, encoding: .utf8)

        let result = try Repo.run(Repo.debugBinary, ["check", config])
        #expect(result.status == 0, "portcullis check failed:\n\(result.output)")
        #expect(result.output.contains("ok:"), "\(result.output)")
    }

    // MARK: - systemd

    @Test(
        "systemd-analyze verify accepts the unit with no warning about it",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze"), "no /usr/bin/systemd-analyze on this machine")
    )
    func systemdVerify() throws {
        let text = try Repo.read("deploy/systemd/portcullis.service")
        // verify refuses an ExecStart binary that does not exist; unless it is installed, check a
        // copy whose ExecStart names a binary that exists here, all else unchanged.
        let installed = "/usr/local/bin/portcullis"
        var unit = Repo.root + "/deploy/systemd/portcullis.service"
        var directory: String?
        if !FileManager.default.isExecutableFile(atPath: installed) {
            let standIn = FileManager.default.isExecutableFile(atPath: Repo.debugBinary) ? Repo.debugBinary : "/bin/true"
            let copy = try Repo.temporaryDirectory()
            directory = copy
            unit = copy + "/portcullis.service"
            #expect(text.contains("ExecStart=\(installed) "))
            try text.replacingOccurrences(of: "ExecStart=\(installed) ", with: "ExecStart=\(standIn) ")
                .write(toFile: unit, atomically: true, encoding: .utf8)
        }
        defer { if let directory { try? FileManager.default.removeItem(atPath: directory) } }

        let result = try Repo.run("/usr/bin/systemd-analyze", ["verify", unit])
        #expect(result.status == 0, "systemd-analyze verify:\n\(result.output)")
        // verify exits 0 on unknown keys and bad values too; it prints them, naming the file.
        let complaints = result.output.split(separator: "\n").filter { $0.contains("portcullis.service") }
        #expect(complaints.isEmpty, "systemd-analyze verify:\n\(complaints.joined(separator: "\n"))")
    }

    @Test("the unit reloads with SIGHUP, drains within TimeoutStopSec, and is sandboxed; logrotate signals SIGUSR1")
    func systemdUnitAndLogrotate() throws {
        let unit = try Repo.read("deploy/systemd/portcullis.service")
        var settings: [String: [String]] = [:]
        for line in unit.split(separator: "\n") where !line.hasPrefix("#") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            settings[String(line[..<equals]), default: []].append(String(line[line.index(after: equals)...]))
        }
        #expect(settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"])
        #expect(settings["ExecStart"]?.first?.hasSuffix("serve --config /etc/portcullis") == true)
        #expect(settings["DynamicUser"] == ["yes"])
        #expect(settings["ProtectSystem"] == ["strict"])
        #expect(settings["NoNewPrivileges"] == ["yes"])
        #expect(settings["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"])
        #expect(settings["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"])
        #expect(settings["StateDirectory"] == ["portcullis"])
        // The store is written there, and only there.
        #expect(settings["StateDirectoryMode"] == ["0700"])
        #expect(settings["ReadOnlyPaths"] == ["/etc/portcullis"])
        let stop = try seconds(try #require(settings["TimeoutStopSec"]?.first))
        #expect(stop > 30, "TimeoutStopSec must exceed the default drain_timeout of 30s")

        let logrotate = try Repo.read("deploy/systemd/portcullis.logrotate")
        let directives = logrotate.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.hasPrefix("#") }
        #expect(directives.contains { $0.contains("systemctl kill") && $0.contains("--signal=SIGUSR1") && $0.contains("portcullis.service") })
        #expect(!directives.contains("copytruncate"), "the gateway reopens on SIGUSR1: no copytruncate")
        #expect(directives.contains("nocreate"), "the gateway creates the new file itself")
    }

    // MARK: - Container

    @Test("the Containerfile's swift build is README.md's release-build command")
    func containerBuildIsReadmeCommand() throws {
        let builds = try Repo.containerInstructions().filter { $0.keyword == "RUN" && $0.arguments.hasPrefix("swift build") }
        #expect(builds.count == 1, "expected one RUN swift build, found \(builds.map(\.arguments))")

        let readme = try Repo.read("README.md")
        let lines = readme.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = try #require(lines.firstIndex { $0.hasPrefix("## ") && $0.lowercased().contains("release build") }, "README.md has no Release build section")
        let section = lines[(start + 1)...].prefix { !$0.hasPrefix("## ") }
        let commands = section.map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.hasPrefix("swift build") }
        #expect(commands.count == 1, "README's Release build section should give one swift build command: \(commands)")
        let command = try #require(commands.first)
        #expect(command.contains("-c release"))
        #expect(builds.first?.arguments == command)
    }

    @Test("the Containerfile copies only tracked paths: nothing gitignored, nothing missing from a clone")
    func containerCopiesNoIgnoredFile() throws {
        let ignore = try GitIgnore(Repo.read(".gitignore"))
        #expect(!ignore.patterns.isEmpty)
        let copies = try Repo.containerInstructions().filter { $0.keyword == "COPY" || $0.keyword == "ADD" }
        #expect(!copies.isEmpty)
        var sources: [String] = []
        for copy in copies {
            let words = copy.arguments.split(separator: " ").map(String.init)
            if words.contains(where: { $0.hasPrefix("--from") }) { continue }  // from a build stage
            let operands = words.filter { !$0.hasPrefix("--") }
            #expect(operands.count >= 2, "COPY needs a source and a destination: \(copy.arguments)")
            sources += operands.dropLast()
        }
        #expect(!sources.isEmpty)
        for source in sources {
            let path = source.hasPrefix("./") ? String(source.dropFirst(2)) : source
            #expect(!path.hasPrefix("/") && !path.contains(".."), "\(source) is outside the build context")
            var isDirectory: ObjCBool = false
            #expect(FileManager.default.fileExists(atPath: Repo.root + "/" + path, isDirectory: &isDirectory), "COPY \(source): no such path")
            #expect(!ignore.ignores(path, isDirectory: isDirectory.boolValue), "COPY \(source): gitignored, so absent from a clone")
        }

        // Directories copied whole (Sources, Tests, ...) may hold ignored local files: the ignore
        // file beside the Containerfile keeps every .gitignore pattern out of the context.
        let dockerignore = Set(
            try Repo.read("deploy/container/Containerfile.dockerignore").split(separator: "\n")
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        )
        for pattern in ignore.patterns {
            #expect(dockerignore.contains(pattern.dockerignoreForm), "Containerfile.dockerignore lacks \(pattern.dockerignoreForm) (.gitignore: \(pattern.text))")
        }
    }
}

// MARK: - The release link

@Suite("Release link")
struct ReleaseLinkTests {
    @Test("Package.swift hands lld Sources/portcullis/link.order, a list of this gateway's functions")
    func theLinkOrderIsThereAndUsed() throws {
        let manifest = try Repo.read("Package.swift")
        #expect(manifest.contains("--symbol-ordering-file="))
        #expect(manifest.contains("/Sources/portcullis/link.order"))
        #expect(manifest.contains("exclude: [\"link.order\"]"), "the list is no source of the target")

        let text = try Repo.read("Sources/portcullis/link.order")
        let names = text.split(separator: "\n").map(String.init)
        #expect(names.count > 1000, "\(names.count) functions: Benchmarks/link-order lists every function a serving gateway runs")
        #expect(Set(names).count == names.count, "a function listed twice")
        let malformed = names.filter { $0.contains(" ") || $0.contains("/") || $0.contains("[") }
        #expect(malformed.isEmpty, "not symbol names: \(malformed.prefix(3))")
        // Made from a gateway that served requests: the request path is near the top.
        #expect(names.prefix(200).contains { $0.hasPrefix("$s15PortcullisProxy") })
        #expect(names.contains { $0.hasPrefix("$s14PortcullisAuth18TokenAuthenticator") })
        #expect(FileManager.default.isExecutableFile(atPath: Repo.root + "/Benchmarks/link-order"))
    }
}

// MARK: - The repository

enum Repo {
    /// Tests/DeployTests/DeployTests.swift -> the repository root.
    static let root: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let debugBinary = root + "/.build/debug/portcullis"

    static func read(_ relative: String) throws -> String {
        try String(contentsOfFile: root + "/" + relative, encoding: .utf8)
    }

    static func kubernetesFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: root + "/deploy/kubernetes").filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
            .sorted()
    }

    /// Every YAML document of a file, each a mapping.
    static func documents(_ relative: String) throws -> [[String: Any]] {
        var sequence = try Yams.load_all(yaml: read(relative))
        var documents: [[String: Any]] = []
        while let document = sequence.next() {
            documents.append(try #require(document as? [String: Any], "\(relative): a document is not a mapping"))
        }
        if let error = sequence.error { throw error }
        return documents
    }

    static func single(_ relative: String) throws -> [String: Any] {
        let documents = try documents(relative)
        return try #require(documents.count == 1 ? documents.first : nil, "\(relative): expected one YAML document, found \(documents.count)")
    }

    /// The Containerfile's instructions: comments dropped, continuation lines joined.
    static func containerInstructions() throws -> [(keyword: String, arguments: String)] {
        var instructions: [(String, String)] = []
        var pending = ""
        for raw in try read("deploy/container/Containerfile").split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") || (line.isEmpty && pending.isEmpty) { continue }
            if line.hasSuffix("\\") {
                pending += line.dropLast().trimmingCharacters(in: .whitespaces) + " "
                continue
            }
            let whole = (pending + line).trimmingCharacters(in: .whitespaces)
            pending = ""
            if whole.isEmpty { continue }
            let keyword = whole.prefix { $0 != " " }
            let arguments = whole.dropFirst(keyword.count).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            instructions.append((keyword.uppercased(), arguments))
        }
        return instructions
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "/portcullis-deploy-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs a program to completion: its exit status and its stdout and stderr together.
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// The manifests the cross-checks need, one of each kind.
struct Manifests {
    var deployment: [String: Any] = [:]
    var configMap: [String: Any] = [:]
    var secret: [String: Any] = [:]
    var service: [String: Any] = [:]
    var pdb: [String: Any] = [:]
    var hpa: [String: Any] = [:]

    static func load() throws -> Manifests {
        var byKind: [String: [[String: Any]]] = [:]
        for file in try Repo.kubernetesFiles() {
            for document in try Repo.documents("deploy/kubernetes/\(file)") {
                byKind[string(document, "kind") ?? "", default: []].append(document)
            }
        }
        func one(_ kind: String) throws -> [String: Any] {
            let found = byKind[kind] ?? []
            return try #require(found.count == 1 ? found.first : nil, "expected one \(kind), found \(found.count)")
        }
        return Manifests(
            deployment: try one("Deployment"),
            configMap: try one("ConfigMap"),
            secret: try one("Secret"),
            service: try one("Service"),
            pdb: try one("PodDisruptionBudget"),
            hpa: try one("HorizontalPodAutoscaler")
        )
    }

    /// The Portcullis config carried by the ConfigMap (its one `*.yaml` key).
    func portcullisConfig() throws -> [String: Any] {
        let data = try #require(value(self.configMap, "data") as? [String: Any])
        let files = data.keys.filter { $0.hasSuffix(".yaml") }
        #expect(files == ["portcullis.yaml"], "the ConfigMap's *.yaml keys: \(files)")
        let text = try #require(data["portcullis.yaml"] as? String)
        return try #require(try Yams.load(yaml: text) as? [String: Any], "portcullis.yaml is not a mapping")
    }
}

/// The subset of .gitignore this repository uses: `name`, `*.ext`, `dir/`, `/anchored/path/`.
struct GitIgnore {
    struct Pattern {
        var text: String
        var glob: String
        var anchored: Bool
        var directoryOnly: Bool

        /// The same exclusion in .dockerignore syntax (always relative to the context root).
        var dockerignoreForm: String { self.anchored ? self.glob : "**/" + self.glob }
    }

    var patterns: [Pattern] = []

    init(_ text: String) {
        for raw in text.split(separator: "\n") {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            let directoryOnly = line.hasSuffix("/")
            if directoryOnly { line.removeLast() }
            let anchored = line.contains("/")  // a leading or middle slash anchors it at the root
            if line.hasPrefix("/") { line.removeFirst() }
            self.patterns.append(Pattern(text: String(raw), glob: line, anchored: anchored, directoryOnly: directoryOnly))
        }
    }

    /// Whether git would ignore `path` (relative to the root): it or one of its parent
    /// directories matches a pattern.
    func ignores(_ path: String, isDirectory: Bool) -> Bool {
        let components = path.split(separator: "/").map(String.init)
        for index in components.indices {
            let prefix = components[...index].joined(separator: "/")
            let isDirectoryHere = index < components.count - 1 || isDirectory
            for pattern in self.patterns where !pattern.directoryOnly || isDirectoryHere {
                let subject = pattern.anchored ? prefix : components[index]
                if fnmatch(pattern.glob, subject, FNM_PATHNAME) == 0 { return true }
            }
        }
        return false
    }
}

// MARK: - Reading parsed YAML

/// The value at a path of mapping keys.
func value(_ root: Any?, _ path: String...) -> Any? {
    var current = root
    for key in path {
        guard let mapping = current as? [String: Any] else { return nil }
        current = mapping[key]
    }
    return current
}

func string(_ root: Any?, _ path: String...) -> String? {
    var current = root
    for key in path { current = (current as? [String: Any])?[key] }
    return current as? String
}

func int(_ root: Any?, _ path: String...) -> Int? {
    var current = root
    for key in path { current = (current as? [String: Any])?[key] }
    return (current as? Int) ?? (current as? String).flatMap { Int($0) }
}

func bool(_ root: Any?, _ path: String...) -> Bool? {
    var current = root
    for key in path { current = (current as? [String: Any])?[key] }
    return current as? Bool
}

/// The port of `host:port` or `[v6]:port`.
func port(of address: String) -> Int? {
    guard let colon = address.lastIndex(of: ":") else { return nil }
    return Int(address[address.index(after: colon)...])
}

struct DurationError: Error, CustomStringConvertible {
    var description: String
}

/// `500ms`, `30s`, `10m`, `1h` (Portcullis durations; systemd's `45s` as well) in seconds.
func seconds(_ text: String) throws -> Double {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    for (suffix, factor) in units where text.hasSuffix(suffix) {
        if let number = Double(text.dropLast(suffix.count)) { return number * factor }
    }
    throw DurationError(description: "'\(text)' is not a duration such as 30s")
}
