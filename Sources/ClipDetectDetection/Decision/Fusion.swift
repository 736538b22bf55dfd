import ClipDetectCore
import ClipDetectEncoder
import Foundation

/// Combining several detectors' scores (logits) for one image, as the reference's utils/fusion.py,
/// in log space so that scores of ±1000 give finite results.
public enum Fusion: String, Sendable, CaseIterable, Codable {
    case meanLogit = "mean_logit", maxLogit = "max_logit", medianLogit = "median_logit"
    case lseLogit = "lse_logit", meanProb = "mean_prob", softOrProb = "soft_or_prob"

    /// The fused score (a logit) of one image's scores; traps on none.
    public func fuse(_ scores: [Double]) -> Double {
        precondition(!scores.isEmpty, "fusion of no scores")
        switch self {
        case .meanLogit: return scores.reduce(0, +) / Double(scores.count)
        case .maxLogit: return scores.max()!
        case .medianLogit:
            let sorted = scores.sorted(), n = sorted.count
            return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        case .lseLogit: return Self.logSumExp(scores)
        case .meanProb:
            // logit(mean σ(s)) = log mean σ(s) − log mean σ(−s): both terms stay finite.
            return Self.logSumExp(scores.map(Logistic.logSigmoid)) - Self.logSumExp(scores.map { Logistic.logSigmoid(-$0) })
        case .softOrProb:
            // 1 − p = Π σ(−s) = e^−u with u = Σ softplus(s); logit(p) = u + log(1 − e^−u).
            let logU = Self.logSumExp(scores.map(Self.logSoftplus))
            let u = exp(logU)
            // For tiny u, log(1 − e^−u) = log u − u/2 + …, which keeps very negative scores finite.
            return u > 1e-8 ? u + log(-expm1(-u)) : logU + u / 2
        }
    }

    /// log(log(1 + eˣ)), finite for any x.
    static func logSoftplus(_ x: Double) -> Double {
        if x < -30 { return x + log1p(-exp(x) / 2) }
        if x > 30 { return log(x + log1p(exp(-x))) }
        return log(log1p(exp(x)))
    }

    static func logSumExp(_ values: [Double]) -> Double {
        guard let peak = values.max(), peak.isFinite else { return values.max() ?? -.infinity }
        return peak + log(values.reduce(0) { $0 + exp($1 - peak) })
    }
}
