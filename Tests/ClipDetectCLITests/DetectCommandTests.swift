import Foundation
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools
import ClipDetectTestSupport

/// `clipdetect detect` and `clipdetect eval` end to end.
@Suite struct DetectCommandTests {
    let cli = CLI()

    func headFile(in folder: URL) throws -> String {
        let path = folder.appendingPathComponent("head.safetensors").path
        let result = try cli.run(["head", "import", Fixtures.referenceHead, "--backbone", Fixtures.backbone, "--name", "tiny", "-o", path])
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
        #expect(try cli.run(["head", "import", "--format", "univfd", Fixtures.path("heads", "univfd_fc_weights.pth"), "--backbone", Fixtures.backbone,
                             "--name", "other", "-o", second]).status == 0)
        let images = ["jpeg_420.jpg", "bad_truncated.jpg", "png_rgba.png"].map { Fixtures.path("images", $0) }
        for heads in [[head], [head, second]] {
            let output = folder.appendingPathComponent("reference-\(heads.count).csv").path
            let run = try cli.run(["detect", "--model", Fixtures.backbone, "--columns", "reference", "-o", output] + heads.flatMap { ["--head", $0] } + images)
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
                let again = try cli.run(["detect", "--model", Fixtures.backbone, "--columns", "reference", "--resume", "-o", output] + heads.flatMap { ["--head", $0] } + images)
                #expect(again.stderr.contains("resuming: 2 file(s)"), "\(again.stderr)")
            }
            #expect(try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false) == lines)
        }
        let refused = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--columns", "reference", "--format", "jsonl", images[0]])
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
        try oneLine(["serve", "--model", Fixtures.backbone, "--head", head, "--port", "0", "--api-keys", "/dev/null"], "holds no key")
        try oneLine(["serve", "--model", Fixtures.backbone, "--head", head, "--port", "0", "--host", "999.1.1.1"], "give --host an address")
        try oneLine(["detect", "--model", Fixtures.backbone, "--head", head, "--fusion", "mean_logit", Fixtures.path("images", "jpeg_420.jpg")],
                    "(drop --fusion, or give another --head)")
        let wildcard = try cli.run(["serve", "--model", Fixtures.backbone, "--head", head, "--port", "0", "--cors-origin", "*"])
        #expect(wildcard.status != 0 && wildcard.stderr.contains("no wildcard"), "\(wildcard.stderr)")
        try oneLine(["calibrate", "--model", Fixtures.backbone, "--head", head, "--real", Fixtures.path("images"), "--band-error", "0.2",
                     "-o", folder.appendingPathComponent("c.safetensors").path], "--band-error reads the calibrated probability")
        // A resume onto a file that is not detect's text, or written with other --stability.
        let binary = folder.appendingPathComponent("binary.csv").path
        try Data([0x89, 0x50, 0x4E, 0x47, 0, 0, 1, 2] + Array(repeating: 0xFF, count: 2000)).write(to: URL(fileURLWithPath: binary))
        try oneLine(["detect", "--model", Fixtures.backbone, "--head", head, "--resume", "-o", binary, Fixtures.path("images", "jpeg_420.jpg")], "not text")
        let stable = folder.appendingPathComponent("stable.csv").path
        #expect(try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--stability", "1", "-o", stable, Fixtures.path("images", "jpeg_420.jpg")]).status == 0)
        try FileManager.default.removeItem(atPath: stable + ".detector")
        let resumed = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--resume", "-o", stable, Fixtures.path("images", "png_rgba.png")])
        #expect(resumed.status != 0 && resumed.stderr.contains("written with --stability"), "\(resumed.stderr)")
        // bench preprocess takes a folder; head info reads a head set.
        let images = folder.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("images", "jpeg_420.jpg"), toPath: images.appendingPathComponent("a.jpg").path)
        let bench = try cli.run(["bench", "preprocess", "--iterations", "1", images.path])
        #expect(bench.status == 0 && bench.stdout.contains("images/s"), "\(bench.stderr)")
        let univfd = folder.appendingPathComponent("univfd.safetensors").path
        #expect(try cli.run(["head", "import", "--format", "univfd", Fixtures.path("heads", "univfd_fc_weights.pth"), "--backbone", Fixtures.backbone, "-o", univfd]).status == 0)
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
        let detect = ["detect", "--model", Fixtures.backbone, "--head", head]
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
        try oneLine(["eval", "--model", Fixtures.backbone, "--head", head, "--csv", list, "--report", "/nonexistent/r.html"], "the folder /nonexistent does not exist")
        try oneLine(["eval", "--model", Fixtures.backbone, "--head", head, "--csv", list, "--save-tab", folder.path], "it is a folder")
        let proc = try cli.run(["head", "import", Fixtures.path("heads", "weights.pth"), "--backbone", Fixtures.backbone, "-o", "/proc/version"])
        #expect(proc.status != 0 && proc.stderr.contains("no file can be made in /proc"), "\(proc.stderr)")
        // A table through /dev/stdout (a pipe here) is written; a head is not mixed into the report there.
        let table = try cli.run(["eval", "--model", Fixtures.backbone, "--head", head, "--csv", list, "--save-tab", "/dev/stdout"])
        #expect(table.status == 0 && table.stdout.contains("acc") , "\(table.stderr)")
        try oneLine(["head", "import", Fixtures.path("heads", "weights.pth"), "--backbone", Fixtures.backbone, "-o", "/dev/stdout"], "is standard output, where the report goes")
        try oneLine(["train", "--model", Fixtures.backbone, "--real", image, "--fake", Fixtures.path("images", "png_rgba.png"), "-o", "/dev/stdout"], "is standard output")
        // A list that is not one.
        try oneLine(detect + ["--csv", image], "is a JPEG image, not a CSV list: give images as arguments")
        try oneLine(detect + ["--csv", Fixtures.path("images")], "is a folder, not a CSV list")
        try oneLine(["eval", "--model", Fixtures.backbone, "--head", head, "--csv", image], "is a JPEG image, not a CSV list")
        // impair: the format from the extension, a missing image said to be missing.
        try oneLine(["impair", image, "--op", "jpeg:q=50", "-o", folder.path + "/"], "the format is the file's extension")
        try oneLine(["impair", folder.appendingPathComponent("none.jpg").path, "--op", "jpeg:q=50", "-o", folder.appendingPathComponent("none.jpg").path], "no such file")
        // train refuses a name no column can take before any work; eval a list with no image.
        try oneLine(["train", "--model", Fixtures.backbone, "--real", image, "--fake", Fixtures.path("images", "png_rgba.png"), "--name", "a\u{1B}[31mb",
                     "-o", folder.appendingPathComponent("t.safetensors").path], #"may not be named "a\u{1B}[31mb""#)
        let empty = folder.appendingPathComponent("empty.csv").path
        try "filename,typ\n".write(toFile: empty, atomically: true, encoding: .utf8)
        let nothing = try cli.run(["eval", "--model", Fixtures.backbone, "--head", head, "--csv", empty])
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
        try FileManager.default.copyItem(atPath: Fixtures.backbone, toPath: place.appendingPathComponent("open_clip_model.safetensors").path)
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
        let model = try copy(Fixtures.backbone, "tower.safetensors")
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
            (Fixtures.referenceHead, ["head", "import", Fixtures.referenceHead, "--backbone", model, "-o", Fixtures.referenceHead]),
            (model, ["head", "import", Fixtures.referenceHead, "--backbone", model, "-o", model]),
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
        let first = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "-o", output, images.path])
        #expect(first.status == 2)
        let table = try CSVTable(path: output)
        #expect(table.header == ["filename", "tiny", "probability", "label", "verdict", "error"])
        #expect(table.rows.count == 100)
        let errors = try table.values("error").filter { !$0.isEmpty }
        #expect(errors.count == 1 && errors[0].contains("img99-corrupt.jpg"))
        #expect(try table.values("tiny").filter { Double($0) != nil }.count == 99)

        let again = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "-o", output, "--resume", images.path])
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
        let result = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--head", second,
                                  "--fusion", "mean_logit", "--format", "jsonl", Fixtures.path("images", "jpeg_420.jpg")])
        #expect(result.status == 0)
        let row = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let a = row["tiny"] as! Double, b = row["tiny2"] as! Double, fused = row["fusion"] as! Double
        #expect(abs(b - a - 1) < 1e-6 && abs(fused - (a + b) / 2) < 1e-9)
        // A fusion asked of one head is refused: the second head was probably forgotten.
        let alone = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--fusion", "mean_logit", Fixtures.path("images", "jpeg_420.jpg")])
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
        let result = try cli.run(["eval", "--csv", folder.appendingPathComponent("list.csv").path, "--model", Fixtures.backbone,
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
        try FileManager.default.copyItem(atPath: Fixtures.backbone, toPath: tower)
        let config = #"{"model_cfg": {"embed_dim": 24, "quick_gelu": false, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "head_width": 8, "layers": 2, "mlp_ratio": 4.0}}, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}"#
        try config.write(toFile: folder.appendingPathComponent("open_clip_config.json").path, atomically: true, encoding: .utf8)
        let (paper, encoder) = try Fixtures.importedHead()
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
        let imported = try cli.run(["head", "import", "--format", "univfd", Fixtures.univfdHead, "--backbone", Fixtures.backbone,
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
        let forced = try cli.run(["detect", "--no-cache", "--model", Fixtures.backbone, "--head", paper, "--head", elsewhere] + paths)
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
        #expect(local.metadata.feature.backbonePath == URL(fileURLWithPath: Fixtures.backbone).standardizedFileURL.path)
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

/// UnivFD heads as `detect` reads them.
@Suite struct UnivFDCommandTests {
    let cli = CLI()

    /// A head records its backbone's activation to fill what a checkpoint leaves unsaid, never to
    /// override what it states: a QuickGELU head without a fingerprint on a tower whose config says
    /// GELU is refused, not run as QuickGELU (it scored, silently wrong, before).
    @Test func aHeadsRecordedActivationDoesNotOverrideTheCheckpoints() throws {
        let encoder = try ImageEncoder(path: Fixtures.backbone)
        var head = try Head.importUnivFD(checkpoint: Fixtures.univfdHead, name: "u", backbone: encoder)
        #expect(head.metadata.feature.architecture.hasSuffix("-gelu-p24"))
        head.metadata.feature.architecture = head.metadata.feature.architecture.replacingOccurrences(of: "-gelu-", with: "-quick_gelu-")
        head.metadata.feature.fingerprint = nil
        head.metadata.feature.backbonePath = nil
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("quick.safetensors").path
        try head.write(to: path)
        let image = Fixtures.path("images", "jpeg_420.jpg")
        let run = try CLI().run(["detect", "--no-cache", "--model", Fixtures.backbone, "--head", path, image])
        #expect(run.status != 0 && run.stderr.contains("quick_gelu") && run.stderr.contains("-gelu-p24"), "\(run.stderr)")
    }
}
