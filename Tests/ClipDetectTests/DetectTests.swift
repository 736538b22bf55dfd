import Foundation
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Heads imported from reference checkpoints score as open_clip + the head; detect and eval as a user runs them.
@Suite struct DetectTests {
    static let backbone = Fixtures.path("encoder", "a_gelu_proj32", "openclip.safetensors")
    static let reference = Fixtures.path("heads", "weights.pth")

    struct ExpectedScores: Decodable { let images: [String]; let scores: [Double] }
    static let expected = try! JSONDecoder().decode(
        ExpectedScores.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("heads", "expected_scores.json"))))

    static func importedHead() throws -> (Head, ImageEncoder) {
        let encoder = try ImageEncoder(path: backbone)
        return (try Head.importReference(checkpoint: reference, config: nil, name: "tiny", backbone: encoder), encoder)
    }

    /// A head given twice is refused whatever its names (it would count twice in the fusion), and
    /// two heads of one name too (one column each); the same weights on another view are another head.
    @Test func aHeadGivenTwiceIsRefused() throws {
        let (head, encoder) = try Self.importedHead()
        var renamed = head
        renamed.metadata.name = "tiny2"
        renamed.metadata.threshold = 0.5
        // A copy that no longer records its backbone is still the same head on this encoder.
        renamed.metadata.feature.fingerprint = nil
        renamed.metadata.feature.backbonePath = nil
        #expect(throws: HeadError.givenTwice("tiny", alias: "tiny2")) {
            try Detector(encoder: encoder, heads: [head, renamed])
        }
        #expect(throws: HeadError.givenTwice("tiny", alias: nil)) {
            try Detector(encoder: encoder, heads: [head, head])
        }
        var other = head
        other.bias += 1
        #expect(throws: HeadError.sameName("tiny")) {
            try Detector(encoder: encoder, heads: [head, other])
        }
        other.metadata.name = "tiny3"
        renamed.metadata.feature.view = .crop
        #expect(try Detector(encoder: encoder, heads: [head, other, renamed]).heads.count == 3)
    }

    /// A head may not take the name of a column the output gives (a fused score, --stability's,
    /// the verdict's): `eval` would skip it, or the table would have two such columns.
    @Test func headsMayNotTakeAnOutputColumnsName() throws {
        var (head, _) = try Self.importedHead()
        for name in ["filename", "fusion", "probability", "label", "verdict", "error", "typ",
                     "agreement", "score_min", "score_median", "score_max", "stability", " stability "] {
            head.metadata.name = name
            #expect(throws: HeadError.self, "\(name)") { try head.validate() }
        }
        head.metadata.name = "stability2"
        try head.validate()
        // Refused when written too, not only when used (head import --name, train --name).
        head.metadata.name = "agreement"
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("agreement.safetensors").path
        #expect(throws: HeadError.self) { try head.write(to: path) }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func importedHeadScoresAsOpenCLIPPlusTheHead() throws {
        let (head, encoder) = try Self.importedHead()
        // Every file format and naming of the same backbone: the same fingerprint, the same scores.
        for file in ["openclip.safetensors", "openclip.pth", "hf.safetensors", "hf.bin", "openclip_zip64.pth"] {
            let other = try ImageEncoder(path: Fixtures.path("encoder", "a_gelu_proj32", file))
            #expect(other.fingerprint == encoder.fingerprint, "\(file)")
        }
        let detector = try Detector(encoder: encoder, heads: [head])
        var scores: [Double] = []
        try detector.run(paths: Self.expected.images.map { Fixtures.path("images", $0) }) { _, result in
            scores.append(try result.get().score)
        }
        #expect(scores.count == Self.expected.scores.count && !scores.isEmpty)
        for (ours, theirs) in zip(scores, Self.expected.scores) { #expect(abs(ours - theirs) <= 1e-5) }
    }

    @Test func headsRoundTripAndRefuseOtherBackbones() throws {
        let (head, _) = try Self.importedHead()
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("head.safetensors").path
        try head.write(to: path)
        #expect(try Head.read(path) == head)

        let other = try ImageEncoder(path: Fixtures.path("encoder", "b_quickgelu_proj48", "openclip.safetensors"))
        #expect(throws: HeadError.self) { try Detector(encoder: other, heads: [head]) }

        // Same architecture, other weights: refused by fingerprint.
        var altered = head
        altered.metadata.feature.fingerprint = String(repeating: "0", count: 64)
        #expect(throws: HeadError.self) { try Detector(encoder: try ImageEncoder(path: Self.backbone), heads: [altered]) }

        // The reference's config names a ViT-L/14 backbone: a 32-d head does not fit it.
        #expect(throws: HeadError.self) {
            try Head.importReference(checkpoint: Self.reference, config: Fixtures.path("heads", "config.yaml"), name: "x", backbone: nil)
        }
        // ... nor does the 32-wide tower given beside it: the config names another backbone.
        #expect {
            try Head.importReference(checkpoint: Self.reference, config: Fixtures.path("heads", "config.yaml"), name: "x",
                                     backbone: try ImageEncoder(path: Self.backbone))
        } throws: { "\($0)".contains("clip-vit-l14-commonpool") && "\($0)".contains("openclip.safetensors") }
        // A checkpoint without fc.* is no head.
        #expect(throws: HeadError.self) {
            try Head.importReference(checkpoint: Self.backbone, config: nil, name: "x", backbone: try ImageEncoder(path: Self.backbone))
        }
        // A malicious checkpoint is refused before anything runs.
        #expect(throws: CheckpointError.self) {
            try Head.importReference(checkpoint: Fixtures.path("malicious", "os_system.pth"), config: nil, name: "x", backbone: nil)
        }
    }

    @Test func inputsComeFromFilesFoldersCSVsAndStandardInput() throws {
        let folder = try Fixtures.temporaryDirectory()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("sub"), withIntermediateDirectories: true)
        for (source, target) in [("jpeg_420.jpg", "a.jpg"), ("png_rgb.png", "sub/b.dat"), ("bad_text.png", "notes.png")] {
            try FileManager.default.copyItem(atPath: Fixtures.path("images", source), toPath: folder.appendingPathComponent(target).path)
        }
        try "filename,typ\na.jpg,real\n sub/b.dat ,gan\n".write(to: folder.appendingPathComponent("list.csv"), atomically: true, encoding: .utf8)
        // By content: b.dat is a PNG, notes.png is text.
        #expect(try Inputs.collect([folder.path]).map(\.path) == [folder.appendingPathComponent("a.jpg").path, folder.appendingPathComponent("sub/b.dat").path])
        let listed = try Inputs.collect([], csv: folder.appendingPathComponent("list.csv").path)
        #expect(listed.map(\.name) == ["a.jpg", "sub/b.dat"])
        #expect(listed[1].path == folder.appendingPathComponent("sub/b.dat").path)
        #expect(try Inputs.collect(["-"], standardInput: { Data("x.jpg\n\n y.png \r\n".utf8) }).map(\.name) == ["x.jpg", "y.png"])
        // NUL-separated (find -print0): every name, exactly; a newline or space in one is kept.
        #expect(try Inputs.collect(["-"], standardInput: { Data("a b.jpg\0c\nd.png\0".utf8) }).map(\.name) == ["a b.jpg", "c\nd.png"])
        // Names that are not UTF-8 keep their bytes.
        let stray = try Inputs.collect(["-"], standardInput: { Data([0x61, 0xFF, 0x2E, 0x6A, 0x0A]) })
        #expect(stray.count == 1 && PathName.bytes(stray[0].path) == [0x61, 0xFF, 0x2E, 0x6A])
        #expect(throws: ReportError.self) { try Inputs.collect(["-"], standardInput: { Data(repeating: 0x61, count: 5000) }) }
    }
}

