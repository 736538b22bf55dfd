import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Memory is flat in the number of images: every command that encodes runs N and 10·N images on the
/// fixture tower, and the child's peak RSS may grow by at most 4 MB over the 2,700 extra images
/// (≈ 1.5 KB each; an image's input tensor on this tower is 12 KB, so a leaked tensor shows as 32 MB).
/// Commands that keep features by design (train, eval, calibrate) are allowed those on top.
@Suite(.serialized) struct MemoryTests {
    static let few = 300, many = 3000
    static let slack = 4 << 20

    /// `many` distinct tiny PNGs (train refuses and eval counts repeated bytes), half real, half fake:
    /// the first `few` in one folder, the rest in another.
    static let corpus: URL = {
        let folder = try! Fixtures.temporaryDirectory()
        var generator = SeededGenerator(seed: 25)
        for part in ["first", "rest"] { try! FileManager.default.createDirectory(at: folder.appendingPathComponent(part), withIntermediateDirectories: true) }
        for i in 0..<many {
            let pixels = (0..<(8 * 8 * 3)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            try! PNGEncoder.write(RGBImage(width: 8, height: 8, pixels: pixels), to: folder.appendingPathComponent(name(i)).path)
        }
        return folder
    }()

    static func name(_ i: Int) -> String { String(format: "%@/%04d-%@.png", i < few ? "first" : "rest", i, i % 2 == 0 ? "real" : "fake") }

    /// The first `count` images as input arguments (folders).
    static func folders(_ count: Int) -> [String] {
        (count == few ? ["first"] : ["first", "rest"]).map { corpus.appendingPathComponent($0).path }
    }

    /// The first `count` images as a plain list or a labelled CSV.
    static func list(_ count: Int, _ kind: String) throws -> String {
        let path = corpus.appendingPathComponent("\(kind)-\(count).txt").path
        let paths = (0..<count).map { corpus.appendingPathComponent(name($0)).path }
        let text = kind == "labelled"
            ? "filename,typ\n" + paths.enumerated().map { "\($0.element),\($0.offset % 2 == 0 ? "real" : "gen")\n" }.joined()
            : paths.joined(separator: "\n") + "\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Peak RSS growth from N to 10·N images of the command `arguments(count, output)` builds.
    /// (Each child is waited for on a Dispatch thread: minutes of blocking on one of the few
    /// cooperative threads would starve the tests running beside these, the servers' among them.)
    func growth(_ arguments: (Int, String) throws -> [String]) async throws -> Int {
        let folder = try Fixtures.temporaryDirectory()
        var peaks: [Int] = [], name = ""
        for count in [Self.few, Self.many] {
            let command = try arguments(count, folder.appendingPathComponent("out-\(count)").path)
            let run = try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async { continuation.resume(with: Result { try runMeasuringPeakMemory(command) }) }
            }
            #expect(run.status == 0, "\(command)")
            peaks.append(run.peakBytes)
            name = command.prefix(while: { !$0.hasPrefix("-o") }).filter { !$0.hasPrefix("/") }.joined(separator: " ")
        }
        print("memory: \(name): peak RSS \(peaks[0] >> 10) → \(peaks[1] >> 10) KiB")
        return peaks[1] - peaks[0]
    }

    /// What a command keeps per image by design: a feature of `width` floats and its file name, twice
    /// over for the copies a fit or a sort makes.
    static func kept(width: Int) -> Int { (many - few) * 2 * (width * 4 + 64) }

    let model = Fixtures.backbone
    var head: String { get throws { try DetectCommandTests().headFile(in: Fixtures.temporaryDirectory()) } }

    @Test func detectAndEmbedAreFlat() async throws {
        let head = try self.head
        let detect = try await growth { ["detect", "--no-cache", "-q", "--model", model, "--head", head, "-o", $1] + Self.folders($0) }
        #expect(detect <= Self.slack, "detect: peak RSS grew \(detect >> 10) KiB over \(Self.many - Self.few) more images")
        let stability = try await growth { ["detect", "--no-cache", "-q", "--model", model, "--head", head, "--stability", "2", "-o", $1] + Self.folders($0) }
        #expect(stability <= Self.slack, "detect --stability: peak RSS grew \(stability >> 10) KiB")
        let embed = try await growth { ["embed", "--no-cache", "-q", "--model", model, "--format", "jsonl", "-o", $1] + Self.folders($0) }
        #expect(embed <= Self.slack, "embed: peak RSS grew \(embed >> 10) KiB")
    }

    @Test func evalTrainAndCalibrateKeepOnlyTheirFeatures() async throws {
        let head = try self.head
        let eval = try await growth { ["eval", "--no-cache", "-q", "--model", model, "--head", head, "--csv", try Self.list($0, "labelled"), "--save-tab", $1] }
        #expect(eval <= Self.slack + Self.kept(width: 1), "eval: peak RSS grew \(eval >> 10) KiB")
        let train = try await growth { ["train", "--no-cache", "-q", "--model", model, "--csv", try Self.list($0, "labelled"), "--C", "1", "-o", $1 + ".safetensors"] }
        #expect(train <= Self.slack + Self.kept(width: 32), "train: peak RSS grew \(train >> 10) KiB")
        let calibrate = try await growth { ["calibrate", "-q", "--model", model, "--head", head, "--real", try Self.list($0, "all"),
                                      "--target-fpr", "0.1", "-o", $1 + ".safetensors"] }
        #expect(calibrate <= Self.slack + Self.kept(width: 1), "calibrate: peak RSS grew \(calibrate >> 10) KiB")
    }
}
