import Foundation
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Regressions for wrong results a user met: labels shifted, eval disagreeing with detect, resumed
/// files mixing detectors, metrics over nothing.
@Suite struct HardeningTests {
    let cli = CommandLineTests()

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
            let train = try cli.run(["train", "--csv", path, "--model", DetectTests.backbone, "--C", "1", "-o", folder.appendingPathComponent("h.safetensors").path])
            #expect(train.status != 0 && train.stderr.contains(row), "\(train.stderr)")
        }
    }

    /// eval reads a calibrated head's scores as detect does: the same probabilities and labels.
    @Test func evalUsesTheHeadsCalibrationAndThresholdAsDetectDoes() throws {
        let folder = try Fixtures.temporaryDirectory()
        var (head, _) = try DetectTests.importedHead()
        head.metadata.name = "calibrated"
        head.metadata.calibration = Head.Calibration(a: 0.37, b: -0.8)
        let headPath = folder.appendingPathComponent("calibrated.safetensors").path
        try head.write(to: headPath)
        let names = ["jpeg_420.jpg", "png_rgba.png", "photo_rocket.jpg", "size_33x17.png", "webp_lossy.webp", "cjpeg_arithmetic.jpg", "png_gray16.png", "photo_chelsea.png"]
        var text = "filename,typ\n"
        for (i, name) in names.enumerated() { text += "\(Fixtures.path("images", name)),\(i % 2 == 0 ? "real" : "gen")\n" }
        let list = try write(text, "list.csv", in: folder)
        let detected = folder.appendingPathComponent("scores.csv").path
        let detect = try cli.run(["detect", "--model", DetectTests.backbone, "--head", headPath, "--csv", list, "-o", detected])
        #expect(detect.status == 0, "\(detect.stderr)")
        let rows = try CSVTable(path: detected)
        let probabilities = try rows.values("probability").map { Double($0)! }, labels = try rows.values("label").map { $0 == "synthetic" }
        let truth = (0..<names.count).map { $0 % 2 == 1 }
        for (p, label) in zip(probabilities, labels) { #expect((p > 0.5) == label, "label and probability agree") }

        let saved = folder.appendingPathComponent("tab.csv").path
        let eval = try cli.run(["eval", "--csv", list, "--model", DetectTests.backbone, "--head", headPath, "--save-tab", saved])
        #expect(eval.status == 0, "\(eval.stderr)")
        let table = try CSVTable(path: saved)
        let row = table.rows.first { $0[1] == "gen" }!
        let expectedNLL = zip(truth, probabilities).reduce(0.0) { $0 - log($1.0 ? $1.1 : 1 - $1.1) } / Double(names.count)
        #expect(abs(Double(row[table.column("nll")!])! - expectedNLL) <= 1e-9)
        let expectedAccuracy = Metrics.balancedAccuracy(labels: truth, predictions: labels)
        #expect(abs(Double(row[table.column("acc")!])! - expectedAccuracy) <= 1e-12)
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
            let first = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--format", format, "-o", output, images[0], images[1]])
            #expect(first.status == 0, "\(first.stderr)")
            let before = try String(contentsOfFile: output, encoding: .utf8)
            let mixed = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--head", second, "--format", format,
                                     "-o", output, "--resume"] + images)
            #expect(mixed.status != 0 && mixed.stderr.contains("resume with the same heads"), "\(mixed.stderr)")
            #expect(try String(contentsOfFile: output, encoding: .utf8) == before)
            // Another head under the same name (its column would mix two heads' scores), or the same
            // head fused or oriented otherwise: refused by the record beside the output.
            var renamed = other
            renamed.metadata.name = try Head.read(head).metadata.name
            let impostor = folder.appendingPathComponent("impostor.safetensors").path
            try renamed.write(to: impostor)
            let swapped = try cli.run(["detect", "--model", DetectTests.backbone, "--head", impostor, "--format", format,
                                       "-o", output, "--resume"] + images)
            #expect(swapped.status != 0 && swapped.stderr.contains("written by another detector (other heads)"), "\(swapped.stderr)")
            let turned = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--format", format, "--exif-orientation",
                                      "-o", output, "--resume"] + images)
            #expect(turned.status != 0 && turned.stderr.contains("(other --exif-orientation)"), "\(turned.stderr)")
            #expect(try String(contentsOfFile: output, encoding: .utf8) == before)
            // Through a link the record is the file's own; one that cannot be read, or that clipdetect
            // did not write, is refused rather than taken as missing.
            let link = folder.appendingPathComponent("link.\(format)").path
            try? FileManager.default.removeItem(atPath: link)
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: output)
            let viaLink = try cli.run(["detect", "--model", DetectTests.backbone, "--head", impostor, "--format", format, "-o", link, "--resume"] + images)
            #expect(viaLink.status != 0 && viaLink.stderr.contains("written by another detector (other heads)"), "\(viaLink.stderr)")
            let record = output + ".detector"
            let kept = try Data(contentsOf: URL(fileURLWithPath: record))
            try "garbage".write(toFile: record, atomically: true, encoding: .utf8)
            let garbled = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--format", format, "-o", output, "--resume"] + images)
            #expect(garbled.status != 0 && garbled.stderr.contains("is not a record clipdetect wrote"), "\(garbled.stderr)")
            try FileManager.default.removeItem(atPath: record)
            try FileManager.default.createDirectory(atPath: record, withIntermediateDirectories: false)
            let folderRecord = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--format", format, "-o", output, "--resume"] + images)
            #expect(folderRecord.status != 0 && folderRecord.stderr.contains("cannot be read"), "\(folderRecord.stderr)")
            try FileManager.default.removeItem(atPath: record)
            try kept.write(to: URL(fileURLWithPath: record))
            #expect(try String(contentsOfFile: output, encoding: .utf8) == before)

            // A row cut short (a crash, a full disk) is done again, not glued to the next one.
            let lines = before.split(separator: "\n", omittingEmptySubsequences: false)
            let cut = lines.dropLast(2).joined(separator: "\n") + "\n" + lines[lines.count - 2].prefix(20)
            try cut.write(toFile: output, atomically: true, encoding: .utf8)
            let resumed = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--format", format, "-o", output, "--resume"] + images)
            #expect(resumed.status == 0 && resumed.stderr.contains("1 file(s) already") && resumed.stderr.contains("incomplete"), "\(resumed.stderr)")
            let after = try String(contentsOfFile: output, encoding: .utf8)
            #expect(after.split(separator: "\n").count == (format == "csv" ? 4 : 3))
            #expect(after.hasPrefix(String(lines[0])))
            // Without the record (an older version's output), resumed on its columns, saying so.
            try FileManager.default.removeItem(atPath: output + ".detector")
            let unrecorded = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--format", format, "-o", output, "--resume"] + images)
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
        let run = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "-o", output, "--resume", Fixtures.path("images", "jpeg_420.jpg")])
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
            let result = try cli.run(["train", "--csv", list, "--model", DetectTests.backbone, "--C=\(C)", "-o", folder.appendingPathComponent("h.safetensors").path])
            #expect(result.status != 0 && result.stderr.contains("C = "), "C \(C): \(result.stderr)")
        }
        let nowhere = try cli.run(["train", "--csv", list, "--model", DetectTests.backbone, "--C", "1", "-o", "/nonexistent/dir/h.safetensors"])
        #expect(nowhere.status != 0 && nowhere.stderr.contains("the folder /nonexistent/dir does not exist"), "\(nowhere.stderr)")
        let few = try cli.run(["train", "--csv", list, "--model", DetectTests.backbone, "--calibrate", "--C", "1", "-o", folder.appendingPathComponent("h.safetensors").path])
        #expect(few.status != 0 && few.stderr.contains("needs at least 5 real and 5 fake"), "\(few.stderr)")
    }

    @Test func aHeadGivenTwiceIsRefused() throws {
        let folder = try Fixtures.temporaryDirectory()
        let head = try DetectCommandTests().headFile(in: folder)
        let result = try cli.run(["detect", "--model", DetectTests.backbone, "--head", head, "--head", head, Fixtures.path("images", "jpeg_420.jpg")])
        #expect(result.status != 0 && result.stderr.contains("tiny is given twice"), "\(result.stderr)")
    }
}