/// `clipdetect detect` and `clipdetect eval` end to end.
@Suite struct DetectCommandTests {
    let cli = CommandLineTests()

    func headFile(in folder: URL) throws -> String {
        let path = folder.appendingPathComponent("head.safetensors").path
        let result = try cli.run(["head", "import", DetectTests.reference, "--backbone", DetectTests.backbone, "--name", "tiny", "-o", path])
        #expect(result.status == 0, "\(result.stderr)")
        return path
    }

    /// `--columns reference` is the contract the reference's compute_metrics.py relies on: every
    /// column but filename a finite number, one per head (and fusion when fused), and a failed
    /// image an empty line (pandas skips it). Tests/e2e/test_reference.py runs the script itself.
    @Test func referenceColumnsAreWhatComputeMetricsReads() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try headFile(in: folder)
        let second = folder.appendingPathComponent("second.safetensors").path
        #expect(try cli.run(["head", "import", "--format", "univfd", Fixtures.path("heads", "univfd_fc_weights.pth"), "--backbone", DetectTests.backbone,
                             "--name", "other", "-o", second]).status == 0)
        let images = ["jpeg_420.jpg", "bad_truncated.jpg", "png_rgba.png"].map { Fixtures.path("images", $0) }
        for heads in [[head], [head, second]] {
            let output = folder.appendingPathComponent("reference-\(heads.count).csv").path
            let run = try cli.run(["detect", "--model", DetectTests.backbone, "--columns", "reference", "-o", output] + heads.flatMap { ["--head", $0] } + images)
            #expect(run.status == 2, "\(run.stderr)")
            let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.first == (heads.count == 1 ? "filename,tiny" : "filename,tiny,other,fusion"))
            #expect(lines.count == images.count + 2 && lines[2].isEmpty && lines.last == "", "one line per image, the failed one empty: \(lines)")
            for line in [lines[1], lines[3]] {
                let cells = line.split(separator: ",", omittingEmptySubsequences: false)
                #expect(cells.count == heads.count + (heads.count > 1 ? 1 : 0) + 1, "\(line)")
                #expect(cells.dropFirst().allSatisfy { Double($0).map(\.isFinite) == true }, "\(line)")
            }
            // --resume takes up the failed image again and keeps the others, without another empty line.
            for _ in 0..<2 {
                let again = try cli.run(["detect", "--model", DetectTests.backbone, "--columns", "reference", "--resume", "-o", output] + heads.flatMap { ["--head", $0] } + images)
                #expect(again.stderr.contains("resuming: 2 file(s)"), "\(again.stderr)")
            }
            #expect(try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false) == lines)
        }
        let refused = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--columns", "reference", "--format", "jsonl", images[0]])
        #expect(refused.status != 0 && refused.stderr.contains("--columns reference"))
    }

    /// Messages that say what is wrong and what to do, in one line each.
    @Test func messagesSayWhatIsWrongAndWhatToDo() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try headFile(in: folder)
        func oneLine(_ arguments: [String], _ needle: String) throws {
            let result = try cli.run(arguments)
            #expect(result.status != 0 && result.stderr.contains(needle) && result.stderr.split(separator: "\n").count == 1,
                    "\(arguments.joined(separator: " ")): \(result.stderr)")
        }
        try oneLine(["model", "fetch", "clipdet-latent10k-plsu"], "did you mean clipdet-latent10k-plus")
        try oneLine(["model", "fetch", "univdf"], "did you mean univfd")
        // Offline, the first run names every file it needs (backbone and head), and the local way.
        let offline = try cli.run(["detect", "--offline", Fixtures.path("images", "jpeg_420.jpg")])
        #expect(offline.status != 0 && offline.stderr.split(separator: "\n").count == 1, "\(offline.stderr)")
        for part in ["open_clip_model.safetensors", "weights.pth", "1c9c9f48a47d975bde67e9924983aa4e4ccda96a15e7e983b6305f0c56d9ee18",
                     "model accept clipdet-latent10k-plus", "head import"] {
            #expect(offline.stderr.contains(part), "\(part): \(offline.stderr)")
        }
        try oneLine(["detect", "--head", head, "--band", "-1,2", Fixtures.path("images", "jpeg_420.jpg")], "write --band=-1,2")
        try oneLine(["serve", "--model", DetectTests.backbone, "--head", head, "--port", "0", "--api-keys", "/dev/null"], "holds no key")
        let wildcard = try cli.run(["serve", "--model", DetectTests.backbone, "--head", head, "--port", "0", "--cors-origin", "*"])
        #expect(wildcard.status != 0 && wildcard.stderr.contains("no wildcard"), "\(wildcard.stderr)")
        try oneLine(["calibrate", "--model", DetectTests.backbone, "--head", head, "--real", Fixtures.path("images"), "--band-error", "0.2",
                     "-o", folder.appendingPathComponent("c.safetensors").path], "--band-error reads the calibrated probability")
        // A resume onto a file that is not detect's text, or written with other --stability.
        let binary = folder.appendingPathComponent("binary.csv").path
        try Data([0x89, 0x50, 0x4E, 0x47, 0, 0, 1, 2] + Array(repeating: 0xFF, count: 2000)).write(to: URL(fileURLWithPath: binary))
        try oneLine(["detect", "--model", DetectTests.backbone, "--head", head, "--resume", "-o", binary, Fixtures.path("images", "jpeg_420.jpg")], "not text")
        let stable = folder.appendingPathComponent("stable.csv").path
        #expect(try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--stability", "1", "-o", stable, Fixtures.path("images", "jpeg_420.jpg")]).status == 0)
        try FileManager.default.removeItem(atPath: stable + ".detector")
        let resumed = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--resume", "-o", stable, Fixtures.path("images", "png_rgba.png")])
        #expect(resumed.status != 0 && resumed.stderr.contains("written with --stability"), "\(resumed.stderr)")
        // bench preprocess takes a folder; head info reads a head set.
        let images = folder.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("images", "jpeg_420.jpg"), toPath: images.appendingPathComponent("a.jpg").path)
        let bench = try cli.run(["bench", "preprocess", "--iterations", "1", images.path])
        #expect(bench.status == 0 && bench.stdout.contains("images/s"), "\(bench.stderr)")
        let univfd = folder.appendingPathComponent("univfd.safetensors").path
        #expect(try cli.run(["head", "import", "--format", "univfd", Fixtures.path("heads", "univfd_fc_weights.pth"), "--backbone", DetectTests.backbone, "-o", univfd]).status == 0)
        let set = folder.appendingPathComponent("set.safetensors").path
        try HeadSet(heads: [try Head.read(head), try Head.read(univfd)], fusion: .meanLogit, decision: .plain).write(to: set)
        let info = try cli.run(["head", "info", set])
        #expect(info.status == 0 && info.stdout.contains("\"fusion\" : \"mean_logit\"") && info.stdout.contains("\"tiny\""), "\(info.stdout) \(info.stderr)")
    }

    /// Outputs that cannot be written are refused before any work, in one line that names the cause;
    /// a list that is an image or a folder is said to be one; a head is never written into the
    /// report on standard output.
    @Test func outputsAndListsSayWhatIsWrong() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try headFile(in: folder)
        let image = Fixtures.path("images", "jpeg_420.jpg")
        func oneLine(_ arguments: [String], _ needle: String, environment: [String: String?] = [:]) throws {
            let result = try cli.run(arguments, environment: environment)
            #expect(result.status != 0 && result.stderr.contains(needle) && result.stderr.split(separator: "\n").count == 1,
                    "\(arguments.joined(separator: " ")): \(result.stderr)")
        }
        let detect = ["detect", "--model", DetectTests.backbone, "--head", head]
        try oneLine(detect + ["-o", "/nonexistent/x.csv", image], "cannot write /nonexistent/x.csv: the folder /nonexistent does not exist")
        let dangling = folder.appendingPathComponent("dangling.csv").path
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: "/nonexistent/x.csv")
        try oneLine(detect + ["-o", dangling, image], "it is a link to /nonexistent/x.csv, whose folder does not exist")
        // A link to a file still to be made is written where it points.
        let ahead = folder.appendingPathComponent("ahead.csv").path
        try FileManager.default.createSymbolicLink(atPath: ahead, withDestinationPath: "made.csv")
        #expect(try cli.run(detect + ["-o", ahead, image]).status == 0)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("made.csv").path))
        // eval knows before scoring that its report cannot be written (one line: no progress, no summary).
        let list = folder.appendingPathComponent("list.csv").path
        try "filename,typ\n\(image),real\n\(Fixtures.path("images", "png_rgba.png")),gen\n".write(toFile: list, atomically: true, encoding: .utf8)
        try oneLine(["eval", "--model", DetectTests.backbone, "--head", head, "--csv", list, "--report", "/nonexistent/r.html"], "the folder /nonexistent does not exist")
        try oneLine(["eval", "--model", DetectTests.backbone, "--head", head, "--csv", list, "--save-tab", folder.path], "it is a folder")
        let proc = try cli.run(["head", "import", Fixtures.path("heads", "weights.pth"), "--backbone", DetectTests.backbone, "-o", "/proc/version"])
        #expect(proc.status != 0 && proc.stderr.contains("no file can be made in /proc"), "\(proc.stderr)")
        // A table through /dev/stdout (a pipe here) is written; a head is not mixed into the report there.
        let table = try cli.run(["eval", "--model", DetectTests.backbone, "--head", head, "--csv", list, "--save-tab", "/dev/stdout"])
        #expect(table.status == 0 && table.stdout.contains("acc") , "\(table.stderr)")
        try oneLine(["head", "import", Fixtures.path("heads", "weights.pth"), "--backbone", DetectTests.backbone, "-o", "/dev/stdout"], "is standard output, where the report goes")
        try oneLine(["train", "--model", DetectTests.backbone, "--real", image, "--fake", Fixtures.path("images", "png_rgba.png"), "-o", "/dev/stdout"], "is standard output")
        // A list that is not one.
        try oneLine(detect + ["--csv", image], "is a JPEG image, not a CSV list: give images as arguments")
        try oneLine(detect + ["--csv", Fixtures.path("images")], "is a folder, not a CSV list")
        try oneLine(["eval", "--model", DetectTests.backbone, "--head", head, "--csv", image], "is a JPEG image, not a CSV list")
        // impair: the format from the extension, a missing image said to be missing.
        try oneLine(["impair", image, "--op", "jpeg:q=50", "-o", folder.path + "/"], "the format is the file's extension")
        try oneLine(["impair", folder.appendingPathComponent("none.jpg").path, "--op", "jpeg:q=50", "-o", folder.appendingPathComponent("none.jpg").path], "no such file")
        // train refuses a name no column can take before any work; eval a list with no image.
        try oneLine(["train", "--model", DetectTests.backbone, "--real", image, "--fake", Fixtures.path("images", "png_rgba.png"), "--name", "a\u{1B}[31mb",
                     "-o", folder.appendingPathComponent("t.safetensors").path], #"may not be named "a\u{1B}[31mb""#)
        let empty = folder.appendingPathComponent("empty.csv").path
        try "filename,typ\n".write(toFile: empty, atomically: true, encoding: .utf8)
        let nothing = try cli.run(["eval", "--model", DetectTests.backbone, "--head", head, "--csv", empty])
        #expect(nothing.status != 0 && nothing.stdout.isEmpty && nothing.stderr.contains("lists no image"), "\(nothing.stdout) \(nothing.stderr)")
        // A head whose metadata lacks a field says which, in one line (not Swift's decoding dump).
        let file = try Checkpoint.open(head)
        var metadata = try #require(try JSONSerialization.jsonObject(with: Data(file.metadata["clipdetect.head"]!.utf8)) as? [String: Any])
        metadata["feature"] = nil
        let broken = folder.appendingPathComponent("broken.safetensors").path
        try SafeTensorsWriter.write(try Head.read(head).entries(prefix: ""),
                                    metadata: ["clipdetect.head": String(decoding: try JSONSerialization.data(withJSONObject: metadata), as: UTF8.self)], to: broken)
        try oneLine(detect.dropLast(2) + ["--head", broken, image], "metadata is not valid (feature is missing)")
        // model accept on a file of another shape says what it is, and suggests no option it lacks.
        let home = try Fixtures.temporaryDirectory()
        let place = home.appendingPathComponent("models/laion--CLIP-ViT-L-14-CommonPool.XL-s13B-b90K")
        try FileManager.default.createDirectory(at: place, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: DetectTests.backbone, toPath: place.appendingPathComponent("open_clip_model.safetensors").path)
        try oneLine(["model", "accept", "clipdet-latent10k-plus"], "is a tower of width 32, not clipdet-latent10k-plus's vit-224/14", environment: ["CLIPDETECT_HOME": home.path])
    }

    /// No command writes over one of its inputs, however it is named (here through a link): each
    /// refuses with one line and the file keeps its bytes.
    @Test func noCommandOverwritesItsInputs() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try headFile(in: folder)
        func copy(_ source: String, _ name: String) throws -> String {
            let path = folder.appendingPathComponent(name).path
            try FileManager.default.copyItem(atPath: source, toPath: path)
            return path
        }
        let image = try copy(Fixtures.path("images", "photo_chelsea.png"), "cat.png")
        let other = try copy(Fixtures.path("images", "jpeg_420.jpg"), "other.jpg")
        let model = try copy(DetectTests.backbone, "tower.safetensors")
        let list = folder.appendingPathComponent("list.csv").path
        try "filename,typ\ncat.png,real\nother.jpg,gen\n".write(toFile: list, atomically: true, encoding: .utf8)
        let link = folder.appendingPathComponent("link-to-list.csv").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: list)
        let reals = folder.appendingPathComponent("reals.txt").path
        try "\(image)\n".write(toFile: reals, atomically: true, encoding: .utf8)
        let cases: [(String, [String])] = [
            (list, ["detect", "--model", model, "--head", head, "--csv", list, "-o", link]),
            (head, ["detect", "--model", model, "--head", head, "-o", head, image]),
            (model, ["detect", "--model", model, "--head", head, "-o", model, image]),
            (model, ["embed", "--model", model, "-o", model, image]),
            (image, ["embed", "--model", model, "-o", image, image]),
            (head, ["calibrate", "--model", model, "--head", head, "--real", reals, "--target-fpr", "0.5", "-o", head]),
            (reals, ["calibrate", "--model", model, "--head", head, "--real", reals, "--target-fpr", "0.5", "-o", reals]),
            (list, ["train", "--model", model, "--csv", list, "--C", "1", "-o", link]),
            (other, ["train", "--model", model, "--csv", list, "--C", "1", "-o", other]),
            (list, ["eval", "--model", model, "--head", head, "--csv", list, "--save-tab", list]),
            (model, ["eval", "--model", model, "--head", head, "--csv", list, "--report", model]),
            (DetectTests.reference, ["head", "import", DetectTests.reference, "--backbone", model, "-o", DetectTests.reference]),
            (model, ["head", "import", DetectTests.reference, "--backbone", model, "-o", model]),
            (image, ["impair", image, "--op", "jpeg:q=70", "-o", image]),
            (image, ["preprocess", image, "-o", image]),
        ]
        // The record beside an output is written too: never through a link, never over an input.
        let planted = folder.appendingPathComponent("planted.csv").path
        try FileManager.default.createSymbolicLink(atPath: planted + ".detector", withDestinationPath: list)
        let viaLink = try cli.run(["detect", "--model", model, "--head", head, "-o", planted, image])
        #expect(viaLink.status != 0 && viaLink.stderr.contains("record of -o"), "\(viaLink.stderr)")
        let home = folder.appendingPathComponent("home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let cache = try cli.run(["detect", "--model", model, "--head", head, "-o", home.appendingPathComponent("features.sqlite").path, image],
                                environment: ["CLIPDETECT_HOME": home.path])
        #expect(cache.status != 0 && cache.stderr.contains("is also an input"), "the default feature cache: \(cache.stderr)")
        let scored = folder.appendingPathComponent("scored.csv").path
        #expect(try cli.run(["detect", "--model", model, "--head", head, "--csv", list, "-o", scored]).status == 0)
        let record = try Data(contentsOf: URL(fileURLWithPath: scored + ".detector"))
        let overRecord = try cli.run(["eval", "--csv", list, "--scores", scored, "--save-tab", scored + ".detector"])
        #expect(overRecord.status != 0 && overRecord.stderr.contains("is also an input"), "\(overRecord.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: scored + ".detector")) == record)
        let same = folder.appendingPathComponent("same.out").path
        let twice = try cli.run(["eval", "--csv", list, "--scores", scored, "--save-tab", same, "--report", same])
        #expect(twice.status != 0 && twice.stderr.contains("another output"), "\(twice.stderr)")
        // A record edited by hand with numbers that do not hold is refused in one line, not a trap.
        try #"{"rules":{"tiny":{"calibration":{"method":"isotonic","x":[],"y":[]}}}}"#.write(toFile: scored + ".detector", atomically: true, encoding: .utf8)
        let edited = try cli.run(["eval", "--csv", list, "--scores", scored])
        #expect(edited.status == 1 && edited.stderr.contains("is not valid") && edited.stderr.split(separator: "\n").count == 1, "\(edited.stderr)")
        for (file, arguments) in cases {
            let before = try Data(contentsOf: URL(fileURLWithPath: file))
            let result = try cli.run(arguments)
            #expect(result.status != 0 && result.stderr.contains("is also an input") && result.stderr.split(separator: "\n").count == 1,
                    "\(arguments.joined(separator: " ")): \(result.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == before, "\(arguments.joined(separator: " ")) changed \(file)")
        }
    }

    @Test func aCorruptImageCostsOneRowAndResumeSkipsDoneFiles() throws {
        let folder = try Fixtures.temporaryDirectory()
        let images = folder.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        let sources = ["jpeg_420.jpg", "png_rgba.png", "webp_lossy.webp", "photo_rocket.jpg", "size_33x17.png"]
        for i in 0..<99 {
            try FileManager.default.copyItem(atPath: Fixtures.path("images", sources[i % sources.count]),
                                             toPath: images.appendingPathComponent(String(format: "img%02d-%@", i, sources[i % sources.count])).path)
        }
        try FileManager.default.copyItem(atPath: Fixtures.path("images", "bad_truncated.jpg"), toPath: images.appendingPathComponent("img99-corrupt.jpg").path)
        let head = try headFile(in: folder)
        let output = folder.appendingPathComponent("out.csv").path
        let first = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "-o", output, images.path])
        #expect(first.status == 2)
        let table = try CSVTable(path: output)
        #expect(table.header == ["filename", "tiny", "probability", "label", "verdict", "error"])
        #expect(table.rows.count == 100)
        let errors = try table.values("error").filter { !$0.isEmpty }
        #expect(errors.count == 1 && errors[0].contains("img99-corrupt.jpg"))
        #expect(try table.values("tiny").filter { Double($0) != nil }.count == 99)

        let again = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "-o", output, "--resume", images.path])
        #expect(again.status == 0 && again.stderr.contains("100 file(s) already"))
        #expect(try CSVTable(path: output).rows.count == 100)
    }

    @Test func severalHeadsAreFusedInTheReferenceColumns() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try headFile(in: folder)
        let second = folder.appendingPathComponent("second.safetensors").path
        var other = try Head.read(head)
        other.metadata.name = "tiny2"
        other.bias += 1
        try other.write(to: second)
        let result = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--head", second,
                                  "--fusion", "mean_logit", "--format", "jsonl", Fixtures.path("images", "jpeg_420.jpg")])
        #expect(result.status == 0)
        let row = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let a = row["tiny"] as! Double, b = row["tiny2"] as! Double, fused = row["fusion"] as! Double
        #expect(abs(b - a - 1) < 1e-6 && abs(fused - (a + b) / 2) < 1e-9)
        // A fusion asked of one head is refused: the second head was probably forgotten.
        let alone = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--fusion", "mean_logit", Fixtures.path("images", "jpeg_420.jpg")])
        #expect(alone.status != 0 && alone.stderr.contains("mean_logit fusion needs two or more heads, not only tiny"), "\(alone.stderr)")
    }

    @Test func evalScoresCleanAndImpairedCopiesInOneRun() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try headFile(in: folder)
        var list = "filename,typ\n"
        for (i, name) in ["jpeg_420.jpg", "png_rgba.png", "photo_chelsea.png", "photo_rocket.jpg", "webp_lossy.webp", "cjpeg_gray.jpg"].enumerated() {
            list += "\(Fixtures.path("images", name)),\(i < 3 ? "real" : "gen")\n"
        }
        try list.write(to: folder.appendingPathComponent("list.csv"), atomically: true, encoding: .utf8)
        let result = try cli.run(["eval", "--csv", folder.appendingPathComponent("list.csv").path, "--model", DetectTests.backbone,
                                  "--head", head, "--impair", "social", "--impair", "resize:factor=0.5+jpeg:q=65..95", "--seed", "3"])
        #expect(result.status == 0, "\(result.stderr)")
        for condition in ["tiny [clean]", "tiny [social]", "tiny [resize:factor=0.5+jpeg:q=65..95]", "summary: AVG over generators"] {
            #expect(result.stdout.contains(condition), "\(condition)")
        }
        let impaired = try cli.run(["impair", Fixtures.path("images", "photo_chelsea.png"), "--op", "resize:factor=0.5",
                                    "--op", "jpeg:q=70", "-o", folder.appendingPathComponent("out.jpg").path])
        #expect(impaired.status == 0)
        let written = try ImageDecoder.decode(path: folder.appendingPathComponent("out.jpg").path)
        let expected = try ImpairmentChain(parsing: ["resize:factor=0.5", "jpeg:q=70"]).apply(ImageDecoder.decode(path: Fixtures.path("images", "photo_chelsea.png")))
        #expect(written == expected.0)
    }

    /// The same weights with another input normalisation are another encoder: not merged into one
    /// pass, not given each other's cached features (review finding: the order of --head chose the score).
    @Test func sameWeightsOtherNormalisationStayApart() throws {
        let folder = try Fixtures.temporaryDirectory()
        let tower = folder.appendingPathComponent("openclip.safetensors").path
        try FileManager.default.copyItem(atPath: DetectTests.backbone, toPath: tower)
        let config = #"{"model_cfg": {"embed_dim": 24, "quick_gelu": false, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "head_width": 8, "layers": 2, "mlp_ratio": 4.0}}, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}"#
        try config.write(toFile: folder.appendingPathComponent("open_clip_config.json").path, atomically: true, encoding: .utf8)
        let (paper, encoder) = try DetectTests.importedHead()
        let other = try ImageEncoder(path: tower)
        #expect(other.fingerprint == encoder.fingerprint && !other.computesLike(encoder) && encoder.settingsTag.isEmpty)
        var moved = paper
        moved.metadata.name = "halves"
        let image = ImageSource.file(Fixtures.path("images", "jpeg_420.jpg"))
        let alone = (try Detector(encoder: encoder, heads: [paper]).detect(image).score, try Detector(encoder: other, heads: [moved]).detect(image).score)
        #expect(alone.0 != alone.1)
        for order in [[(paper, encoder), (moved, other)], [(moved, other), (paper, encoder)]] {
            let detector = try Detector(heads: order)
            #expect(detector.encoders.count == 2)
            let scores = try detector.detect(image).scores
            #expect(Set(scores) == [alone.0, alone.1] && scores[order[0].0.metadata.name == "tiny" ? 0 : 1] == alone.0)
        }
        let cache = try FeatureCache(path: folder.appendingPathComponent("f.sqlite").path)
        for (head, tower, want) in [(paper, encoder, alone.0), (moved, other, alone.1)] {
            #expect(try Detector(encoder: tower, heads: [head], configuration: Detector.Configuration(cache: cache)).detect(image).score == want)
        }
        #expect(try cache.stats().entries == 2)
    }

    /// Three detectors on two backbones, with other features and views, in one detect and one eval:
    /// each backbone loaded once, each head's column equal to its own run, the fusion beside them.
    @Test func headsOnSeveralBackbonesRunTogether() throws {
        let folder = try Fixtures.temporaryDirectory()
        let paper = try headFile(in: folder)
        let otherTower = Fixtures.path("encoder", "b_quickgelu_proj48", "openclip.safetensors")
        let other = try ImageEncoder(path: otherTower)
        let elsewhere = folder.appendingPathComponent("elsewhere.safetensors").path
        try Head(weights: (0..<other.featureWidth(.pooled)).map { Float(cos(Double($0))) }, bias: -0.5,
                 metadata: Head.Metadata(name: "elsewhere", feature: Head.Feature(encoder: other))).write(to: elsewhere)
        let univfd = folder.appendingPathComponent("univfd.safetensors").path
        let imported = try cli.run(["head", "import", "--format", "univfd", UnivFDTests.weights, "--backbone", DetectTests.backbone,
                                    "--name", "univfd", "-o", univfd])
        #expect(imported.status == 0, "\(imported.stderr)")
        let images = ["jpeg_420.jpg", "png_rgba.png", "photo_chelsea.png", "photo_rocket.jpg", "webp_lossy.webp", "cjpeg_gray.jpg"]
        let paths = images.map { Fixtures.path("images", $0) }
        let together = try cli.run(["detect", "--no-cache", "--head", paper, "--head", elsewhere, "--head", univfd, "--fusion", "mean_logit"] + paths)
        #expect(together.status == 0, "\(together.stderr)")
        let table = try CSVTable(text: together.stdout, name: "detect")
        #expect(Array(table.header.prefix(5)) == ["filename", "tiny", "elsewhere", "univfd", "fusion"], "\(table.header)")
        for (name, file) in [("tiny", paper), ("elsewhere", elsewhere), ("univfd", univfd)] {
            let alone = try cli.run(["detect", "--no-cache", "--head", file] + paths)
            #expect(alone.status == 0, "\(alone.stderr)")
            #expect(try table.values(name) == CSVTable(text: alone.stdout, name: name).values(name), "\(name)")
        }
        let fused = try zip(zip(table.values("tiny"), table.values("elsewhere")), table.values("univfd")).map { (Double($0.0)! + Double($0.1)! + Double($1)!) / 3 }
        for (ours, want) in zip(try table.values("fusion").map { Double($0)! }, fused) { #expect(abs(ours - want) <= 1e-12) }
        // --model puts every head on that backbone: the head made elsewhere is refused in one line.
        let forced = try cli.run(["detect", "--no-cache", "--model", DetectTests.backbone, "--head", paper, "--head", elsewhere] + paths)
        #expect(forced.status != 0 && forced.stderr.contains("elsewhere was made for") && forced.stderr.split(separator: "\n").count == 1,
                "\(forced.stderr)")
        // eval: one table per detector and the fusion, and one summary of them side by side.
        var list = "filename,typ\n"
        for (i, path) in paths.enumerated() { list += "\(path),\(i < 3 ? "real" : "gen")\n" }
        try list.write(to: folder.appendingPathComponent("list.csv"), atomically: true, encoding: .utf8)
        let evaluated = try cli.run(["eval", "--no-cache", "--csv", folder.appendingPathComponent("list.csv").path,
                                     "--head", paper, "--head", elsewhere, "--head", univfd])
        #expect(evaluated.status == 0, "\(evaluated.stderr)")
        let summary = evaluated.stdout.components(separatedBy: "summary: AVG over generators\n").last ?? ""
        #expect(["tiny", "elsewhere", "univfd", "fusion"].allSatisfy { name in summary.split(separator: "\n").contains { $0.hasPrefix("  \(name) ") } },
                "\(evaluated.stdout)")
    }

    /// Without --model, a head brings its backbone: the named one it was trained on, or the local
    /// file it was made on; a head whose local backbone is gone says so. Heads without either get the default model.
    @Test func theHeadChoosesTheBackboneWhenNoModelIsGiven() throws {
        let folder = try Fixtures.temporaryDirectory()
        let local = try Head.read(try headFile(in: folder))
        #expect(local.metadata.feature.backbonePath == URL(fileURLWithPath: DetectTests.backbone).standardizedFileURL.path)
        var head = local
        head.metadata.feature.backbone = "openai/clip-vit-base-patch16"
        head.metadata.feature.backbonePath = nil
        let named = folder.appendingPathComponent("b16.safetensors").path
        try head.write(to: named)
        let list = folder.appendingPathComponent("list.csv").path
        try "filename,typ\n\(Fixtures.path("images", "jpeg_420.jpg")),real\n".write(toFile: list, atomically: true, encoding: .utf8)
        let b16 = try cli.run(["eval", "--csv", list, "--head", named, "--offline"])
        #expect(b16.status != 0 && b16.stderr.contains("clip-vit-base-patch16"), "\(b16.stderr)")
        let found = try cli.run(["detect", "--head", folder.appendingPathComponent("head.safetensors").path, "--offline", Fixtures.path("images", "jpeg_420.jpg")])
        #expect(found.status == 0, "\(found.stderr)")
        head = local
        head.metadata.feature.backbonePath = "/nonexistent/tower.safetensors"
        let moved = folder.appendingPathComponent("moved.safetensors").path
        try head.write(to: moved)
        let gone = try cli.run(["detect", "--head", moved, "--offline", Fixtures.path("images", "jpeg_420.jpg")])
        #expect(gone.status != 0 && gone.stderr.contains("/nonexistent/tower.safetensors, which is not there"), "\(gone.stderr)")
        head.metadata.feature.fingerprint = nil
        head.metadata.feature.backbonePath = nil
        let plain = folder.appendingPathComponent("plain.safetensors").path
        try head.write(to: plain)
        let fallback = try cli.run(["detect", "--head", plain, "--offline", list])
        #expect(fallback.status != 0 && fallback.stderr.contains("CLIP-ViT-L-14-CommonPool"), "\(fallback.stderr)")
        // With --scores, --head only says how its column reads: a file without that column is refused.
        let scores = folder.appendingPathComponent("other-scores.csv").path
        try "filename,someone_else\na.png,0.5\n".write(toFile: scores, atomically: true, encoding: .utf8)
        let both = try cli.run(["eval", "--csv", list, "--scores", scores, "--head", named])
        #expect(both.status != 0 && both.stderr.contains("column for --head"), "\(both.stderr)")
    }

    @Test func evalEqualsScikitLearnOnTheReferenceFormat() throws {
        let saved = try Fixtures.temporaryDirectory().appendingPathComponent("metrics.csv").path
        let result = try cli.run(["eval", "--csv", Fixtures.path("metrics", "list.csv"), "--scores", Fixtures.path("metrics", "scores.csv"),
                                  "--save-tab", saved])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("detector detA") && result.stdout.contains("AVG"))
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("metrics", "evaluation.json")))) as! [String: [String: [String: Double]]]
        let table = try CSVTable(path: saved)
        let detectors = try table.values("detector"), generators = try table.values("generator")
        let auc = try table.values("auc").map { Double($0)! }, acc = try table.values("acc").map { Double($0)! }
        #expect(table.rows.count == 12)
        for i in table.rows.indices {
            let want = expected[detectors[i]]![generators[i]]!
            #expect(abs(auc[i] - want["auc"]!) <= 1e-12 && abs(acc[i] - want["acc"]!) <= 1e-12, "\(detectors[i]) \(generators[i])")
        }
    }
}

