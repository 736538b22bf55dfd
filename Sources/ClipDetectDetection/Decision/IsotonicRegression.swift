import ClipDetectCore
import ClipDetectEncoder
import Foundation

/// scikit-learn's `IsotonicRegression(increasing=True, out_of_bounds='clip')`, step for step: sort
/// by (score, label), merge scores closer than 1e-15 (averaging their labels), pool adjacent
/// violators, drop knots equal to both neighbours; predict by scipy's `interp1d` (linear) on the
/// scores clipped to the fitted range.
public struct IsotonicRegression: Sendable, Equatable {
    /// Knot scores, strictly increasing.
    public let x: [Double]
    /// P(synthetic) at each knot, non-decreasing, in [0, 1].
    public let y: [Double]

    /// A map from its knots, taken as given (`validate` checks them).
    public init(x: [Double], y: [Double]) {
        self.x = x
        self.y = y
    }

    /// At most this many knots are read from a file: a map is one knot per distinct score at most.
    package static let maxKnots = 1 << 20

    /// Fits the map to scores and labels (true: synthetic), as scikit-learn's `fit` with unit weights.
    public static func fit(scores: [Double], labels: [Bool]) throws(CalibrationError) -> IsotonicRegression {
        guard !scores.isEmpty, scores.count == labels.count else { throw .tooFew("isotonic calibration needs labelled scores") }
        guard scores.allSatisfy(\.isFinite) else { throw .invalid("isotonic calibration of scores that are not finite") }
        let targets = labels.map { $0 ? 1.0 : 0.0 }
        // np.lexsort((y, X)): by score, then by label.
        let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] < scores[$1] : targets[$0] < targets[$1] }
        // _make_unique: a new knot once the score has moved by at least float64's resolution.
        var ux: [Double] = [], uy: [Double] = [], uw: [Double] = []
        var currentX = scores[order[0]], sumY = 0.0, weight = 0.0
        for index in order {
            let value = scores[index]
            if value - currentX >= 1e-15 {
                ux.append(currentX); uw.append(weight); uy.append(sumY / weight)
                currentX = value; weight = 1; sumY = targets[index]
            } else {
                weight += 1; sumY += targets[index]
            }
        }
        ux.append(currentX); uw.append(weight); uy.append(sumY / weight)
        let pooled = poolAdjacentViolators(uy, weights: uw)
        // Keep the ends and every knot that differs from one of its neighbours.
        var keptX: [Double] = [], keptY: [Double] = []
        for i in pooled.indices where i == 0 || i == pooled.count - 1 || pooled[i] != pooled[i - 1] || pooled[i] != pooled[i + 1] {
            keptX.append(ux[i]); keptY.append(pooled[i])
        }
        return IsotonicRegression(x: keptX, y: keptY)
    }

    /// `_inplace_contiguous_isotonic_regression`: blocks of violators replaced by their weighted mean.
    static func poolAdjacentViolators(_ values: [Double], weights: [Double]) -> [Double] {
        var y = values, w = weights
        let n = y.count
        var target = Array(0..<n)
        var i = 0
        while i < n {
            var k = target[i] + 1
            if k == n { break }
            if y[i] < y[k] { i = k; continue }
            var sumWY = w[i] * y[i], sumW = w[i]
            while true {
                let previous = y[k]
                sumWY += w[k] * y[k]
                sumW += w[k]
                k = target[k] + 1
                if k == n || previous < y[k] {
                    y[i] = sumWY / sumW
                    w[i] = sumW
                    target[i] = k - 1
                    target[k - 1] = i
                    if i > 0 { i = target[i - 1] }
                    break
                }
            }
        }
        i = 0
        while i < n {
            let k = target[i] + 1
            for j in (i + 1)..<max(k, i + 1) { y[j] = y[i] }
            i = k
        }
        return y
    }

    /// P(synthetic) for a score: clipped to the knots' range, then linear between knots as
    /// scipy's interp1d computes it (slope · (x − x_lo) + y_lo).
    public func predict(_ score: Double) -> Double {
        guard x.count > 1 else { return y[0] }
        let t = min(max(score, x[0]), x[x.count - 1])
        // searchsorted(x, t, side='left'), clipped to 1…n−1.
        var low = 0, high = x.count
        while low < high {
            let mid = (low + high) / 2
            if x[mid] < t { low = mid + 1 } else { high = mid }
        }
        let hi = min(max(low, 1), x.count - 1), lo = hi - 1
        let slope = (y[hi] - y[lo]) / (x[hi] - x[lo])
        return slope * (t - x[lo]) + y[lo]
    }

    func validate() throws(CalibrationError) {
        guard !x.isEmpty, x.count == y.count, x.count <= Self.maxKnots else {
            throw .invalid("an isotonic map needs 1…\(Self.maxKnots) knots with one probability each (has \(x.count) and \(y.count))")
        }
        guard x.allSatisfy(\.isFinite), y.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1 }) else {
            throw .invalid("an isotonic map's knots must be finite and its probabilities in [0, 1]")
        }
        for i in 1..<max(x.count, 1) where !(x[i] > x[i - 1]) || y[i] < y[i - 1] {
            throw .invalid("an isotonic map must rise: knot \(i) does not (scores strictly increasing, probabilities non-decreasing)")
        }
    }
}
