// swift-tools-version: 6.0
// libFuzzer targets over the library's parsers, built by scripts/fuzz.sh with -sanitize=fuzzer,address.
import PackageDescription

let targets = ["FuzzSafetensors", "FuzzTorch", "FuzzImages", "FuzzCSV", "FuzzImpair", "FuzzHead"]

let package = Package(
    name: "clipdetect-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "clipdetect", path: "..")],
    targets: [.target(name: "FuzzSupport", dependencies: [.product(name: "ClipDetect", package: "clipdetect")])]
        + targets.map { .executableTarget(name: $0, dependencies: ["FuzzSupport", .product(name: "ClipDetect", package: "clipdetect")]) }
)