/// UnivFD's layer imported from a file saved as UnivFD saves it, scoring as UnivFD's own model and
/// test transform do (tools/fixtures/make_univfd_fixtures.py).
@Suite struct UnivFDTests {
    struct Expected: Decodable { let images: [String]; let scores: [Double] }
    static let weights = Fixtures.path("heads", "univfd_fc_weights.pth")

    @Test func importedLayerScoresAsUnivFD() throws {
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("heads", "univfd_expected.json"))))
        let encoder = try ImageEncoder(path: DetectTests.backbone)
        let head = try Head.importUnivFD(checkpoint: Self.weights, name: "univfd", backbone: encoder)
        #expect(head.metadata.feature.kind == .projected && !head.metadata.feature.normalized && head.metadata.feature.inputView == .crop)
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("univfd.safetensors").path
        try head.write(to: path)
        #expect(try Head.read(path) == head)
        let detector = try Detector(encoder: encoder, heads: [try Head.read(path)])
        #expect(detector.extractor.settings.view == .crop)
        var scores: [Double] = []
        try detector.run(paths: expected.images.map { Fixtures.path("images", $0) }) { _, result in scores.append(try result.get().score) }
        #expect(scores.count == expected.scores.count && expected.scores.count == 6)
        for (ours, theirs) in zip(scores, expected.scores) { #expect(abs(ours - theirs) <= 1e-5, "\(scores) vs \(expected.scores)") }
    }

    @Test func wrongFilesAndBackbonesAreRefused() throws {
        let encoder = try ImageEncoder(path: DetectTests.backbone)
        // The paper's weights.pth is not UnivFD's layer.
        #expect(throws: HeadError.self) { try Head.importUnivFD(checkpoint: DetectTests.reference, name: "u", backbone: encoder) }
        // A tower whose projection is not the layer's width (or that has none).
        let other = try ImageEncoder(path: Fixtures.path("encoder", "b_quickgelu_proj48", "openclip.safetensors"))
        #expect(throws: HeadError.self) { try Head.importUnivFD(checkpoint: Self.weights, name: "u", backbone: other) }
    }

    /// A head records its backbone's activation to fill what a checkpoint leaves unsaid, never to
    /// override what it states: a QuickGELU head without a fingerprint on a tower whose config says
    /// GELU is refused, not run as QuickGELU (it scored, silently wrong, before).
    @Test func aHeadsRecordedActivationDoesNotOverrideTheCheckpoints() throws {
        let encoder = try ImageEncoder(path: DetectTests.backbone)
        var head = try Head.importUnivFD(checkpoint: Self.weights, name: "u", backbone: encoder)
        #expect(head.metadata.feature.architecture.hasSuffix("-gelu-p24"))
        head.metadata.feature.architecture = head.metadata.feature.architecture.replacingOccurrences(of: "-gelu-", with: "-quick_gelu-")
        head.metadata.feature.fingerprint = nil
        head.metadata.feature.backbonePath = nil
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("quick.safetensors").path
        try head.write(to: path)
        let image = Fixtures.path("images", "jpeg_420.jpg")
        let run = try CommandLineTests().run(["detect", "--no-cache", "--model", DetectTests.backbone, "--head", path, image])
        #expect(run.status != 0 && run.stderr.contains("quick_gelu") && run.stderr.contains("-gelu-p24"), "\(run.stderr)")
    }

    /// Heads of other features, views and backbones in one detector: each scores exactly as it does
    /// alone, the features of one encoder and view come from one pass, and a fused column is added.
    @Test func headsOfOtherFeaturesViewsAndBackbonesShareOneRun() throws {
        let encoder = try ImageEncoder(path: DetectTests.backbone)
        let other = try ImageEncoder(path: Fixtures.path("encoder", "b_quickgelu_proj48", "openclip.safetensors"))
        let univfd = try Head.importUnivFD(checkpoint: Self.weights, name: "univfd", backbone: encoder)
        let rine = try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "tiny_trainable.pth"), name: "rine", backbone: encoder)
        let (paper, _) = try DetectTests.importedHead()
        var cropped = paper
        cropped.metadata.name = "cropped"
        cropped.metadata.feature.view = .crop
        let width = other.featureWidth(.pooled)
        let elsewhere = Head(weights: (0..<width).map { Float(sin(Double($0))) }, bias: 0.25,
                             metadata: Head.Metadata(name: "elsewhere", feature: Head.Feature(encoder: other)))
        // The same weights loaded twice run once.
        let again = try ImageEncoder(path: DetectTests.backbone)
        let assigned: [(head: Head, encoder: ImageEncoder)] = [(paper, encoder), (univfd, again), (elsewhere, other), (rine, encoder), (cropped, encoder)]
        let detector = try Detector(heads: assigned, configuration: Detector.Configuration(batchSize: 3))
        #expect(detector.encoders.count == 2 && detector.encoders[0] === encoder && detector.encoder(ofHead: 1) === encoder)
        #expect(detector.extractor.requests.count == 5 && detector.inputs == [0, 1, 2, 3, 4])
        let passes = Set(detector.extractor.requests.map { "\(ObjectIdentifier($0.encoder)) \($0.view)" })
        #expect(passes.count == 3)
        let images = ["jpeg_420.jpg", "png_rgba.png", "size_33x17.png", "size_700x3.png", "webp_lossy.webp"].map { Fixtures.path("images", $0) }
        var together: [Detection] = []
        try detector.run(paths: images) { _, result in together.append(try result.get()) }
        #expect(together.count == images.count)
        for (index, (head, encoder)) in assigned.enumerated() {
            var alone: [Double] = []
            try Detector(encoder: encoder, heads: [head]).run(paths: images) { _, result in alone.append(try result.get().score) }
            #expect(together.map { $0.scores[index] } == alone, "\(head.metadata.name)")
        }
        for detection in together { #expect(detection.fused == detector.fuse(detection.scores)) }
        // Every feature is cached under its own key; a second run reads them all and decodes nothing.
        let cache = try FeatureCache(path: Fixtures.temporaryDirectory().appendingPathComponent("features.sqlite").path)
        let cached = try Detector(heads: assigned, configuration: Detector.Configuration(batchSize: 3, cache: cache))
        for round in 0..<2 {
            var scores: [Detection] = []
            try cached.run(paths: images) { _, result in scores.append(try result.get()) }
            #expect(scores.map(\.scores) == together.map(\.scores))
            #expect(scores.allSatisfy { ($0.imageWidth == nil) == (round == 1) })
        }
        // A head still refuses a backbone it was not made for.
        #expect(throws: HeadError.self) { try Detector(heads: [(paper, other)]) }
    }
}

