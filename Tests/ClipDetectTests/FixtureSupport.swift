import Foundation
@testable import ClipDetect

/// Paths to the committed reference fixtures (written by tools/fixtures/*.py).
enum Fixtures {
    static let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    static func path(_ parts: String...) -> String {
        parts.reduce(root) { $0.appendingPathComponent($1) }.path
    }

    static let encoderModels = ["a_gelu_proj32", "b_quickgelu_proj48", "c_bare_noproj28"]

    struct Manifest: Decodable {
        struct Description: Decodable {
            let imageSize, patchSize, width, layers, heads, mlpWidth: Int
            let activation: String
            let projectionDim: Int?
        }
        let files: [String: String]
        let description: Description
    }

    static func manifest(_ model: String) throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: path("encoder", model, "manifest.json"))))
    }

    /// The model without config files states nothing: tests pass what a user would.
    static func hints(_ model: String) -> ModelHints {
        model.hasPrefix("c_") ? ModelHints(activation: .gelu, heads: 2) : ModelHints()
    }

    /// `count` random encoder inputs for `encoder` (values in -2…2, as normalised pixels are).
    static func randomInputs(_ count: Int, for encoder: ImageEncoder, seed: UInt64) -> [[Float]] {
        let size = 3 * encoder.description.imageSize * encoder.description.imageSize
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in (0..<size).map { _ in Float.random(in: -2...2, using: &generator) } }
    }

    /// open_clip's outputs for a fixture, read back as flat f32 arrays.
    static func expected(_ model: String, _ file: String = "expected.safetensors") throws -> [String: (shape: [Int], values: [Float])] {
        let checkpoint = try Checkpoint.open(path("encoder", model, file))
        return try checkpoint.tensors.mapValues { ($0.shape, try $0.floats().values) }
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("clipdetect-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// Deterministically damaged copies of a file for robustness tests: every fifth copy is cut short;
/// the others get random bytes, half of the time in the first 4 KiB where headers live, and every
/// third also near the end, where zip directories and trailers live.
struct Damage {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next(_ bound: Int) -> Int {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int((state >> 33) % UInt64(max(bound, 1)))
    }

    mutating func copy(of original: [UInt8], round: Int) -> [UInt8] {
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
/// peak resident memory in bytes (wait4's rusage: this child only, not the other tests' children).
func runMeasuringPeakMemory(_ arguments: [String]) throws -> (status: Int32, peakBytes: Int) {
    let path = CommandLineTests.binary.path
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
    guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
    var status: Int32 = 0, usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    let exited = status & 0x7F == 0
    return (exited ? (status >> 8) & 0xFF : -1, usage.ru_maxrss * 1024)
}
