import ClipDetectCore
import ClipDetectEncoder

/// How a score (a log-likelihood ratio) reads as a probability, a label and a verdict: the one
/// definition that `detect`, `eval` and the service share.
public struct DecisionRule: Sendable, Equatable, Codable {
    /// Platt or isotonic calibration of the score; nil: the score itself is the logit.
    public var calibration: Calibration?
    /// An explicit operating point on the score (e.g. chosen for a false-positive rate); nil: synthetic
    /// when the probability exceeds 1/2, so label and probability always agree.
    public var threshold: Double?
    /// Where the verdict is `uncertain`; nil: the verdict is the label.
    public var band: UncertaintyBand?

    /// A rule from its parts; every part left nil is the reference's plain reading.
    public init(calibration: Calibration? = nil, threshold: Double? = nil, band: UncertaintyBand? = nil) {
        self.calibration = calibration
        self.threshold = threshold
        self.band = band
    }

    /// sigmoid(score) and score > 0: what the reference reports.
    public static let plain = DecisionRule()

    /// log(p / (1 − p)) of the probability this rule gives.
    public func logit(_ score: Double) -> Double {
        calibration.map { $0.logit(score) } ?? score
    }

    /// P(synthetic): calibrated when there is a calibration, else sigmoid(score).
    public func probability(_ score: Double) -> Double {
        calibration.map { $0.probability(score) } ?? Logistic.sigmoid(score)
    }

    /// The two-way label: above the threshold, or P > 1/2.
    public func isSynthetic(_ score: Double) -> Bool {
        if let threshold { return score > threshold }
        if case .isotonic(let map) = calibration { return map.predict(score) > 0.5 }
        return logit(score) > 0  // exact where sigmoid would round to 1/2
    }

    /// `uncertain` inside the band, the label outside it.
    public func verdict(_ score: Double) -> Verdict {
        if let band, band.contains(score: score, probability: probability(score)) { return .uncertain }
        return isSynthetic(score) ? .synthetic : .real
    }

    /// Refuses numbers that would give a wrong verdict silently, and a band that does not hold
    /// the decision boundary inside it (an image above the band would be called real, or one
    /// below it synthetic).
    public func validate() throws(CalibrationError) {
        try calibration?.validate()
        if let threshold, !threshold.isFinite { throw .invalid("threshold \(threshold) is not a number") }
        guard let band else { return }
        try band.validate()
        guard band.holds(self) else {
            let boundary = threshold.map { "the threshold \($0)" + (band.scale == .probability ? " (P = \(probability($0)))" : "") } ?? "P = 1/2"
            throw .invalid("the uncertain band (\(band.low), \(band.high)) must hold the decision boundary, \(boundary), inside it")
        }
    }
}