/// Crashes and hangs a user met: bad settings, full disks, FIFOs, names that are not UTF-8.
@Suite struct HostileEnvironmentTests {
    let cli = CommandLineTests()
    static let image = Fixtures.path("images", "jpeg_420.jpg")

    func detect(_ extra: [String], environment: [String: String?] = [:], output: FileHandle? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let folder = try Fixtures.temporaryDirectory()
        let head = try DetectCommandTests().headFile(in: folder)
        return try cli.run(["detect", "--model", DetectTests.backbone, "--head", head] + extra, environment: environment, output: output)
    }

    @Test func badEndpointsAndHomesFailOnlyWhatNeedsThem() throws {
        for (key, value) in [("CLIPDETECT_HF_ENDPOINT", "not a url ::"), ("HF_ENDPOINT", ""), ("CLIPDETECT_HEADS_ENDPOINT", "")] {
            let local = try detect([Self.image], environment: [key: value])
            #expect(local.status == 0, "\(key): \(local.stderr)")
            let listed = try cli.run(["model", "list"], environment: [key: value])
            #expect(listed.status == 0, "\(key): \(listed.stderr)")
        }
        let fetch = try cli.run(["model", "fetch", "openai-vit-b32"], environment: ["CLIPDETECT_HF_ENDPOINT": "not a url ::"])
        #expect(fetch.status != 0 && fetch.stderr.contains("is not an http(s) URL") && fetch.stderr.split(separator: "\n").count == 1, "\(fetch.stderr)")

        let home = try Fixtures.temporaryDirectory()
        let empty = try detect([Self.image], environment: ["CLIPDETECT_HOME": "", "HOME": home.path, "XDG_CACHE_HOME": nil])
        #expect(empty.status == 0, "\(empty.stderr)")
        #expect(FileManager.default.fileExists(atPath: home.appendingPathComponent(".cache/clipdetect/features.sqlite").path))

        let file = home.appendingPathComponent("a-file").path
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        let blocked = try detect([Self.image], environment: ["CLIPDETECT_HOME": file])
        #expect(blocked.status == 0 && blocked.stderr.contains("exists and is not a folder"), "\(blocked.stderr)")
        #expect(!blocked.stderr.contains("NSCocoaErrorDomain"))
    }

