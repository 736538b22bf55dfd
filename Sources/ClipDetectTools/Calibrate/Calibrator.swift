import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Crypto
import Foundation

/// How well probabilities match outcomes: ECE, NLL, Brier score and a table in equal-width bins.
public struct Reliability: Sendable, Equatable, Codable {
    /// One equal-width bin of P(synthetic): its range, its images, their mean probability and share synthetic.
    public struct Bin: Sendable, Equatable, Codable {
        /// The bin's lower end, in [0, 1].
        public var low: Double
        /// The bin's upper end; the last bin holds P = 1 too.
        public var high: Double
        /// Images whose probability falls in the bin.
        public var count: Int
        /// Mean predicted P(synthetic) in the bin.
        public var predicted: Double
        /// Share of synthetic images in the bin.
        public var observed: Double
    }

    /// Expected calibration error over the bins, in [0, 1].
    public var ece: Double
    /// Mean negative log-likelihood of the labels, in nats.
    public var nll: Double
    /// Brier score: the mean squared difference of P(synthetic) and the label (1: synthetic).
    public var brier: Double
    /// The reliability table, lowest probabilities first.
    public var bins: [Bin]

    /// ECE over `bins` bins as `Metrics.expectedCalibrationError`; NLL from the logits (stable).
    public init(labels: [Bool], probabilities: [Double], logits: [Double], bins count: Int = 10) {
        precondition(labels.count == probabilities.count && labels.count == logits.count, "one probability and logit per label")
        ece = Metrics.expectedCalibrationError(labels: labels, probabilities: probabilities, bins: count)
        nll = Metrics.negativeLogLikelihood(labels: labels, scores: logits)
        brier = zip(labels, probabilities).reduce(0) { $0 + pow($1.1 - ($1.0 ? 1 : 0), 2) } / Double(max(labels.count, 1))
        var table = (0..<count).map { Bin(low: Double($0) / Double(count), high: Double($0 + 1) / Double(count), count: 0, predicted: 0, observed: 0) }
        for (label, p) in zip(labels, probabilities) {
            let bin = min(Int(p * Double(count)), count - 1)
            table[bin].count += 1
            table[bin].predicted += p
            table[bin].observed += label ? 1 : 0
        }
        bins = table.map { bin in
            var bin = bin
            if bin.count > 0 { bin.predicted /= Double(bin.count); bin.observed /= Double(bin.count) }
            return bin
        }
    }

    /// The reliability of a rule's probabilities and logits on raw scores.
    public init(labels: [Bool], scores: [Double], rule: DecisionRule, bins: Int = 10) {
        self.init(labels: labels, probabilities: scores.map(rule.probability), logits: scores.map(rule.logit), bins: bins)
    }
}

/// Re-fitting a head's reading of its scores to one's own images: the threshold at a false-positive
/// rate on real images, a probability map (Platt or isotonic) on real and synthetic ones, and the
/// band where the verdict is `uncertain`. The weights are not touched.
public enum Calibrator {
    /// Which probability map to fit: Platt scaling or isotonic regression, as scikit-learn's `CalibratedClassifierCV` methods.
    public enum Method: String, Sendable, CaseIterable, Codable { case platt, isotonic }

    /// How the uncertain band is asked for.
    public enum BandChoice: Sendable, Equatable {
        /// Uncertain where P(synthetic), after calibration, is strictly between the two.
        case probabilities(low: Double, high: Double)
        /// Uncertain where either verdict would be wrong more often than this by the calibrated
        /// probability: P(synthetic) in (rate, 1 − rate), widened to hold the decision boundary.
        case errorRate(Double)
    }

    /// What to fit; anything left nil keeps the head's own.
    public struct Options: Sendable, Equatable {
        /// nil: keep the head's probability map.
        public var method: Method?
        /// nil: no new threshold.
        public var targetFPR: Double?
        /// nil: keep the head's band, dropped if it no longer holds the new boundary.
        public var band: BandChoice?
        /// Confidence level of the false-positive rate's Clopper–Pearson interval, in (0, 1).
        public var confidence: Double
        /// Folds for the cross-validated reliability of a new map (0: none).
        public var folds: Int

