import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// EER, TPR at 1%/5% FPR, NLL and ECE against implementations that are not ours: scikit-learn,
/// mpmath, torchmetrics, netcal, and B-Free's dmetrics.py (written by
/// tools/fixtures/make_independent_metric_fixtures.py; the differences are in docs/metrics.md).
@Suite struct IndependentMetricTests {
    struct Fixture: Decodable, Sendable {
        struct Rates: Decodable, Sendable { let sklearn, sklearn_default_roc, bfree: Double }
        struct NLL: Decodable, Sendable { let mpmath, scipy_log_expit, sklearn_log_loss, bfree_balanced: Double }
        struct ECE: Decodable, Sendable {
            let torchmetrics, netcal: Double
            let torchmetrics_same_bins: Bool
            let bfree_balanced: Double?
        }
        struct Case: Decodable, Sendable {
            let name: String
            let labels: [Int]
            let scores, probabilities: [Double]
            let auc: Double
            let eer, tpr_at_1, tpr_at_5: Rates
            let nll: NLL
            let ece: ECE
            var truth: [Bool] { labels.map { $0 == 1 } }
        }
        let versions: [String: String]
        let count: Int
        let cases: [Case]
    }

    static let loaded = Result<Fixture, any Error> {
        try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("metrics", "independent.json"))))
    }

    /// The cases, after checking that none went missing.
    static func cases() throws -> [Fixture.Case] {
        let fixture = try loaded.get()
        try #require(fixture.count > 0 && fixture.cases.count == fixture.count, "independent.json: \(fixture.cases.count) of \(fixture.count) cases")
        return fixture.cases
    }

    @Test func fixtureIsComplete() throws {
        let fixture = try Self.loaded.get()
        let names = try Set(Self.cases().map(\.name))
        // The cases docs/metrics.md cites.
        for name in ["all_same", "diagonal_ties", "few_reals_ties", "extreme_scores", "extreme_correct", "tiny_pair",
                     "bin_edges_even", "bin_edges_odd", "edge_11_of_15", "p_one", "unbalanced_few_fakes", "large"] {
            #expect(names.contains(name), "missing case \(name)")
        }
        for library in ["scikit-learn", "torchmetrics", "netcal", "mpmath"] { #expect(fixture.versions[library] != nil) }
        // The edge values must arrive as the doubles k/15, or the bin tests below test nothing.
        let edgeCase = try Self.cases().first { $0.name == "bin_edges_odd" }
        let edges = try #require(edgeCase).probabilities
        for k in stride(from: 1, through: 15, by: 2) { #expect(edges.contains(Double(k) / 15), "no P = \(k)/15") }
    }

    /// EER: scikit-learn's ROC with the crossing of FPR and 1 − TPR linearly interpolated. 1e-12: the same
    /// ROC points (fp/N, tp/P, each one correctly rounded division) and one interpolation each, which
    /// can round differently (seen: 1e-16). The default (dropped-points) curve and B-Free's interp1d
    /// give the same crossing, since the dropped points lie on straight runs.
    @Test func equalErrorRate() throws {
        for c in try Self.cases() {
            let eer = Metrics.equalErrorRate(labels: c.truth, scores: c.scores)
            #expect(abs(eer - c.eer.sklearn) <= 1e-12, "\(c.name): \(eer) vs sklearn \(c.eer.sklearn)")
            #expect(abs(eer - c.eer.sklearn_default_roc) <= 1e-12, "\(c.name): \(eer) vs default roc \(c.eer.sklearn_default_roc)")
            #expect(abs(eer - c.eer.bfree) <= 1e-12, "\(c.name): \(eer) vs B-Free \(c.eer.bfree)")
            // Not ours in question, but free: AUC on the same cases.
            #expect(abs(Metrics.auc(labels: c.truth, scores: c.scores) - c.auc) <= 1e-12, "\(c.name) AUC")
        }
    }

    /// TPR at FPR ≤ 1% / 5%: exactly scikit-learn's value (the same division tp/P at the same point,
    /// chosen by comparing the same fp/N). B-Free interpolates the ROC (np.interp): it must equal our
    /// curve interpolated at the target (1e-12: one interpolation's rounding), so ours ≤ B-Free.
    @Test func truePositiveRateAtFixedFPR() throws {
        var differs = Set<String>()
        for c in try Self.cases() {
            for (target, want) in [(0.01, c.tpr_at_1), (0.05, c.tpr_at_5)] {
                let tpr = Metrics.tpr(atFPR: target, labels: c.truth, scores: c.scores)
                #expect(tpr == want.sklearn, "\(c.name) @\(target): \(tpr) vs sklearn \(want.sklearn)")
                // roc_curve's default drops points on straight runs, achievable ones included: never higher.
                #expect(want.sklearn_default_roc <= tpr, "\(c.name) @\(target)")
                let interpolated = Self.interpolatedTPR(target, labels: c.truth, scores: c.scores)
                #expect(abs(interpolated - want.bfree) <= 1e-12, "\(c.name) @\(target): interpolated \(interpolated) vs B-Free \(want.bfree)")
                #expect(tpr <= want.bfree + 1e-12, "\(c.name) @\(target)")
                if want.bfree - tpr > 1e-12 { differs.insert(c.name) }
            }
        }
        // The documented difference is exercised: tied reals and fakes across the target FPR.
        #expect(differs.isSuperset(of: ["all_same", "few_reals_ties", "extreme_scores"]), "\(differs)")
    }

    /// NLL against mpmath at 60 digits: 1e-12 relative. Each term −log σ(±s) is good to a few ulps and
    /// a sum of ≤ 1500 positive terms adds at most n·ε ≈ 2e-13 relative. scipy's log_expit agrees as
    /// closely. log_loss clips P to [ε, 1 − ε]: it agrees only where every |score| ≤ 30, where no P is
    /// near the clip (σ(−30) ≈ 9e-14 ≫ ε); there, 1e-12 absolute covers its rounding of P before the log.
    @Test func negativeLogLikelihood() throws {
        for c in try Self.cases() {
            let nll = Metrics.negativeLogLikelihood(labels: c.truth, scores: c.scores)
            #expect(nll.isFinite, "\(c.name)")
            #expect(abs(nll - c.nll.mpmath) <= 1e-12 * c.nll.mpmath, "\(c.name): \(nll) vs mpmath \(c.nll.mpmath)")
            #expect(abs(nll - c.nll.scipy_log_expit) <= 1e-12 * c.nll.mpmath, "\(c.name): \(nll) vs scipy \(c.nll.scipy_log_expit)")
            if c.scores.allSatisfy({ abs($0) <= 30 }) {
                #expect(abs(nll - c.nll.sklearn_log_loss) <= 1e-12, "\(c.name): \(nll) vs log_loss \(c.nll.sklearn_log_loss)")
            }
            // B-Free's NLL is class-balanced: the mean of the two classes' NLLs.
            let reals = c.truth.indices.filter { !c.truth[$0] }, fakes = c.truth.indices.filter { c.truth[$0] }
            let balanced = (Metrics.negativeLogLikelihood(labels: reals.map { _ in false }, scores: reals.map { c.scores[$0] })
                + Metrics.negativeLogLikelihood(labels: fakes.map { _ in true }, scores: fakes.map { c.scores[$0] })) / 2
            #expect(abs(balanced - c.nll.bfree_balanced) <= 1e-12 * c.nll.bfree_balanced, "\(c.name): balanced \(balanced) vs B-Free \(c.nll.bfree_balanced)")
        }
        // Where clipping bites: a real image scored +1000 costs 1000, log_loss says −log ε ≈ 36.04.
        let extremeCase = try Self.cases().first { $0.name == "extreme_scores" }
        let extreme = try #require(extremeCase)
        #expect(extreme.nll.mpmath - extreme.nll.sklearn_log_loss > 10)
    }

    /// ECE, 15 equal-width bins. netcal bins as we do (np.linspace edges, lower edge in, P = 1 in the
    /// last bin); 1e-12 covers its clipping of P to [ε, 1 − ε] and another summation order (seen: 3e-16).
    /// torchmetrics (float64 in, float64 throughout for the binary metric; its edges are
    /// torch.linspace(0, 1, 16)) bins alike except P = 1 (a 16th bin of its own) and P = 11/15 (its edge
    /// is one ulp higher, 0.7333333333333334, so bin 10): equal where no such P occurs, and equal to our
    /// formula with its binning everywhere.
    @Test func expectedCalibrationError() throws {
        var differs = Set<String>()
        for c in try Self.cases() {
            let ece = Metrics.expectedCalibrationError(labels: c.truth, probabilities: c.probabilities, bins: 15)
            #expect(abs(ece - c.ece.netcal) <= 1e-12, "\(c.name): \(ece) vs netcal \(c.ece.netcal)")
            if c.ece.torchmetrics_same_bins {
                #expect(abs(ece - c.ece.torchmetrics) <= 1e-12, "\(c.name): \(ece) vs torchmetrics \(c.ece.torchmetrics)")
            } else if abs(ece - c.ece.torchmetrics) > 1e-6 {
                differs.insert(c.name)
            }
            let torchBinned = Self.binnedECE(labels: c.truth, probabilities: c.probabilities) { p -> Int in
                if p == 1 { return 15 }
                if p == Double(11) / 15 { return 10 }
                return min(Int(p * 15), 14)
            }
            #expect(abs(torchBinned - c.ece.torchmetrics) <= 1e-12, "\(c.name): torchmetrics' bins \(torchBinned) vs \(c.ece.torchmetrics)")
            // B-Free weights each class by 1/size and leaves P = 1 out of every bin: the same as ours
            // for equal class sizes without P = 1.
            let balanced = c.labels.filter { $0 == 1 }.count * 2 == c.labels.count
            if let bfree = c.ece.bfree_balanced, balanced, !c.probabilities.contains(1) {
                #expect(abs(ece - bfree) <= 1e-12, "\(c.name): \(ece) vs B-Free \(bfree)")
            }
        }
        #expect(differs == ["bin_edges_odd", "edge_11_of_15", "p_one", "extreme_scores"], "\(differs)")
    }

    /// Our ROC read at `target` by linear interpolation, as np.interp reads B-Free's: from the highest
    /// point with FPR ≤ target towards the next one.
    static func interpolatedTPR(_ target: Double, labels: [Bool], scores: [Double]) -> Double {
        let (fpr, tpr) = Metrics.roc(labels: labels, scores: scores)
        guard let i = fpr.lastIndex(where: { $0 <= target }) else { return 0 }
        if fpr[i] == target || i == fpr.count - 1 { return tpr[i] }
        return tpr[i] + (target - fpr[i]) / (fpr[i + 1] - fpr[i]) * (tpr[i + 1] - tpr[i])
    }

    /// Σ (n_bin / n) · |mean label − mean P| over bins 0...15 chosen by `bin`.
    static func binnedECE(labels: [Bool], probabilities: [Double], bin: (Double) -> Int) -> Double {
        var count = [Double](repeating: 0, count: 16), positive = count, mass = count
        for (label, p) in zip(labels, probabilities) {
            let b = bin(p)
            count[b] += 1
            positive[b] += label ? 1 : 0
            mass[b] += p
        }
        let n = Double(labels.count)
        return (0..<16).reduce(0.0) { sum, b in
            count[b] > 0 ? sum + count[b] / n * abs(positive[b] / count[b] - mass[b] / count[b]) : sum
        }
    }
}
