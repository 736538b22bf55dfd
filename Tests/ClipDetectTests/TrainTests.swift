import Foundation
import Testing
@testable import ClipDetect

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

    static func correlation(_ a: [Double], _ b: [Double]) -> Double {
        let ma = a.reduce(0, +) / Double(a.count), mb = b.reduce(0, +) / Double(b.count)
        let cov = zip(a, b).reduce(0) { $0 + ($1.0 - ma) * ($1.1 - mb) }
        let va = a.reduce(0) { $0 + ($1 - ma) * ($1 - ma) }, vb = b.reduce(0) { $0 + ($1 - mb) * ($1 - mb) }
        return cov / (va * vb).squareRoot()
    }

    @Test(arguments: fixture.cases.map(\.name))
    func decisionValuesEqualScikitLearn(name: String) {
        let c = Self.fixture.cases.first { $0.name == name }!
        let data = TrainingSet(features: c.train_x, labels: c.train_y.map { $0 == 1 })
        let classifier = LinearClassifier(rawValue: c.classifier)!
        let model = classifier.fit(data, C: c.C, balanced: c.balanced)
        let ours = Self.fixture.test_x.map(model.decision)
        #expect(Self.correlation(ours, c.test_decision) >= 0.9999)
        #expect(maxAbsDifference(ours.map { Float($0) }, c.test_decision.map { Float($0) }) <= 1e-3)
        let auc = Metrics.auc(labels: Self.fixture.test_y.map { $0 == 1 }, scores: ours)
        #expect(abs(auc - c.test_auc) <= 0.001)
        #expect(abs(model.bias - c.intercept) <= 1e-3)
    }

    @Test func plattScalingEqualsScikitLearn() {
        let p = Self.fixture.platt
        let fitted = PlattScaling.fit(scores: p.decision, labels: p.labels.map { $0 == 1 })
        // scikit-learn's convention is P = 1 / (1 + exp(A·f + B)), so a = −A and b = −B.
        #expect(abs(fitted.a + p.a) <= 1e-6 && abs(fitted.b + p.b) <= 1e-6)
    }

    @Test func plattCalibrationLowersHeldOutECE() {
        let c = Self.fixture.cases.first { $0.name == "svm_c0.1" }!
        let data = TrainingSet(features: c.train_x, labels: c.train_y.map { $0 == 1 })
        var options = TrainingOptions()
        options.C = c.C
        options.calibrate = true
        let feature = Head.Feature(architecture: "test", fingerprint: nil, backbone: nil, kind: .pooled, normalized: true, width: data.width)
        let (head, report) = Trainer.train(data, options: options, name: "t", feature: feature, provenance: nil)
        #expect(report.calibration != nil)
        let labels = Self.fixture.test_y.map { $0 == 1 }
        let scores = Self.fixture.test_x.map(head.score)
        let raw = Metrics.expectedCalibrationError(labels: labels, probabilities: scores.map(Fusion.sigmoid))
        let calibrated = Metrics.expectedCalibrationError(labels: labels, probabilities: scores.map(head.probability))
        #expect(calibrated < raw, "ECE raw \(raw), calibrated \(calibrated)")
    }

    @Test func targetFPRThresholdHoldsOnTheCrossValidatedReals() {
        let c = Self.fixture.cases.first { $0.name == "svm_c0.1" }!
        let data = TrainingSet(features: c.train_x, labels: c.train_y.map { $0 == 1 })
        var options = TrainingOptions()
        options.C = c.C
        options.targetFPR = 0.05
        let feature = Head.Feature(architecture: "test", fingerprint: nil, backbone: nil, kind: .pooled, normalized: true, width: data.width)
        let (head, report) = Trainer.train(data, options: options, name: "t", feature: feature, provenance: nil)
        #expect(report.thresholdFPR! <= 0.05 && report.thresholdTPR! > 0)
        #expect(head.metadata.threshold == report.threshold!)
        #expect(head.isSynthetic(report.threshold! + 1e-9) && !head.isSynthetic(report.threshold!))
    }

    @Test func leaveOneGeneratorOutReportsEveryGenerator() {
        let c = Self.fixture.cases.first { $0.name == "svm_c0.1" }!
        let data = TrainingSet(features: c.train_x, labels: c.train_y.map { $0 == 1 })
        let generators = data.labels.enumerated().map { $1 ? ["a", "b", "c"][$0 % 3] : "real" }
        let rows = Trainer.leaveOneGeneratorOut(data, generators: generators, options: TrainingOptions())
        #expect(rows.map(\.generator) == ["a", "b", "c"])
        #expect(rows.allSatisfy { $0.auc > 0.6 })
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
}