/// The real UnivFD layer (WisconsinAIVision/UniversalFakeDetect, MIT; committed with its licence):
/// its names and shapes through the restricted unpickler, its output on a fixed input against
/// PyTorch's nn.Linear loaded from the same file, and the registry's pinned file.
@Suite struct UnivFDReleaseTests {
    static let file = Fixtures.path("heads", "univfd", "fc_weights.pth")
    struct Expected: Decodable { let score: Double; let bias: Double }

    @Test func theReleasedLayerImportsAndScoresAsPyTorch() throws {
        let checkpoint = try Checkpoint.open(Self.file)
        #expect(checkpoint.tensors.mapValues(\.shape) == ["weight": [1, 768], "bias": [1]])
        let head = try Head.importUnivFD(checkpoint: Self.file, name: "univfd", backbone: nil)
        let openAI = try #require(NamedModel.named("openai-vit-l14"))
        #expect(head.metadata.feature == Head.Feature(architecture: openAI.architecture, fingerprint: nil, backbone: openAI.backbone.repository,
                                                      kind: .projected, normalized: false, width: 768, view: .crop))
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("heads", "univfd", "expected.json"))))
        let input = (0..<768).map { Float(sin(Double($0)) * 0.1) }
        #expect(abs(head.score(input) - expected.score) <= 1e-6)
        #expect(Double(head.bias) == expected.bias)
    }

    @Test func theRegistryPinsTheReleasedFile() throws {
        let named = try #require(NamedModel.named("univfd"))
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.file))
        #expect(named.head?.sha256 == CommandTests.sha256(data) && named.head?.size == data.count)
        #expect(named.head?.format == .univfd && named.head?.license?.hasPrefix("MIT") == true)
        #expect(named.head.map { $0.source + "/" + $0.path }
                == "https://raw.githubusercontent.com/WisconsinAIVision/UniversalFakeDetect/main/pretrained_weights/fc_weights.pth")
    }

    /// Fetched over loopback as the registry fetches them (UnivFD's and RINE's released files):
    /// the pinned bytes give the head, other bytes are refused and not kept; a cached file changed
    /// later is refused on use.
    @Test(arguments: [("univfd", Fixtures.path("heads", "univfd", "fc_weights.pth")),
                      ("rine-2class", Fixtures.path("heads", "rine", "model_2class_trainable.pth"))])
    func theStoreFetchesAndVerifiesTheHead(model: String, file: String) throws {
        let named = try #require(NamedModel.named(model))
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        #expect(named.head?.sha256 == CommandTests.sha256(data) && named.head?.size == data.count)
        let local = named.head?.format == .univfd ? try Head.importUnivFD(checkpoint: file, name: model, backbone: nil)
            : try Head.importRINE(checkpoint: file, name: model, backbone: nil)
        var altered = data
        altered[100] ^= 0xFF
        for (bytes, accepted) in [(data, true), (altered, false)] {
            let path = "/" + named.head!.path
            let server = try LoopbackServer(handler: { request in
                request.path == path ? LoopbackServer.ranged(Data(bytes), request: request) : .init(status: 404)
            })
            defer { server.stop() }
            let home = try Fixtures.temporaryDirectory()
            let store = ModelStore(environment: ["CLIPDETECT_HOME": home.path, "CLIPDETECT_HEADS_ENDPOINT": server.base.absoluteString])
            if accepted {
                #expect(try store.head(named, backbone: nil) == local)
                let cached = try #require(store.cachedHead(named))
                // Changed in the cache afterwards (or put there by hand): refused on use, offline too.
                try altered.write(to: URL(fileURLWithPath: cached))
                let offline = ModelStore(environment: ["CLIPDETECT_HOME": home.path], offline: true)
                #expect { try offline.head(named, backbone: nil) } throws: { error in
                    guard case DownloadError.altered(let path, _, _) = error else { return false }
                    return path == cached
                }
                // Not a file at all: one line, not a trap.
                try FileManager.default.removeItem(atPath: cached)
                try FileManager.default.createDirectory(atPath: cached, withIntermediateDirectories: false)
                #expect { try offline.head(named, backbone: nil) } throws: { error in (error as? FileError)?.reason == .folder }
            } else {
                #expect(throws: (any Error).self) { try store.head(named, backbone: nil) }
                #expect(store.cachedHead(named) == nil)
            }
        }
    }

    /// `--head NAME` takes a named model's own head, fetched as the model's; with head files beside
    /// it, in the order given; never with a head set, which is calibrated as a whole.
    @Test func namedModelsGiveTheirHeads() throws {
        let files = ["/" + NamedModel.named("univfd")!.head!.path: Fixtures.path("heads", "univfd", "fc_weights.pth"),
                     "/" + NamedModel.named("rine-2class")!.head!.path: Fixtures.path("heads", "rine", "model_2class_trainable.pth")]
        let server = try LoopbackServer(handler: { request in
            guard let file = files[request.path], let data = try? Data(contentsOf: URL(fileURLWithPath: file)) else { return .init(status: 404) }
            return LoopbackServer.ranged(data, request: request)
        })
        defer { server.stop() }
        let home = try Fixtures.temporaryDirectory()
        let store = ModelStore(environment: ["CLIPDETECT_HOME": home.path, "CLIPDETECT_HEADS_ENDPOINT": server.base.absoluteString])
        let (head, _) = try DetectTests.importedHead()
        let file = home.appendingPathComponent("tiny.safetensors").path
        try head.write(to: file)
        let (selection, models) = try ModelResolution.heads(["rine-2class", file, "univfd"], store: store)
        #expect(selection.heads.map(\.metadata.name) == ["rine-2class", "tiny", "univfd"] && selection.set == nil)
        #expect(models == ["rine-2class", nil, "univfd"])
        #expect(selection.heads[0].trunk != nil && selection.heads[2].metadata.feature.kind == .projected)
        // A backbone without a head, and a head set beside a named head, are refused.
        #expect(throws: ResolutionError.noHead("openai-vit-l14")) { try ModelResolution.heads(["openai-vit-l14"], store: store) }
        var second = head
        second.metadata.name = "tiny2"
        let set = home.appendingPathComponent("set.safetensors").path
        try HeadSet(heads: [head, second], fusion: .meanLogit, decision: .plain).write(to: set)
        #expect(throws: HeadError.self) { try ModelResolution.heads([set, "univfd"], store: store) }
        #expect(try ModelResolution.heads([set], store: store).selection.heads.count == 2)
    }
}

