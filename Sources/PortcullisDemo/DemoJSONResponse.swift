import Foundation

/// A status and a JSON value (arrays, dictionaries, strings, numbers, booleans) to send as the body.
struct DemoJSONResponse {
    var status: Int
    var object: Any

    init(status: Int = 200, _ object: Any) {
        self.status = status
        self.object = object
    }

    static func error(_ status: Int, _ message: String) -> DemoJSONResponse {
        DemoJSONResponse(status: status, ["error": message, "status": status])
    }

    /// The body bytes, keys sorted so answers are byte-for-byte repeatable.
    var bytes: [UInt8] {
        Self.encode(self.object)
    }

    static func encode(_ object: Any) -> [UInt8] {
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: object,
                options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed]
            )
        else {
            preconditionFailure("demo backend built a value JSONSerialization cannot encode: \(object)")
        }
        return [UInt8](data)
    }
}
