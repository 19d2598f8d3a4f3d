import Foundation
import PortcullisAuthFuzzChecks
import Testing

/// Every committed input of the `jws` fuzz target (Tests/Fuzz/corpus/jws and
/// Tests/Fuzz/regressions/jws) through the checks the target runs.
@Suite struct JWSFuzzRegressionTests {
    static func files(filePath: String = #filePath) -> [String] {
        let fuzz = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz")
        var files: [String] = []
        for kind in ["corpus", "regressions"] {
            let directory = fuzz.appendingPathComponent(kind).appendingPathComponent("jws")
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            files += names.filter { !$0.hasPrefix(".") }.sorted().map { directory.appendingPathComponent($0).path }
        }
        return files
    }

    @Test(arguments: Self.files())
    func jwsInputKeepsTheVerifierProperties(_ file: String) throws {
        let input = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
        #expect(JWSFuzzCheck.failures(input) == [], "\(file)")
    }

    @Test func seedsReachTheVerifiedPath() throws {
        #expect(Self.files().count >= 10)
        for name in ["eddsa-valid", "es256-valid", "hs256-valid"] {
            let file = try #require(Self.files().first { $0.hasSuffix("/corpus/jws/" + name) })
            let input = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
            #expect(JWSFuzzCheck.verifies(input), "\(name) no longer verifies under the fixed fuzz keys")
        }
    }
}