    @Test func aFullDiskIsOneLineAndNoCrash() throws {
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let result = try detect([Self.image], output: full)
        #expect(result.status == 1 && result.stderr.contains("cannot write standard output: No space left on device"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func aFIFOIsSkippedInFoldersAndRefusedWhenNamed() throws {
        let folder = try Fixtures.temporaryDirectory()
        try FileManager.default.copyItem(atPath: Self.image, toPath: folder.appendingPathComponent("a.jpg").path)
        let fifo = folder.appendingPathComponent("pipe.jpg").path
        #expect(mkfifo(fifo, 0o644) == 0)
        #expect(try Inputs.collect([folder.path]).map(\.name) == [folder.appendingPathComponent("a.jpg").path])
        let named = try detect([fifo, Self.image])
        #expect(named.status == 2 && named.stdout.contains("not a regular file"), "\(named.stdout)")
        let scanned = try detect([folder.path])
        #expect(scanned.status == 0, "\(scanned.stderr)")
    }

    /// A file whose name is Latin-1 bytes is found in a folder, opens when named, and keeps its
    /// bytes in the CSV output.
    @Test func namesThatAreNotUTF8KeepTheirBytes() throws {
        let folder = try Fixtures.temporaryDirectory()
        let raw = Array(folder.path.utf8) + Array("/caf".utf8) + [0xE9] + Array(".jpg".utf8)
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.image))
        let fd = (raw + [0]).withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) } }
        #expect(fd >= 0)
        _ = data.withUnsafeBytes { write(fd, $0.baseAddress!, data.count) }
        close(fd)
        let name = PathName.decode(raw)
        #expect(PathName.bytes(name) == raw && PathName.display(name).hasSuffix("caf\\xE9.jpg"))
        #expect(try Inputs.collect([folder.path]).map(\.path) == [name])
        #expect(try ImageDecoder.decode(path: name).width > 0)

        let output = folder.appendingPathComponent("out.csv").path
        let scanned = try detect(["-o", output, folder.path])
        #expect(scanned.status == 0, "\(scanned.stderr)")
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))
        #expect(written.firstRange(of: raw) != nil, "the name's own bytes are in the CSV")
        #expect(try CSVTable(path: output).values("filename") == [name])
    }

    @Test func tableCellsKeepTheirColumns() throws {
        let folder = try Fixtures.temporaryDirectory()
        let long = folder.appendingPathComponent(String(repeating: "n", count: 60) + "\nline.jpg").path
        try FileManager.default.copyItem(atPath: Self.image, toPath: long)
        let result = try detect(["--format", "table", long])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 2, "\(result.stdout)")
        #expect(lines[1].hasPrefix("…") && lines[1].contains("\\nline.jpg") && lines[1].dropFirst(40).hasPrefix(" ") == false)
        #expect(String(lines[1]).split(separator: " ", omittingEmptySubsequences: true).count >= 3)
    }
}

