// swift-tools-version: 6.0
// libFuzzer targets, one executable each; built and run by ./run (see its header). A package of
// its own so the root package's `swift build` and `swift test` never see the fuzzer flags.
import PackageDescription

let fuzzers = ["JWSFuzzer", "CIDRFuzzer", "PathFuzzer", "ConfigFuzzer"]
// A path dependency's identity is its folder's name (`main`, or a clone's), not its manifest name.
let root = String(Context.packageDirectory.split(separator: "/").dropLast(2).last ?? "main").lowercased()

let package = Package(
    name: "portcullis-fuzz",
    dependencies: [
        .package(path: "../..")
    ],
    targets: fuzzers.map { name in
        .executableTarget(
            name: name,
            dependencies: [.product(name: "PortcullisFuzzChecks", package: root)]
        )
    },
    swiftLanguageModes: [.v5]
)
