import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// Detection metrics over scores (log-likelihood ratios, > 0 synthetic) and labels (true: synthetic).
/// AUC and balanced accuracy are scikit-learn's; the others are defined here and in docs/metrics.md.
public enum Metrics {
    /// The ROC curve at every distinct score, highest first, from (0, 0) to (1, 1); no points dropped.
    public static func roc(labels: [Bool], scores: [Double]) -> (fpr: [Double], tpr: [Double]) {
        let (fps, tps) = counts(labels: labels, scores: scores)
        let negatives = fps.last!, positives = tps.last!
        return (fps.map { negatives > 0 ? $0 / negatives : .nan }, tps.map { positives > 0 ? $0 / positives : .nan })
    }

    /// False and true positives above each distinct score, highest first, after (0, 0).
    private static func counts(labels: [Bool], scores: [Double]) -> (fps: [Double], tps: [Double]) {
        precondition(labels.count == scores.count, "one score per label")
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var fps: [Double] = [0], tps: [Double] = [0]
        var tp = 0.0, fp = 0.0
        for (position, index) in order.enumerated() {
            if labels[index] { tp += 1 } else { fp += 1 }
            // One point per distinct score: ties move together.
            if position == order.count - 1 || scores[order[position + 1]] != scores[index] {
                fps.append(fp)
                tps.append(tp)
            }
        }
        return (fps, tps)
    }

    /// Area under the ROC curve with ties counted half: sklearn.metrics.roc_auc_score, the same
    /// double. As scikit-learn computes it: the ROC points without those between two collinear ones
    /// (`roc_curve`'s drop_intermediate), then the trapezoids summed as numpy sums (pairwise).
    public static func auc(labels: [Bool], scores: [Double]) -> Double {
        let (fps, tps) = counts(labels: labels, scores: scores)
        let last = fps.count - 1
        guard last >= 1, fps[last] > 0, tps[last] > 0 else { return .nan }
        let fpr = fps.map { $0 / fps[last] }, tpr = tps.map { $0 / tps[last] }
        // The counts after (0, 0) are sklearn's fps/tps at each distinct score; a point stays where
        // either count bends (a second difference of whole numbers, exact), and so do both ends.
        func bends(_ counts: [Double], _ i: Int) -> Bool { (counts[i + 1] - counts[i]) - (counts[i] - counts[i - 1]) != 0 }
        let kept = [0] + (1...last).filter { i in i == 1 || i == last || bends(fps, i) || bends(tps, i) }
        let terms = (1..<kept.count).map { k -> Double in
            let (a, b) = (kept[k - 1], kept[k])
            let width: Double = fpr[b] - fpr[a], height: Double = tpr[b] + tpr[a]
            return width * height / 2.0
        }
        return numpySum(terms[...])
    }

    /// numpy's sum of float64 (pairwise, in blocks of up to 128 with eight partial sums), so that a
    /// sum here is the same double as the reference's.
    static func numpySum(_ a: ArraySlice<Double>) -> Double {
        let n = a.count, start = a.startIndex
        if n < 8 { return a.reduce(0.0, +) }
        if n <= 128 {
            var r = Array(a[start..<(start + 8)]), i = 8
            while i < n - n % 8 {
                for j in 0..<8 { r[j] += a[start + i + j] }
                i += 8
            }
            var result = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n { result += a[start + i]; i += 1 }
            return result
        }
        let half = n / 2 - (n / 2) % 8
        return numpySum(a[start..<(start + half)]) + numpySum(a[(start + half)...])
    }

    /// Mean of the true-positive and true-negative rates (= sklearn.metrics.balanced_accuracy_score).
    public static func balancedAccuracy(labels: [Bool], predictions: [Bool]) -> Double {
        precondition(labels.count == predictions.count, "one prediction per label")
        var tp = 0.0, fn = 0.0, tn = 0.0, fp = 0.0
        for (label, predicted) in zip(labels, predictions) {
            switch (label, predicted) {
            case (true, true): tp += 1
            case (true, false): fn += 1
            case (false, false): tn += 1
            case (false, true): fp += 1
            }
        }
        let rates = [tp + fn > 0 ? tp / (tp + fn) : nil, tn + fp > 0 ? tn / (tn + fp) : nil].compactMap { $0 }
        return rates.reduce(0, +) / Double(max(rates.count, 1))
    }

    /// Equal error rate: where the ROC curve, linearly interpolated, crosses FPR = 1 − TPR.
    public static func equalErrorRate(labels: [Bool], scores: [Double]) -> Double {
        let (fpr, tpr) = roc(labels: labels, scores: scores)
        for i in 1..<fpr.count where 1 - tpr[i] <= fpr[i] {
            let (f0, t0, f1, t1) = (fpr[i - 1], tpr[i - 1], fpr[i], tpr[i])
            let slope = (t1 - t0) + (f1 - f0)
            let t = slope > 0 ? (1 - t0 - f0) / slope : 0
            return f0 + t * (f1 - f0)
        }
        return 1
    }

    /// The highest TPR at an operating point whose FPR does not exceed `fpr`.
    public static func tpr(atFPR limit: Double, labels: [Bool], scores: [Double]) -> Double {
        let (fpr, tpr) = roc(labels: labels, scores: scores)
        return zip(fpr, tpr).filter { $0.0 <= limit }.map(\.1).max() ?? 0
    }

