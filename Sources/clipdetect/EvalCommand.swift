import ArgumentParser
import ClipDetect
import Foundation

extension Evaluation.ReferenceMetric: ExpressibleByArgument {}

struct EvalCommand: ParsableCommand {
    enum TabFormat: String, ExpressibleByArgument, CaseIterable { case long, reference }

    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "AUC, balanced accuracy, EER, TPR at 1%/5% FPR, NLL, ECE and coverage per generator, as compute_metrics.py.",
        discussion: "coverage is the share of images whose verdict is not uncertain (1 without a band); acc_covered the balanced accuracy on those.")

    @Option(help: "The list: columns filename and typ (real, or the generator's name).") var csv: String
    @Option(help: "Scores from detect (or the reference's main.py); without it the listed images are scored here.") var scores: String?
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var headOptions: HeadOptions
    @Option(help: "Also write the table as CSV.") var saveTab: String?
    @Option(help: "long (one row per detector and generator, every metric) or reference (compute_metrics.py's: detectors × generators + AVG, one metric).")
    var tabFormat: TabFormat = .long
    @Option(help: "The metric of --tab-format reference: auc, or acc (balanced accuracy of score > 0).") var tabMetric: Evaluation.ReferenceMetric = .auc
    @Option(help: "Also write one self-contained HTML file: provenance, tables, ROC curves, score distributions, reliability, robustness, worst mistakes.")
    var report: String?
    @Flag(help: "Leave the worst mistakes' thumbnails out of --report: no image goes into the file.") var noThumbnails = false
    @Option(help: "Also evaluate impaired copies (in memory): a named chain (paper, social) or operations and chains joined by +, e.g. 'resize:factor=0.5+jpeg:q=75' (repeatable; scores the images here).")
    var impair: [String] = []
    @Option(help: "Seed for impairment parameters drawn from ranges.") var seed: UInt64 = 0
    @OptionGroup var cacheOptions: CacheOptions
    @OptionGroup var verdictOptions: VerdictOptions
    @OptionGroup var progressOptions: ProgressOptions

    func validate() throws {
        if scores != nil && !impair.isEmpty { throw ValidationError("--impair scores the images here: drop --scores") }
        if tabFormat == .reference && !impair.isEmpty { throw ValidationError("--tab-format reference is one table of clean scores: drop --impair") }
        if scores != nil && modelOptions.explicitModel != nil {
            throw ValidationError("give --scores, or --model to score the images here, not both (with --scores, --head only says how its column reads)")
        }
        for condition in impair { _ = try ImpairmentChain(condition: condition) }
        if noThumbnails && report == nil { throw ValidationError("--no-thumbnails is about --report: give --report FILE") }
    }

    func run() throws {
        // Before any scoring: a report that cannot be written is known now, not after the last image.
        for path in [report, saveTab].compactMap({ $0 }) { try checkWritable(path) }
        let list = try Inputs.labeled(csv: csv)
        guard !list.isEmpty else { throw CommandError("\(PathName.display(csv)) lists no image: give rows of filename,typ") }
        let inputs = [csv] + (scores.map { [$0, DetectionWriter.identityPath($0) ?? $0 + ".detector"] } ?? []) + headOptions.heads + list.map(\.item.path)
            + modelOptions.files + cacheOptions.files
        if let report, let saveTab { try refuseOverwritingInputs(saveTab, [report], option: "--save-tab") }
        try refuseOverwritingInputs(report, inputs, option: "--report")
        try refuseOverwritingInputs(saveTab, inputs, option: "--save-tab")
        let (detector, modelName) = scores == nil ? try makeDetector() : (nil, nil)
        let scoreTable = try scores.map { try CSVTable(path: $0) }
        let band = try verdictOptions.parsedBand()
        let runs: [Evaluation.Run]
        if let scores, let scoreTable {
            let rules = headOptions.heads.isEmpty ? nil : try ModelResolution.heads(headOptions.heads, store: modelOptions.store).selection
            var columns = try Self.readScores(scoreTable, name: scores, rules: rules)
            if let band { for index in columns.indices { columns[index].decision.band = band } }
            runs = [Evaluation.Run(condition: "clean", columns: columns, tables: Evaluation.tables(list, columns: columns))]
        } else {
            var progress: Progress?, current = -1
            defer { progress?.finish() }
            runs = try Evaluation.runs(list, with: detector!, impairments: impair, seed: seed, band: band) { condition, _, result in
                if condition != current {
                    progress?.finish()
                    (progress, current) = (Progress(total: list.count, label: "eval", quiet: progressOptions.quiet), condition)
                }
                progress?.advance(failed: (try? result.get()) == nil)
                if case .failure(let error) = result, progress?.visible == false { printError("\(error)") }
            }
        }
        var reference = ""
        if tabFormat == .reference, saveTab != nil {
            // The names with a row in the scores (all listed ones when scored here: detect writes a row for every file).
            let rowed = try scoreTable.map { Set(try $0.values("filename")) } ?? Set(list.map(\.item.name))
            reference = Evaluation.referenceTable(list, columns: runs[0].columns, rowed: rowed, metric: tabMetric)
            let respelled = list.filter { $0.type == "real" && $0.listedType != "real" }
            if let first = respelled.first {
                printError("note: \(respelled.count) row(s) have typ '\(first.listedType)' or another spelling of real: real in the table printed here, "
                           + "generators in --save-tab's, as in compute_metrics.py (only 'real' exactly is real there)")
            }
        }
        let tables = runs.flatMap(\.tables), namingConditions = runs.count > 1
        for table in tables {
            let label = table.label(namingCondition: namingConditions)
            if table.missing > 0 { printError("\(label): \(table.missing) of \(table.listed) listed file(s) have no score and are left out") }
            if table.nonFinite > 0 { printError("\(label): \(table.nonFinite) of \(table.listed) listed file(s) have a score that is not finite and are left out") }
            if !table.unevaluated.isEmpty {
                printError("\(label): no real or no fake image with a score for \(table.unevaluated.joined(separator: ", ")): not evaluated, not in AVG")
            }
        }
        // Nothing printed or written for nothing: an empty table would read as a result.
        if tables.allSatisfy({ $0.rows.isEmpty }) {
            throw CommandError("nothing was evaluated: no generator has both real and fake images with finite scores")
        }
        print(render(tables, showCondition: namingConditions))
        if tables.count > 1 {
            // Detectors (and conditions) side by side, on the average over generators.
            print("summary: AVG over generators")
            for table in tables {
                guard let average = table.average else { continue }
                print("  " + (namingConditions ? table.condition.padding(toLength: 28, withPad: " ", startingAt: 0) : "")
                      + table.detector.padding(toLength: max(16, table.detector.count + 2), withPad: " ", startingAt: 0)
                      + String(format: "AUC %.4f  acc %.4f  EER %.4f  TPR@1%% %.4f  (%d images)", average.auc, average.balancedAccuracy,
                               average.equalErrorRate, average.tprAt1, average.reals + average.fakes))
            }
        }
        if let saveTab, tabFormat == .reference {
            try Files.write(Data(reference.utf8), to: saveTab)
        } else if let saveTab {
            try Files.write(Data(Evaluation.longTable(tables, namingConditions: namingConditions).utf8), to: saveTab)
        }
        if let report {
            // Every backbone the heads read, in the order of the models named.
            let encoders = detector?.encoders ?? []
            let provenance = EvaluationReport.Provenance(source: scores.map { "read from \($0)" } ?? "computed here with \(modelName ?? "")",
                                                         architecture: encoders.isEmpty ? nil : encoders.map(\.description.architecture).joined(separator: " + "),
                                                         fingerprint: encoders.isEmpty ? nil : encoders.map(\.fingerprint).joined(separator: " + "),
                                                         list: URL(fileURLWithPath: csv).lastPathComponent)
            let html = EvaluationReport(list: list, runs: runs, provenance: provenance, thumbnails: !noThumbnails).html()
            try Files.write(Data(html.utf8), to: report)
        }
    }

    /// The scores file's columns, each read by its rule: the --head files' when given, else the
    /// rules `detect` recorded beside the file (calibration, threshold, band); a file of detect's
    /// without its record is refused, since accuracy, NLL, ECE and coverage depend on the rule. A
    /// file of only scores (the reference's) reads as log-likelihood ratios, as the reference does.
    /// A --head whose rule is not the one the record holds for its column is refused: one of the
    /// two is wrong, and the metrics would be the wrong rule's.
    static func readScores(_ table: CSVTable, name path: String, rules selection: HeadSelection?) throws -> [ScoreColumn] {
        var columns = try Evaluation.readScores(table, name: path)
        let record = DetectionWriter.identityPath(path) ?? path + ".detector"
        guard let selection else {
            guard let recorded = try recordedRules(record, columns: columns.count) else {
                if table.column("verdict") != nil {
                    throw CommandError("\(path) is detect's output, but how its scores read (calibration, threshold, band) was in \(PathName.display(record)), "
                                       + "which is missing or from an older version: give --head for each of its heads")
                }
                return columns
            }
            for index in columns.indices {
                guard let rule = recorded[columns[index].detector] ?? (columns.count == 1 ? recorded[""] : nil) else {
                    throw CommandError("\(PathName.display(record)) says nothing of how column \(columns[index].detector) of \(path) reads: give --head for it")
                }
                columns[index].decision = rule
            }
            return columns
        }
        var rules = Dictionary(uniqueKeysWithValues: selection.heads.map { ($0.metadata.name, $0.decision) })
        if let set = selection.set { rules["fusion"] = set.decision }
        for (name, rule) in rules {
            guard let index = columns.firstIndex(where: { $0.detector == name }) else {
                throw CommandError("\(path) has no \(name) column for --head \(name)")
            }
            columns[index].decision = rule
        }
        if let recorded = try recordedRules(record, columns: columns.count) {
            for column in columns where rules[column.detector] != nil {
                guard let written = recorded[column.detector] ?? (columns.count == 1 ? recorded[""] : nil), written != column.decision else { continue }
                throw CommandError("--head \(column.detector) reads its scores otherwise than the head that wrote \(path) (its record \(PathName.display(record))): "
                                   + "drop --head to read them as written, or score them again with this head")
            }
        }
        return columns
    }

    /// The column rules in a detect record (a record of an older version has only the verdict's,
    /// under ""); nil without a readable record.
    static func recordedRules(_ record: String, columns: Int) throws -> [String: DecisionRule]? {
        struct Record: Decodable { let decision: DecisionRule?; let rules: [String: DecisionRule]? }
        guard FileKind(record) == .regular, let data = try? Files.read(record, limit: 1 << 20) else { return nil }
        guard let parsed = try? JSONDecoder().decode(Record.self, from: data) else {
            throw CommandError("\(PathName.display(record)) is not a record clipdetect wrote: remove it, and give --head to say how the scores read")
        }
        let rules = parsed.rules ?? parsed.decision.map { ["": $0] }
        // A record edited by hand is read no further than it holds up: bad numbers are refused here.
        for (column, rule) in rules ?? [:] {
            do { try rule.validate() } catch {
                throw CommandError("\(PathName.display(record)): the rule of \(column.isEmpty ? "its column" : column) is not valid (\(error)): remove the record, and give --head")
            }
        }
        return rules
    }

    private func makeDetector() throws -> (Detector, String) {
        let (detector, models) = try modelOptions.loadDetector(headOptions, configuration: Detector.Configuration(cache: cacheOptions.open()))
        return (detector, models.joined(separator: " + "))
    }

    private func render(_ tables: [EvaluationTable], showCondition: Bool) -> String {
        let titles = ["generator", "real", "fake", "AUC", "acc", "EER", "TPR@1%", "TPR@5%", "NLL", "ECE", "cover", "acc_cov"]
        var lines: [String] = []
        for table in tables {
            let rows = table.rows
            lines.append("detector \(table.detector)" + (showCondition ? " [\(table.condition)]" : ""))
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
