import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// The Clopper–Pearson ("exact") interval for a proportion: k of n, at a confidence level. It is
/// what tells a user that 0 false positives in 50 images cannot certify a rate of 0.1%.
public struct BinomialInterval: Sendable, Equatable, Codable {
    /// k: the events counted.
    public var successes: Int
    /// n: the trials they were counted in.
    public var trials: Int
    /// The interval's confidence level, in (0, 1) (0.95: 95%).
    public var confidence: Double
    /// The interval's lower end, in [0, 1].
    public var lower: Double
    /// The interval's upper end, in [0, 1].
    public var upper: Double

    /// lower = B⁻¹(α/2; k, n−k+1) (0 when k = 0), upper = B⁻¹(1−α/2; k+1, n−k) (1 when k = n),
    /// as `scipy.stats.beta.ppf`.
    public init(successes k: Int, trials n: Int, confidence: Double = 0.95) {
        precondition(n >= 0 && k >= 0 && k <= n && confidence > 0 && confidence < 1, "k of n at a confidence in (0, 1)")
        successes = k
        trials = n
        self.confidence = confidence
        let alpha = 1 - confidence
        lower = k == 0 ? 0 : Self.betaQuantile(alpha / 2, Double(k), Double(n - k + 1))
        upper = k == n ? 1 : Self.betaQuantile(1 - alpha / 2, Double(k + 1), Double(n - k))
    }

    /// k / n, the observed share; NaN with no trials.
    public var proportion: Double { trials > 0 ? Double(successes) / Double(trials) : .nan }

    /// The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz).
    static func incompleteBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x)
        // The fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
        if x > (a + 1) / (a + b + 2) { return 1 - incompleteBeta(1 - x, b, a) }
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var f = d
        for m in 1...10_000 {
            let m = Double(m)
            var numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + numerator * d; if abs(d) < tiny { d = tiny }
            c = 1 + numerator / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            f *= d * c
            numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + numerator * d; if abs(d) < tiny { d = tiny }
            c = 1 + numerator / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            f *= delta
            if abs(delta - 1) < 1e-16 { break }
        }
        return exp(logFront) * f / a
    }

    /// x with I_x(a, b) = p, by bisection: I is monotone in x, so this cannot fail to converge.
    static func betaQuantile(_ p: Double, _ a: Double, _ b: Double) -> Double {
        var low = 0.0, high = 1.0
        for _ in 0..<200 {
            let mid = (low + high) / 2
            if mid <= low || mid >= high { break }
            if incompleteBeta(mid, a, b) < p { low = mid } else { high = mid }
        }
        return (low + high) / 2
    }
}
