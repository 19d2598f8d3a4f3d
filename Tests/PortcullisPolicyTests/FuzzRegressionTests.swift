import Foundation
import PortcullisPolicyFuzzChecks
import PortcullisPolicy
import Testing

/// Every committed input of the `path`, `cidr` and `config` fuzz targets (Tests/Fuzz/corpus and
/// Tests/Fuzz/regressions) through the checks the targets run.
@Suite struct FuzzRegressionTests {
    @Test(arguments: FuzzInputs.files("path"))
    func pathInputKeepsTheCanonicaliserProperties(_ file: String) throws {
        #expect(PathFuzzCheck.failures(try FuzzInputs.bytes(file)) == [], "\(file)")
    }

    @Test(arguments: FuzzInputs.files("cidr"))
    func cidrInputParsesAndMatchesLikeALinearScan(_ file: String) throws {
        #expect(CIDRFuzzCheck.failures(try FuzzInputs.bytes(file)) == [], "\(file)")
    }

    @Test(arguments: FuzzInputs.files("config"))
    func configInputLoadsOrFailsWithLocatedErrors(_ file: String) throws {
        #expect(ConfigFuzzCheck.failures(try FuzzInputs.bytes(file)) == [], "\(file)")
    }

    @Test func everyTargetHasSeeds() {
        for target in ["path", "cidr", "config"] {
            #expect(FuzzInputs.files(target).count >= 3, "Tests/Fuzz/corpus/\(target)")
        }
    }

    /// The checks' own models, which the fuzz targets trust.
    @Test func referenceCanonicaliserAndBlockBoundsAreRight() throws {
        #expect(PathFuzzCheck.reference(Array("/a/../..".utf8)) == nil)
        #expect(PathFuzzCheck.reference(Array("/a//./b/../c/".utf8)) == Array("/a/c/".utf8))
        #expect(PathFuzzCheck.reference(Array("/%7e/%2E/x%2fy".utf8)) == nil)
        #expect(PathFuzzCheck.reference(Array("/%7e/%2E/%c3 ?a b".utf8)) == Array("/~/%C3%20?a%20b".utf8))
        let (first, last) = CIDRFuzzCheck.bounds(try #require(CIDRPrefix(parsing: "10.0.0.0/8")))
        #expect(first == .v4(0x0A00_0000))
        #expect(last == .v4(0x0AFF_FFFF))
        let (first6, last6) = CIDRFuzzCheck.bounds(try #require(CIDRPrefix(parsing: "2001:db8::/96")))
        #expect(first6 == .v6(0x2001_0db8_0000_0000, 0))
        #expect(last6 == .v6(0x2001_0db8_0000_0000, 0xFFFF_FFFF))
    }
}

/// The committed fuzz inputs of one target, found from this file's place in the repository.
enum FuzzInputs {
    static func files(_ target: String, filePath: String = #filePath) -> [String] {
        let fuzz = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz")
        var files: [String] = []
        for kind in ["corpus", "regressions"] {
            let directory = fuzz.appendingPathComponent(kind).appendingPathComponent(target)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            files += names.filter { !$0.hasPrefix(".") }.sorted().map { directory.appendingPathComponent($0).path }
        }
        return files
    }

    static func bytes(_ file: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: file)))
    }
}
