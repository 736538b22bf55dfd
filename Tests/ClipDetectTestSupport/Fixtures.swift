import ClipDetect
import Crypto
import Foundation

/// Paths to the committed reference fixtures (written by tools/fixtures/*.py).
package enum Fixtures {
    package static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    package static func path(_ parts: String...) -> String {
        parts.reduce(root) { $0.appendingPathComponent($1) }.path
    }

    /// The tower most tests run: open_clip's layout, GELU, a 32-wide projection.
    package static let backbone = path("encoder", "a_gelu_proj32", "openclip.safetensors")
    /// The reference's head checkpoint for it (`weights.pth` with its config), and UnivFD's layer.
    package static let referenceHead = path("heads", "weights.pth")
    package static let univfdHead = path("heads", "univfd_fc_weights.pth")
    /// Images that decode and images that do not, in one list.
    package static let mixedImages = ["jpeg_420.jpg", "bad_truncated.jpg", "png_rgba.png", "bad_text.png", "size_33x17.png"].map { path("images", $0) }

    /// The reference head on the fixture tower, as `head import` makes it.
    package static func importedHead() throws -> (Head, ImageEncoder) {
        let encoder = try ImageEncoder(path: backbone)
        return (try Head.importReference(checkpoint: referenceHead, config: nil, name: "tiny", backbone: encoder), encoder)
    }

    package static let encoderModels = ["a_gelu_proj32", "b_quickgelu_proj48", "c_bare_noproj28"]

    package struct Manifest: Decodable {
        package struct Description: Decodable {
            package let imageSize, patchSize, width, layers, heads, mlpWidth: Int
            package let activation: String
            package let projectionDim: Int?
        }
        package let files: [String: String]
        package let description: Description
    }

    package static func manifest(_ model: String) throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: path("encoder", model, "manifest.json"))))
    }

    /// The model without config files states nothing: tests pass what a user would.
    package static func hints(_ model: String) -> ModelHints {
        model.hasPrefix("c_") ? ModelHints(activation: .gelu, heads: 2) : ModelHints()
    }

    /// `count` random encoder inputs for `encoder` (values in -2…2, as normalised pixels are).
    package static func randomInputs(_ count: Int, for encoder: ImageEncoder, seed: UInt64) -> [[Float]] {
        let size = 3 * encoder.description.imageSize * encoder.description.imageSize
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in (0..<size).map { _ in Float.random(in: -2...2, using: &generator) } }
    }

    /// open_clip's outputs for a fixture, read back as flat f32 arrays.
    package static func expected(_ model: String, _ file: String = "expected.safetensors") throws -> [String: (shape: [Int], values: [Float])] {
        let checkpoint = try Checkpoint.open(path("encoder", model, file))
        return try checkpoint.tensors.mapValues { ($0.shape, try $0.floats().values) }
    }

    package static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("clipdetect-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

package func sha256Hex(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

package func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Deterministically damaged copies of a file for robustness tests: every fifth copy is cut short;
/// the others get random bytes, half of the time in the first 4 KiB where headers live, and every
/// third also near the end, where zip directories and trailers live.
package struct Damage {
    private var state: UInt64
    package init(seed: UInt64) { state = seed }

    package mutating func next(_ bound: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(max(bound, 1)))
    }

    package mutating func copy(of original: [UInt8], round: Int) -> [UInt8] {
        var bytes = original
        if round % 5 == 0 { return Array(bytes.prefix(next(bytes.count))) }
        let hot = round % 2 == 0 ? min(bytes.count, 4096) : bytes.count
        for _ in 0..<(1 + next(6)) { bytes[next(hot)] = UInt8(next(256)) }
        if round % 3 == 0 {
            for _ in 0..<(1 + next(6)) { bytes[bytes.count - 1 - next(min(bytes.count, 2048))] = UInt8(next(256)) }
        }
        return bytes
    }
}

/// Runs the command-line tool with its output discarded and returns its exit status and its own
/// peak resident memory in bytes. GNU time measures it: a child spawned from this large test process
/// inherits the process's high-water mark at exec (Linux keeps `maxrss` across exec), so wait4 here
/// would report this process's size, not the tool's. Hermetic as `CLI.run`.
package func runMeasuringPeakMemory(_ arguments: [String]) throws -> (status: Int32, peakBytes: Int) {
    let home = try Fixtures.temporaryDirectory()
    let report = home.appendingPathComponent("maxrss").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/time")
    process.arguments = ["-f", "%M", "-o", report, CLI.binary.path] + arguments
    var environment = ProcessInfo.processInfo.environment
    environment["CLIPDETECT_HOME"] = home.path
    environment["HF_HUB_CACHE"] = home.appendingPathComponent("hub").path
    process.environment = environment
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    // The last line is the figure (KiB); a line before it says when the status was not zero.
    let kibibytes = try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n").last.flatMap { Int($0) }
    guard let kibibytes, process.terminationReason == .exit else { return (-1, 0) }
    return (process.terminationStatus, kibibytes * 1024)
}