        /// Options from their parts; by default nothing is fitted, at 95% confidence, with 5 folds.
        public init(method: Method? = nil, targetFPR: Double? = nil, band: BandChoice? = nil, confidence: Double = 0.95, folds: Int = 5) {
            self.method = method
            self.targetFPR = targetFPR
            self.band = band
            self.confidence = confidence
            self.folds = folds
        }
    }

    /// What a calibration fitted, and how well the probabilities read before and after.
    public struct Report: Sendable, Equatable {
        /// Real images calibrated on.
        public var reals: Int
        /// Synthetic images calibrated on.
        public var fakes: Int
        /// The threshold chosen for the target false-positive rate; nil when none was asked.
        public var operatingPoint: OperatingPoint?
        /// With synthetic images: P(synthetic) as the head read it before, and after (on the same images).
        public var before: Reliability?
        /// The new rule's reliability on the same images (in-sample: optimistic for a fitted map).
        public var after: Reliability?
        /// The new map fitted on all folds but one, read on the one left out: what to expect on new images.
        public var crossValidated: Reliability?
        /// The band the new rule has, if any.
        public var band: UncertaintyBand?
        /// Share of the calibration images outside the band, and the balanced accuracy of their verdicts.
        public var coverage: Double?
        /// Balanced accuracy of the verdicts outside the band; nil unless both classes are there.
        public var coveredAccuracy: Double?
        /// What changed beyond what was asked.
        public var notes: [Note] = []
    }

    /// What calibration changed beyond what was asked.
    public enum Note: Equatable, Sendable, CustomStringConvertible {
        /// A fitted probability replaced the head's threshold (synthetic is now P > 1/2).
        case thresholdDropped
        /// An error-rate band widened to hold the threshold's probability.
        case bandWidened(UncertaintyBand)
        /// The head's band no longer held the new boundary.
        case bandDropped(UncertaintyBand)

        public var description: String {
            switch self {
            case .thresholdDropped: "the head's old threshold was dropped: with the new probability, synthetic means P > 1/2"
            case .bandWidened(let band): "the band was widened to P in (\(band.low), \(band.high)) to hold the threshold's probability"
            case .bandDropped(let band): "the head's uncertain band (\(band.low), \(band.high)) no longer holds the decision boundary and was dropped"
            }
        }
    }

    /// The head with its new rule. `realScores` and `fakeScores` are the head's raw scores on the
    /// calibration images (`fakeScores` may be empty: then only a threshold can be chosen).
    public static func calibrate(_ head: Head, realScores: [Double], fakeScores: [Double], options: Options,
                                 set: CalibrationSet) throws(CalibrationError) -> (Head, Report) {
        let (rule, report) = try calibrate(rule: head.decision, realScores: realScores, fakeScores: fakeScores, options: options)
        var head = head
        head.metadata.calibration = rule.calibration
        head.metadata.threshold = rule.threshold
        head.metadata.band = rule.band
        head.metadata.calibrationSet = record(set, options)
        return (head, report)
    }

    /// The set's record with what was fitted on it.
    public static func record(_ set: CalibrationSet, _ options: Options) -> CalibrationSet {
        var set = set
        set.method = options.method?.rawValue
        set.targetFPR = options.targetFPR
        return set
    }

