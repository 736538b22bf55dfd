import Foundation
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools
import ClipDetectTestSupport

/// Regressions for wrong results a user met: labels shifted, eval disagreeing with detect, resumed
/// files mixing detectors, metrics over nothing.
@Suite struct HardeningTests {
    let cli = CLI()

    func write(_ text: String, _ name: String, in folder: URL) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func labelledListsRefuseRowsThatWouldShiftLabels() throws {
        let folder = try Fixtures.temporaryDirectory()
        let good = try write("\u{FEFF}filename,typ\r\na.jpg,real\r\n\"b,1.jpg\", gan \r\n", "good.csv", in: folder)
        let images = try Inputs.labeled(csv: good)
        #expect(images.map(\.item.name) == ["a.jpg", "b,1.jpg"] && images.map(\.type) == ["real", "gan"])
        #expect(images[1].item.path == folder.appendingPathComponent("b,1.jpg").path)
        for (text, row) in [("filename,typ\n,real\na.jpg,gan\n", "row 1"), ("filename,typ\na.jpg,real\nb.jpg,\n", "row 2")] {
            let path = try write(text, "bad.csv", in: folder)
            let error = #expect(throws: ReportError.self) { try Inputs.labeled(csv: path) }
            #expect("\(error!)".contains(row), "\(error!)")
            let train = try cli.run(["train", "--csv", path, "--model", Fixtures.backbone, "--C", "1", "-o", folder.appendingPathComponent("h.safetensors").path])
            #expect(train.status != 0 && train.stderr.contains(row), "\(train.stderr)")
        }
    }