/// What a new user tried: model folders, a head that remembers what its backbone's files do not say.
@Suite struct UsabilityTests {
    let cli = CommandLineTests()

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

/// Inputs the fuzzers found (scripts/fuzz.sh), kept as regressions.
@Suite struct FuzzRegressionTests {
    /// A quote or comma followed by a combining mark is one Character: the writer must still quote it.
    @Test func csvFieldsWithCombiningMarksRoundTrip() throws {
        for text in ["fil!\"\u{073A}x", "a,\u{0301}b", "\"\u{0301}", "plain", "new\nline", "cr\r", "q\"\"q", "caf\u{10FDE9}.jpg"] {
            let line = CSVTable.line(["name", text])
            let table = try CSVTable(text: line + line)
            #expect(table.header == ["name", text.trimmingCharacters(in: .whitespaces)], "\(text.unicodeScalars.map { $0.value })")
            #expect(table.rows == [["name", text]])
        }
    }

    /// FuzzImages: a GIF whose giflib error has no text hit a force-unwrap; FuzzImpair: a resize to
    /// 8810² of a tiny image is legal but bounded by the caller's pixel limit.
    @Test func foundByTheImageAndImpairmentFuzzers() throws {
        let gif = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("fuzz", "gif_error_without_text.gif")))
        #expect(throws: ImageError.self) { try ImageDecoder.decode(gif) }
        let spec = try String(contentsOfFile: Fixtures.path("fuzz", "impair_resize_to_8810.txt"), encoding: .utf8)
        let small = RGBImage(width: 24, height: 17, pixels: [UInt8](repeating: 7, count: 24 * 17 * 3))
        #expect(throws: ImageError.self) { try ImpairmentChain(condition: spec).apply(small, maxPixels: 1 << 20) }
        // FuzzImpair: "blur:sigma=3.\0garbage" read as sigma 3 (Double parses up to a NUL); now refused.
        let slow = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("fuzz", "impair_slow_chain.bin")))
        #expect(throws: ImpairmentError.self) { try ImpairmentChain(condition: String(decoding: slow, as: UTF8.self)) }
        for text in ["blur:sigma=3.\u{0}1", "jpeg:q=0x50", "resize:factor=0.5\u{0}", "noise:sigma= 2"] {
            #expect(throws: ImpairmentError.self, "\(text)") { try Impairment(parsing: text) }
        }
        #expect(Numbers.decimal("1e-3") == 0.001 && Numbers.decimal("3.\u{0}1") == nil && Numbers.decimal("") == nil)
    }

    /// A second byte-order mark is kept in the first column's name (only one is a BOM).
    @Test func onlyTheFirstByteOrderMarkIsDropped() throws {
        let table = try CSVTable(text: "\u{FEFF}\u{FEFF}filename,typ\n")
        #expect(table.header == ["\u{FEFF}filename", "typ"])
        #expect(throws: ReportError.self) { try table.values("filename") }
    }
}