    /// The same on a bare rule (the fused score of several heads has one).
    public static func calibrate(rule: DecisionRule, realScores: [Double], fakeScores: [Double],
                                 options: Options) throws(CalibrationError) -> (DecisionRule, Report) {
        var rule = rule
        guard !realScores.isEmpty else { throw .tooFew("calibration needs real images from your own source") }
        guard realScores.allSatisfy(\.isFinite), fakeScores.allSatisfy(\.isFinite) else { throw .invalid("scores that are not finite") }
        guard options.method != nil || options.targetFPR != nil || options.band != nil else {
            throw .invalid("nothing to calibrate: ask for a target false-positive rate, a method or a band")
        }
        var report = Report(reals: realScores.count, fakes: fakeScores.count)
        let scores = realScores + fakeScores
        let labels = Array(repeating: false, count: realScores.count) + Array(repeating: true, count: fakeScores.count)
        let hasBoth = !fakeScores.isEmpty
        if hasBoth { report.before = Reliability(labels: labels, scores: scores, rule: rule) }

        if let method = options.method {
            guard hasBoth else { throw .tooFew("fitting a probability (\(method.rawValue)) needs synthetic images too") }
            let minimum = method == .platt ? 2 : 5
            guard realScores.count >= minimum, fakeScores.count >= minimum else {
                throw .tooFew("\(method.rawValue) calibration needs at least \(minimum) real and \(minimum) synthetic images (have \(realScores.count) and \(fakeScores.count))")
            }
            rule.calibration = try fit(method, scores: scores, labels: labels)
            if rule.threshold != nil, options.targetFPR == nil {
                report.notes.append(.thresholdDropped)
                rule.threshold = nil
            }
            if options.folds >= 2, realScores.count >= options.folds, fakeScores.count >= options.folds {
                report.crossValidated = try crossValidated(method, scores: scores, labels: labels, folds: options.folds, template: rule)
            }
        }
        if let target = options.targetFPR {
            let point = try OperatingPoint.choose(realScores: realScores, targetFPR: target, confidence: options.confidence)
            rule.threshold = point.threshold
            report.operatingPoint = point
        }
        switch options.band {
        case .probabilities(let low, let high)?:
            let band = UncertaintyBand(scale: .probability, low: low, high: high)
            try band.validate()
            rule.band = band
        case .errorRate(let rate)?:
            guard rate > 0, rate < 0.5 else { throw .invalid("the band's error rate must be in (0, 0.5), not \(rate)") }
            guard rule.calibration != nil else {
                throw .invalid("a band from error rates reads the calibrated probability: fit one (a method, with synthetic images) or give the band as probabilities")
            }
            var band = UncertaintyBand(scale: .probability, low: rate, high: 1 - rate)
            // The band holds the decision boundary (P at the threshold, or 1/2, which is labelled
            // real) so that above it is synthetic and below it real: widened just enough if not.
            if !band.holds(rule) {
                let boundary = rule.threshold.map(rule.probability)
                band.low = min(band.low, boundary?.nextDown ?? 0.5)
                band.high = max(band.high, (boundary ?? 0.5).nextUp)
                report.notes.append(.bandWidened(band))
            }
            rule.band = band
        case nil:
            // A band the head carried may no longer hold the new boundary: dropped, not kept wrong.
            if let band = rule.band, !band.holds(rule) {
                rule.band = nil
                report.notes.append(.bandDropped(band))
            }
        }
        try rule.validate()
        report.band = rule.band
        if hasBoth {
            report.after = Reliability(labels: labels, scores: scores, rule: rule)
            let verdicts = scores.map(rule.verdict)
            let covered = zip(verdicts, labels).filter { $0.0 != .uncertain }
            report.coverage = Double(covered.count) / Double(scores.count)
            report.coveredAccuracy = Set(covered.map(\.1)).count == 2
                ? Metrics.balancedAccuracy(labels: covered.map(\.1), predictions: covered.map { $0.0 == .synthetic }) : nil
        }
        return (rule, report)
    }

    static func fit(_ method: Method, scores: [Double], labels: [Bool]) throws(CalibrationError) -> Head.Calibration {
        switch method {
        case .platt:
            let (a, b) = PlattScaling.fit(scores: scores, labels: labels)
            guard a > 0 else {
                throw .invalid(String(format: "Platt scaling refused: on these images the probability would fall as the score rises (slope %.4g); the head does not separate them", a))
            }
            return .platt(a: a, b: b)
        case .isotonic:
            return .isotonic(try IsotonicRegression.fit(scores: scores, labels: labels))
        }
    }

