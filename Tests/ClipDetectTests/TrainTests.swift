import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// The classifiers against scikit-learn on the same features, C, loss and intercept handling.
@Suite struct TrainTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            let name, classifier: String
            let C: Double
            let balanced: Bool
            let train_x: [[Float]]
            let train_y: [Int]
            let coef: [Double]
            let intercept: Double
            let test_decision: [Double]
            let test_auc: Double
        }
        struct Platt: Decodable { let decision: [Double]; let labels: [Int]; let a, b: Double }
        let test_x: [[Float]]
        let test_y: [Int]
        let cases: [Case]
        let platt: Platt
    }

    static let fixture = try! JSONDecoder().decode(Fixture.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("training", "cases.json"))))

    @Test(arguments: fixture.cases.map(\.name))
    func decisionValuesEqualScikitLearn(name: String) {
        let c = Self.fixture.cases.first { $0.name == name }!
        let data = TrainingSet(features: c.train_x, labels: c.train_y.map { $0 == 1 })
        let classifier = LinearClassifier(rawValue: c.classifier)!
        let model = classifier.fit(data, C: c.C, balanced: c.balanced)
        // Both sides solve to a tight stopping rule (ours: projected-gradient gap 1e-8 for the SVM's
        // dual, gradient norm 1e-8 of its first for Newton; scikit-learn: tol 1e-10 / 1e-12), so
        // both are within ~1e-6 of the one optimum (the objectives are strictly convex in w).
        #expect(model.weights.count == c.coef.count)
        let weightError = zip(model.weights, c.coef).map { abs($0 - $1) }.max() ?? .infinity
        let scale = c.coef.map(abs).max() ?? 1
        #expect(weightError <= Self.weightTolerance * scale, "\(name): max |Δcoef| \(weightError), |coef| ≤ \(scale)")
        #expect(abs(model.bias - c.intercept) <= Self.weightTolerance * max(1, abs(c.intercept)), "\(name): intercept \(model.bias) vs \(c.intercept)")
        let ours = Self.fixture.test_x.map(model.decision)
        #expect(ours.count == c.test_decision.count)
        #expect(maxAbsDifference(ours.map { Float($0) }, c.test_decision.map { Float($0) }) <= Float(Self.weightTolerance * scale) * 8)
        let auc = Metrics.auc(labels: Self.fixture.test_y.map { $0 == 1 }, scores: ours)
        #expect(abs(auc - c.test_auc) <= 1e-12)
    }

    /// Relative to the largest |coef|: the distance both solvers' stopping rules leave to the optimum.
    static let weightTolerance = 1e-5

    @Test func plattScalingEqualsScikitLearn() {
        let p = Self.fixture.platt
        let fitted = PlattScaling.fit(scores: p.decision, labels: p.labels.map { $0 == 1 })
        // scikit-learn's convention is P = 1 / (1 + exp(A·f + B)), so a = −A and b = −B.
        #expect(abs(fitted.a + p.a) <= 1e-6 && abs(fitted.b + p.b) <= 1e-6)
    }

    @Test func plattCalibrationLowersHeldOutECE() throws {
        let c = Self.fixture.cases.first { $0.name == "svm_c0.1" }!
        let data = TrainingSet(features: c.train_x, labels: c.train_y.map { $0 == 1 })
        var options = TrainingOptions()
        options.C = c.C
        options.calibrate = true
        let feature = Head.Feature(architecture: "test", fingerprint: nil, backbone: nil, kind: .pooled, normalized: true, width: data.width)
        let (head, report) = try Trainer.train(data, options: options, name: "t", feature: feature, provenance: nil)
        // Platt's fit on the out-of-fold scores, recomputed here from the same folds.
        let folds = CrossValidation.stratifiedFolds(labels: data.labels, folds: options.folds)
        let outOfFold = CrossValidation.predictions(data, folds: folds, settings: [c.C]) { C, subset in
            LinearClassifier.svm.fit(subset, C: C, tolerance: 1e-4, passes: 1000)
        }[0]
        let (a, b) = PlattScaling.fit(scores: outOfFold, labels: data.labels)
        #expect(report.calibration == .platt(a: a, b: b) && head.metadata.calibration == report.calibration)
        let labels = Self.fixture.test_y.map { $0 == 1 }
        let scores = Self.fixture.test_x.map { head.score($0) }
        let raw = Metrics.expectedCalibrationError(labels: labels, probabilities: scores.map(Logistic.sigmoid))
        let calibrated = Metrics.expectedCalibrationError(labels: labels, probabilities: scores.map(head.probability))
        #expect(calibrated < raw, "ECE raw \(raw), calibrated \(calibrated)")
    }

    @Test func targetFPRThresholdHoldsOnTheCrossValidatedReals() throws {
        let c = Self.fixture.cases.first { $0.name == "svm_c0.1" }!
        let data = TrainingSet(features: c.train_x, labels: c.train_y.map { $0 == 1 })
        var options = TrainingOptions()
        options.C = c.C
        options.targetFPR = 0.05
        let feature = Head.Feature(architecture: "test", fingerprint: nil, backbone: nil, kind: .pooled, normalized: true, width: data.width)
        let (head, report) = try Trainer.train(data, options: options, name: "t", feature: feature, provenance: nil)
        let threshold = try #require(report.threshold)
        #expect(head.metadata.threshold == threshold)
        #expect(head.isSynthetic(threshold + 1e-9) && !head.isSynthetic(threshold))
        // The rates recomputed here from out-of-fold scores (the same stratified folds and the
        // search's settings), not read from what Trainer says it reached.
        let folds = CrossValidation.stratifiedFolds(labels: data.labels, folds: options.folds)
        let outOfFold = CrossValidation.predictions(data, folds: folds, settings: [c.C]) { C, subset in
            LinearClassifier.svm.fit(subset, C: C, tolerance: 1e-4, passes: 1000)
        }[0]
        let reals = data.labels.indices.filter { !data.labels[$0] }, fakes = data.labels.indices.filter { data.labels[$0] }
        let fpr = Double(reals.filter { outOfFold[$0] > threshold }.count) / Double(reals.count)
        let tpr = Double(fakes.filter { outOfFold[$0] > threshold }.count) / Double(fakes.count)
        #expect(fpr <= 0.05 && fpr == report.thresholdFPR, "FPR \(fpr), reported \(String(describing: report.thresholdFPR))")
        #expect(tpr == report.thresholdTPR, "TPR \(tpr), reported \(String(describing: report.thresholdTPR))")
    }

    @Test func leaveOneGeneratorOutReportsEveryGenerator() throws {
        let c = Self.fixture.cases.first { $0.name == "svm_c0.1" }!
        let data = TrainingSet(features: c.train_x, labels: c.train_y.map { $0 == 1 })
        let generators = data.labels.enumerated().map { $1 ? ["a", "b", "c"][$0 % 3] : "real" }
        let rows = try Trainer.leaveOneGeneratorOut(data, generators: generators, options: TrainingOptions())
        #expect(rows.map(\.generator) == ["a", "b", "c"])
        // A set whose answer is known exactly: reals and generator c's fakes are one vector, a's and
        // b's another. Held out, a (or b) ranks wholly above the reals (AUC 1); c ties them (AUC 1/2).
        let same: [Float] = [0, 1, 0, 0], other: [Float] = [1, 0, 0, 0]
        let kinds = Array(repeating: "real", count: 12) + Array(repeating: "a", count: 4) + Array(repeating: "b", count: 4)
            + Array(repeating: "c", count: 4)
        let known = TrainingSet(features: kinds.map { $0 == "a" || $0 == "b" ? other : same }, labels: kinds.map { $0 != "real" })
        let exact = try Trainer.leaveOneGeneratorOut(known, generators: kinds, options: TrainingOptions())
        #expect(exact.map(\.generator) == ["a", "b", "c"])
        #expect(exact.map(\.auc) == [1, 1, 0.5], "\(exact)")
        #expect(exact[2].balancedAccuracy == 0.5, "c cannot be told from the reals: one label for all")
    }

    /// The (setting, fold) fits share the cores; each must give what it gives alone.
    @Test func crossValidationOnAllCoresEqualsOneFitAfterAnother() {
        let c = Self.fixture.cases.first { $0.name == "svm_c0.1" }!
        let data = TrainingSet(features: c.train_x, labels: c.train_y.map { $0 == 1 })
        let folds = CrossValidation.stratifiedFolds(labels: data.labels, folds: 5)
        let settings = [0.01, 0.1, 1, 10]
        let together = CrossValidation.predictions(data, folds: folds, settings: settings) { C, subset in
            LinearClassifier.svm.fit(subset, C: C, tolerance: 1e-4, passes: 1000)
        }
        for (s, C) in settings.enumerated() {
            var alone = [Double](repeating: .nan, count: data.labels.count)
            for fold in folds {
                let held = Set(fold)
                let model = LinearClassifier.svm.fit(data.subset(data.labels.indices.filter { !held.contains($0) }), C: C, tolerance: 1e-4, passes: 1000)
                for i in fold { alone[i] = model.decision(data.features[i]) }
            }
            #expect(together[s] == alone, "C = \(C)")
        }
    }

    @Test func foldsAreStratifiedAndDeterministic() {
        let labels = (0..<53).map { $0 % 3 == 0 }
        let folds = CrossValidation.stratifiedFolds(labels: labels, folds: 5)
        #expect(folds == CrossValidation.stratifiedFolds(labels: labels, folds: 5))
        #expect(Set(folds.flatMap { $0 }).count == 53)
        for fold in folds {
            let positives = fold.filter { labels[$0] }.count
            #expect((3...4).contains(positives))
        }
    }

    /// Too few images for cross-validation, inverted calibrations and meaningless C values are refused.
    @Test func meaninglessTrainingIsRefused() throws {
        let c = Self.fixture.cases.first { $0.name == "svm_c0.1" }!
        let full = TrainingSet(features: c.train_x, labels: c.train_y.map { $0 == 1 })
        let feature = Head.Feature(architecture: "test", fingerprint: nil, backbone: nil, kind: .pooled, normalized: true, width: full.width)
        let reals = full.labels.indices.filter { !full.labels[$0] }, fakes = full.labels.indices.filter { full.labels[$0] }
        let tiny = full.subset(Array(reals.prefix(2)) + Array(fakes.prefix(2)))
        for configure in [{ (o: inout TrainingOptions) in o.C = nil }, { $0.C = 1; $0.calibrate = true }, { $0.C = 1; $0.targetFPR = 0.05 }] {
            var options = TrainingOptions()
            configure(&options)
            #expect(throws: TrainingError.tooFewImages(real: 2, fake: 2, needed: 5, step: options.C == nil ? "choosing C" : options.calibrate ? "calibration" : "the target false-positive rate")) {
                try Trainer.train(tiny, options: options, name: "t", feature: feature, provenance: nil)
            }
        }
        var plain = TrainingOptions()
        plain.C = 1
        _ = try Trainer.train(tiny, options: plain, name: "t", feature: feature, provenance: nil)
        for bad in [0, 1e-300, .nan, .infinity, -1, 1e7] {
            var options = TrainingOptions()
            options.C = bad
            #expect(throws: TrainingError.self) { try Trainer.train(full, options: options, name: "t", feature: feature, provenance: nil) }
        }
        // Labels flipped for the cross-validated scores only: Platt's slope would be negative.
        let inverted = PlattScaling.fit(scores: [2, 1, -1, -2, 3, -3], labels: [false, false, true, true, false, true])
        #expect(inverted.a < 0)
        // Features that say nothing: the out-of-fold scores cannot rank fakes above reals.
        let blank = TrainingSet(features: Array(repeating: [0, 0, 0, 0], count: 12), labels: (0..<12).map { $0 % 2 == 0 })
        var calibrate = TrainingOptions()
        calibrate.C = 1
        calibrate.calibrate = true
        let refused = #expect(throws: TrainingError.self) {
            try Trainer.train(blank, options: calibrate, name: "t", feature: Head.Feature(architecture: "test", fingerprint: nil, backbone: nil, kind: .pooled, normalized: true, width: 4), provenance: nil)
        }
        guard case .calibrationInverted = refused else { Issue.record("\(String(describing: refused))"); return }
    }
}

