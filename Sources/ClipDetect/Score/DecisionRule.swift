/// How a score (a log-likelihood ratio) reads as a probability, a label and a verdict: the one
/// definition that `detect`, `eval` and the service share.
public struct DecisionRule: Sendable, Equatable, Codable {
    /// Platt or isotonic calibration of the score; nil: the score itself is the logit.
    public var calibration: Head.Calibration?
    /// An explicit operating point on the score (e.g. chosen for a false-positive rate); nil: synthetic
    /// when the probability exceeds 1/2, so label and probability always agree.
    public var threshold: Double?
    /// Where the verdict is `uncertain`; nil: the verdict is the label.
    public var band: UncertaintyBand?

    public init(calibration: Head.Calibration? = nil, threshold: Double? = nil, band: UncertaintyBand? = nil) {
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

    /// Refuses numbers that would give a wrong verdict silently, and a band that leaves out the
    /// decision boundary (images above it would be called real, or below it synthetic).
    public func validate() throws(CalibrationError) {
        try calibration?.validate()
        if let threshold, !threshold.isFinite { throw .invalid("threshold \(threshold) is not a number") }
        guard let band else { return }
        try band.validate()
        switch band.scale {
        case .probability:
            let boundary = threshold.map(probability) ?? 0.5
            guard band.low <= boundary, boundary <= band.high else {
                throw .invalid(String(format: "the uncertain band %.4g…%.4g must contain the decision boundary, P = %.4g", band.low, band.high, boundary))
            }
        case .score:
            guard !isSynthetic(band.low), isSynthetic(band.high.nextUp) else {
                throw .invalid(String(format: "the uncertain band %.6g…%.6g must contain the decision boundary (%@)", band.low, band.high,
                                      threshold.map { String(format: "threshold %.6g", $0) } ?? "P = 1/2"))
            }
        }
    }
}
