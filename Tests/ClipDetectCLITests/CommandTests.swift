import Crypto
import Foundation
import GRDB
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Commands that had no test (issue 16): `train`, `cache`, `bench`, `model list/fetch`, `head info`,
/// `detect --format table`, and the library pieces under them (`CSVTable.parse`, `Kernels`, the
/// `--C auto` search). Every check compares a value the command prints or writes with one computed
/// another way, so a command that runs but computes the wrong thing fails.
@Suite struct CommandTests {
    let cli = CLI()

    // MARK: Shared helpers

    /// Fixture images the tiny tower separates only partly: the grey ones "real", colour ones "fake".
    static let reals = ["jpeg_gray.jpg", "cjpeg_gray.jpg", "png_gray.png", "png_gray16.png", "tiff_gray.tif", "gif_gray.gif", "bmp_gray.bmp",
                        "png_gray_alpha.png"]
    static let fakes = ["png_rgb.png", "webp_lossy.webp", "cjpeg_411.jpg", "photo_chelsea.png", "photo_rocket.jpg", "gif_palette.gif",
                        "bmp_rgb.bmp", "tiff_rgb_raw.tif"]

    /// A labelled list (absolute paths), reals and fakes interleaved so the order is not by class.
    static func labelledRows(reals r: Int = 8, fakes f: Int = 8) -> [(path: String, typ: String)] {
        var rows: [(String, String)] = []
        for i in 0..<max(r, f) {
            if i < r { rows.append((Fixtures.path("images", reals[i]), "real")) }
            if i < f { rows.append((Fixtures.path("images", fakes[i]), fakes[i].hasPrefix("photo") ? "photogen" : "gen")) }
        }
        return rows
    }

    static func writeList(_ rows: [(path: String, typ: String)], in folder: URL, name: String = "list.csv") throws -> String {
        let path = folder.appendingPathComponent(name).path
        try ("filename,typ\n" + rows.map { CSVTable.line([$0.path, $0.typ]) }.joined()).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Features as the library computes them, one per path, in order (every path must decode).
    static func features(_ paths: [String], encoder: ImageEncoder) throws -> [[Float]] {
        var out = [[Float]?](repeating: nil, count: paths.count)
        try FeatureExtractor(encoder: encoder).run(paths: paths) { index, result in out[index] = try result.get() }
        return out.map { $0! }
    }

    static func trainingSet(_ rows: [(path: String, typ: String)], encoder: ImageEncoder) throws -> TrainingSet {
        TrainingSet(features: try features(rows.map(\.path), encoder: encoder), labels: rows.map { $0.typ != "real" })
    }



    // MARK: 1, 5, 9. train and head info

    /// A copy of an image under the same label is counted once, with a note; under the other label
    /// it is refused before anything is encoded, naming the row, and nothing is written.
    @Test func trainCountsACopyOnceAndRefusesOneUnderBothLabels() throws {
        let folder = try Fixtures.temporaryDirectory()
        let rows = Self.labelledRows(reals: 8, fakes: 8)
        let copy = folder.appendingPathComponent("copy-of-a-real.jpg").path
        try FileManager.default.copyItem(atPath: rows[0].path, toPath: copy)
        let output = folder.appendingPathComponent("head.safetensors").path
        let counted = try cli.run(["train", "--csv", try Self.writeList(rows + [(copy, "real")], in: folder), "--model", Fixtures.backbone, "--C", "1", "-o", output])
        #expect(counted.status == 0, "\(counted.stderr)")
        #expect(counted.stderr.contains("counted once: 1 image(s)") && counted.stderr.contains("copy-of-a-real.jpg")
                && counted.stderr.contains("features: 8 real, 8 fake"), "\(counted.stderr)")
        let refused = folder.appendingPathComponent("refused.safetensors").path
        let conflicting = try cli.run(["train", "--csv", try Self.writeList(rows + [(copy, "gen")], in: folder, name: "both.csv"),
                                       "--model", Fixtures.backbone, "--C", "1", "-o", refused])
        #expect(conflicting.status != 0 && conflicting.stderr.contains("copy-of-a-real.jpg") && conflicting.stderr.contains("other label"), "\(conflicting.stderr)")
        #expect(!FileManager.default.fileExists(atPath: refused))
    }

    /// `train` with every option that changes the head writes exactly the head `Trainer` fits on the
    /// same features and options, and prints the report `Trainer` returns.
    @Test func trainWritesTheHeadTheLibraryFits() throws {
        let folder = try Fixtures.temporaryDirectory()
        // 8 real, 6 fake: unequal classes, so balanced class weights change the fit.
        let rows = Self.labelledRows(reals: 8, fakes: 6)
        let list = try Self.writeList(rows, in: folder)
        let output = folder.appendingPathComponent("trained.safetensors").path
        let result = try cli.run(["train", "--csv", list, "--model", Fixtures.backbone, "--classifier", "logreg", "--C", "0.5",
                                  "--class-weight", "balanced", "--calibrate", "--target-fpr", "0.25", "--name", "mine", "-o", output])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("features: 8 real, 6 fake"), "\(result.stderr)")

