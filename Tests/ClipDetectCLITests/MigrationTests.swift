import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Coming from the reference's code: what its users meet first.
@Suite struct MigrationTests {
    let cli = CLI()

    /// The pointer git-lfs leaves when the object was not fetched (here: the paper's head).
    static let pointer = """
        version https://git-lfs.github.com/spec/v1
        oid sha256:1c9c9f48a47d975bde67e9924983aa4e4ccda96a15e7e983b6305f0c56d9ee18
        size 5155

        """

    @Test func anLFSPointerIsNamedAndTheWaysToTheFileAreGiven() throws {
        let folder = try Fixtures.temporaryDirectory()
        let path = folder.appendingPathComponent("weights.pth").path
        try Self.pointer.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: CheckpointError.self) { try Checkpoint.open(path) }
        do { _ = try Checkpoint.open(path) } catch let error as CheckpointError {
            #expect(error.underlying == .lfsPointer(sha256: "1c9c9f48a47d975bde67e9924983aa4e4ccda96a15e7e983b6305f0c56d9ee18", size: 5155))
        }
        for arguments in [["head", "import", path, "-o", folder.appendingPathComponent("h.safetensors").path],
                          ["detect", "--model", Fixtures.backbone, "--head", path, Fixtures.path("images", "jpeg_420.jpg")]] {
            let run = try cli.run(arguments)
            #expect(run.status != 0)
            #expect(run.stderr.contains("Git LFS pointer to a 5155-byte file") && run.stderr.contains("git lfs pull")
                    && run.stderr.contains("clipdetect model fetch clipdet-latent10k-plus"), "\(run.stderr)")
        }
        // A pointer to something we do not know still says what it is; a text file that merely starts alike does not.
        let other = Self.pointer.replacingOccurrences(of: "1c9c9f48", with: "00000000")
        try other.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try cli.run(["head", "import", path, "-o", folder.appendingPathComponent("h.safetensors").path])
        #expect(run.stderr.contains("Git LFS pointer") && !run.stderr.contains("model fetch"), "\(run.stderr)")
        try "version https://git-lfs.github.com/spec/v1\nno oid here\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try cli.run(["head", "import", path, "-o", folder.appendingPathComponent("h.safetensors").path]).stderr.contains("neither safetensors"))
    }

    @Test func offATerminalProgressIsPlainLinesAndASummary() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try DetectCommandTests().headFile(in: folder)
        let images = ["jpeg_420.jpg", "bad_text.png", "png_rgba.png"].map { Fixtures.path("images", $0) }
        let run = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--batch", "1"] + images,
                              environment: ["CLIPDETECT_PROGRESS_SECONDS": "0"])
        #expect(run.status == 2)
        #expect(run.stderr.contains("detect: 1/3 done (0 failed)") && run.stderr.contains("detect: 2/3 done (1 failed)"), "\(run.stderr)")
        #expect(run.stderr.contains("detect: 3/3 done (1 failed) in ") && run.stderr.contains("images/s"), "\(run.stderr)")
        #expect(!run.stderr.contains("\r") && !run.stderr.contains("\u{1B}"), "no control characters in a log")
        let quiet = try cli.run(["detect", "--quiet", "--model", Fixtures.backbone, "--head", head] + images,
                                environment: ["CLIPDETECT_PROGRESS_SECONDS": "0"])
        #expect(!quiet.stderr.contains("done ("), "\(quiet.stderr)")
        let embedded = try cli.run(["embed", "--model", Fixtures.backbone, "-o", folder.appendingPathComponent("f.npy").path, "--format", "npy"] + images,
                                   environment: ["CLIPDETECT_PROGRESS_SECONDS": "0"])
        #expect(embedded.stderr.contains("embed: 3/3 done (1 failed)"), "\(embedded.stderr)")
    }

    /// `eval --tab-format reference` writes what compute_metrics.py --save_tab writes, byte for byte
    /// (tools/fixtures/make_reference_table_fixtures.py ran the reference's own script): the same
    /// classes (only `typ == real` is real), scikit-learn's AUC and pandas' AVG to the last bit, in
    /// Python's shortest round-trip form.
    @Test func theReferenceTableEqualsComputeMetricsByteForByte() throws {
        let folder = try Fixtures.temporaryDirectory()
        for (list, scores, suffix) in [("list.csv", "scores.csv", ""), ("list.csv", "scores_gaps.csv", "_gaps"), ("list_wide.csv", "scores_wide.csv", "_wide")] {
            for metric in ["auc", "acc"] {
                let out = folder.appendingPathComponent("\(metric)\(suffix).csv").path
                let run = try cli.run(["eval", "--csv", Fixtures.path("metrics", list), "--scores", Fixtures.path("metrics", scores),
                                       "--save-tab", out, "--tab-format", "reference", "--tab-metric", metric])
                #expect(run.status == 0, "\(run.stderr)")
                #expect(run.stderr.contains("generators in --save-tab's") == (suffix == "_wide"), "\(run.stderr)")
                let ours = try String(contentsOfFile: out, encoding: .utf8)
                let theirs = try String(contentsOfFile: Fixtures.path("metrics", "reference_\(metric)\(suffix).csv"), encoding: .utf8)
                #expect(ours == theirs, "\(metric)\(suffix):\n\(ours)\nvs\n\(theirs)")
            }
        }
    }
}