    /// eval reads a calibrated head's scores as detect does: the same probabilities and labels.
    @Test func evalUsesTheHeadsCalibrationAndThresholdAsDetectDoes() throws {
        let folder = try Fixtures.temporaryDirectory()
        var (head, _) = try Fixtures.importedHead()
        head.metadata.name = "calibrated"
        head.metadata.calibration = Head.Calibration(a: 0.37, b: -0.8)
        let headPath = folder.appendingPathComponent("calibrated.safetensors").path
        try head.write(to: headPath)
        let names = ["jpeg_420.jpg", "png_rgba.png", "photo_rocket.jpg", "size_33x17.png", "webp_lossy.webp", "cjpeg_arithmetic.jpg", "png_gray16.png", "photo_chelsea.png"]
        var text = "filename,typ\n"
        for (i, name) in names.enumerated() { text += "\(Fixtures.path("images", name)),\(i % 2 == 0 ? "real" : "gen")\n" }
        let list = try write(text, "list.csv", in: folder)
        let detected = folder.appendingPathComponent("scores.csv").path
        let detect = try cli.run(["detect", "--model", Fixtures.backbone, "--head", headPath, "--csv", list, "-o", detected])
        #expect(detect.status == 0, "\(detect.stderr)")
        let rows = try CSVTable(path: detected)
        let probabilities = try rows.values("probability").map { Double($0)! }, labels = try rows.values("label").map { $0 == "synthetic" }
        let truth = (0..<names.count).map { $0 % 2 == 1 }
        for (p, label) in zip(probabilities, labels) { #expect((p > 0.5) == label, "label and probability agree") }

        let saved = folder.appendingPathComponent("tab.csv").path
        let eval = try cli.run(["eval", "--csv", list, "--model", Fixtures.backbone, "--head", headPath, "--save-tab", saved])
        #expect(eval.status == 0, "\(eval.stderr)")
        let table = try CSVTable(path: saved)
        let row = table.rows.first { $0[1] == "gen" }!
        let expectedNLL = zip(truth, probabilities).reduce(0.0) { $0 - log($1.0 ? $1.1 : 1 - $1.1) } / Double(names.count)
        #expect(abs(Double(row[table.column("nll")!])! - expectedNLL) <= 1e-9)
        let expectedAccuracy = Metrics.balancedAccuracy(labels: truth, predictions: labels)
        #expect(abs(Double(row[table.column("acc")!])! - expectedAccuracy) <= 1e-12)
    }

    /// A row ends at a line break outside quotes: a resume cut inside a quoted name drops that row
    /// alone; the reference layout keeps one line per image when an image fails for the first time
    /// on a resume; JSON lines resumed as CSV, and --chain without --stability, say what to give.
    @Test func resumeReadsRowsAsCSVQuotesThemAndKeepsALinePerImage() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try DetectCommandTests().headFile(in: folder)
        let named = folder.appendingPathComponent("new\nline.png").path
        try FileManager.default.copyItem(atPath: Fixtures.path("images", "png_rgba.png"), toPath: named)
        let images = [Fixtures.path("images", "jpeg_420.jpg"), named]
        let output = folder.appendingPathComponent("quoted.csv").path
        #expect(try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "-o", output] + images).status == 0)
        let whole = try Data(contentsOf: URL(fileURLWithPath: output))
        let cut = try #require(whole.range(of: Data("line.png".utf8))).lowerBound
        try whole.prefix(upTo: cut).write(to: URL(fileURLWithPath: output))
        let resumed = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "-o", output, "--resume"] + images)
        #expect(resumed.status == 0 && resumed.stderr.contains("dropped an incomplete last row") && resumed.stderr.contains("resuming: 1 file(s)"),
                "\(resumed.stderr)")
        #expect(try CSVTable(path: output).values("filename") == images)
        // A quote inside a field is no row of detect's: refused, the file kept, not cut back to that row.
        var edited = try String(contentsOfFile: output, encoding: .utf8)
        edited = edited.replacingOccurrences(of: "jpeg_420.jpg", with: "jpeg\"420.jpg")
        try edited.write(toFile: output, atomically: true, encoding: .utf8)
        let stray = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "-o", output, "--resume"] + images)
        #expect(stray.status != 0 && stray.stderr.contains("has a quote inside a field"), "\(stray.stderr)")
        #expect(try String(contentsOfFile: output, encoding: .utf8) == edited)

        let reference = folder.appendingPathComponent("reference.csv").path
        let bad = [Fixtures.path("images", "bad_truncated.jpg"), Fixtures.path("images", "bad_text.png")]
        #expect(try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--columns", "reference", "-o", reference, images[0], bad[0]]).status == 2)
        let again = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--columns", "reference", "-o", reference, "--resume",
                                 images[0], bad[0], bad[1]])
        #expect(again.status == 2, "\(again.stderr)")
        let lines = try String(contentsOfFile: reference, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 1 + 3 + 1 && lines[2].isEmpty && lines[3].isEmpty && lines[4].isEmpty, "one line per image: \(lines)")

        let jsonl = folder.appendingPathComponent("rows.jsonl").path
        #expect(try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--format", "jsonl", "-o", jsonl, images[0]]).status == 0)
        let asCSV = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "-o", jsonl, "--resume", images[0]])
        #expect(asCSV.status != 0 && asCSV.stderr.contains("holds JSON lines") && asCSV.stderr.contains("--format jsonl"), "\(asCSV.stderr)")
        // An output FIFO nobody reads is refused at once, resumed or not, never waited on.
        let fifo = folder.appendingPathComponent("fifo.csv").path
        #expect(mkfifo(fifo, 0o600) == 0)
        for extra in [[], ["--resume"]] {
            let unread = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "-o", fifo] + extra + [images[0]])
            #expect(unread.status != 0 && unread.stderr.contains("nothing reads it"), "\(unread.stderr)")
        }
        let chain = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--chain", "social", images[0]])
        #expect(chain.status == 64 && chain.stderr.contains("give --stability N"), "\(chain.stderr)")
    }

    @Test func resumeRefusesAnotherDetectorsFileAndDropsACutRow() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try DetectCommandTests().headFile(in: folder)
        var other = try Head.read(head)
        other.metadata.name = "other"
        other.bias += 1
        let second = folder.appendingPathComponent("other.safetensors").path
        try other.write(to: second)
        let images = ["jpeg_420.jpg", "png_rgba.png", "photo_rocket.jpg"].map { Fixtures.path("images", $0) }
        for format in ["csv", "jsonl"] {
            let output = folder.appendingPathComponent("out.\(format)").path
            let first = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--format", format, "-o", output, images[0], images[1]])
            #expect(first.status == 0, "\(first.stderr)")
            let before = try String(contentsOfFile: output, encoding: .utf8)
            let mixed = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--head", second, "--format", format,
                                     "-o", output, "--resume"] + images)
            #expect(mixed.status != 0 && mixed.stderr.contains("resume with the same heads"), "\(mixed.stderr)")
            #expect(try String(contentsOfFile: output, encoding: .utf8) == before)
            // Another head under the same name (its column would mix two heads' scores), or the same
            // head fused or oriented otherwise: refused by the record beside the output.
            var renamed = other
            renamed.metadata.name = try Head.read(head).metadata.name
            let impostor = folder.appendingPathComponent("impostor.safetensors").path
            try renamed.write(to: impostor)
            let swapped = try cli.run(["detect", "--model", Fixtures.backbone, "--head", impostor, "--format", format,
                                       "-o", output, "--resume"] + images)
            #expect(swapped.status != 0 && swapped.stderr.contains("written by another detector (other heads)"), "\(swapped.stderr)")
            let turned = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--format", format, "--exif-orientation",
                                      "-o", output, "--resume"] + images)
            #expect(turned.status != 0 && turned.stderr.contains("(other --exif-orientation)"), "\(turned.stderr)")
            #expect(try String(contentsOfFile: output, encoding: .utf8) == before)
            // Through a link the record is the file's own; one that cannot be read, or that clipdetect
            // did not write, is refused rather than taken as missing.
            let link = folder.appendingPathComponent("link.\(format)").path
            try? FileManager.default.removeItem(atPath: link)
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: output)
            let viaLink = try cli.run(["detect", "--model", Fixtures.backbone, "--head", impostor, "--format", format, "-o", link, "--resume"] + images)
            #expect(viaLink.status != 0 && viaLink.stderr.contains("written by another detector (other heads)"), "\(viaLink.stderr)")
            let record = output + ".detector"
            let kept = try Data(contentsOf: URL(fileURLWithPath: record))
            try "garbage".write(toFile: record, atomically: true, encoding: .utf8)
            let garbled = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--format", format, "-o", output, "--resume"] + images)
            #expect(garbled.status != 0 && garbled.stderr.contains("is not a record clipdetect wrote"), "\(garbled.stderr)")
            try FileManager.default.removeItem(atPath: record)
            try FileManager.default.createDirectory(atPath: record, withIntermediateDirectories: false)
            let folderRecord = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--format", format, "-o", output, "--resume"] + images)
            #expect(folderRecord.status != 0 && folderRecord.stderr.contains("cannot be read"), "\(folderRecord.stderr)")
            try FileManager.default.removeItem(atPath: record)
            try kept.write(to: URL(fileURLWithPath: record))
            #expect(try String(contentsOfFile: output, encoding: .utf8) == before)

            // A row cut short (a crash, a full disk) is done again, not glued to the next one.
            let lines = before.split(separator: "\n", omittingEmptySubsequences: false)
            let cut = lines.dropLast(2).joined(separator: "\n") + "\n" + lines[lines.count - 2].prefix(20)
            try cut.write(toFile: output, atomically: true, encoding: .utf8)
            let resumed = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--format", format, "-o", output, "--resume"] + images)
            #expect(resumed.status == 0 && resumed.stderr.contains("1 file(s) already") && resumed.stderr.contains("incomplete"), "\(resumed.stderr)")
            let after = try String(contentsOfFile: output, encoding: .utf8)
            #expect(after.split(separator: "\n").count == (format == "csv" ? 4 : 3))
            #expect(after.hasPrefix(String(lines[0])))
            // Without the record (an older version's output), resumed on its columns, saying so.
            try FileManager.default.removeItem(atPath: output + ".detector")
            let unrecorded = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--format", format, "-o", output, "--resume"] + images)
            #expect(unrecorded.status == 0 && unrecorded.stderr.contains("cannot be checked"), "\(unrecorded.stderr)")
            #expect(FileManager.default.fileExists(atPath: output + ".detector"))
        }
    }

    /// An output that --resume cannot read is refused and kept, never taken as absent and overwritten.
    @Test func resumeRefusesAnOutputItCannotRead() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try DetectCommandTests().headFile(in: folder)
        let output = folder.appendingPathComponent("huge.csv").path
        try Data("filename\n".utf8).write(to: URL(fileURLWithPath: output))
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: output))
        try handle.truncate(atOffset: UInt64(CSVTable.maxBytes + 1))  // sparse: no disk used
        try handle.close()
        let run = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "-o", output, "--resume", Fixtures.path("images", "jpeg_420.jpg")])
        #expect(run.status != 0 && run.stderr.contains("cannot resume"), "\(run.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: output)[.size] as? Int == CSVTable.maxBytes + 1)
        #expect(!FileManager.default.fileExists(atPath: output + ".detector"))
    }

    @Test func evalCountsWhatItLeavesOutAndRefusesToEvaluateNothing() throws {
        let folder = try Fixtures.temporaryDirectory()
        let list = try write("filename,typ\nr1,real\nr2,real\nr3,real\na1,ganA\na2,ganA\nb1,ganB\nb2,ganB\n", "list.csv", in: folder)
        let scores = try write("filename,det\nr1,-1\nr2,-2\nr3,nan\na1,1\na2,2\nb1,inf\n", "scores.csv", in: folder)
        let result = try cli.run(["eval", "--csv", list, "--scores", scores])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("1 of 7 listed file(s) have no score"), "\(result.stderr)")
        #expect(result.stderr.contains("2 of 7 listed file(s) have a score that is not finite"))
        #expect(result.stderr.contains("ganB: not evaluated"))
        #expect(!result.stdout.contains("nan") && result.stdout.contains("AVG"), "\(result.stdout)")

        let table = Evaluation.table(try Inputs.labeled(csv: list), scores: ["r1": -1, "r2": -2, "r3": .nan, "a1": 1, "a2": 2, "b1": .infinity],
                                     detector: "det")
        #expect(table.missing == 1 && table.nonFinite == 2 && table.unevaluated == ["ganB"] && table.evaluated == 4)
        #expect(table.rows.map(\.generator) == ["ganA", "AVG"] && table.average!.auc == 1)

        let empty = try write("filename,det\nr1,nan\na1,\n", "empty.csv", in: folder)
        let nothing = try cli.run(["eval", "--csv", list, "--scores", empty])
        #expect(nothing.status != 0 && nothing.stderr.contains("nothing was evaluated"), "\(nothing.stderr)")
        let garbage = try write("filename,det\nr1,abc\n", "garbage.csv", in: folder)
        let refused = try cli.run(["eval", "--csv", list, "--scores", garbage])
        #expect(refused.status != 0 && refused.stderr.contains("abc is not a number"))
        // A file listed twice, under one label or two, or under two spellings, is refused: it would count twice.
        for second in ["r1,ganA", "r1,real", "./r1,ganA"] {
            let twice = try write("filename,typ\nr1,real\nr2,real\na1,ganA\n\(second)\n", "twice.csv", in: folder)
            let listed = try cli.run(["eval", "--csv", twice, "--scores", scores])
            #expect(listed.status != 0 && listed.stderr.contains("rows 1 and 4 both list"), "\(listed.stderr)")
        }
    }

    @Test func trainingOptionsAreCheckedBeforeAnyWork() throws {
        let folder = try Fixtures.temporaryDirectory()
        let list = try write("filename,typ\n\(Fixtures.path("images", "jpeg_420.jpg")),real\n\(Fixtures.path("images", "png_rgb.png")),gan\n", "list.csv", in: folder)
        for C in ["0", "1e-300", "nan", "inf", "-1"] {
            let result = try cli.run(["train", "--csv", list, "--model", Fixtures.backbone, "--C=\(C)", "-o", folder.appendingPathComponent("h.safetensors").path])
            #expect(result.status != 0 && result.stderr.contains("C = "), "C \(C): \(result.stderr)")
        }
        let nowhere = try cli.run(["train", "--csv", list, "--model", Fixtures.backbone, "--C", "1", "-o", "/nonexistent/dir/h.safetensors"])
        #expect(nowhere.status != 0 && nowhere.stderr.contains("the folder /nonexistent/dir does not exist"), "\(nowhere.stderr)")
        let few = try cli.run(["train", "--csv", list, "--model", Fixtures.backbone, "--calibrate", "--C", "1", "-o", folder.appendingPathComponent("h.safetensors").path])
        #expect(few.status != 0 && few.stderr.contains("needs at least 5 real and 5 fake"), "\(few.stderr)")
    }

    @Test func aHeadGivenTwiceIsRefused() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try DetectCommandTests().headFile(in: folder)
        let result = try cli.run(["detect", "--model", Fixtures.backbone, "--head", head, "--head", head, Fixtures.path("images", "jpeg_420.jpg")])
        #expect(result.status != 0 && result.stderr.contains("tiny is given twice"), "\(result.stderr)")
    }
}
