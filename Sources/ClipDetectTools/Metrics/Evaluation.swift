import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder

/// One detector's evaluation on a labelled list, as the reference's compute_metrics.py (each
/// generator against all real images, then AVG), with what was left out counted.
public struct EvaluationTable: Sendable {
    /// The detector's name: its score column.
    public var detector: String
    /// Which copy of the images was scored: "clean", or an impairment condition.
    public var condition: String
    /// One row per evaluated generator, then AVG over them; empty when nothing could be evaluated.
    public var rows: [EvaluationRow]
    /// Images in the list.
    public var listed: Int
    /// Listed images without a score (failed, or absent from a score file).
    public var missing: Int
    /// Listed images whose score is NaN or infinite: left out, as the reference skips them.
    public var nonFinite: Int
    /// Generators with no finite-scored image, or any generator when no real image has one: not in AVG.
    public var unevaluated: [String]

    /// The AVG row, when any generator was evaluated.
    public var average: EvaluationRow? { rows.last.flatMap { $0.generator == "AVG" ? $0 : nil } }
    /// Images that entered the metrics.
    public var evaluated: Int { listed - missing - nonFinite }

    /// The detector's name, with the condition in brackets when several are evaluated together.
    public func label(namingCondition: Bool) -> String { namingCondition ? "\(detector) [\(condition)]" : detector }
}

/// One detector's scores by listed name, and how they read as probabilities and labels.
public struct ScoreColumn: Sendable {
    /// The detector's name: its column in the score file, or its head's name.
    public var detector: String
    /// Each image's score, by its listed name; an image without one is counted missing.
    public var scores: [String: Double]
    /// How the scores read as probabilities, labels and verdicts.
    public var decision: DecisionRule

    /// A column from its name, scores and rule (plain: sigmoid and score > 0).
    public init(detector: String, scores: [String: Double], decision: DecisionRule = .plain) {
        self.detector = detector
        self.scores = scores
        self.decision = decision
    }
}

/// Scoring a labelled list and reading it as the reference's compute_metrics.py does.
public enum Evaluation {
    /// One condition's scores and tables (the clean images, or one impairment).
    public struct Run: Sendable {
        /// "clean", or the impairment condition as given to `eval --impair`.
        public var condition: String
        /// Each detector's scores under this condition.
        public var columns: [ScoreColumn]
        /// Each detector's metric table under this condition, in the order of `columns`.
        public var tables: [EvaluationTable]

        /// A run from its condition, score columns and tables.
        public init(condition: String, columns: [ScoreColumn], tables: [EvaluationTable]) {
            self.condition = condition
            self.columns = columns
            self.tables = tables
        }
    }

    /// The list scored here under each condition: clean first, then each impairment chain (named
    /// as given, e.g. `jpeg:q=75` or `social`, drawn with `seed`). `band`, when given, replaces every
    /// column's uncertain band. `progress` sees each image's result with its condition's index.
    public static func runs(_ list: [LabeledImage], with detector: Detector, impairments: [String] = [], seed: UInt64 = 0,
                            band: UncertaintyBand? = nil,
                            progress: (_ condition: Int, _ index: Int, Result<Detection, Error>) -> Void = { _, _, _ in }) throws -> [Run] {
        let conditions: [(name: String, chain: ImpairmentChain?)] = [("clean", nil)]
            + (try impairments.map { ($0, try ImpairmentChain(condition: $0, seed: seed)) })
        return try conditions.enumerated().map { number, condition in
            var columns = try score(list, with: detector, impairment: condition.chain) { progress(number, $0, $1) }
            if let band { for index in columns.indices { columns[index].decision.band = band } }
            return Run(condition: condition.name, columns: columns, tables: tables(list, columns: columns, condition: condition.name))
        }
    }

    /// The long table (`eval --save-tab`): one row per detector and generator, every metric; with
    /// several conditions, each detector is named with its condition in brackets.
    public static func longTable(_ tables: [EvaluationTable], namingConditions: Bool) -> String {
        var text = CSVTable.line(["detector", "generator", "reals", "fakes"] + EvaluationRow.columns)
        for table in tables {
            for row in table.rows {
                text += CSVTable.line([table.label(namingCondition: namingConditions), row.generator, String(row.reals), String(row.fakes)]
                                      + row.values.map { String($0) })
            }
        }
        return text
    }
    /// Scores the listed images here (impaired in memory when `impairment` is given): one column per
    /// head, each with its head's decision rule, then `fusion` when there are several. `progress`
    /// sees every image's result as it is computed; failed images have no score.
    public static func score(_ list: [LabeledImage], with detector: Detector, impairment: ImpairmentChain? = nil,
                             progress: (Int, Result<Detection, Error>) -> Void = { _, _ in }) throws -> [ScoreColumn] {
        var columns = detector.columns.map { ScoreColumn(detector: $0.name, scores: [:], decision: $0.decision) }
        try detector.run(paths: list.map(\.item.path), impairment: impairment) { index, result in
            progress(index, result)
            guard case .success(let detection) = result else { return }
            let name = list[index].item.name
            for (column, score) in detection.scores.enumerated() { columns[column].scores[name] = score }
            if let fused = detection.fused { columns[columns.count - 1].scores[name] = fused }
        }
        return columns
    }

