import Foundation

/// Finds the fixtures written by others in `shared/testdata` (outside the repository; see its
/// README): `$PORTCULLIS_TESTDATA/<relative>`, else `shared/testdata/<relative>` beside some
/// folder above the current directory or the calling test's file. Tests skip with a message
/// naming the fixture when this is nil (a user's clone has no `../shared`).
public enum SharedTestData {
    public static func url(_ relative: String, filePath: String = #filePath) -> URL? {
        let fileManager = FileManager.default
        if let root = ProcessInfo.processInfo.environment["PORTCULLIS_TESTDATA"], !root.isEmpty {
            let candidate = URL(fileURLWithPath: root, isDirectory: true).appendingPathComponent(relative)
            return fileManager.fileExists(atPath: candidate.path) ? candidate : nil
        }
        let starts = [
            URL(fileURLWithPath: fileManager.currentDirectoryPath, isDirectory: true),
            URL(fileURLWithPath: filePath).deletingLastPathComponent(),
        ]
        for start in starts {
            var directory = start.standardizedFileURL
            while true {
                let candidate = directory.appendingPathComponent("shared/testdata").appendingPathComponent(relative)
                if fileManager.fileExists(atPath: candidate.path) { return candidate.standardizedFileURL }
                if directory.path == "/" { break }
                directory.deleteLastPathComponent()
            }
        }
        return nil
    }

    /// The message a skipped test gives when `relative` is absent.
    public static func missing(_ relative: String) -> String {
        "fixture not found: expected shared/testdata/\(relative) beside the repository "
            + "(../shared/testdata/\(relative)), or PORTCULLIS_TESTDATA pointing at a testdata folder"
    }
}
