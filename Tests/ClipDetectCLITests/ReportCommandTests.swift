import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools
import ClipDetectTestSupport

/// `eval --report` end to end.
@Suite struct ReportCommandTests {
    let cli = CLI()

    /// What a parse of the report found: figures by class, each table's cells by (table, row, column).
    final class Reading: NSObject, XMLParserDelegate {
        var figures: [String: [[String: String]]] = [:]
        var svgs = 0, images: [String] = [], sections: [String] = []
        var tables: [(attributes: [String: String], rows: [[String]], values: [[String?]])] = []
        var external: [String] = []
        private var inRow = false, cellText = "", inCell = false

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String]) {
            for key in ["src", "href", "xlink:href"] { if let value = attributes[key], !value.hasPrefix("data:"), !value.hasPrefix("#") { external.append(value) } }
            switch name {
            case "section": sections.append(attributes["id"] ?? "")
            case "figure": figures[attributes["class"] ?? "", default: []].append(attributes)
            case "svg": svgs += 1
            case "img": images.append(attributes["src"] ?? "")
            case "link", "iframe", "object", "embed": external.append(name)
            case "script" where attributes["src"] != nil: external.append("script src")
            case "table": tables.append((attributes, [], []))
            case "tr" where !tables.isEmpty: inRow = true; tables[tables.count - 1].rows.append([]); tables[tables.count - 1].values.append([])
            case "td" where inRow, "th" where inRow:
                inCell = true
                cellText = ""
                tables[tables.count - 1].values[tables[tables.count - 1].values.count - 1].append(attributes["data-value"])
            default: break
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { if inCell { cellText += string } }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if (name == "td" || name == "th") && inCell {
                inCell = false
                tables[tables.count - 1].rows[tables[tables.count - 1].rows.count - 1].append(cellText)
            }
            if name == "tr" { inRow = false }
        }
    }

    static func read(_ path: String) throws -> Reading {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let parser = XMLParser(data: data), reading = Reading()
        parser.delegate = reading
        let parsed = parser.parse()
        #expect(parsed, "not well-formed: \(String(describing: parser.parserError)) at line \(parser.lineNumber)")
        return reading
    }

    /// Every metrics table of the report against --save-tab's rows, value for value.
    static func checkTables(_ reading: Reading, savedTab: String, conditions: Bool) throws {
        let saved = try CSVTable(path: savedTab)
        var expected: [String: [String]] = [:]  // "detector|generator" → the row's values
        for row in saved.rows { expected["\(row[0])|\(row[1])"] = Array(row[2...]) }
        var compared = 0
        for table in reading.tables where table.attributes["class"]?.contains("metrics") == true {
            let detector = table.attributes["data-detector"]!, condition = table.attributes["data-condition"]!
            let label = conditions ? "\(detector) [\(condition)]" : detector
            for (cells, values) in zip(table.rows.dropFirst(), table.values.dropFirst()) {
                let want = try #require(expected["\(label)|\(cells[0])"], "\(label) \(cells[0]) is not in --save-tab's table")
                let got = values.dropFirst().map { $0 ?? "" }
                #expect(got.count == want.count && got == want, "\(label) \(cells[0]): \(got) vs \(want)")
                compared += 1
            }
        }
        #expect(compared == saved.rows.count && compared > 0, "\(compared) rows compared of \(saved.rows.count)")
    }

    @Test func aReportFromScoresHoldsEveryFigureAndTheSavedTablesNumbers() throws {
        let folder = try Fixtures.temporaryDirectory()
        // detA read through a Platt-calibrated head with a band: the reliability diagram and the band appear.
        let headPath = folder.appendingPathComponent("detA.safetensors").path
        let feature = Head.Feature(architecture: "test", fingerprint: nil, backbone: nil, kind: .pooled, normalized: true, width: 2)
        try Head(weights: [0, 0], bias: 0, metadata: Head.Metadata(name: "detA", feature: feature, calibration: .platt(a: 0.8, b: -0.2),
                                                                   band: UncertaintyBand(scale: .probability, low: 0.4, high: 0.6))).write(to: headPath)
        let report = folder.appendingPathComponent("report.html").path, tab = folder.appendingPathComponent("tab.csv").path
        let result = try cli.run(["eval", "--csv", Fixtures.path("metrics", "list.csv"), "--scores", Fixtures.path("metrics", "scores.csv"),
                                  "--head", headPath, "--save-tab", tab, "--report", report])
        #expect(result.status == 0, "\(result.stderr)")
        let reading = try Self.read(report)
        #expect(reading.sections == ["provenance", "metrics", "roc", "distributions", "reliability", "mistakes"])
        // Three detectors (detA, detB, fusion), three generators.
        #expect(reading.figures["roc"]?.map { $0["data-detector"] ?? "" } == ["detA", "detB", "fusion"])
        #expect(reading.figures["distribution"]?.count == 9)
        #expect(reading.figures["reliability"]?.map { $0["data-detector"] ?? "" } == ["detA"], "only the calibrated detector has one")
        #expect(reading.svgs == 3 * 2 + 9 + 1, "ROC (linear and log) per detector, distributions, reliability")
        #expect(reading.external.isEmpty, "nothing is fetched: \(reading.external)")
        // The images of a scores file are not on disk: no thumbnail, a message in its place.
        #expect(reading.images.isEmpty)
        try Self.checkTables(reading, savedTab: tab, conditions: false)
        let html = try String(contentsOfFile: report, encoding: .utf8)
        #expect(html.contains("Platt-calibrated") && html.contains("uncertain for P in [0.4, 0.6]"), "detA's rule is in the provenance")
        #expect(html.contains("class=\"band\""), "the band is shaded on detA's distributions")
        #expect(html.contains(EvaluationReport.listHash(try Inputs.labeled(csv: Fixtures.path("metrics", "list.csv")))))
    }

    @Test func aReportOfImpairedCopiesHasTheRobustnessFigureAndThumbnails() throws {
        let folder = try Fixtures.temporaryDirectory()
        let reals = ["jpeg_420.jpg", "png_rgb.png", "webp_lossy.webp", "photo_rocket.jpg", "cjpeg_gray.jpg", "gif_palette.gif", "bmp_rgb.bmp"]
        let fakes = ["photo_chelsea.png", "photo_logo.png", "png_palette.png", "jpeg_444.jpg", "tiff_rgb_tiff_lzw.tif", "jpeg_cmyk.jpg"]
        var list = "filename,typ\n"
        for name in reals { list += "\(Fixtures.path("images", name)),real\n" }
        for (i, name) in fakes.enumerated() { list += "\(Fixtures.path("images", name)),\(i % 2 == 0 ? "gen_a" : "gen_b")\n" }
        let listPath = folder.appendingPathComponent("list.csv").path
        try list.write(toFile: listPath, atomically: true, encoding: .utf8)
        let head = folder.appendingPathComponent("head.safetensors").path
        #expect(try cli.run(["head", "import", Fixtures.referenceHead, "--backbone", Fixtures.backbone, "--name", "tiny", "-o", head]).status == 0)
        let report = folder.appendingPathComponent("report.html").path, tab = folder.appendingPathComponent("tab.csv").path
        let arguments = ["eval", "--csv", listPath, "--model", Fixtures.backbone, "--head", head, "--impair", "jpeg:q=30", "--no-cache", "--quiet"]
        let result = try cli.run(arguments + ["--save-tab", tab, "--report", report])
        #expect(result.status == 0, "\(result.stderr)")
        let reading = try Self.read(report)
        #expect(reading.sections == ["provenance", "metrics", "roc", "distributions", "reliability", "robustness", "mistakes"])
        #expect(reading.figures["robustness-roc"]?.count == 1)
        try Self.checkTables(reading, savedTab: tab, conditions: true)
        // The robustness table's AUCs are the two conditions' AUC columns.
        let saved = try CSVTable(path: tab)
        let robustness = try #require(reading.tables.first { $0.attributes["class"] == "robustness" })
        #expect(robustness.rows.first == ["generator", "clean", "jpeg:q=30", "worst drop"])
        for (cells, values) in zip(robustness.rows.dropFirst(), robustness.values.dropFirst()) {
            for (k, condition) in ["clean", "jpeg:q=30"].enumerated() {
                let row = try #require(saved.rows.first { $0[0] == "tiny [\(condition)]" && $0[1] == cells[0] })
                #expect(values[k + 1] == row[4], "\(cells[0]) \(condition): AUC \(String(describing: values[k + 1])) vs \(row[4])")
            }
        }
        // Six reals and six fakes at most, each a JPEG no larger than 160 pixels a side.
        #expect(reading.images.count == 12, "\(reading.images.count) thumbnails")
        for source in reading.images {
            let data = try #require(Data(base64Encoded: String(source.dropFirst("data:image/jpeg;base64,".count))))
            let image = try ImageDecoder.decode(data)
            #expect(source.hasPrefix("data:image/jpeg;base64,") && max(image.width, image.height) <= 160 && image.width > 0)
        }
        #expect(reading.external.isEmpty, "\(reading.external)")

        let bare = folder.appendingPathComponent("bare.html").path
        #expect(try cli.run(arguments + ["--report", bare, "--no-thumbnails"]).status == 0)
        let text = try String(contentsOfFile: bare, encoding: .utf8)
        #expect(!text.contains("<img") && !text.contains("data:image") && text.contains("Thumbnails were left out"))
        // A report or table written over an input (the list, the scores) is refused before any work.
        for (option, target) in [("--report", listPath), ("--save-tab", listPath), ("--report", tab)] {
            let before = try Data(contentsOf: URL(fileURLWithPath: target))
            let over = try cli.run(["eval", "--csv", listPath, "--scores", tab, option, target])
            #expect(over.status != 0 && over.stderr.contains("\(option) \(target) is also an input"), "\(over.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == before)
        }
        let refused = try cli.run(["eval", "--csv", listPath, "--scores", tab, "--no-thumbnails"])
        #expect(refused.status != 0 && refused.stderr.contains("--report"), "\(refused.stderr)")
    }

    /// Scores at the ends of the doubles (a scores file may hold them) draw a report, not a trap.
    @Test func extremeScoresStillDrawAReport() throws {
        let folder = try Fixtures.temporaryDirectory()
        let list = folder.appendingPathComponent("list.csv").path, scores = folder.appendingPathComponent("scores.csv").path
        try "filename,typ\na.png,real\nb.png,real\nc.png,gen\nd.png,gen\n".write(toFile: list, atomically: true, encoding: .utf8)
        try "filename,det\na.png,-1.7e308\nb.png,1e300\nc.png,1.7e308\nd.png,5e-324\n".write(toFile: scores, atomically: true, encoding: .utf8)
        let report = folder.appendingPathComponent("r.html").path
        let result = try cli.run(["eval", "--csv", list, "--scores", scores, "--report", report])
        #expect(result.status == 0, "\(result.stderr)")
        let reading = try Self.read(report)
        #expect(reading.figures["distribution"]?.count == 1 && reading.figures["roc"]?.count == 1)
        #expect(SVGChart.ticks(-1.7e308, 1.7e308) == [-1.7e308] && SVGChart.ticks(.nan, 1) == [] && SVGChart.ticks(-1e300, 1e300).count >= 4)
    }
}
