import Foundation

/// A request URI split into a lower-cased path (the backend, like an Azure Function App, matches
/// paths without regard to case) and decoded query items.
struct DemoRequestTarget {
    var path: String
    var query: [(name: String, value: String)]

    init(uri: String) {
        var rest = Substring(uri)
        if let hash = rest.firstIndex(of: "#") {
            rest = rest[..<hash]
        }
        var pathPart = rest
        var queryPart: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            pathPart = rest[..<mark]
            queryPart = rest[rest.index(after: mark)...]
        }
        var path = (String(pathPart).removingPercentEncoding ?? String(pathPart)).lowercased()
        while path.count > 1 && path.hasSuffix("/") {
            path.removeLast()
        }
        self.path = path
        self.query = queryPart.split(separator: "&", omittingEmptySubsequences: true).map { item in
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (Self.decode(pair[0]), pair.count > 1 ? Self.decode(pair[1]) : "")
        }
    }

    /// The first value of the query item `name`, ignoring the case of the name.
    func queryValue(_ name: String) -> String? {
        let wanted = name.lowercased()
        return self.query.first { $0.name.lowercased() == wanted }?.value
    }

    func queryInt(_ name: String, default fallback: Int) -> Int {
        self.queryValue(name).flatMap { Int($0) } ?? fallback
    }

    func queryFlag(_ name: String) -> Bool {
        guard let value = self.queryValue(name)?.lowercased() else { return false }
        return value == "1" || value == "true" || value == "yes" || value.isEmpty
    }

    private static func decode(_ part: Substring) -> String {
        let spaced = part.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }
}
