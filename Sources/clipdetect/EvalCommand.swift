import ArgumentParser
import ClipDetect
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "AUC, balanced accuracy, EER, TPR at 1%/5% FPR, NLL and ECE per generator, as compute_metrics.py.")

    @Option(help: "The list: columns filename and typ (real, or the generator's name).") var csv: String
    @Option(help: "Scores from detect (or the reference's main.py); without it the listed images are scored here.") var scores: String?
    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .customLong("head"), help: "Head file(s) (default: the named model's head).") var heads: [String] = []
    @Option(help: "How several heads' scores are combined.") var fusion: Fusion = .softOrProb
    @Option(help: "Also write the table as CSV.") var saveTab: String?
    @Option(help: "Also evaluate impaired copies (in memory): a named chain (paper, social) or operations and chains joined by +, e.g. 'resize:factor=0.5+jpeg:q=75' (repeatable; scores the images here).")
    var impair: [String] = []
    @Option(help: "Seed for impairment parameters drawn from ranges.") var seed: UInt64 = 0
    @OptionGroup var cacheOptions: CacheOptions

    func validate() throws {
        if scores != nil && !impair.isEmpty { throw ValidationError("--impair scores the images here: drop --scores") }
        if scores != nil && (modelOptions.explicitModel != nil || !heads.isEmpty) {
            throw ValidationError("give --scores, or --model/--head to score the images here, not both")
        }
        for condition in impair { _ = try ImpairmentChain(condition: condition) }
    }

    func run() throws {
        let list = try CSVTable(path: csv)
        let names = try list.values("filename"), types = try list.values("typ")
        let conditions: [(name: String, chain: ImpairmentChain?)] = [("clean", nil)]
            + (try impair.map { ($0, try ImpairmentChain(condition: $0, seed: seed)) })
        var table: [(detector: String, rows: [EvaluationRow])] = []
        var summary: [(condition: String, detector: String, auc: Double, accuracy: Double, images: Int)] = []
        let detector = scores == nil ? try makeDetector() : nil
        for condition in conditions {
            let columns = try scores.map(readScores) ?? scoreHere(detector!, names: names, impairment: condition.chain)
            for (detector, byName) in columns {
                let present = names.indices.filter { byName[names[$0]] != nil }
                let missing = names.count - present.count
                if missing > 0 { printError("\(detector): \(missing) listed file(s) have no score and are left out") }
                let label = conditions.count > 1 ? "\(detector) [\(condition.name)]" : detector
                let rows = EvaluationRow.table(types: present.map { types[$0] }, scores: present.map { byName[names[$0]]! })
                table.append((label, rows))
                if let average = rows.last {
                    summary.append((condition.name, detector, average.auc, average.balancedAccuracy, average.reals + average.fakes))
                }
            }
        }
        print(render(table))
        if conditions.count > 1 {
            print("summary: AVG over generators")
            for row in summary {
                print("  " + row.condition.padding(toLength: 28, withPad: " ", startingAt: 0) + row.detector.padding(toLength: 16, withPad: " ", startingAt: 0)
                      + String(format: "AUC %.4f  acc %.4f  (%d images)", row.auc, row.accuracy, row.images))
            }
        }
        if let saveTab {
            var text = CSVTable.line(["detector", "generator", "reals", "fakes"] + EvaluationRow.columns)
            for (detector, rows) in table {
                for row in rows {
                    text += CSVTable.line([detector, row.generator, String(row.reals), String(row.fakes)] + row.values.map { String($0) })
                }
            }
            try text.write(toFile: saveTab, atomically: true, encoding: .utf8)
        }
    }

    /// Score columns of a detect/main.py output: every column but filename, probability, label and error.
    private func readScores(_ path: String) throws -> [(String, [String: Double])] {
        let table = try CSVTable(path: path)
        let names = try table.values("filename")
        return try table.header.filter { !["filename", "probability", "label", "error"].contains($0) }.map { column in
            let values = try table.values(column)
            var byName: [String: Double] = [:]
            for (name, value) in zip(names, values) { if let score = Double(value) { byName[name] = score } }
            return (column, byName)
        }
    }

    private func makeDetector() throws -> Detector {
        let loaded = try modelOptions.load(heads: heads)
        var detector = try Detector(encoder: loaded.encoder, heads: loaded.heads(), fusion: fusion)
        detector.extractor.cache = cacheOptions.open()
        return detector
    }

    private func scoreHere(_ detector: Detector, names: [String], impairment: ImpairmentChain?) throws -> [(String, [String: Double])] {
        var detector = detector
        detector.extractor.impairment = impairment
        let folder = URL(fileURLWithPath: csv).deletingLastPathComponent()
        let paths = names.map { $0.hasPrefix("/") ? $0 : folder.appendingPathComponent($0).path }
        var columns = detector.heads.map { ($0.metadata.name, [String: Double]()) } + (detector.heads.count > 1 ? [("fusion", [:])] : [])
        let progress = Progress(total: paths.count)
        try detector.run(paths: paths) { index, result in
            progress.advance()
            guard case .success(let detection) = result else {
                if case .failure(let error) = result, !progress.visible { printError("\(error)") }
                return
            }
            for (column, score) in detection.scores.enumerated() { columns[column].1[names[index]] = score }
            if let fused = detection.fused { columns[columns.count - 1].1[names[index]] = fused }
        }
        progress.finish()
        return columns
    }

    private func render(_ table: [(detector: String, rows: [EvaluationRow])]) -> String {
        let titles = ["generator", "real", "fake", "AUC", "acc", "EER", "TPR@1%", "TPR@5%", "NLL", "ECE"]
        var lines: [String] = []
        for (detector, rows) in table {
            lines.append("detector \(detector)")
            lines.append(titles.enumerated().map { $0 == 0 ? $1.padding(toLength: 24, withPad: " ", startingAt: 0) : pad($1) }.joined())
            for row in rows {
                let cells = [String(row.reals), String(row.fakes)] + row.values.map { String(format: "%.4f", $0) }
                lines.append(row.generator.padding(toLength: 24, withPad: " ", startingAt: 0) + cells.map(pad).joined())
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    private func pad(_ text: String) -> String { String(repeating: " ", count: max(0, 9 - text.count)) + text }
}