/// RINE's released 2-class checkpoint (mever-team/rine, Apache-2.0; committed with its licence)
/// reads through the restricted unpickler with the names and shapes RINE's Model gives them:
/// the importance α over 24 blocks, proj1/proj2 of four Linear(·, 128) each, a three-layer head.
@Suite struct RINECheckpointTests {
    @Test func theReleasedCheckpointReadsSafely() throws {
        let path = Fixtures.path("heads", "rine", "model_2class_trainable.pth")
        #expect(CommandTests.sha256(try Data(contentsOf: URL(fileURLWithPath: path))) == "680d301b6d191da85b9dabcebf42cd3df20c5c669fa8320c498f835d02bf5ccb")
        let checkpoint = try Checkpoint.open(path)
        var expected: [String: [Int]] = ["alpha": [1, 24, 128], "head.0.weight": [128, 128], "head.0.bias": [128],
                                         "head.3.weight": [128, 128], "head.3.bias": [128], "head.6.weight": [1, 128], "head.6.bias": [1]]
        for block in ["proj1", "proj2"] {
            for (index, layer) in [1, 4, 7, 10].enumerated() {
                expected["\(block).\(layer).weight"] = [128, block == "proj1" && index == 0 ? 1024 : 128]
                expected["\(block).\(layer).bias"] = [128]
            }
        }
        #expect(checkpoint.tensors.mapValues(\.shape) == expected)
        #expect(try checkpoint.tensors.values.allSatisfy { try $0.floats().values.allSatisfy(\.isFinite) })
    }
}

