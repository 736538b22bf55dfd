import ClipDetectCore
import ClipDetectEncoder
import Foundation

/// Where the verdict is `uncertain`: scores (or probabilities) strictly inside it. Outside it the
/// verdict is the head's label.
public struct UncertaintyBand: Sendable, Equatable, Codable {
    /// What the band's bounds are measured in.
    public enum Scale: String, Sendable, Codable, CaseIterable {
        /// The band bounds P(synthetic) as the head computes it (calibrated when it is).
        case probability
        /// The band bounds the raw score (log-likelihood ratio).
        case score
    }

    /// Whether `low` and `high` are probabilities or scores.
    public var scale: Scale
    /// The band's lower end, itself outside the band.
    public var low: Double
    /// The band's upper end, itself outside the band.
    public var high: Double

    /// A band from its scale and ends.
    public init(scale: Scale, low: Double, high: Double) {
        self.scale = scale
        self.low = low
        self.high = high
    }

    /// Refuses ends that are not numbers or run backwards, and a probability band outside [0, 1].
    public func validate() throws(CalibrationError) {
        guard low.isFinite, high.isFinite, low <= high else { throw .invalid("uncertainty band \(low)…\(high) is not an interval") }
        if scale == .probability, !(low >= 0 && high <= 1) { throw .invalid("a probability band must lie in [0, 1], not \(low)…\(high)") }
    }

    /// Whether a rule's verdicts are consistent with this band: every image above it is labelled
    /// synthetic and every one below it real. With a threshold t and a probability band, P(t) lies
    /// strictly inside (a flat stretch of an isotonic map at P(t) holds scores on both sides of t);
    /// with P > 1/2 the boundary may be the band's lower end.
    public func holds(_ rule: DecisionRule) -> Bool {
        switch (scale, rule.threshold) {
        case (.probability, let t?): let p = rule.probability(t); return low < p && p < high
        case (.probability, nil): return low <= 0.5 && 0.5 < high
        case (.score, _): return !rule.isSynthetic(low) && rule.isSynthetic(high)
        }
    }

    /// True when the score (or the probability, by `scale`) lies strictly inside the band.
    public func contains(score: Double, probability: Double) -> Bool {
        let value = scale == .probability ? probability : score
        return value > low && value < high
    }
}

/// The three-way verdict.
public enum Verdict: String, Sendable, Codable, CaseIterable {
    case synthetic, real, uncertain
}
