import Foundation
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools
import ClipDetectTestSupport

/// What a new user tried: model folders, a head that remembers what its backbone's files do not say.
@Suite struct UsabilityTests {
    let cli = CLI()

    @Test func aModelFolderAndAHeadThatRecordsTheActivation() throws {
        let folder = try Fixtures.temporaryDirectory()
        let model = folder.appendingPathComponent("hf-model")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        for (source, target) in [("hf.safetensors", "model.safetensors"), ("config.json", "config.json")] {
            try FileManager.default.copyItem(atPath: Fixtures.path("encoder", "b_quickgelu_proj48", source), toPath: model.appendingPathComponent(target).path)
        }
        let info = try cli.run(["model", "info", model.path])
        #expect(info.status == 0 && info.stdout.contains("quick_gelu"), "\(info.stderr)")
        let embedded = try cli.run(["embed", "--model", model.path, "--no-cache", Fixtures.path("images", "jpeg_420.jpg")])
        #expect(embedded.status == 0, "\(embedded.stderr)")
        let empty = try cli.run(["model", "info", folder.path])
        #expect(empty.status != 0 && empty.stderr.contains("holds none of"), "\(empty.stderr)")

        // A bare tower states nothing: the activation and heads are needed once, then the head remembers them.
        let bare = folder.appendingPathComponent("bare.safetensors").path
        try FileManager.default.copyItem(atPath: Fixtures.path("encoder", "c_bare_noproj28", "bare.safetensors"), toPath: bare)
        let asked = try cli.run(["embed", "--model", bare, Fixtures.path("images", "jpeg_420.jpg")])
        #expect(asked.status != 0 && asked.stderr.contains("activation"))
        let encoder = try ImageEncoder(path: bare, hints: ModelHints(activation: .gelu, heads: 2))
        let head = Head(weights: Array(repeating: 0.01, count: encoder.featureWidth(.pooled)), bias: 0,
                        metadata: Head.Metadata(name: "bare", feature: Head.Feature(encoder: encoder)))
        let headPath = folder.appendingPathComponent("bare-head.safetensors").path
        try head.write(to: headPath)
        let detected = try cli.run(["detect", "--model", bare, "--head", headPath, Fixtures.path("images", "jpeg_420.jpg")])
        #expect(detected.status == 0, "\(detected.stderr)")
        let remembered = try cli.run(["detect", "--head", headPath, Fixtures.path("images", "jpeg_420.jpg")])
        #expect(remembered.status == 0, "\(remembered.stderr)")
    }

    @Test func versionAndCachedModelsAreShown() throws {
        let version = try cli.run(["--version"])
        #expect(version.status == 0 && version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == clipdetectVersion)
        let listed = try cli.run(["model", "list"])
        #expect(listed.status == 0 && listed.stdout.contains("[not cached]"))
        for command in [["cache", "stats", "--help"], ["cache", "clear", "--help"]] {
            let help = try cli.run(command)
            #expect(help.status == 0 && help.stdout.contains("OVERVIEW"), "\(command)")
        }
    }
}
