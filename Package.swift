// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "clipdetect",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "ClipDetect", targets: ["ClipDetect"]),
        .library(name: "ClipDetectServer", targets: ["ClipDetectServer"]),
        .executable(name: "clipdetect", targets: ["clipdetect"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
    ],
    targets: [
        // Thin C shims over Debian's -dev packages.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // oneDNN ships no pkg-config file: its module map links it by name.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CWebP", path: "Sources/CWebP", pkgConfig: "libwebpdemux",
                       providers: [.apt(["libwebp-dev"])]),
        .systemLibrary(name: "CGIF", path: "Sources/CGIF", pkgConfig: "libgif",
                       providers: [.apt(["libgif-dev"])]),
        .systemLibrary(name: "CTIFF", path: "Sources/CTIFF", pkgConfig: "libtiff-4",
                       providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        // The library in layers along the pipeline; each depends only on those below it.
        // Support, weights, model descriptions, image lists, decoding, preprocessing, impairments, codecs.
        .target(name: "ClipDetectCore", dependencies: [
            "CBLAS", "CTurboJPEG", "CPNG", "CWebP", "CGIF", "CTIFF",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The vision towers and the kernels that run them.
        .target(name: "ClipDetectEncoder", dependencies: [
            "ClipDetectCore", "CBLAS", "CDNNL",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Features, their cache, heads, decision rules and verdicts, the detector.
        .target(name: "ClipDetectDetection", dependencies: [
            "ClipDetectCore", "ClipDetectEncoder",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        // What is built on a detector: calibration, training, metrics, the report, the model registry, head import.
        .target(name: "ClipDetectTools", dependencies: [
            "ClipDetectCore", "ClipDetectEncoder", "ClipDetectDetection", "CBLAS",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // One import for callers: re-exports the layers.
        .target(name: "ClipDetect", dependencies: ["ClipDetectCore", "ClipDetectEncoder", "ClipDetectDetection", "ClipDetectTools"]),
        // The HTTP service: routes, dynamic batching, limits, metrics, the web page.
        .target(name: "ClipDetectServer", dependencies: [
            "ClipDetect",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "clipdetect", dependencies: [
            "ClipDetect", "ClipDetectServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Fixtures, the command-line runner and the loopback HTTP server every test target shares.
        .target(name: "ClipDetectTestSupport", dependencies: ["ClipDetect", .product(name: "Crypto", package: "swift-crypto")],
                path: "Tests/ClipDetectTestSupport", resources: [.copy("Fixtures")]),
        // The library's units, against the references.
        .testTarget(name: "ClipDetectTests", dependencies: ["ClipDetect", "ClipDetectCore", "ClipDetectEncoder", "ClipDetectDetection", "ClipDetectTools",
                                                            "ClipDetectTestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
        // The command-line tool end to end, run as a user runs it (the target depends on it, so it is built first).
        .testTarget(name: "ClipDetectCLITests", dependencies: ["clipdetect", "ClipDetect", "ClipDetectCore", "ClipDetectEncoder", "ClipDetectDetection",
                                                               "ClipDetectTools", "ClipDetectTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                                                               .product(name: "Crypto", package: "swift-crypto")]),
        // The public API only (no @testable): what a second front end can build against.
        .testTarget(name: "ClipDetectAPITests", dependencies: ["ClipDetect", "ClipDetectTestSupport"]),
        .testTarget(name: "ClipDetectServerTests", dependencies: [
            "ClipDetectServer", "ClipDetect", "ClipDetectTestSupport",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
    ]
)

// scripts/fuzz.sh sets CLIPDETECT_FUZZ=1: the libFuzzer targets over the parsers (Fuzz/), built
// with -sanitize=fuzzer,address. They belong to this package so that they reach its `package`
// parsers (checkpoints, CSV, head files), which no other package sees.
if Context.environment["CLIPDETECT_FUZZ"] == "1" {
    let fuzzers = ["FuzzSafetensors", "FuzzTorch", "FuzzImages", "FuzzCSV", "FuzzImpair", "FuzzHead"]
    package.targets.append(.target(name: "FuzzSupport", dependencies: ["ClipDetect"], path: "Fuzz/Sources/FuzzSupport"))
    package.targets += fuzzers.map { .executableTarget(name: $0, dependencies: ["FuzzSupport", "ClipDetect"], path: "Fuzz/Sources/\($0)") }
    package.products += fuzzers.map { .executable(name: $0, targets: [$0]) }
}