        let encoder = try ImageEncoder(path: Fixtures.backbone)
        let data = try Self.trainingSet(rows, encoder: encoder)
        #expect(data.negatives == 8 && data.positives == 6)
        var options = TrainingOptions()
        options.classifier = .logisticRegression
        options.C = 0.5
        options.balanced = true
        options.calibrate = true
        options.targetFPR = 0.25
        let (expected, report) = try Trainer.train(data, options: options, name: "mine", feature: Head.Feature(encoder: encoder),
                                                   provenance: "trained by clipdetect: logreg, 8 real + 6 fake")
        let written = try Head.read(output)
        #expect(written == expected)
        // Not a head of zeros or of the default settings: the options reached the fit.
        #expect(written.weights.contains { $0 != 0 })
        let plain = LinearClassifier.logisticRegression.fit(data, C: 0.5, balanced: false)
        #expect(written.weights != plain.weights.map { Float($0) }, "--class-weight balanced changed nothing")
        #expect(written.metadata.calibration != nil && written.metadata.threshold != nil)
        #expect(written.metadata.feature.fingerprint == encoder.fingerprint
                && written.metadata.feature.backbonePath == URL(fileURLWithPath: Fixtures.backbone).standardizedFileURL.path)

        // What it prints is the report's.
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("chosen C = 0.5" + String(format: ", cross-validated AUC %.4f", report.crossValidatedAUC!)), "\(result.stdout)")
        #expect(lines.contains("calibration: \(report.calibration!.summary)"), "\(result.stdout)")
        #expect(lines.contains(String(format: "threshold %.4f: FPR %.4f on cross-validated reals, TPR %.4f", report.threshold!,
                                      report.thresholdFPR!, report.thresholdTPR!)), "\(result.stdout)")
        #expect(report.thresholdFPR! <= 0.25)
        #expect(lines.last == "wrote \(output)")
        #expect(!lines.contains { $0.hasPrefix("C = ") }, "C was given: no search")

        // 5. head info prints the metadata the library reads back, field for field.
        let info = try cli.run(["head", "info", output])
        #expect(info.status == 0, "\(info.stderr)")
        let printed = try JSONDecoder().decode(Head.Metadata.self, from: Data(info.stdout.utf8))
        #expect(printed == written.metadata)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        #expect(object["name"] as? String == "mine")
        #expect(object["provenance"] as? String == "trained by clipdetect: logreg, 8 real + 6 fake")
        #expect(Self.printedNumbers(info.stdout, key: "threshold") == [report.threshold!])
        let feature = try #require(object["feature"] as? [String: Any])
        #expect(feature["fingerprint"] as? String == encoder.fingerprint && feature["width"] as? Int == 32)
        #expect(feature["architecture"] as? String == encoder.description.architecture)
        let calibration = try #require(object["calibration"] as? [String: Any])
        #expect(calibration["method"] as? String == "platt")
        guard case .platt(let a, let b)? = report.calibration else { Issue.record("not Platt: \(String(describing: report.calibration))"); return }
        #expect(Self.printedNumbers(info.stdout, key: "a") == [a] && Self.printedNumbers(info.stdout, key: "b") == [b], "\(info.stdout)")
    }

    /// The numbers printed after `"key" :` in pretty-printed JSON, read with Double's exact parser
    /// (JSONSerialization on Linux can land one ulp off for 17-digit values).
    static func printedNumbers(_ json: String, key: String) -> [Double] {
        json.split(separator: "\n").compactMap { line -> Double? in
            let text = line.trimmingCharacters(in: .whitespaces)
            guard text.hasPrefix("\"\(key)\" : ") else { return nil }
            return Double(text.dropFirst(key.count + 5).trimmingCharacters(in: CharacterSet(charactersIn: ",")))
        }
    }

    /// Folders as --real and --fake: the images in sorted order, the head named after its file.
    @Test func trainFromFoldersNamesTheHeadAfterItsFile() throws {
        let folder = try Fixtures.temporaryDirectory()
        var ordered: [(path: String, typ: String)] = []
        for (kind, names) in [("real", Self.reals.prefix(4)), ("fake", Self.fakes.prefix(4))] {
            let sub = folder.appendingPathComponent(kind)
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            var copied: [String] = []
            for (i, name) in names.enumerated() {
                let target = sub.appendingPathComponent("\(i)-\(name)").path
                try FileManager.default.copyItem(atPath: Fixtures.path("images", name), toPath: target)
                copied.append(target)
            }
            ordered += copied.sorted().map { ($0, kind) }
        }
        let output = folder.appendingPathComponent("from-folders.safetensors").path
        let result = try cli.run(["train", "--real", folder.appendingPathComponent("real").path, "--fake", folder.appendingPathComponent("fake").path,
                                  "--model", Fixtures.backbone, "--C", "2", "-o", output])
        #expect(result.status == 0, "\(result.stderr)")
        let encoder = try ImageEncoder(path: Fixtures.backbone)
        var options = TrainingOptions()
        options.C = 2
        let (expected, _) = try Trainer.train(try Self.trainingSet(ordered, encoder: encoder), options: options, name: "from-folders",
                                              feature: Head.Feature(encoder: encoder), provenance: "trained by clipdetect: svm, 4 real + 4 fake")
        #expect(try Head.read(output) == expected)
        #expect(result.stdout.split(separator: "\n").contains("chosen C = 2.0"), "\(result.stdout)")
    }


    /// 9. `train --C auto` prints every C's CV AUC and the chosen C, both equal to the exhaustive
    /// evaluation on the same features, and writes the head fitted with that C.
    @Test func trainCAutoReportsAndUsesTheExhaustiveChoice() throws {
        let folder = try Fixtures.temporaryDirectory()
        let rows = Self.labelledRows()
        let list = try Self.writeList(rows, in: folder)
        let output = folder.appendingPathComponent("auto.safetensors").path
        let result = try cli.run(["train", "--csv", list, "--model", Fixtures.backbone, "--C", "auto", "-o", output])
        #expect(result.status == 0, "\(result.stderr)")

        let data = try Self.trainingSet(rows, encoder: try ImageEncoder(path: Fixtures.backbone))
        // The library's search (TrainTests.cAutoPicksTheBestCrossValidatedC holds it to the exhaustive one).
        var options = TrainingOptions()
        options.C = nil
        let grid = options.grid, search = try Trainer.train(data, options: options, name: "auto", feature: Head.read(output).metadata.feature, provenance: nil).1
        #expect(Set(search.search.map(\.auc)).count >= 2, "every C ties on these images; the check would prove nothing")

        let lines = result.stdout.split(separator: "\n").map(String.init)
        let searched = lines.filter { $0.hasPrefix("C = ") }.map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(searched.count == grid.count, "\(result.stdout)")
        for (words, (C, auc)) in zip(searched, search.search) {
            #expect(words.count == 6 && words[3] == "CV" && words[4] == "AUC", "\(words)")
            #expect(Double(words[2]) == C)
            // Printed with 4 decimals: equal to the AUC to half a unit of the last digit.
            #expect(abs(Double(words[5])! - auc) <= 0.5e-4 + 1e-12, "C = \(C): printed \(words[5]), exact \(auc)")
        }
        let chosenLine = try #require(lines.first { $0.hasPrefix("chosen C = ") }, "\(result.stdout)")
        let chosen = Double(chosenLine.dropFirst("chosen C = ".count).prefix { $0 != "," })
        #expect(chosen == search.C, "\(chosenLine)")
        // "chosen C = X, cross-validated AUC Y": Y is the chosen C's AUC, to its 4 printed decimals.
        let best = search.search.map(\.auc).max()!
        #expect(chosenLine.contains(", cross-validated AUC "), "\(chosenLine)")
        let printedAUC = try #require(Double(chosenLine.split(separator: " ").last ?? ""), "\(chosenLine)")
        #expect(abs(printedAUC - best) <= 0.5e-4 + 1e-12, "\(chosenLine)")

        let head = try Head.read(output)
        let final = LinearClassifier.svm.fit(data, C: search.C, tolerance: 1e-8)
        #expect(head.weights == final.weights.map { Float($0) } && head.bias == Float(final.bias))
        #expect(head.metadata.calibration == nil && head.metadata.threshold == nil)
    }

    /// 5. head info on a head carrying every optional field: each printed value is the one written.
    @Test func headInfoPrintsEveryFieldOfTheHead() throws {
        let folder = try Fixtures.temporaryDirectory()
        var (head, encoder) = try Fixtures.importedHead()
        head.metadata.name = "described"
        head.metadata.calibration = Head.Calibration(a: 0.37, b: -0.8)
        head.metadata.band = UncertaintyBand(scale: .probability, low: 0.3, high: 0.7)
        head.metadata.calibrationSet = CalibrationSet(reals: 11, fakes: 13, hash: String(repeating: "ab", count: 32), date: "2024-05-01T10:00:00Z",
                                                      method: "platt", targetFPR: 0.05)
        head.metadata.provenance = "made for a test, with a comma, and \"quotes\""
        let path = folder.appendingPathComponent("described.safetensors").path
        try head.write(to: path)

        let info = try cli.run(["head", "info", path])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(try JSONDecoder().decode(Head.Metadata.self, from: Data(info.stdout.utf8)) == Head.read(path).metadata)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["name", "feature", "calibration", "band", "calibrationSet", "provenance"])
        #expect(object["name"] as? String == "described" && object["provenance"] as? String == head.metadata.provenance)
        let feature = try #require(object["feature"] as? [String: Any])
        #expect(feature["architecture"] as? String == encoder.description.architecture)
        #expect(feature["fingerprint"] as? String == encoder.fingerprint)
        #expect(feature["width"] as? Int == 32 && feature["kind"] as? String == "pooled" && feature["normalized"] as? Bool == true)
        #expect(feature["backbonePath"] as? String == URL(fileURLWithPath: Fixtures.backbone).standardizedFileURL.path)
        #expect((object["calibration"] as? [String: Any])?["method"] as? String == "platt")
        #expect(Self.printedNumbers(info.stdout, key: "a") == [0.37] && Self.printedNumbers(info.stdout, key: "b") == [-0.8])
        let band = try #require(object["band"] as? [String: Any])
        #expect(band["scale"] as? String == "probability")
        #expect(Self.printedNumbers(info.stdout, key: "low") == [0.3] && Self.printedNumbers(info.stdout, key: "high") == [0.7])
        let set = try #require(object["calibrationSet"] as? [String: Any])
        #expect(set["reals"] as? Int == 11 && set["fakes"] as? Int == 13 && Self.printedNumbers(info.stdout, key: "targetFPR") == [0.05]
                && set["hash"] as? String == String(repeating: "ab", count: 32) && set["date"] as? String == "2024-05-01T10:00:00Z"
                && set["method"] as? String == "platt")
        // The weights are not metadata: not printed.
        #expect(!info.stdout.contains("weight"))

        let missing = try cli.run(["head", "info", folder.appendingPathComponent("none.safetensors").path])
        #expect(missing.status != 0 && missing.stdout.isEmpty)
        let notAHead = try cli.run(["head", "info", Fixtures.backbone])
        #expect(notAHead.status != 0 && notAHead.stderr.contains("no clipdetect.head metadata; import reference heads with `clipdetect head import`"), "\(notAHead.stderr)")
    }

    // MARK: 2. cache stats / clear

    @Test func cacheStatsCountsDetectsFeaturesAndClearEmptiesIt() throws {
        let folder = try Fixtures.temporaryDirectory()
        let home = folder.appendingPathComponent("home")
        let images = folder.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        // Four files, three contents: the cache is keyed by content, so it holds three features.
        for (source, target) in [("jpeg_420.jpg", "a.jpg"), ("png_rgba.png", "b.png"), ("webp_lossy.webp", "c.webp"), ("jpeg_420.jpg", "d-copy-of-a.jpg")] {
            try FileManager.default.copyItem(atPath: Fixtures.path("images", source), toPath: images.appendingPathComponent(target).path)
        }
        let head = try DetectCommandTests().headFile(in: folder)
        let environment: [String: String?] = ["CLIPDETECT_HOME": home.path]
        let cache = home.appendingPathComponent("features.sqlite").path
        func detect() throws -> [String: String] {
            let output = folder.appendingPathComponent("out-\(UUID().uuidString).csv").path
            let result = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "-o", output, images.path], environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
            let table = try CSVTable(path: output)
            return Dictionary(uniqueKeysWithValues: zip(try table.values("filename").map { URL(fileURLWithPath: $0).lastPathComponent },
                                                        try table.values("tiny")))
        }
        func stats(_ arguments: [String] = []) throws -> Int {
            let result = try cli.run(["cache", "stats"] + arguments, environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
            // "<path>: N feature(s), K KiB"
            let line = result.stdout.trimmingCharacters(in: .newlines)
            #expect(line.hasPrefix(cache + ": ") && line.hasSuffix(" KiB"), "\(line)")
            let words = line.dropFirst(cache.count + 2).split(separator: " ")
            #expect(words.count == 4 && words[1] == "feature(s)," && Int(words[2]) != nil, "\(line)")
            return Int(words[0]) ?? -1
        }

        let first = try detect()
        #expect(first.count == 4 && first["a.jpg"] == first["d-copy-of-a.jpg"] && first["a.jpg"] != first["b.png"])
        #expect(try stats() == 3)
        #expect(try stats(["--cache", cache]) == 3)
        #expect(try FeatureCache(path: cache).stats().entries == 3)

        // detect reads the cache: with every stored vector replaced by the same unit vector (a
        // normalised feature), each score is what the head gives that vector.
        let unit = [Float(1)] + [Float](repeating: 0, count: 31)
        try DatabasePool(path: cache).write { try $0.execute(sql: "UPDATE features SET vector = ?", arguments: [unit.withUnsafeBytes { Data($0) }]) }
        let expected = try Head.read(head).score(unit)
        #expect(try detect().values.allSatisfy { Double($0) == expected })

        let cleared = try cli.run(["cache", "clear", "--cache", cache], environment: environment)
        #expect(cleared.status == 0 && cleared.stdout == "cleared \(cache)\n", "\(cleared.stdout) \(cleared.stderr)")
        #expect(try stats() == 0)
        #expect(try FeatureCache(path: cache).stats().entries == 0)

        // Computed afresh: the first run's scores, and the cache filled again.
        #expect(try detect() == first)
        #expect(try stats() == 3)
    }

    // MARK: 3. bench

    @Test func benchEncoderReportsTheBatchSizesAskedFor() throws {
        let flops = try ImageEncoder(path: Fixtures.backbone).description.flopsPerImage
        let json = try cli.run(["bench", "--model", Fixtures.backbone, "--batch", "1, 3", "--iterations", "1", "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let objects = try json.stdout.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects.allSatisfy { $0["precision"] as? String == "fp32" })
        let rows = objects.map { $0.compactMapValues { $0 as? Double } }
        #expect(rows.map { $0["batch"] } == [1, 3])
        for row in rows {
            let rate = try #require(row["images_per_second"]), gflops = try #require(row["gflops"])
            #expect(rate.isFinite && rate > 0 && gflops.isFinite && gflops > 0, "\(row)")
            // GFLOP/s is the description's cost per image times the rate: a few roundings apart.
            #expect(abs(gflops * 1e9 / rate - flops) <= 1e-12 * flops, "\(row) vs \(flops) FLOP per image")
            #expect(Set(row.keys) == ["batch", "images_per_second", "gflops"])
        }
        for object in objects { #expect(Set(object.keys) == ["batch", "images_per_second", "gflops", "precision"]) }

        let text = try cli.run(["bench", "encoder", "--model", Fixtures.backbone, "--batch", "2", "--iterations", "1"])
        #expect(text.status == 0, "\(text.stderr)")
        var lines = text.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("compute: fp32, ") == true, "\(text.stdout)")
        lines.removeFirst()
        #expect(lines.count == 1 && lines[0].hasPrefix("batch   2: "), "\(text.stdout)")
        let words = lines[0].split(separator: " ")
        // batch 2: R images/s G GFLOP/s (S s per pass)
        #expect(words.count == 10 && words[3] == "images/s" && words[5] == "GFLOP/s", "\(words)")
        if words.count == 10, let rate = Double(words[2]), let gflops = Double(words[4]) {
            #expect(rate > 0 && rate.isFinite)
            // Both printed rounded (3 and 1 decimals): equal to that precision.
            #expect(abs(gflops - rate * flops / 1e9) <= 0.05 + 0.0005 * flops / 1e9, "\(lines[0])")
        }

        let none = try cli.run(["bench", "--model", Fixtures.backbone, "--batch", "0"])
        #expect(none.status != 0 && none.stderr.contains("--batch takes batch sizes 1…256"), "\(none.stderr)")
    }

    /// A batch list with a word, an empty entry or a size out of bounds in it is not what was asked
    /// for: refused with the entry named, not shortened.
    @Test func benchRefusesABatchListItCannotRead() throws {
        for (list, named) in [("1,x,4", "x"), ("1,,4", "an empty entry"), ("1,-2", "-2"), ("8,100000", "100000")] {
            let result = try cli.run(["bench", "--model", Fixtures.backbone, "--batch", list, "--iterations", "1", "--json"])
            #expect(result.status != 0 && result.stderr.contains("not \(named)") && result.stdout.isEmpty, "\(list): \(result.stderr)")
        }
        let none = try cli.run(["bench", "--model", Fixtures.backbone, "--batch", "1", "--iterations", "0"])
        #expect(none.status != 0 && none.stderr.contains("--iterations must be at least 1"), "\(none.stderr)")
    }

    @Test func benchPreprocessReportsARate() throws {
        let images = ["jpeg_420.jpg", "png_rgba.png", "webp_lossy.webp"].map { Fixtures.path("images", $0) }
        let json = try cli.run(["bench", "preprocess", "--iterations", "1", "--size", "64", "--json"] + images)
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Double])
        #expect(Set(object.keys) == ["images_per_second"])
        let rate = try #require(object["images_per_second"])
        #expect(rate.isFinite && rate > 0)
        let text = try cli.run(["bench", "preprocess", "--iterations", "1"] + images)
        #expect(text.status == 0 && text.stdout.hasSuffix(" images/s (decode + preprocess, files read beforehand)\n"), "\(text.stdout)")
        #expect(Double(text.stdout.prefix { $0 != " " }).map { $0 > 0 && $0.isFinite } == true, "\(text.stdout)")
        let bad = try cli.run(["bench", "preprocess", "--iterations", "1", Fixtures.path("images", "bad_truncated.png")])
        #expect(bad.status != 0 && bad.stdout.isEmpty, "\(bad.stdout)")
        let size = try cli.run(["bench", "preprocess", "--size", "0"] + images)
        #expect(size.status != 0 && size.stderr.contains("--size takes 1…"), "\(size.stderr)")
    }

    /// `bench train` fits on its seeded synthetic features: the chosen C and training AUC it prints
    /// are the library's on the same features.
    @Test func benchTrainReportsTheLibrarysFit() throws {
        let (perClass, width) = (12, 8)
        let data = TrainingSet.synthetic(perClass: perClass, width: width)
        let feature = Head.Feature(architecture: "synthetic", fingerprint: nil, backbone: nil, kind: .pooled, normalized: true, width: width)
        for C in ["auto", "0.1"] {
            var options = TrainingOptions()
            options.C = Double(C)
            let (head, report) = try Trainer.train(data, options: options, name: "bench", feature: feature, provenance: nil)
            let auc = Metrics.auc(labels: data.labels, scores: data.features.map { head.score($0) })
            let result = try cli.run(["bench", "train", "--per-class", "\(perClass)", "--width", "\(width)", "--C", C])
            #expect(result.status == 0, "\(result.stderr)")
            let line = result.stdout.trimmingCharacters(in: .newlines)
            #expect(line.hasPrefix("svm C=\(C) (chosen \(String(format: "%g", report.C))) on \(perClass) + \(perClass) features of \(width): "), "\(line)")
            #expect(line.hasSuffix(String(format: " s (training AUC %.4f)", auc)), "\(line)")
        }
    }

    // MARK: 4. model list / fetch

    @Test func modelListNamesEveryRegistryModelAndWhatIsCached() throws {
        let home = try Fixtures.temporaryDirectory()
        let hub = home.appendingPathComponent("hf")
        let environment: [String: String?] = ["CLIPDETECT_HOME": home.path, "HF_HUB_CACHE": hub.path]
        func listed() throws -> [String] {
            let result = try cli.run(["model", "list"], environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        }
        // Backbone files put there by hand, by repository: each is unverified until accepted.
        var placed: [String: String] = [:]
        func expected(cached: Set<String>, altered: [String: String] = [:]) -> [String] {
            var lines: [String] = []
            for model in NamedModel.all {
                let head: String = model.head.map { ", head \($0.path)" } ?? ""
                let state: String = (altered[model.name].map { "  [head file altered: \($0)]" }
                    ?? (cached.contains(model.name) ? "  [cached]" : "  [not cached]"))
                    + (placed[model.backbone.repository].map { "  [backbone file unverified: \($0); `clipdetect model accept \(model.name)` to use it]" } ?? "")
                lines.append(model.name.padding(toLength: 26, withPad: " ", startingAt: 0) + model.summary)
                lines.append(String(repeating: " ", count: 26) + "backbone \(model.backbone.repository)" + head + state)
                if let license = model.head?.license { lines.append(String(repeating: " ", count: 26) + "head licence: \(license)") }
            }
            return lines + ["cache: \(home.path) (set CLIPDETECT_HOME to move it); Hugging Face cache used in place: \(hub.path)"]
        }
        #expect(NamedModel.all.count == 9)
        #expect(try listed() == expected(cached: []))
        // Every registry entry is a distinct name with a backbone repository; the four detectors pin their head.
        #expect(Set(NamedModel.all.map(\.name)).count == NamedModel.all.count)
        #expect(NamedModel.all.filter { $0.head != nil }.map(\.name) == ["clipdet-latent10k-plus", "clipdet-latent10k", "univfd", "rine-2class"])
        #expect(try listed().contains(String(repeating: " ", count: 26) + "head licence: MIT (WisconsinAIVision/UniversalFakeDetect)"))

        // The CommonPool backbone in our cache: the backbone-only entry is cached, the detectors on it
        // are not until their head is there too.
        let commonPool = home.appendingPathComponent("models/laion--CLIP-ViT-L-14-CommonPool.XL-s13B-b90K")
        try FileManager.default.createDirectory(at: commonPool, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: commonPool.appendingPathComponent("open_clip_pytorch_model.bin"))
        placed["laion/CLIP-ViT-L-14-CommonPool.XL-s13B-b90K"] = commonPool.appendingPathComponent("open_clip_pytorch_model.bin").path
        #expect(try listed() == expected(cached: ["clip-vit-l14-commonpool"]))
        // A head file that is not the pinned one is not called cached (it would be refused on use).
        let head = home.appendingPathComponent("heads/clipdet-latent10k")
        try FileManager.default.createDirectory(at: head, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: head.appendingPathComponent("weights.pth"))
        let altered = ["clipdet-latent10k": head.appendingPathComponent("weights.pth").path]
        #expect(try listed() == expected(cached: ["clip-vit-l14-commonpool"], altered: altered))
        // UnivFD's released file is the pinned one: cached once its backbone is there too.
        let univfd = home.appendingPathComponent("heads/univfd")
        try FileManager.default.createDirectory(at: univfd, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("heads", "univfd", "fc_weights.pth"), toPath: univfd.appendingPathComponent("fc_weights.pth").path)
        let openAI = home.appendingPathComponent("models/openai--clip-vit-large-patch14")
        try FileManager.default.createDirectory(at: openAI, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: openAI.appendingPathComponent("model.safetensors"))
        placed["openai/clip-vit-large-patch14"] = openAI.appendingPathComponent("model.safetensors").path
        #expect(try listed() == expected(cached: ["clip-vit-l14-commonpool", "univfd", "openai-vit-l14"], altered: altered))
        // A file in the Hugging Face hub cache counts, under any snapshot.
        let snapshot = hub.appendingPathComponent("models--openai--clip-vit-base-patch32/snapshots/0123abc")
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: snapshot.appendingPathComponent("pytorch_model.bin"))
        placed["openai/clip-vit-base-patch32"] = snapshot.appendingPathComponent("pytorch_model.bin").path
        #expect(try listed() == expected(cached: ["clip-vit-l14-commonpool", "univfd", "openai-vit-l14", "openai-vit-b32"], altered: altered))
    }

    /// The tiny fixture tower as a hub file: its safetensors metadata states the attention heads
    /// (width 32 is not a multiple of 64 and the hub's config is not downloaded).
    static func hubTower() throws -> Data {
        let checkpoint = try Checkpoint.open(Fixtures.backbone)
        var tensors: [String: SafeTensorsWriter.Entry] = [:]
        for (name, tensor) in checkpoint.tensors { tensors[name] = .init(shape: tensor.shape, values: try tensor.floats().values) }
        return try SafeTensorsWriter.data(tensors, metadata: ["heads": "\(try Fixtures.manifest("a_gelu_proj32").description.heads)"])
    }


    /// A fake hub: the resolve URL redirects to a CDN path with the file's SHA-256 as X-Linked-Etag
    /// (as huggingface.co does for LFS files); heads are served from their repository path.
    static func hub(tower: Data, etag: String, head: Data? = nil) throws -> LoopbackServer {
        try LoopbackServer { request in
            switch request.path {
            case "/laion/CLIP-ViT-L-14-CommonPool.XL-s13B-b90K/resolve/main/open_clip_model.safetensors":
                return .init(status: 302, headers: ["Location": "/cdn/tower", "X-Linked-Etag": "\"\(etag)\""])
            case "/cdn/tower":
                return LoopbackServer.ranged(tower, request: request)
            case "/weights/clipdet_latent10k/weights.pth" where head != nil:
                return LoopbackServer.ranged(head!, request: request)
            default:
                return .init(status: 404)
            }
        }
    }

    @Test func modelFetchVerifiesTheHubChecksumAndKeepsTheFileInTheHome() throws {
        let tower = try Self.hubTower()
        let digest = sha256Hex(tower)
        let server = try Self.hub(tower: tower, etag: digest)
        defer { server.stop() }
        let home = try Fixtures.temporaryDirectory().appendingPathComponent("home")
        let environment: [String: String?] = ["CLIPDETECT_HOME": home.path, "CLIPDETECT_HF_ENDPOINT": server.base.absoluteString,
                                              "CLIPDETECT_HEADS_ENDPOINT": server.base.absoluteString]
        let fetched = try cli.run(["model", "fetch", "clip-vit-l14-commonpool"], environment: environment)
        #expect(fetched.status == 0, "\(fetched.stderr)")
        let architecture = try ImageEncoder(path: Fixtures.backbone).description.architecture
        #expect(fetched.stdout == "ready: clip-vit-l14-commonpool (\(architecture))\n", "\(fetched.stdout)")
        let landed = home.appendingPathComponent("models/laion--CLIP-ViT-L-14-CommonPool.XL-s13B-b90K/open_clip_model.safetensors").path
        #expect(try Data(contentsOf: URL(fileURLWithPath: landed)) == tower)
        #expect(!FileManager.default.fileExists(atPath: landed + ".part"))
        #expect(server.requests.map(\.path) == ["/laion/CLIP-ViT-L-14-CommonPool.XL-s13B-b90K/resolve/main/open_clip_model.safetensors", "/cdn/tower"])
        // The fetched tower is the fixture's: the same fingerprint.
        #expect(try ImageEncoder(path: landed, hints: ModelHints(activation: .gelu)).fingerprint == ImageEncoder(path: Fixtures.backbone).fingerprint)

        // Cached: a second fetch asks nothing.
        let again = try cli.run(["model", "fetch", "clip-vit-l14-commonpool"], environment: environment)
        #expect(again.status == 0 && again.stdout == fetched.stdout, "\(again.stderr)")
        #expect(server.requests.count == 2)
        let listed = try cli.run(["model", "list"], environment: environment)
        #expect(listed.stdout.contains("backbone laion/CLIP-ViT-L-14-CommonPool.XL-s13B-b90K  [cached]"), "\(listed.stdout)")
    }

    @Test func modelFetchRefusesAFileThatIsNotWhatTheHubSays() throws {
        let tower = try Self.hubTower()
        let wrong = String(repeating: "0123456789abcdef", count: 4)
        let server = try Self.hub(tower: tower, etag: wrong)
        defer { server.stop() }
        let home = try Fixtures.temporaryDirectory().appendingPathComponent("home")
        let environment: [String: String?] = ["CLIPDETECT_HOME": home.path, "CLIPDETECT_HF_ENDPOINT": server.base.absoluteString]
        let result = try cli.run(["model", "fetch", "clip-vit-l14-commonpool"], environment: environment)
        #expect(result.status != 0 && result.stdout.isEmpty)
        #expect(result.stderr.contains("checksum mismatch") && result.stderr.contains("expected sha256 \(wrong), got \(sha256Hex(tower))"),
                "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        let landed = home.appendingPathComponent("models/laion--CLIP-ViT-L-14-CommonPool.XL-s13B-b90K/open_clip_model.safetensors").path
        #expect(!FileManager.default.fileExists(atPath: landed) && !FileManager.default.fileExists(atPath: landed + ".part"))
    }

    @Test func modelFetchRefusesAHeadThatIsNotThePinnedOne() throws {
        let tower = try Self.hubTower()
        let pinned = try #require(NamedModel.named("clipdet-latent10k")?.head)
        // The pinned size, other bytes: only the SHA-256 can tell.
        let impostor = Data((0..<pinned.size).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let server = try Self.hub(tower: tower, etag: sha256Hex(tower), head: impostor)
        defer { server.stop() }
        let home = try Fixtures.temporaryDirectory().appendingPathComponent("home")
        let environment: [String: String?] = ["CLIPDETECT_HOME": home.path, "CLIPDETECT_HF_ENDPOINT": server.base.absoluteString,
                                              "CLIPDETECT_HEADS_ENDPOINT": server.base.absoluteString]
        let result = try cli.run(["model", "fetch", "clipdet-latent10k"], environment: environment)
        #expect(result.status != 0 && result.stdout.isEmpty)
        #expect(result.stderr.contains("\(server.base.absoluteString)/weights/clipdet_latent10k/weights.pth")
                && result.stderr.contains("expected sha256 \(pinned.sha256), got \(sha256Hex(impostor))"), "\(result.stderr)")
        let raw = home.appendingPathComponent("heads/clipdet-latent10k/weights.pth").path
        #expect(!FileManager.default.fileExists(atPath: raw) && !FileManager.default.fileExists(atPath: raw + ".part"))
        // The backbone was verified and kept: only the head is missing.
        let landed = home.appendingPathComponent("models/laion--CLIP-ViT-L-14-CommonPool.XL-s13B-b90K/open_clip_model.safetensors").path
        #expect(try Data(contentsOf: URL(fileURLWithPath: landed)) == tower)
        #expect(server.requests.map(\.path).last == "/weights/clipdet_latent10k/weights.pth")
    }

    /// A failed download leaves nothing behind: no empty `.part` (nor a 404 page in one), and none of
    /// Foundation's URL-cache or cookie folders under the user's home.
    @Test func aFailedDownloadLeavesNoLitter() throws {
        let server = try LoopbackServer { _ in .init(status: 404, body: Data("<html>not here</html>".utf8)) }
        defer { server.stop() }
        let home = try Fixtures.temporaryDirectory(), store = home.appendingPathComponent("store")
        let result = try cli.run(["model", "fetch", "clip-vit-l14-commonpool"],
                                     environment: ["HOME": home.path, "CLIPDETECT_HOME": store.path, "XDG_CACHE_HOME": nil, "XDG_DATA_HOME": nil,
                                                   "HF_HUB_CACHE": home.appendingPathComponent("hub").path,
                                                   "CLIPDETECT_HF_ENDPOINT": server.base.absoluteString])
        #expect(result.status != 0 && result.stderr.contains("HTTP 404"), "\(result.stderr)")
        let left = try FileManager.default.subpathsOfDirectory(atPath: home.path)
        #expect(!left.contains { $0.hasSuffix(".part") || $0.hasPrefix(".cache") || $0.hasPrefix(".local") }, "\(left)")
    }

    // MARK: 6. detect --format table

    /// One detect run per format over the same list.
    func detectBothFormats() throws -> (csv: CSVTable, table: [String], tableStatus: Int32) {
        let folder = try Fixtures.temporaryDirectory()
        for (source, target) in [("jpeg_420.jpg", "a.jpg"), ("png_rgba.png", "b.png"), ("photo_chelsea.png", "c.png"),
                                 ("bad_truncated.jpg", "broken.jpg"), ("webp_lossy.webp", "d.webp")] {
            try FileManager.default.copyItem(atPath: Fixtures.path("images", source), toPath: folder.appendingPathComponent(target).path)
        }
        let list = folder.appendingPathComponent("list.csv").path
        try "filename\na.jpg\nb.png\nc.png\nbroken.jpg\nd.webp\n".write(toFile: list, atomically: true, encoding: .utf8)
        let head = try DetectCommandTests().headFile(in: folder)
        let csvPath = folder.appendingPathComponent("out.csv").path
        let csv = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--csv", list, "-o", csvPath])
        #expect(csv.status == 2, "\(csv.stderr)")
        let table = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--csv", list, "--format", "table"])
        #expect(table.status == 2, "\(table.stderr)")
        return (try CSVTable(path: csvPath), table.stdout.split(separator: "\n").map(String.init), table.status)
    }

    /// A table line: the name in 40 characters, then 14 per column; the line's trailing blanks trimmed.
    static func tableCells(_ line: String, columns: Int) -> [String] {
        let characters = Array(line)
        var cells = [String(characters.prefix(40)).trimmingCharacters(in: .whitespaces)]
        var start = 40
        while cells.count < columns {
            let end = min(start + 14, characters.count)
            cells.append(start < end ? String(characters[start..<end]).trimmingCharacters(in: .whitespaces) : "")
            start += 14
        }
        return cells
    }

    @Test func detectTableShowsTheCSVScores() throws {
        let (csv, lines, _) = try detectBothFormats()
        #expect(csv.header == ["filename", "tiny", "probability", "label", "verdict", "error"])
        #expect(lines.count == 1 + csv.rows.count && csv.rows.count == 5, "\(lines)")
        #expect(lines[0] == csv.header.map { $0.padding(toLength: $0 == "filename" ? 40 : 14, withPad: " ", startingAt: 0) }.joined())
        var shown: [String] = []
        for (line, row) in zip(lines.dropFirst(), csv.rows) {
            let cells = Self.tableCells(line, columns: csv.header.count)
            #expect(cells[0] == row[0], "\(line)")
            if row[5].isEmpty {
                // Score and probability to 4 decimals, label and verdict as they are.
                let score = try #require(Double(row[1])), probability = try #require(Double(row[2]))
                #expect(cells[1] == String(format: "%.4f", score) && cells[2] == String(format: "%.4f", probability), "\(line) vs \(row)")
                #expect(abs(Double(cells[1])! - score) <= 0.5e-4 + 1e-12)
                #expect(cells[3] == row[3] && cells[4] == row[4] && cells[5].isEmpty, "\(line) vs \(row)")
                shown.append(cells[1])
            } else {
                #expect(row[0] == "broken.jpg" && cells[1].isEmpty && cells[2].isEmpty && cells[3].isEmpty && cells[4].isEmpty, "\(line)")
            }
        }
        // Four different images, four different scores: a table of one repeated value would fail.
        #expect(shown.count == 4 && Set(shown).count == 4, "\(shown)")
    }

    /// The error column is the last one: the table shows the whole message, as the CSV does.
    /// (Fails today: `DetectionWriter.write`, table case, pads every cell with `padding(toLength: 14)`,
    /// which also cuts longer text, so the error reads as its first 14 characters.)
    @Test func detectTableShowsTheWholeError() throws {
        let (csv, lines, _) = try detectBothFormats()
        let index = try #require(csv.rows.firstIndex { $0[0] == "broken.jpg" })
        let error = csv.rows[index][5]
        #expect(error.count > 14, "\(error)")
        #expect(lines[1 + index].hasSuffix(error), "table row: \(lines[1 + index])\ncsv error: \(error)")
    }
}
