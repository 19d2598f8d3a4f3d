import Foundation
import SharedTestData

/// Reads the shared JOSE fixtures (`../shared/testdata/wycheproof`, `.../jose-cookbook`). They
/// live outside the repository, so suites skip with `missingMessage` when `directory` is nil.
enum AuthFixtures {
    static let missingMessage =
        "JOSE fixtures not found: expected the folders shared/testdata/wycheproof and "
        + "shared/testdata/jose-cookbook beside the repository (../shared/testdata), or "
        + "PORTCULLIS_TESTDATA pointing at a testdata folder"

    static var present: Bool {
        self.directory("wycheproof") != nil && self.directory("jose-cookbook") != nil
    }

    /// `$PORTCULLIS_TESTDATA/<name>`, else `shared/testdata/<name>` beside some folder above the
    /// current directory or this source file.
    static func directory(_ name: String, filePath: String = #filePath) -> URL? {
        SharedTestData.url(name, filePath: filePath)
    }

    /// The JSON document `folder/file` as Foundation objects.
    static func json(_ folder: String, _ file: String) throws -> [String: Any] {
        guard let directory = self.directory(folder) else {
            throw FixtureError(message: self.missingMessage)
        }
        let data = try Data(contentsOf: directory.appendingPathComponent(file))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FixtureError(message: "\(folder)/\(file) is not a JSON object")
        }
        return object
    }

    /// Every `*.json` file name of `folder`, sorted.
    static func files(_ folder: String) -> [String] {
        guard let directory = self.directory(folder) else { return [] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted()
    }

    /// A Foundation JSON object as UTF-8 bytes, for the parsers under test.
    static func bytes(_ object: Any) throws -> [UInt8] {
        Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2)
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { self.message }
}