/// RINE's network imported and scoring as RINE's model does (tools/fixtures/make_rine_fixtures.py):
/// a random network for the tiny tower end to end (blocks feature, crop view), and the released
/// checkpoint on a fixed input against PyTorch.
@Suite struct RINETests {
    struct Expected: Decodable { let images: [String]?; let scores: [Double]?; let score: Double? }
    static func expected(_ file: String) throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("heads", "rine", file))))
    }

    @Test func aTinyNetworkScoresAsRINE() throws {
        let encoder = try ImageEncoder(path: DetectTests.backbone)
        let head = try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "tiny_trainable.pth"), name: "rine", backbone: encoder)
        #expect(head.metadata.feature.kind == .blocks && !head.metadata.feature.normalized && head.metadata.feature.inputView == .crop)
        #expect(head.trunk?.blocks == 2 && head.trunk?.dim == 8 && head.trunk?.tokenWidth == 32)
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("rine.safetensors").path
        try head.write(to: path)
        #expect(try Head.read(path) == head)
        let expected = try Self.expected("tiny_expected.json")
        var scores: [Double] = []
        try Detector(encoder: encoder, heads: [try Head.read(path)]).run(paths: expected.images!.map { Fixtures.path("images", $0) }) {
            _, result in scores.append(try result.get().score)
        }
        #expect(scores.count == 5 && expected.scores!.count == 5)
        for (ours, theirs) in zip(scores, expected.scores!) { #expect(abs(ours - theirs) <= 1e-5, "\(scores) vs \(expected.scores!)") }
    }

    /// The same network evaluated as RINE evaluates its LDM checkpoint: ten crops, their outputs
    /// averaged; an image smaller than the crop fails alone, naming itself.
    @Test func tenCropScoresAsRINEsLDMEvaluation() throws {
        let encoder = try ImageEncoder(path: DetectTests.backbone)
        let head = try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "tiny_trainable.pth"), name: "rine", backbone: encoder, view: .tenCrop)
        #expect(head.metadata.feature.inputView == .tenCrop && head.metadata.feature.width == 2 * 32)
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("rine-ldm.safetensors").path
        try head.write(to: path)
        #expect(try Head.read(path) == head)
        let expected = try Self.expected("tiny_tencrop_expected.json")
        let detector = try Detector(encoder: encoder, heads: [try Head.read(path)], configuration: Detector.Configuration(batchSize: 4))
        #expect(detector.extractor.width == 10 * 2 * 32)
        let small = Fixtures.path("images", "size_33x17.png")
        var results: [Result<Detection, Error>] = []
        try detector.run(paths: expected.images!.map { Fixtures.path("images", $0) } + [small]) { results.append($1) }
        let scores = try results.dropLast().map { try $0.get().score }
        #expect(scores.count == 6 && expected.scores!.count == 6)
        for (ours, theirs) in zip(scores, expected.scores!) { #expect(abs(ours - theirs) <= 1e-5, "\(scores) vs \(expected.scores!)") }
        #expect(throws: (any Error).self) { try results.last!.get() }
        if case .failure(let error) = results.last! {
            #expect("\(error)".hasSuffix("size_33x17.png: image too small: 33×17 is smaller than the 32×32 crops of the ten-crop view"), "\(error)")
        }
        // Beside the crop-view network on the same tower: two passes (one per view), each as alone.
        let crop = try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "tiny_trainable.pth"), name: "rine-crop", backbone: encoder)
        let both = try Detector(heads: [(head, encoder), (crop, encoder)])
        let image = Fixtures.path("images", "photo_rocket.jpg")
        #expect(try both.detect(.file(image)).scores == [try detector.detect(.file(image)).score, try Detector(encoder: encoder, heads: [crop]).detect(.file(image)).score])
    }

    @Test func theReleasedNetworkScoresAsPyTorch() throws {
        let head = try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "model_2class_trainable.pth"), name: "rine-2class", backbone: nil)
        #expect(head.metadata.feature.width == 24 * 1024 && head.trunk?.dim == 128 && head.trunk?.proj1.count == 4)
        let input = (0..<(24 * 1024)).map { Float(sin(0.37 * Double($0)) * 2) }
        let want = try #require(try Self.expected("released_expected.json").score)
        #expect(abs(head.score(input) - want) <= 1e-4 * max(1, abs(want)), "\(head.score(input)) vs \(want)")
        // Round trip through a head file, and a set of heads.
        let folder = try Fixtures.temporaryDirectory()
        try head.write(to: folder.appendingPathComponent("rine.safetensors").path)
        #expect(try Head.read(folder.appendingPathComponent("rine.safetensors").path) == head)
        var other = head
        other.metadata.name = "rine-b"
        let set = HeadSet(heads: [head, other], fusion: .meanLogit, decision: .plain, calibrationSet: nil)
        try set.write(to: folder.appendingPathComponent("set.safetensors").path)
        #expect(try HeadSelection.read([folder.appendingPathComponent("set.safetensors").path]).heads == [head, other])
    }

    @Test func otherFilesAndBackbonesAreRefused() throws {
        let encoder = try ImageEncoder(path: DetectTests.backbone)
        #expect(throws: HeadError.self) { try Head.importRINE(checkpoint: UnivFDReleaseTests.file, name: "r", backbone: nil) }
        // The released network needs 24 blocks of 1024: the tiny tower has 2 of 32.
        #expect(throws: HeadError.self) {
            try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "model_2class_trainable.pth"), name: "r", backbone: encoder)
        }
        // A head file whose network does not match its metadata (width, normalisation, view) is refused.
        let head = try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "tiny_trainable.pth"), name: "rine", backbone: encoder)
        let folder = try Fixtures.temporaryDirectory()
        for index in 0..<4 {
            var altered = head
            switch index {
            case 0: altered.metadata.feature.width = 65
            case 1: altered.metadata.feature.normalized = true
            case 2: altered.metadata.feature.view = .resizeCrop
            default: altered.metadata.feature.view = nil
            }
            let path = folder.appendingPathComponent("bad\(index).safetensors").path
            try altered.write(to: path)
            #expect(throws: HeadError.self, "change \(index)") { try Head.read(path) }
        }
        // The same width split otherwise (4 blocks of 16 for a tower of 2 blocks of 32) does not fit the backbone.
        let trunk = try #require(head.trunk)
        var resplit = head
        resplit.trunk = RINETrunk(alpha: trunk.alpha + trunk.alpha, blocks: 4, dim: trunk.dim, tokenWidth: 16,
                                  proj1: [.init(weight: .init(repeating: 0.1, count: trunk.dim * 16), bias: .init(repeating: 0, count: trunk.dim),
                                                inputs: 16, outputs: trunk.dim)] + trunk.proj1.dropFirst(),
                                  proj2: trunk.proj2, hidden: trunk.hidden)
        #expect(throws: HeadError.mismatch(head: "rine", .trunk(blocks: 4, width: 16, backboneBlocks: 2, backboneWidth: 32))) {
            try Detector(encoder: encoder, heads: [resplit])
        }
        #expect("\(HeadError.mismatch(head: "rine", .trunk(blocks: 4, width: 16, backboneBlocks: 2, backboneWidth: 32)))"
                == "head does not fit: rine's network takes 4 blocks of 16, not the backbone's 2 of 32")
    }
}