extension TrainTests {
    /// Mann–Whitney AUC as an exact fraction: `twice` / (2 · `pairs`), ties counting one half. Written
    /// here from the definition, not through `Metrics`, so the search is checked against something else.
    static func exactAUC(labels: [Bool], scores: [Double]) -> (twice: Int, pairs: Int) {
        var twice = 0, pairs = 0
        for i in labels.indices where labels[i] {
            for j in labels.indices where !labels[j] {
                pairs += 1
                twice += scores[i] > scores[j] ? 2 : scores[i] == scores[j] ? 1 : 0
            }
        }
        return (twice, pairs)
    }

    /// `--C auto` done by hand: for every C of the grid, one fit per fold on the other folds (rows
    /// in index order, scikit-learn's stopping settings as `Trainer` documents for the search), the
    /// out-of-fold decision values, their AUC. The chosen C is the first with the largest AUC.
    static func exhaustiveSearch(_ data: TrainingSet, classifier: LinearClassifier = .svm, balanced: Bool = false,
                                 grid: [Double] = TrainingOptions().grid) -> (aucs: [(twice: Int, pairs: Int)], chosen: Double) {
        let folds = CrossValidation.stratifiedFolds(labels: data.labels, folds: 5)
        #expect(Set(folds.flatMap { $0 }) == Set(data.labels.indices) && folds.flatMap { $0 }.count == data.labels.count)
        var aucs: [(twice: Int, pairs: Int)] = []
        for C in grid {
            var scores = [Double](repeating: .nan, count: data.labels.count)
            for fold in folds {
                let held = Set(fold)
                let model = classifier.fit(data.subset(data.labels.indices.filter { !held.contains($0) }), C: C, balanced: balanced,
                                           tolerance: 1e-4, passes: 1000)
                for i in fold { scores[i] = model.decision(data.features[i]) }
            }
            #expect(scores.allSatisfy { $0.isFinite })
            aucs.append(exactAUC(labels: data.labels, scores: scores))
        }
        let best = aucs.map(\.twice).max()!
        return (aucs, grid[aucs.firstIndex { $0.twice == best }!])
    }

