import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Metrics against scikit-learn, fusion against the reference's formulas, heads against torch.save files.
@Suite struct ScoreTests {
    struct Cases: Decodable {
        struct Case: Decodable {
            let name: String
            let labels: [Int]
            let scores: [Double]
            let auc, balanced_accuracy, eer, tpr_at_1, tpr_at_5, nll, ece: Double
        }
        let cases: [Case]
        let fusions: [[String: FusionValue]]
    }

    enum FusionValue: Decodable {
        case number(Double), list([Double])
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let list = try? container.decode([Double].self) { self = .list(list) } else { self = .number(try container.decode(Double.self)) }
        }
    }

    static let fixture = try! JSONDecoder().decode(Cases.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("metrics", "cases.json"))))

    @Test(arguments: fixture.cases.map(\.name))
    func metricsMatchTheReference(name: String) {
        let c = Self.fixture.cases.first { $0.name == name }!
        let labels = c.labels.map { $0 == 1 }
        #expect(abs(Metrics.auc(labels: labels, scores: c.scores) - c.auc) <= 1e-12)
        #expect(abs(Metrics.balancedAccuracy(labels: labels, predictions: c.scores.map { $0 > 0 }) - c.balanced_accuracy) <= 1e-12)
        #expect(abs(Metrics.equalErrorRate(labels: labels, scores: c.scores) - c.eer) <= 1e-12)
        #expect(abs(Metrics.tpr(atFPR: 0.01, labels: labels, scores: c.scores) - c.tpr_at_1) <= 1e-12)
        #expect(abs(Metrics.tpr(atFPR: 0.05, labels: labels, scores: c.scores) - c.tpr_at_5) <= 1e-12)
        #expect(abs(Metrics.negativeLogLikelihood(labels: labels, scores: c.scores) - c.nll) <= 1e-9)
        #expect(abs(Metrics.expectedCalibrationError(labels: labels, probabilities: c.scores.map(Logistic.sigmoid)) - c.ece) <= 1e-12)
    }

    @Test func fusionMatchesTheReference() {
        for values in Self.fixture.fusions {
            guard case .list(let scores) = values["scores"] else { Issue.record("no scores"); continue }
            for rule in Fusion.allCases {
                guard case .number(let want) = values[rule.rawValue] else { Issue.record("no \(rule)"); continue }
                let got = rule.fuse(scores)
                // 1e-6: the reference's softminusinv loses digits near probability 1 (mean_prob of [20, 35]),
                // where our log-space form keeps them.
                #expect(abs(got - want) <= 1e-6 * max(1, abs(want)), "\(rule) of \(scores): \(got) vs \(want)")
            }
        }
    }

    @Test func fusionStaysFiniteAtExtremes() {
        for scores in [[1000.0, 1000], [-1000.0, -1000], [1000.0, -1000], [-1000.0], [1000.0], [-800.0, 5]] {
            for rule in Fusion.allCases {
                let fused = rule.fuse(scores)
                #expect(fused.isFinite, "\(rule) of \(scores) = \(fused)")
            }
        }
        // Noisy-OR of independent detectors: one sure detector decides; all sure-real stays very negative.
        #expect(Fusion.softOrProb.fuse([1000, -1000]) > 900)
        #expect(Fusion.softOrProb.fuse([-1000, -1000]) < -900)
        #expect(abs(Fusion.meanProb.fuse([1000, -1000])) < 1e-9)
    }

    /// soft_or_prob far below zero, where 1 − Π σ(−s) underflows in a direct computation: against
    /// mpmath at 50 digits (logit(1 − Π(1 − σ(s)))), to a few ulps. The u/2 term of the small-u
    /// series is 1e-13 here, some 30 ulps: dropping it fails.
    @Test func softOrProbIsExactFarBelowZero() {
        for (scores, exact) in [([-30.0, -30.0], -29.30685281944000790246792), ([-25.0, -40.0, -33.0], -24.99966428782741020759198)] {
            let fused = Fusion.softOrProb.fuse(scores)
            #expect(abs(fused - exact) <= 4 * exact.ulp.magnitude, "\(scores): \(fused) vs \(exact)")
        }
    }
}

extension ScoreTests {
    /// A stability check asks before each draw whether it is still wanted, and stops when not.
    @Test func stabilityDrawsStopWhenNoLongerWanted() throws {
        let check = try StabilityCheck(draws: 6, chain: ImpairmentChain(condition: "reshare"))
        let image = RGBImage(width: 64, height: 64, pixels: [UInt8](repeating: 128, count: 64 * 64 * 3))
        var asked = 0
        var plan = StabilityPlan([.decoded(image), .decoded(image)], check: check, settings: ExtractionSettings())
        let sources = plan.next(upTo: .max) { asked += 1; return asked <= 3 }
        #expect(asked == 4 && sources.count == 3, "the image, its clean pass and two draws; nothing after the first refusal")
        plan.record(sources.map { _ in .failure(CancellationError()) })
        #expect(plan.next(upTo: .max).isEmpty)
        let finished = plan.finished()
        #expect(finished.count == 2 && finished.allSatisfy { (try? $0.outcome.0.get()) == nil && $0.outcome.1 == nil })
        // Wanted throughout: the clean pass and six draws each, in passes of the size asked.
        var whole = StabilityPlan([.decoded(image), .bytes(Data("not an image".utf8)), .decoded(image)], check: check, settings: ExtractionSettings())
        var sizes: [Int] = []
        while case let batch = whole.next(upTo: 4), !batch.isEmpty {
            sizes.append(batch.count)
            whole.record(batch.map { _ in .failure(CancellationError()) })
        }
        #expect(sizes == [4, 4, 4, 2], "7 + 7 passes, four at a time: the undecodable image has none")
        #expect(whole.finished().map(\.index) == [0, 1, 2])
    }
}
