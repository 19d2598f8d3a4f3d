// swift-tools-version: 6.0
import PackageDescription

#if canImport(Glibc)
import Glibc
#endif

/// How the release build of the gateway is linked on Linux. Each flag takes file-backed pages
/// out of the running gateway's RSS (measured in Benchmarks/RESULTS-memory.md):
/// - `Sources/portcullis/link.order` (made by `Benchmarks/link-order`): the functions a serving
///   gateway runs, placed first and together, so the code it never runs is never paged in.
///   Functions of the static Swift runtime move one by one; a module SwiftPM compiles is one
///   section and moves whole, unless built with `-Xswiftc -Xfrontend -Xswiftc -function-sections`
///   (both measured). SwiftPM does not see the file as an input: after changing it, delete
///   `.build/release/portcullis` so the next build links again;
/// - `--no-export-dynamic`: the static Swift runtime's link arguments export every symbol of the
///   executable (46,000 in `.dynsym`, 3.9 MB with their names and hash table, read at start-up);
///   nothing looks the gateway's own symbols up at run time, and backtraces read `.symtab`;
/// - lld, which ships with the Swift toolchain, instead of gold;
/// - packed relative relocations (`DT_RELR`): 136,000 relocations of `.rela.dyn` (3.3 MB, read
///   whole at every start) become 27 KB. The loader must know them, so only where this machine's
///   glibc is 2.36 or later; a binary runs only on the glibc it was built against or a newer one.
let releaseLinkerFlags: [String] = {
    var flags = ["-use-ld=lld", "-Xlinker", "--no-export-dynamic"]
    #if canImport(Glibc)
    let order = "\(Context.packageDirectory)/Sources/portcullis/link.order"
    if access(order, R_OK) == 0 {
        flags += ["-Xlinker", "--symbol-ordering-file=\(order)", "-Xlinker", "--no-warn-symbol-ordering"]
    }
    // "glibc 2.36"
    var text = [CChar](repeating: 0, count: 64)
    _ = confstr(Int32(_CS_GNU_LIBC_VERSION), &text, text.count)
    let name = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let version = name.split(separator: " ").last?.split(separator: ".").compactMap { Int($0) } ?? []
    if version.count >= 2, (version[0], version[1]) >= (2, 36) {
        flags += ["-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"]
    }
    #endif
    return flags
}()

let package = Package(
    name: "portcullis",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "portcullis", targets: ["portcullis"]),
        // For the libFuzzer package in Tests/Fuzz only (it depends on this one by path); two, so
        // the policy fuzzers build without the NIO and crypto stack.
        .library(name: "PortcullisPolicyFuzzChecks", targets: ["PortcullisPolicyFuzzChecks"]),
        .library(name: "PortcullisAuthFuzzChecks", targets: ["PortcullisAuthFuzzChecks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // The system zlib (zlib1g-dev) for response compression. NIOHTTPCompression is not used:
        // it only offers channel handlers over HTTPServerResponsePart, and the response path
        // carries bytes (see ResponseCompressor).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        // Policy model, YAML loading and compiled matchers. Pure Swift: no NIO.
        .target(
            name: "PortcullisPolicy",
            dependencies: [
                .product(name: "Yams", package: "Yams")
            ]
        ),
        // Bearer tokens: extraction, compact-JWS verification (swift-crypto), JWK sets, claims,
        // issuer key sets (file, URL, OIDC discovery) refreshed off the hot path.
        .target(
            name: "PortcullisAuth",
            dependencies: [
                "PortcullisPolicy",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                // JWKS and discovery fetches only: never on the request path.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // The tenant directory's fetch trusts upstream.ca_file as the request path does.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The client registry and run-time state behind one interface: the embedded directory
        // store and the PostgreSQL store; what a gateway loads into its snapshots.
        .target(
            name: "PortcullisStore",
            dependencies: [
                "PortcullisPolicy",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
                // The shared store for several replicas; off the request path.
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The NIO server and client pipelines, upstream pool, timeouts, header rewriting, metrics
        // and the admin listener.
        .target(
            name: "PortcullisProxy",
            dependencies: [
                "PortcullisAuth",
                "PortcullisPolicy",
                "PortcullisStore",
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
                // Off the hot path only: config and reload metrics (swift-prometheus locks).
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The built-in CIPP-like backend behind `portcullis demo`, also the tests' backend process.
        .target(
            name: "PortcullisDemo",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "portcullis",
            dependencies: [
                "PortcullisProxy",
                "PortcullisAuth",
                "PortcullisDemo",
                "PortcullisPolicy",
                "PortcullisStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            exclude: ["link.order"],
            linkerSettings: [.unsafeFlags(releaseLinkerFlags, .when(platforms: [.linux], configuration: .release))]
        ),
        // Microbenchmarks of the compiled matchers (CIDR set, route matcher); run in release.
        .executableTarget(
            name: "PortcullisMicrobench",
            dependencies: ["PortcullisPolicy"],
            path: "Benchmarks/Micro"
        ),
        // Finds ../shared/testdata for the data-driven tests of every test target.
        .target(
            name: "SharedTestData",
            path: "Tests/Support/SharedTestData"
        ),
        // Reads the Prometheus text format, for the metrics tests of every test target.
        .target(
            name: "PrometheusTestSupport",
            path: "Tests/Support/PrometheusTestSupport"
        ),
        // The properties the fuzz targets of Tests/Fuzz check, shared with the regression tests.
        .target(
            name: "PortcullisPolicyFuzzChecks",
            dependencies: ["PortcullisPolicy"],
            path: "Tests/Support/PortcullisFuzzChecks/Policy"
        ),
        .target(
            name: "PortcullisAuthFuzzChecks",
            dependencies: [
                "PortcullisPolicy",
                "PortcullisAuth",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/Support/PortcullisFuzzChecks/Auth"
        ),
        .testTarget(
            name: "PortcullisPolicyTests",
            dependencies: ["PortcullisPolicy", "SharedTestData", "PortcullisPolicyFuzzChecks"]
        ),
        .testTarget(
            name: "PortcullisAuthTests",
            dependencies: [
                "PortcullisAuth",
                "PortcullisPolicy",
                "SharedTestData",
                "PortcullisAuthFuzzChecks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "PortcullisStoreTests",
            dependencies: ["PortcullisStore", "PortcullisPolicy"]
        ),
        .testTarget(
            name: "PortcullisProxyTests",
            dependencies: [
                "PortcullisProxy",
                "PortcullisAuth",
                "PrometheusTestSupport",
                "SharedTestData",
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "portcullis",
                "SharedTestData",
                "PrometheusTestSupport",
                // Signs the tests' tokens (JWSSigner; RSA and HMAC for the hostile ones).
                "PortcullisAuth",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        // Checks deploy/: Kubernetes manifests, the systemd unit, the Containerfile vs README.
        .testTarget(
            name: "DeployTests",
            dependencies: [
                .product(name: "Yams", package: "Yams")
            ]
        ),
    ],
    swiftLanguageModes: [.v5]
)
