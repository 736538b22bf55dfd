import Foundation
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools
import ClipDetectTestSupport

/// Review findings that a command run shows.
@Suite struct ReviewRegressionCommandTests {
    let cli = CLI()

    func write(_ data: Data, _ name: String, in folder: URL) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func outputsAreWrittenIntoWhatIsThereNotSwappedForIt() throws {
        let folder = try Fixtures.temporaryDirectory()
        let target = folder.appendingPathComponent("real.safetensors").path, link = folder.appendingPathComponent("link.safetensors").path
        try "old".write(toFile: target, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let imported = try cli.run(["head", "import", Fixtures.referenceHead, "--backbone", Fixtures.backbone, "-o", link])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
        #expect(try Head.read(target).weights.count == 32)
        let onFolder = try cli.run(["head", "import", Fixtures.referenceHead, "--backbone", Fixtures.backbone, "-o", folder.path])
        #expect(onFolder.status != 0 && onFolder.stderr.contains("is a folder"), "\(onFolder.stderr)")
        // A file that is not a feature cache is never moved aside.
        let notes = try write(Data("my notes".utf8), "notes.txt", in: folder)
        let detect = try cli.run(["detect", "--model", Fixtures.backbone, "--head", link, "--cache", notes, Fixtures.path("images", "jpeg_420.jpg")])
        #expect(detect.status == 0 && detect.stderr.contains("not a SQLite file; refusing to replace it (remove it, or name another --cache)"), "\(detect.stderr)")
        #expect(try String(contentsOfFile: notes, encoding: .utf8) == "my notes")
        // A refused resume leaves the file exactly as it was, cut last line included.
        let other = try write(Data("notes\nlast line".utf8), "other.csv", in: folder)
        let resume = try cli.run(["detect", "--model", Fixtures.backbone, "--head", link, "-o", other, "--resume", Fixtures.path("images", "jpeg_420.jpg")])
        #expect(resume.status != 0 && resume.stderr.contains("resume with the same heads"), "\(resume.stderr)")
        #expect(try String(contentsOfFile: other, encoding: .utf8) == "notes\nlast line")
        let empty = try write(Data(), "empty.csv", in: folder)
        let fresh = try cli.run(["detect", "--model", Fixtures.backbone, "--head", link, "-o", empty, "--resume", Fixtures.path("images", "jpeg_420.jpg")])
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(try CSVTable(path: empty).rows.count == 1)
    }

    @Test func numbersThatWouldGiveWrongVerdictsAreRefused() throws {
        var (head, _) = try Fixtures.importedHead()
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
        var (calibrated, _) = try Fixtures.importedHead()
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