/// What a hostile review found after the first round of fixes, kept as regressions.
@Suite struct ReviewRegressionTests {
    let cli = CommandLineTests()

    func write(_ data: Data, _ name: String, in folder: URL) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A zip holding one data.pkl.
    static func pickle(_ bytes: [UInt8]) -> Data {
        var out = Data(), central = Data()
        let name = Array("a/data.pkl".utf8)
        func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
        out += [0x50, 0x4B, 0x03, 0x04] + le(UInt16(20)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(0))
            + le(UInt32(bytes.count)) + le(UInt32(bytes.count)) + le(UInt16(name.count)) + le(UInt16(0)) + name + bytes
        central += [0x50, 0x4B, 0x01, 0x02] + le(UInt16(20)) + le(UInt16(20)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(0))
            + le(UInt32(bytes.count)) + le(UInt32(bytes.count)) + le(UInt16(name.count)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0))
            + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(0)) + name
        let offset = out.count
        out += central
        out += [0x50, 0x4B, 0x05, 0x06] + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(1)) + le(UInt16(1)) + le(UInt32(central.count)) + le(UInt32(offset)) + le(UInt16(0))
        return out
    }

    @Test func deepPicklesAndRepeatingViewsAreRefused() throws {
        let deep = Array("\u{80}\u{02}}X\u{01}\u{00}\u{00}\u{00}xK\u{00}".unicodeScalars.map { UInt8($0.value) }) + Array(repeating: 0x85, count: 100_000) + Array("s.".utf8)
        let error = #expect(throws: CheckpointError.self) { try Checkpoint.read(Self.pickle(deep)) }
        #expect("\(error!)".contains("nests deeper"), "\(error!)")
        let dups = [0x80, 0x02, 0x4E] + Array(repeating: UInt8(ascii: "2"), count: 2_000_000) + [UInt8(ascii: ".")]
        #expect(throws: CheckpointError.self) { try Checkpoint.read(Self.pickle(dups)) }
    }

    @Test func aGIFFrameOfZeroSizeIsAnErrorNotACrash() throws {
        var gif = Array("GIF89a".utf8) + [10, 0, 10, 0, 0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]
        gif += [UInt8(ascii: ","), 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0x44, 1, 0, UInt8(ascii: ";")]
        #expect(throws: ImageError.self) { try ImageDecoder.decode(Data(gif)) }
    }

    @Test func outputsAreWrittenIntoWhatIsThereNotSwappedForIt() throws {
        let folder = try Fixtures.temporaryDirectory()
        let target = folder.appendingPathComponent("real.safetensors").path, link = folder.appendingPathComponent("link.safetensors").path
        try "old".write(toFile: target, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let imported = try cli.run(["head", "import", DetectTests.reference, "--backbone", DetectTests.backbone, "-o", link])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try Head.read(target).weights.count == 32)
        let onFolder = try cli.run(["head", "import", DetectTests.reference, "--backbone", DetectTests.backbone, "-o", folder.path])
        #expect(onFolder.status != 0 && onFolder.stderr.contains("is a folder"), "\(onFolder.stderr)")
        // A file that is not a feature cache is never moved aside.
        let notes = try write(Data("my notes".utf8), "notes.txt", in: folder)
        let detect = try cli.run(["detect", "--model", DetectTests.backbone, "--head", link, "--cache", notes, Fixtures.path("images", "jpeg_420.jpg")])
        #expect(detect.status == 0 && detect.stderr.contains("not a SQLite file; refusing to replace it (remove it, or name another --cache)"), "\(detect.stderr)")
        #expect(try String(contentsOfFile: notes, encoding: .utf8) == "my notes")
        // A refused resume leaves the file exactly as it was, cut last line included.
        let other = try write(Data("notes\nlast line".utf8), "other.csv", in: folder)
        let resume = try cli.run(["detect", "--model", DetectTests.backbone, "--head", link, "-o", other, "--resume", Fixtures.path("images", "jpeg_420.jpg")])
        #expect(resume.status != 0 && resume.stderr.contains("resume with the same heads"), "\(resume.stderr)")
        #expect(try String(contentsOfFile: other, encoding: .utf8) == "notes\nlast line")
        let empty = try write(Data(), "empty.csv", in: folder)
        let fresh = try cli.run(["detect", "--model", DetectTests.backbone, "--head", link, "-o", empty, "--resume", Fixtures.path("images", "jpeg_420.jpg")])
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(try CSVTable(path: empty).rows.count == 1)
    }

    @Test func numbersThatWouldGiveWrongVerdictsAreRefused() throws {
        var (head, _) = try DetectTests.importedHead()
        let folder = try Fixtures.temporaryDirectory()
        head.weights[3] = .nan
        let path = folder.appendingPathComponent("nan.safetensors").path
        // Such heads are refused when written, and when read from a file made elsewhere.
        func writeUnchecked(_ head: Head) throws {
            #expect(throws: HeadError.self) { try head.write(to: path) }
            let json = try JSONEncoder().encode(head.metadata)
            try SafeTensorsWriter.write(head.entries(prefix: ""), metadata: [Head.metadataKey: String(decoding: json, as: UTF8.self)], to: path)
        }
        try writeUnchecked(head)
        #expect(throws: HeadError.self) { try Head.read(path) }
        var (calibrated, _) = try DetectTests.importedHead()
        calibrated.metadata.calibration = Head.Calibration(a: -1, b: 0)
        try writeUnchecked(calibrated)
        #expect(throws: HeadError.self) { try Head.read(path) }
        calibrated.metadata.calibration = nil
        calibrated.metadata.name = "probability"
        try writeUnchecked(calibrated)
        #expect(throws: HeadError.self) { try Head.read(path) }
        #expect(throws: ModelError.self) { try ModelHints.integer(true as Any, "num_attention_heads") }
        #expect(throws: ModelError.self) { try ModelHints.integer(3.5 as Any, "num_attention_heads") }
        #expect(throws: ModelError.self) { try ModelHints.number("x" as Any, "layer_norm_eps") }

        let list = try write(Data("filename,typ\nr1,Real\nr2,REAL\na1,gan\na2,gan\n".utf8), "list.csv", in: folder)
        #expect(try Inputs.labeled(csv: list).map(\.type) == ["real", "real", "gan", "gan"])
        for (text, message) in [("filename,det\nr1,0x10\n", "0x10 is not a number"), ("filename,det\nr1,1\nr1,2\n", "listed twice"),
                                ("filename,det\nr1,\"1\nr2,2\n", "not closed"), ("filename,det,det\nr1,1,2\n", "two det columns")] {
            let scores = try write(Data(text.utf8), "scores.csv", in: folder)
            let result = try cli.run(["eval", "--csv", list, "--scores", scores])
            #expect(result.status != 0 && result.stderr.contains(message) && result.stderr.split(separator: "\n").count <= 2, "\(message): \(result.stderr)")
        }
        #expect(throws: ImpairmentError.self) { try ImpairmentChain(condition: "+") }
        #expect(throws: ImpairmentError.self) { try ImpairmentChain(condition: "jpeg:q=50+") }
    }
}