    /// 9. The library's search picks the C an exhaustive evaluation of the same grid and folds picks,
    /// reports each C's AUC, and fits the head with that C.
    @Test func cAutoPicksTheBestCrossValidatedC() throws {
        let c = Self.fixture.cases.first { $0.name == "svm_c0.1" }!
        let data = TrainingSet(features: c.train_x, labels: c.train_y.map { $0 == 1 })
        for classifier in LinearClassifier.allCases {
            let exhaustive = Self.exhaustiveSearch(data, classifier: classifier)
            // The AUCs differ across the grid, so picking any C but the best one would show.
            #expect(Set(exhaustive.aucs.map(\.twice)).count >= 2, "\(classifier): every C ties; the check would prove nothing")
            var options = TrainingOptions()
            options.classifier = classifier
            let feature = Head.Feature(architecture: "test", fingerprint: nil, backbone: nil, kind: .pooled, normalized: true, width: data.width)
            let (head, report) = try Trainer.train(data, options: options, name: "t", feature: feature, provenance: nil)
            #expect(report.search.map(\.C) == options.grid)
            for (searched, exact) in zip(report.search, exhaustive.aucs) {
                // The trapezoids of Metrics.auc against the exact fraction: rounding only.
                #expect(abs(searched.auc - Double(exact.twice) / Double(2 * exact.pairs)) <= 1e-12, "\(classifier) C = \(searched.C)")
            }
            #expect(report.C == exhaustive.chosen, "\(classifier)")
            #expect(report.crossValidatedAUC == report.search.first { $0.C == exhaustive.chosen }!.auc)
            let final = classifier.fit(data, C: exhaustive.chosen, tolerance: 1e-8)
            #expect(head.weights == final.weights.map { Float($0) } && head.bias == Float(final.bias), "\(classifier)")
        }
    }
}
