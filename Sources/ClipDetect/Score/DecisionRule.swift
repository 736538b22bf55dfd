/// How a score (a log-likelihood ratio) reads as a probability and a label: the one definition that
/// `detect`, `eval` and the service share.
public struct DecisionRule: Sendable, Equatable, Codable {
    /// Platt scaling of the score; nil: the score itself is the logit.
    public var calibration: Head.Calibration?
    /// An explicit operating point on the score (e.g. chosen for a false-positive rate); nil: synthetic
    /// when the probability exceeds 1/2, so label and probability always agree.
    public var threshold: Double?

    public init(calibration: Head.Calibration? = nil, threshold: Double? = nil) {
        self.calibration = calibration
        self.threshold = threshold
    }

    /// sigmoid(score) and score > 0: what the reference reports.
    public static let plain = DecisionRule()

    /// log(p / (1 − p)) of the probability this rule gives.
    public func logit(_ score: Double) -> Double {
        calibration.map { $0.a * score + $0.b } ?? score
    }

    public func probability(_ score: Double) -> Double { Logistic.sigmoid(logit(score)) }

    public func isSynthetic(_ score: Double) -> Bool {
        if let threshold { return score > threshold }
        return logit(score) > 0
    }
}
