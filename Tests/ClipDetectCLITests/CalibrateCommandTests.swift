import Foundation
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools
import ClipDetectTestSupport

/// `calibrate`, `detect`'s verdict and `--stability` as a user runs them.
@Suite struct CalibrateCommandTests {
    let cli = CLI()
    static let reals = ["jpeg_420.jpg", "png_rgba.png", "webp_lossy.webp", "photo_rocket.jpg", "size_33x17.png", "cjpeg_gray.jpg",
                        "bmp_rgb.bmp", "cjpeg_progressive.jpg"].map { Fixtures.path("images", $0) }

    func list(_ paths: [String], in folder: URL, name: String) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try paths.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func realImagesAloneSetTheThresholdAndTheHeadRecordsThem() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try DetectCommandTests().headFile(in: folder)
        let out = folder.appendingPathComponent("calibrated.safetensors").path
        let reals = try list(Self.reals, in: folder, name: "reals.txt")
        let run = try cli.run(["calibrate", "--model", Fixtures.backbone, "--head", head, "--real", reals, "--target-fpr", "0.25", "-o", out])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("of 8 real images above it") && run.stdout.contains("cannot certify"), "\(run.stdout)")
        let calibrated = try Head.read(out)
        let record = try #require(calibrated.metadata.calibrationSet)
        #expect(record.reals == 8 && record.fakes == 0 && record.targetFPR == 0.25 && record.hash.count == 64)
        // The same images in another order give the same hash.
        let again = folder.appendingPathComponent("again.safetensors").path
        let reversed = try list(Self.reals.reversed(), in: folder, name: "reversed.txt")
        #expect(try cli.run(["calibrate", "--model", Fixtures.backbone, "--head", head, "--real", reversed, "--target-fpr", "0.25", "-o", again]).status == 0)
        #expect(try Head.read(again).metadata.calibrationSet?.hash == record.hash)
        // detect reads the threshold: at most 2 of the 8 are synthetic.
        let detected = try cli.run(["detect", "--model", Fixtures.backbone, "--head", out, "--format", "jsonl"] + Self.reals)
        let rows = detected.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(rows.count == 8 && rows.filter { $0["label"] as? String == "synthetic" }.count <= 2)
        #expect(rows.allSatisfy { $0["verdict"] as? String == $0["label"] as? String })
    }

    @Test func aBandMakesUncertainVerdictsWhereTheProbabilityIsInside() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try DetectCommandTests().headFile(in: folder)
        let out = folder.appendingPathComponent("calibrated.safetensors").path
        // Labels the tiny head half separates (it has never seen real or synthetic images).
        let realImages = ["gif_transparent.gif", "bmp_palette.bmp", "png_palette.png", "png_gray16.png", "jpeg_444.jpg", "jpeg_420.jpg",
                          "cjpeg_440.jpg", "size_2x500.png"].map { Fixtures.path("images", $0) }
        let fakeImages = ["cjpeg_smooth.jpg", "size_700x3.png", "png_rgba.png", "bmp_gray.bmp", "webp_lossy.webp", "photo_rocket.jpg",
                          "jpeg_422.jpg", "tiff_rgba.tif"].map { Fixtures.path("images", $0) }
        let reals = try list(realImages, in: folder, name: "reals.txt"), fakes = try list(fakeImages, in: folder, name: "fakes.txt")
        let run = try cli.run(["calibrate", "--model", Fixtures.backbone, "--head", head, "--real", reals, "--fake", fakes,
                               "--method", "platt", "--band", "0.3,0.7", "-o", out])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("reliability before") && run.stdout.contains("reliability after") && run.stdout.contains("coverage"))
        let detected = try cli.run(["detect", "--model", Fixtures.backbone, "--head", out, "--format", "jsonl"] + realImages + fakeImages)
        let rows = detected.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(rows.count == 16)
        #expect(Set(rows.compactMap { $0["verdict"] as? String }).count == 3, "expected every verdict among these images: \(rows)")
        for row in rows {
            let p = try #require(row["probability"] as? Double)
            #expect((row["verdict"] as? String == "uncertain") == (p > 0.3 && p < 0.7), "\(row)")
        }
        // eval reads saved scores by the head's rule (from --head, or from the record detect keeps
        // beside its output), as when it scores itself.
        let listed = folder.appendingPathComponent("list.csv").path
        try (["filename,typ"] + realImages.map { "\($0),real" } + fakeImages.map { "\($0),fake" }).joined(separator: "\n")
            .write(toFile: listed, atomically: true, encoding: .utf8)
        let saved = folder.appendingPathComponent("scores.csv").path
        _ = try cli.run(["detect", "--model", Fixtures.backbone, "--head", out, "--csv", listed, "-o", saved])
        var tables: [CSVTable] = []
        for arguments in [["--scores", saved, "--head", out], ["--model", Fixtures.backbone, "--head", out], ["--scores", saved]] {
            let tab = folder.appendingPathComponent("tab\(tables.count).csv").path
            let evaluated = try cli.run(["eval", "--csv", listed, "--save-tab", tab] + arguments)
            #expect(evaluated.status == 0, "\(evaluated.stderr)")
            tables.append(try CSVTable(path: tab))
        }
        for column in ["acc", "nll", "ece", "coverage", "acc_covered"] {
            let (a, b, c) = (try tables[0].values(column).map { Double($0)! }, try tables[1].values(column).map { Double($0)! },
                             try tables[2].values(column).map { Double($0)! })
            #expect(a.count == b.count && !a.isEmpty && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-9 || ($0.isNaN && $1.isNaN) }, "\(column): \(a) vs \(b)")
            #expect(c == a || zip(a, c).allSatisfy { $0.isNaN && $1.isNaN }, "\(column) by the record: \(c) vs \(a)")
        }
        #expect(try tables[0].values("coverage").map { Double($0)! } != [1.0], "the band reached eval")
        // --band applies to the calibrated probability, as detect's does.
        let banded = folder.appendingPathComponent("banded.csv").path
        _ = try cli.run(["detect", "--model", Fixtures.backbone, "--head", out, "--band", "0.4,0.6", "--csv", listed, "-o", banded])
        let bandTabs = try [["--scores", saved, "--band", "0.4,0.6"], ["--scores", banded]].enumerated().map { index, arguments in
            let tab = folder.appendingPathComponent("band\(index).csv").path
            #expect(try cli.run(["eval", "--csv", listed, "--save-tab", tab] + arguments).status == 0)
            return try CSVTable(path: tab).values("coverage")
        }
        #expect(bandTabs[0] == bandTabs[1], "\(bandTabs)")
        // A --head that reads the file otherwise than the head that wrote it is refused.
        let disagreeing = try cli.run(["eval", "--csv", listed, "--scores", saved, "--head", head])
        #expect(disagreeing.status != 0 && disagreeing.stderr.contains("reads its scores otherwise"), "\(disagreeing.stderr)")
        // Without its record, detect's output is refused: its rule is not known.
        try FileManager.default.removeItem(atPath: saved + ".detector")
        let unknown = try cli.run(["eval", "--csv", listed, "--scores", saved])
        #expect(unknown.status != 0 && unknown.stderr.contains("give --head") && unknown.stderr.split(separator: "\n").count == 1, "\(unknown.stderr)")
        // --band on the command line replaces the head's: (0, 1) leaves every verdict uncertain.
        let all = try cli.run(["detect", "--model", Fixtures.backbone, "--head", out, "--band", "0,1", "--format", "jsonl"] + Self.reals)
        #expect(all.stdout.split(separator: "\n").allSatisfy { $0.contains(#""verdict":"uncertain""#) })
        #expect(try cli.run(["detect", "--model", Fixtures.backbone, "--head", out, "--band", "0.9,0.1"] + Self.reals).status != 0)
        #expect(try cli.run(["calibrate", "--model", Fixtures.backbone, "--head", head, "--real", reals, "--method", "isotonic", "-o", out]).status != 0)
    }

    @Test func aFusedSetIsCalibratedAsOneDetectorAndKeptWhole() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try DetectCommandTests().headFile(in: folder)
        var other = try Head.read(head)
        other.metadata.name = "other"
        other.weights = other.weights.enumerated().map { $0.offset % 2 == 0 ? -$0.element : $0.element }
        let second = folder.appendingPathComponent("other.safetensors").path
        try other.write(to: second)
        let set = folder.appendingPathComponent("set.safetensors").path
        let reals = try list(Self.reals, in: folder, name: "reals.txt")
        let run = try cli.run(["calibrate", "--model", Fixtures.backbone, "--head", head, "--head", second, "--fusion", "mean_logit",
                               "--real", reals, "--target-fpr", "0.25", "-o", set])
        #expect(run.status == 0 && run.stdout.contains("mean_logit of tiny, other"), "\(run.stdout) \(run.stderr)")
        let selection = try HeadSelection.read([set])
        let stored = try #require(selection.set)
        #expect(stored.fusion == .meanLogit && stored.heads.map(\.metadata.name) == ["tiny", "other"] && stored.decision.threshold != nil)
        #expect(stored.calibrationSet?.reals == 8)
        // detect reads it as one detector: its fusion, its threshold on the fused score.
        let detected = try cli.run(["detect", "--model", Fixtures.backbone, "--head", set, "--format", "jsonl"] + Self.reals)
        #expect(detected.status == 0, "\(detected.stderr)")
        let rows = detected.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(rows.count == 8 && rows.allSatisfy { $0["fusion"] is Double && $0["other"] is Double })
        #expect(rows.filter { $0["label"] as? String == "synthetic" }.count <= 2)
        for row in rows {
            let fused = try #require(row["fusion"] as? Double)
            #expect((row["label"] as? String == "synthetic") == (fused > stored.decision.threshold!))
        }
        // Another fusion, or other heads beside it, would read the calibration wrongly: refused.
        let wrongFusion = try cli.run(["detect", "--model", Fixtures.backbone, "--head", set, "--fusion", "soft_or_prob"] + Self.reals)
        #expect(wrongFusion.status != 0 && wrongFusion.stderr.contains("calibrated for mean_logit"), "\(wrongFusion.stderr)")
        let mixed = try cli.run(["detect", "--model", Fixtures.backbone, "--head", set, "--head", head] + Self.reals)
        #expect(mixed.status != 0 && mixed.stderr.contains("give it alone"), "\(mixed.stderr)")
        // A set file whose tensors do not match its heads is refused.
        try SafeTensorsWriter.write(["heads.0.weight": .init(shape: [1, 2], values: [1, 2])],
                                    metadata: [HeadSet.metadataKey: String(decoding: try JSONEncoder().encode(HeadSet.Stored(
                                        heads: stored.heads.map(\.metadata), fusion: .meanLogit, decision: stored.decision)), as: UTF8.self)],
                                    to: folder.appendingPathComponent("bad.safetensors").path)
        #expect(throws: HeadError.self) { try HeadSelection.read([folder.appendingPathComponent("bad.safetensors").path]) }
    }

    @Test func stabilityDrawsAreSeededBatchedAndIndependentOfPosition() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try DetectCommandTests().headFile(in: folder)
        let images = Array(Self.reals.prefix(3))
        func rows(_ paths: [String], batch: String = "8") throws -> [String: [String: Any]] {
            let run = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--stability", "4", "--batch", batch,
                                   "--format", "jsonl"] + paths)
            #expect(run.status == 0, "\(run.stderr)")
            let objects = run.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            return Dictionary(uniqueKeysWithValues: objects.map { ($0["filename"] as! String, $0) })
        }
        // Draws go through in batches (at most a batch of copies in memory): the batch size changes nothing.
        let first = try rows(images), reordered = try rows(images.reversed()), oneByOne = try rows(images, batch: "1")
        for path in images {
            let row = try #require(first[path])
            let agreement = try #require(row["agreement"] as? Double)
            #expect([0, 0.25, 0.5, 0.75, 1].contains(agreement))
            let (low, mid, high) = (row["score_min"] as! Double, row["score_median"] as! Double, row["score_max"] as! Double)
            #expect(low <= mid && mid <= high)
            #expect((row["stability"] as? String) == (agreement == 1 ? "stable" : "unstable"))
            // The clean score is the one detect gives without draws.
            #expect(NSDictionary(dictionary: row).isEqual(to: try #require(reordered[path])), "draws depend on the position")
            #expect(NSDictionary(dictionary: row).isEqual(to: try #require(oneByOne[path])), "draws depend on the batch size")
        }
        #expect(try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--stability", "0"] + images).status != 0)
    }
}