    /// Mean negative log-likelihood of the labels under P(synthetic) = sigmoid(score), computed stably.
    public static func negativeLogLikelihood(labels: [Bool], scores: [Double]) -> Double {
        precondition(labels.count == scores.count, "one score per label")
        let total = zip(labels, scores).reduce(0.0) { sum, pair in
            sum - Logistic.logSigmoid(pair.0 ? pair.1 : -pair.1)
        }
        return total / Double(max(labels.count, 1))
    }

    /// Expected calibration error of P(synthetic) over `bins` equal-width bins:
    /// Σ (n_bin / n) · |mean label − mean probability| in each bin.
    public static func expectedCalibrationError(labels: [Bool], probabilities: [Double], bins: Int = 15) -> Double {
        precondition(labels.count == probabilities.count, "one probability per label")
        var count = [Double](repeating: 0, count: bins), positive = count, mass = count
        for (label, p) in zip(labels, probabilities) {
            precondition(p >= 0 && p <= 1, "a probability in [0, 1], not \(p)")
            let bin = min(Int(p * Double(bins)), bins - 1)
            count[bin] += 1
            positive[bin] += label ? 1 : 0
            mass[bin] += p
        }
        let n = Double(max(labels.count, 1))
        return (0..<bins).reduce(0.0) { sum, b in
            count[b] > 0 ? sum + count[b] / n * abs(positive[b] / count[b] - mass[b] / count[b]) : sum
        }
    }
}

/// One row of an evaluation table: a generator (or AVG) against the real images.
public struct EvaluationRow: Sendable, Equatable, Codable {
    /// The generator's name as listed, or AVG.
    public var generator: String
    /// Real images in the row (in AVG, the real images every row shares).
    public var reals: Int
    /// Synthetic images in the row (in AVG, all generators' together).
    public var fakes: Int
    /// Area under the ROC curve (`Metrics.auc`).
    public var auc: Double
    /// Balanced accuracy of the rule's labels.
    public var balancedAccuracy: Double
    /// Equal error rate of the scores.
    public var equalErrorRate: Double
    /// True-positive rate at a false-positive rate of at most 1%.
    public var tprAt1: Double
    /// True-positive rate at a false-positive rate of at most 5%.
    public var tprAt5: Double
    /// Mean negative log-likelihood of the rule's probabilities, in nats.
    public var nll: Double
    /// Expected calibration error of the rule's probabilities (15 bins).
    public var ece: Double
    /// Share of the images whose verdict is not `uncertain` (1 without a band).
    public var coverage: Double
    /// Balanced accuracy on the covered images (NaN when none is covered).
    public var coveredAccuracy: Double

    /// The metrics' column names in tables and reports, in the order of `values`.
    public static let columns = ["auc", "acc", "eer", "tpr@1%fpr", "tpr@5%fpr", "nll", "ece", "coverage", "acc_covered"]
    /// The metrics, in the order of `columns`.
    public var values: [Double] { [auc, balancedAccuracy, equalErrorRate, tprAt1, tprAt5, nll, ece, coverage, coveredAccuracy] }

    /// Metrics over one set (finite scores); `decision` gives the labels for accuracy and the
    /// probabilities for NLL and ECE.
    public init(generator: String, labels: [Bool], scores: [Double], decision: DecisionRule = .plain) {
        precondition(labels.count == scores.count, "one score per label")
        self.generator = generator
        reals = labels.filter { !$0 }.count
        fakes = labels.count - reals
        auc = Metrics.auc(labels: labels, scores: scores)
        balancedAccuracy = Metrics.balancedAccuracy(labels: labels, predictions: scores.map(decision.isSynthetic))
        equalErrorRate = Metrics.equalErrorRate(labels: labels, scores: scores)
        tprAt1 = Metrics.tpr(atFPR: 0.01, labels: labels, scores: scores)
        tprAt5 = Metrics.tpr(atFPR: 0.05, labels: labels, scores: scores)
        nll = Metrics.negativeLogLikelihood(labels: labels, scores: scores.map(decision.logit))
        ece = Metrics.expectedCalibrationError(labels: labels, probabilities: scores.map(decision.probability))
        let verdicts = scores.map(decision.verdict)
        let covered = verdicts.indices.filter { verdicts[$0] != .uncertain }
        coverage = Double(covered.count) / Double(max(labels.count, 1))
        let coveredLabels = covered.map { labels[$0] }
        coveredAccuracy = Set(coveredLabels).count == 2
            ? Metrics.balancedAccuracy(labels: coveredLabels, predictions: covered.map { verdicts[$0] == .synthetic }) : .nan
    }

    /// AVG: the mean of each metric over the generators' rows (they share the real images).
    static func average(_ rows: [EvaluationRow]) -> EvaluationRow? {
        guard var average = rows.first else { return nil }
        average.generator = "AVG"
        average.fakes = rows.reduce(0) { $0 + $1.fakes }
        func mean(_ path: KeyPath<EvaluationRow, Double>) -> Double { rows.reduce(0) { $0 + $1[keyPath: path] } / Double(rows.count) }
        average.auc = mean(\.auc)
        average.balancedAccuracy = mean(\.balancedAccuracy)
        average.equalErrorRate = mean(\.equalErrorRate)
        average.tprAt1 = mean(\.tprAt1)
        average.tprAt5 = mean(\.tprAt5)
        average.nll = mean(\.nll)
        average.ece = mean(\.ece)
        average.coverage = mean(\.coverage)
        average.coveredAccuracy = mean(\.coveredAccuracy)
        return average
    }
}
