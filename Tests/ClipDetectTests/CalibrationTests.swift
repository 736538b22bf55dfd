import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Calibration against scikit-learn and scipy (tools/fixtures/make_calibration_fixtures.py), and
/// `calibrate`, the verdict column and `--stability` end to end.
@Suite struct CalibrationTests {
    struct Cases: Decodable {
        struct Isotonic: Decodable { let name: String; let scores: [Double]; let labels: [Int]; let x, y, queries, predictions: [Double] }
        struct Platt: Decodable { let name: String; let scores: [Double]; let labels: [Int]; let a, b: Double }
        struct Interval: Decodable { let k, n: Int; let confidence, lower, upper: Double }
        let isotonic: [Isotonic]
        let platt: [Platt]
        let intervals: [Interval]
    }

    static let cases = try! JSONDecoder().decode(Cases.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("calibration", "cases.json"))))

    @Test func isotonicEqualsScikitLearn() throws {
        for c in Self.cases.isotonic {
            let map = try IsotonicRegression.fit(scores: c.scores, labels: c.labels.map { $0 == 1 })
            // The same knots (scikit-learn's X_thresholds_, y_thresholds_), to the last bit or nearly.
            #expect(map.x.count == c.x.count, "\(c.name): \(map.x.count) knots, scikit-learn \(c.x.count)")
            guard map.x.count == c.x.count else { continue }
            #expect(zip(map.x, c.x).allSatisfy { $0 == $1 }, "\(c.name)")
            #expect(zip(map.y, c.y).allSatisfy { abs($0 - $1) <= 1e-15 }, "\(c.name)")
            #expect(c.queries.count == c.predictions.count && !c.queries.isEmpty, "\(c.name)")
            let worst = zip(c.queries.map(map.predict), c.predictions).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-15, "\(c.name): predictions differ by \(worst)")
            try Head.Calibration.isotonic(map).validate()
        }
    }

    @Test func plattThroughTheCalibratorEqualsScikitLearn() throws {
        for c in Self.cases.platt {
            let fitted = try Calibrator.fit(.platt, scores: c.scores, labels: c.labels.map { $0 == 1 })
            guard case .platt(let a, let b) = fitted else { Issue.record("not Platt"); continue }
            // scikit-learn stops L-BFGS at gtol 1e-6; ours is Newton's optimum of the same loss.
            #expect(abs(a - c.a) <= 1e-5 * max(1, abs(c.a)) && abs(b - c.b) <= 1e-5 * max(1, abs(c.b)), "\(c.name): \(a), \(b) vs \(c.a), \(c.b)")
        }
    }

    @Test func clopperPearsonEqualsScipy() {
        for c in Self.cases.intervals {
            let interval = BinomialInterval(successes: c.k, trials: c.n, confidence: c.confidence)
            #expect(abs(interval.lower - c.lower) <= 1e-10 * max(c.lower, 1e-6), "\(c.k)/\(c.n) lower \(interval.lower) vs \(c.lower)")
            #expect(abs(interval.upper - c.upper) <= 1e-10 * max(c.upper, 1e-6), "\(c.k)/\(c.n) upper \(interval.upper) vs \(c.upper)")
        }
    }

    @Test func theThresholdKeepsTheFalsePositiveRateAndSaysWhatFewImagesCannotCertify() throws {
        var generator = SeededGenerator(seed: 9)
        let reals = (0..<200).map { _ in Double.random(in: -3...1, using: &generator) }
        for target in [0.0, 0.01, 0.05, 0.2] {
            let point = try OperatingPoint.choose(realScores: reals, targetFPR: target)
            let above = reals.filter { $0 > point.threshold }.count
            #expect(above == point.falsePositives.successes && above <= Int(target * 200))
            #expect(above == Int(target * 200), "distinct scores: the budget is used exactly")
            // Just above a real score, so that a score moving by 1e-5 with its batch stays below.
            let below = try #require(reals.filter { $0 <= point.threshold }.max())
            #expect(point.threshold > below && point.threshold - below <= 1.000001 * OperatingPoint.margin * max(1, abs(below)))
            #expect(reals.filter { $0 > below + OperatingPoint.margin * max(1, abs(below)) / 2 }.count >= above)
        }
        // Ties at the threshold stay real.
        let tied = try OperatingPoint.choose(realScores: [1, 1, 1, 1, 0], targetFPR: 0.5)
        #expect(tied.falsePositives.successes == 0 && tied.threshold == 1)
        // 50 images cannot certify 0.1%: the summary says how many would.
        let few = try OperatingPoint.choose(realScores: Array(reals.prefix(50)), targetFPR: 0.001)
        #expect(few.falsePositives.upper > 0.05)
        #expect(few.summary.contains("cannot certify") && few.summary.contains("at least \(OperatingPoint.imagesNeeded(toCertify: 0.001)!) real images"))
        #expect(OperatingPoint.imagesNeeded(toCertify: 0.01) == 368)  // ln(0.025) / ln(0.99) = 367.03
        // A target too small for any number of images is said so, not a crash or a negative count.
        #expect(OperatingPoint.imagesNeeded(toCertify: 1e-20) == nil)
        #expect(try OperatingPoint.choose(realScores: reals, targetFPR: 1e-300).summary.contains("no practical number"))
        // Enough images but some above: more images narrow it; no count smaller than those seen is offered.
        let loose = try OperatingPoint.choose(realScores: reals, targetFPR: 0.2)
        #expect(!loose.summary.contains("takes at least"))
        #expect(throws: CalibrationError.self) { try OperatingPoint.choose(realScores: [], targetFPR: 0.01) }
        #expect(throws: CalibrationError.self) { try OperatingPoint.choose(realScores: [1, .nan], targetFPR: 0.01) }
    }

    @Test func aBandFromErrorRatesIsWhereEitherVerdictWouldOftenBeWrong() throws {
        var generator = SeededGenerator(seed: 4)
        let reals = (0..<400).map { _ in Double.random(in: -3...1.5, using: &generator) }
        let fakes = (0..<300).map { _ in Double.random(in: -1...3, using: &generator) }
        let plain = DecisionRule()
        let (rule, report) = try Calibrator.calibrate(rule: plain, realScores: reals, fakeScores: fakes,
                                                      options: Calibrator.Options(method: .isotonic, band: .errorRate(0.1)))
        #expect(rule.band == UncertaintyBand(scale: .probability, low: 0.1, high: 0.9))
        // Outside the band each verdict is right at least 90% of the time on these images.
        let scores = reals + fakes, labels = reals.map { _ in false } + fakes.map { _ in true }
        for verdict in [Verdict.synthetic, .real] {
            let chosen = scores.indices.filter { rule.verdict(scores[$0]) == verdict }
            let right = chosen.filter { labels[$0] == (verdict == .synthetic) }.count
            #expect(Double(right) >= 0.9 * Double(chosen.count), "\(verdict): \(right) of \(chosen.count)")
        }
        #expect((report.coverage ?? 1) < 1)
        // With a threshold whose probability lies outside (0.1, 0.9), the band widens to hold it.
        let (strict, strictReport) = try Calibrator.calibrate(rule: plain, realScores: reals, fakeScores: fakes,
                                                              options: Calibrator.Options(method: .platt, targetFPR: 0.0, band: .errorRate(0.45)))
        let boundary = strict.probability(strict.threshold!)
        #expect(strict.band!.low <= boundary && boundary <= strict.band!.high && strictReport.notes == [.bandWidened(strict.band!)])
        #expect(throws: CalibrationError.self) {
            try Calibrator.calibrate(rule: plain, realScores: reals, fakeScores: fakes, options: Calibrator.Options(band: .errorRate(0.1)))
        }
        #expect(throws: CalibrationError.self) {
            try Calibrator.calibrate(rule: plain, realScores: reals, fakeScores: fakes, options: Calibrator.Options(method: .platt, band: .errorRate(0.6)))
        }
        // A band that leaves out the boundary is refused where a rule is checked.
        #expect(throws: CalibrationError.self) { try DecisionRule(band: UncertaintyBand(scale: .probability, low: 0.6, high: 0.9)).validate() }
        #expect(throws: CalibrationError.self) { try DecisionRule(threshold: 2, band: UncertaintyBand(scale: .score, low: -1, high: 1)).validate() }
    }

    @Test func theCalibratorFitsReportsAndRecordsItsSet() throws {
        var generator = SeededGenerator(seed: 5)
        let reals = (0..<120).map { _ in Double.random(in: -4...1, using: &generator) }
        let fakes = (0..<80).map { _ in Double.random(in: -1...4, using: &generator) }
        let head = Head(weights: [1], bias: 0, metadata: Head.Metadata(
            name: "h", feature: Head.Feature(architecture: "a", fingerprint: nil, backbone: nil, kind: .pooled, normalized: true, width: 1),
            threshold: 3))
        let set = CalibrationSet(reals: 120, fakes: 80, hash: String(repeating: "ab", count: 32), date: "2026-12-02T00:00:00Z")
        let options = Calibrator.Options(method: .isotonic, band: .probabilities(low: 0.25, high: 0.75))
        let (calibrated, report) = try Calibrator.calibrate(head, realScores: reals, fakeScores: fakes, options: options, set: set)
        guard case .isotonic = calibrated.metadata.calibration else { Issue.record("no isotonic map"); return }
        #expect(calibrated.metadata.threshold == nil && report.notes == [.thresholdDropped])
        #expect(calibrated.metadata.calibrationSet?.method == "isotonic" && calibrated.metadata.calibrationSet?.reals == 120)
        #expect(calibrated.weights == head.weights && calibrated.bias == head.bias)
        let (before, after) = (try #require(report.before), try #require(report.after))
        #expect(after.ece < before.ece && after.nll < before.nll)
        #expect(report.crossValidated != nil)
        #expect(after.bins.reduce(0) { $0 + $1.count } == 200)
        let coverage = try #require(report.coverage)
        let scores = reals + fakes
        let expected = Double(scores.filter { calibrated.decision.verdict($0) != .uncertain }.count) / 200
        #expect(coverage == expected && coverage < 1)
        // Written and read back with its map, band and record; a file of the old form reads as Platt.
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("h.safetensors").path
        try calibrated.write(to: path)
        #expect(try Head.read(path).metadata == calibrated.metadata)
        let legacy = try JSONDecoder().decode(Head.Calibration.self, from: Data(#"{"a": 2, "b": -1}"#.utf8))
        #expect(legacy == .platt(a: 2, b: -1))
        #expect(throws: CalibrationError.self) {
            try Calibrator.calibrate(head, realScores: reals, fakeScores: [], options: Calibrator.Options(method: .platt), set: set)
        }
    }

    @Test func malformedMapsAndBandsAreRefused() {
        let bad: [Head.Calibration] = [.isotonic(IsotonicRegression(x: [0, 0], y: [0, 1])), .isotonic(IsotonicRegression(x: [0, 1], y: [0.8, 0.2])),
                                       .isotonic(IsotonicRegression(x: [0, 1], y: [0, 1.5])), .isotonic(IsotonicRegression(x: [], y: [])),
                                       .isotonic(IsotonicRegression(x: [0, .nan], y: [0, 1])), .platt(a: -1, b: 0)]
        for calibration in bad { #expect(throws: CalibrationError.self) { try calibration.validate() } }
        for band in [UncertaintyBand(scale: .probability, low: 0.8, high: 0.2), UncertaintyBand(scale: .probability, low: -0.1, high: 0.5),
                     UncertaintyBand(scale: .score, low: .nan, high: 1)] {
            #expect(throws: CalibrationError.self) { try band.validate() }
        }
    }

    @Test func fusionOfProbabilitiesTakesEachHeadsCalibratedLogit() throws {
        let encoder = try ImageEncoder(path: Fixtures.backbone)
        var a = try Head.importReference(checkpoint: Fixtures.referenceHead, config: nil, name: "a", backbone: encoder)
        var b = a
        b.metadata.name = "b"
        b.bias += 0.25  // another head: the same one twice is refused
        a.metadata.calibration = .platt(a: 0.5, b: 1)
        b.metadata.calibration = .isotonic(IsotonicRegression(x: [-1, 1], y: [0.1, 0.9]))
        let feature = (0..<a.weights.count).map { Float($0 % 7) / 10 }
        let raw = [a.score(feature), b.score(feature)]
        let calibratedLogits = [a.decision.logit(raw[0]), b.decision.logit(raw[1])]
        for fusion in Fusion.allCases {
            let detector = try Detector(encoder: encoder, heads: [a, b], configuration: Detector.Configuration(fusion: fusion))
            let fused = try #require(detector.detect(features: [feature]).fused)
            let expected = [.meanProb, .softOrProb].contains(fusion) ? fusion.fuse(calibratedLogits) : fusion.fuse(raw)
            #expect(fused == expected, "\(fusion)")
        }
    }
}

