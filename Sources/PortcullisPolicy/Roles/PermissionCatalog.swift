import Foundation

/// The `catalog:` section: an OpenAPI 3 document whose operations name the permission they need
/// in a vendor field (CIPP's `x-cipp-role`), read once per load.
///
/// Each operation (`get`, `put`, `post`, `delete`, `patch`, `head`, `options`) becomes one entry;
/// a `get` also covers HEAD unless the path has its own `head` operation, because HEAD runs the
/// GET handler without the body and so grants nothing GET does not. Path templates (`{id}`)
/// become `*`. Operations without the permission field are kept (for their tenant flag) but no
/// role can be granted them through `permissions`.
public struct PermissionCatalog: Sendable {
    public struct Operation: Sendable, Hashable {
        /// The path as the document writes it, e.g. `/api/ListUsers`.
        public var path: String
        public var pattern: PathPattern
        /// Upper-case methods: the operation's, plus HEAD for a GET (see above).
        public var methods: [String]
        /// The value of the permission field; nil when the operation has none.
        public var permission: String?
        /// The any-tenant field is `true`: the endpoint has no tenant check.
        public var anyTenant: Bool
    }

    /// The document's path, as resolved from the config file's folder.
    public var file: String
    public var permissionField: String
    public var anyTenantField: String
    /// Sorted by path, then method, so rules expand in a stable order.
    public var operations: [Operation]

    public init(file: String, permissionField: String, anyTenantField: String, operations: [Operation]) {
        self.file = file
        self.permissionField = permissionField
        self.anyTenantField = anyTenantField
        self.operations = operations
    }

    /// The distinct permission names, sorted.
    public var permissions: [String] {
        Array(Set(self.operations.compactMap(\.permission))).sorted()
    }

    /// The file name without its folder, for messages.
    public var fileName: String { (self.file as NSString).lastPathComponent }

    static let operationMethods = ["get", "put", "post", "delete", "patch", "head", "options"]

    /// Reads and parses the document; on failure, every problem found, each a sentence.
    public static func load(file: String, permissionField: String, anyTenantField: String) -> Result<PermissionCatalog, CatalogError> {
        guard let data = FileManager.default.contents(atPath: file) else {
            return .failure(CatalogError(.unreadable, problems: ["cannot read the OpenAPI document \(file)"]))
        }
        return Self.parse(data, file: file, permissionField: permissionField, anyTenantField: anyTenantField)
    }

    /// Parses an OpenAPI 3 JSON document.
    public static func parse(_ data: Data, file: String, permissionField: String, anyTenantField: String) -> Result<PermissionCatalog, CatalogError> {
        let name = (file as NSString).lastPathComponent
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data)
        } catch {
            return .failure(CatalogError(.invalidDocument, problems: ["\(name) is not valid JSON: \(error.localizedDescription)"]))
        }
        guard let document = json as? [String: Any] else {
            return .failure(CatalogError(.invalidDocument, problems: ["\(name): expected a JSON object (an OpenAPI 3 document)"]))
        }
        guard let version = document["openapi"] as? String, version.hasPrefix("3.") else {
            return .failure(CatalogError(.invalidDocument, problems: ["\(name): expected an OpenAPI 3 document (\"openapi\": \"3.x\")"]))
        }
        guard let paths = document["paths"] as? [String: Any] else {
            return .failure(CatalogError(.invalidDocument, problems: ["\(name): expected \"paths\", an object of path items"]))
        }
        var problems: [String] = []
        var operations: [Operation] = []
        for path in paths.keys.sorted() {
            guard let item = paths[path] as? [String: Any] else {
                problems.append("\(name) \(path): expected an object of operations")
                continue
            }
            let pattern: PathPattern
            switch PathPattern.fromOpenAPIPath(path) {
            case .success(let parsed): pattern = parsed
            case .failure(let error):
                problems.append("\(name) \(path): \(error)")
                continue
            }
            for method in Self.operationMethods {
                guard let value = item[method] else { continue }
                guard let operation = value as? [String: Any] else {
                    problems.append("\(name) \(path) \(method): expected an operation object")
                    continue
                }
                var permission: String?
                if let field = operation[permissionField] {
                    guard let text = field as? String, !text.isEmpty else {
                        problems.append("\(name) \(path) \(method): \(permissionField) must be a non-empty string")
                        continue
                    }
                    permission = text
                }
                var methods = [method.uppercased()]
                if method == "get", item["head"] == nil { methods.append("HEAD") }
                operations.append(
                    Operation(
                        path: path,
                        pattern: pattern,
                        methods: methods,
                        permission: permission,
                        anyTenant: (operation[anyTenantField] as? Bool) == true
                    )
                )
            }
        }
        if operations.isEmpty, problems.isEmpty {
            problems.append("\(name) has no operations")
        } else if problems.isEmpty, !operations.contains(where: { $0.permission != nil }) {
            let fields = Set(
                paths.values.compactMap { $0 as? [String: Any] }
                    .flatMap { item in Self.operationMethods.compactMap { item[$0] as? [String: Any] } }
                    .flatMap(\.keys)
                    .filter { $0.hasPrefix("x-") }
            ).sorted()
            let hint = fields.isEmpty ? "no operation has an x- field" : "fields found: \(fields.joined(separator: ", "))"
            return .failure(
                CatalogError(
                    .permissionFieldUnused,
                    problems: ["no operation of \(name) carries the permission field '\(permissionField)' (\(hint))"]
                )
            )
        }
        guard problems.isEmpty else { return .failure(CatalogError(.invalidOperations, problems: problems)) }
        return .success(
            PermissionCatalog(file: file, permissionField: permissionField, anyTenantField: anyTenantField, operations: operations)
        )
    }
}

/// Why a catalogue could not be used: every problem found, each a sentence.
///
/// `description` joins the problems (what the config error shows); `debugDescription` adds the
/// code and the throw site. Errors compare equal when their codes do.
public struct CatalogError: CodedError, Error, Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: Hashable, Sendable {
            case unreadable
            case invalidDocument
            case invalidOperations
            case permissionFieldUnused
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// The document cannot be read.
        public static let unreadable = Code(.unreadable)
        /// Not JSON, or not an OpenAPI 3 document with `paths`.
        public static let invalidDocument = Code(.invalidDocument)
        /// Operations the catalogue cannot use (each a problem).
        public static let invalidOperations = Code(.invalidOperations)
        /// The document is fine but no operation has the configured permission field: the
        /// field's name is the likely mistake.
        public static let permissionFieldUnused = Code(.permissionFieldUnused)

        public var description: String { "\(self.backing)" }
    }

    public let code: Code
    public let problems: [String]
    public let file: String
    public let line: UInt

    public init(_ code: Code, problems: [String], file: String = #fileID, line: UInt = #line) {
        self.code = code
        self.problems = problems
        self.file = file
        self.line = line
    }

    /// The document is fine but no operation has the configured permission field.
    public var permissionFieldUnused: Bool { self.code == .permissionFieldUnused }

    public var reason: String { self.problems.joined(separator: "; ") }

    public var description: String { self.reason }

    public var debugDescription: String { "\(self.code): \(self.reason) (\(self.file):\(self.line))" }

}