    /// Stratified folds (every k-th image of each class, in a seeded order): fit on the others,
    /// read the left-out fold.
    static func crossValidated(_ method: Method, scores: [Double], labels: [Bool], folds: Int,
                               template: DecisionRule) throws(CalibrationError) -> Reliability {
        var generator = SeededGenerator(seed: 3)
        var fold = [Int](repeating: 0, count: scores.count)
        for label in [false, true] {
            let members = scores.indices.filter { labels[$0] == label }.shuffled(using: &generator)
            for (rank, index) in members.enumerated() { fold[index] = rank % folds }
        }
        var probabilities = [Double](repeating: 0, count: scores.count), logits = probabilities
        for k in 0..<folds {
            let train = scores.indices.filter { fold[$0] != k }
            var rule = template
            do {
                rule.calibration = try fit(method, scores: train.map { scores[$0] }, labels: train.map { labels[$0] })
            } catch {
                throw .invalid("cross-validated calibration failed on fold \(k + 1): \(error)")
            }
            for index in scores.indices where fold[index] == k {
                probabilities[index] = rule.probability(scores[index])
                logits[index] = rule.logit(scores[index])
            }
        }
        return Reliability(labels: labels, probabilities: probabilities, logits: logits)
    }
}

/// A head's raw scores on labelled images, with what identifies the set: the input of `Calibrator`.
public struct CalibrationData: Sendable {
    /// Scores of the first head (or the fused score with several heads), by class.
    public var realScores: [Double] = []
    /// The synthetic images' scores, as `realScores` the real ones'.
    public var fakeScores: [Double] = []
    /// Each scored image's content digest (SHA-256 of its bytes) and label: what `CalibrationSet.hash` reads.
    public var digests: [(digest: String, isSynthetic: Bool)] = []
    /// Images that could not be scored, with why.
    public var failures: [(name: String, error: String)] = []
    /// Images whose bytes were already in the set with the same label: counted once, since a
    /// copy is no new evidence.
    public var duplicates: [String] = []
    /// Images whose bytes are in the set as both real and synthetic.
    public var conflicts: [String] = []

    /// Reads each image once (its bytes give both the digest and the score), a batch at a time.
    /// `progress` is called after each image.
    /// `progress`: images done so far, and how many of them failed.
    public static func score(_ images: [LabeledImage], with detector: Detector, progress: (_ done: Int, _ failed: Int) -> Void = { _, _ in }) -> CalibrationData {
        var data = CalibrationData()
        var seen: [String: Bool] = [:]
        let limits = detector.settings.limits, batch = detector.settings.batchSize
        var start = 0
        while start < images.count {
            let slice = Array(images[start..<min(start + batch, images.count)])
            let bytes = slice.map { image in Result { try ImageDecoder.read(path: image.item.path, limits: limits) } }
            let readable = bytes.compactMap { try? $0.get() }
            var results = detector.detect(readable.map(ImageSource.bytes)).makeIterator()
            for (image, read) in zip(slice, bytes) {
                let result = read.flatMap { data in results.next()!.map { (data, $0) } }
                switch result {
                case .success(let (bytes, detection)):
                    let digest = bytes.sha256
                    if let label = seen[digest] {
                        if label == image.isSynthetic { data.duplicates.append(image.item.name) } else { data.conflicts.append(image.item.name) }
                        continue
                    }
                    seen[digest] = image.isSynthetic
                    if image.isSynthetic { data.fakeScores.append(detection.score) } else { data.realScores.append(detection.score) }
                    data.digests.append((digest, image.isSynthetic))
                case .failure(let error):
                    data.failures.append((image.item.name, "\(error)"))
                }
            }
            start += slice.count
            progress(start, data.failures.count)
        }
        return data
    }

    /// The record a calibrated head keeps of these images.
    public func record(date: Date = Date()) -> CalibrationSet {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return CalibrationSet(reals: realScores.count, fakes: fakeScores.count, hash: CalibrationSet.hash(digests: digests),
                              date: formatter.string(from: date))
    }
}