    /// Each column's table.
    public static func tables(_ list: [LabeledImage], columns: [ScoreColumn], condition: String = "clean") -> [EvaluationTable] {
        columns.map { table(list, scores: $0.scores, detector: $0.detector, decision: $0.decision, condition: condition) }
    }

    /// Scores by listed name; `decision` is how the detector's scores read as probabilities and labels
    /// (accuracy, NLL and ECE use it; AUC, EER and TPR use the scores).
    public static func table(_ list: [LabeledImage], scores: [String: Double], detector: String,
                             decision: DecisionRule = .plain, condition: String = "clean") -> EvaluationTable {
        var kept: [(type: String, score: Double)] = [], missing = 0, nonFinite = 0
        for image in list {
            guard let score = scores[image.item.name] else { missing += 1; continue }
            guard score.isFinite else { nonFinite += 1; continue }
            kept.append((image.type, score))
        }
        let generators = Set(list.map(\.type)).subtracting(["real"]).sorted()
        let reals = kept.filter { $0.type == "real" }
        var rows: [EvaluationRow] = [], unevaluated: [String] = []
        for generator in generators {
            let fakes = kept.filter { $0.type == generator }
            guard !fakes.isEmpty, !reals.isEmpty else { unevaluated.append(generator); continue }
            let picked = reals + fakes
            rows.append(EvaluationRow(generator: generator, labels: picked.map { $0.type != "real" },
                                      scores: picked.map(\.score), decision: decision))
        }
        if let average = EvaluationRow.average(rows) { rows.append(average) }
        return EvaluationTable(detector: detector, condition: condition, rows: rows, listed: list.count,
                               missing: missing, nonFinite: nonFinite, unevaluated: unevaluated)
    }

    /// The score columns of a `detect` or reference `main.py` output: every column but filename,
    /// probability, label, verdict and error. An empty cell is a missing score; any other cell that is
    /// not a number is refused.
    public static func readScores(_ path: String) throws -> [ScoreColumn] {
        try readScores(CSVTable(path: path), name: path)
    }

    /// The same from a table already read (`name` for messages).
    package static func readScores(_ table: CSVTable, name path: String) throws -> [ScoreColumn] {
        let names = try table.values("filename")
        var seen = Set<String>()
        for column in table.header where !seen.insert(column).inserted { throw ReportError.invalid("\(path): two \(column) columns") }
        return try table.header.enumerated().filter { !Head.nonScoreColumns.contains($0.element) }.map { column, detector in
            var byName: [String: Double] = [:]
            for (row, name) in names.enumerated() {
                let cell = column < table.rows[row].count ? table.rows[row][column].trimmingCharacters(in: .whitespaces) : ""
                if cell.isEmpty { continue }
                guard let score = Numbers.decimal(cell) else {
                    throw ReportError.invalid("\(path) row \(row + 1), column \(detector): \(cell) is not a number")
                }
                if let earlier = byName[name], earlier != score, !(earlier.isNaN && score.isNaN) {
                    throw ReportError.invalid("\(path): \(name) is listed twice with different \(detector) scores (\(earlier), \(score))")
                }
                byName[name] = score
            }
            return ScoreColumn(detector: detector, scores: byName)
        }
    }

    /// The metrics `compute_metrics.py -w` offers: AUC, and balanced accuracy of score > 0.
    public enum ReferenceMetric: String, Sendable, CaseIterable { case auc, acc }

    /// `compute_metrics.py --save_tab`'s table, cell for cell: one row per detector, one column per
    /// generator (sorted) and AVG (the mean of the cells that have a value), the metric's name in
    /// the corner. As in the reference, an image with a row but no finite score for a detector
    /// (`rowed`: the names the scores file lists) blanks that detector's cell for its generator;
    /// an image without a row is left out (its inner merge). Classes are the `typ` cells as listed:
    /// only `real` exactly is real. Numbers are the reference's doubles (`Metrics.auc` is
    /// scikit-learn's; AVG is pandas' mean of the cells, in order), printed as Python prints them.
    public static func referenceTable(_ list: [LabeledImage], columns: [ScoreColumn], rowed: Set<String>, metric: ReferenceMetric) -> String {
        let merged = list.filter { rowed.contains($0.item.name) }
        // Sorted as Python sorts strings: by code point.
        let generators = Set(merged.map(\.listedType)).subtracting(["real"])
            .sorted { $0.unicodeScalars.map(\.value).lexicographicallyPrecedes($1.unicodeScalars.map(\.value)) }
        var text = CSVTable.line([metric.rawValue] + generators + ["AVG"])
        for column in columns {
            var cells: [Double?] = []
            for generator in generators {
                let subset = merged.filter { $0.listedType == "real" || $0.listedType == generator }
                let scores = subset.map { column.scores[$0.item.name] ?? .nan }
                let labels = subset.map { $0.listedType != "real" }
                guard scores.allSatisfy(\.isFinite), Set(labels).count == 2 else { cells.append(nil); continue }
                switch metric {
                case .auc: cells.append(Metrics.auc(labels: labels, scores: scores))
                case .acc: cells.append(Metrics.balancedAccuracy(labels: labels, predictions: scores.map { $0 > 0 }))
                }
            }
            let present = cells.compactMap { $0 }
            let average = present.isEmpty ? nil : present.reduce(0, +) / Double(present.count)
            text += CSVTable.line([column.detector] + (cells + [average]).map { $0.map { String($0) } ?? "" })
        }
        return text
    }
}
