import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// Platt scaling (Platt 1999, with Lin et al.'s targets): P(synthetic) = sigmoid(a · score + b),
/// fitted by Newton's method on the smoothed targets (n₊ + 1)/(n₊ + 2) and 1/(n₋ + 2), as
/// scikit-learn's sigmoid calibration does.
package enum PlattScaling {
    package static func fit(scores: [Double], labels: [Bool]) -> (a: Double, b: Double) {
        precondition(scores.count == labels.count, "one label per score")
        let positives = Double(labels.filter { $0 }.count), negatives = Double(labels.count) - positives
        let high = (positives + 1) / (positives + 2), low = 1 / (negatives + 2)
        let targets = labels.map { $0 ? high : low }
        var a = 0.0, b = log((negatives + 1) / (positives + 1)) * -1
        func loss(_ a: Double, _ b: Double) -> Double {
            zip(scores, targets).reduce(0) { sum, pair in
                let z = a * pair.0 + b
                return sum - pair.1 * Logistic.logSigmoid(z) - (1 - pair.1) * Logistic.logSigmoid(-z)
            }
        }
        var value = loss(a, b)
        for _ in 0..<200 {
            var ga = 0.0, gb = 0.0, haa = 1e-12, hab = 0.0, hbb = 1e-12
            for (s, t) in zip(scores, targets) {
                let p = Logistic.sigmoid(a * s + b), r = p - t, w = p * (1 - p)
                ga += r * s; gb += r
                haa += w * s * s; hab += w * s; hbb += w
            }
            if abs(ga) < 1e-12 && abs(gb) < 1e-12 { break }
            let det = haa * hbb - hab * hab
            let da = -(hbb * ga - hab * gb) / det, db = -(haa * gb - hab * ga) / det
            var step = 1.0
            while step > 1e-12 {
                let candidate = loss(a + step * da, b + step * db)
                if candidate <= value + 1e-4 * step * (ga * da + gb * db) {
                    a += step * da; b += step * db; value = candidate
                    break
                }
                step /= 2
            }
            if step <= 1e-12 { break }
        }
        return (a, b)
    }
}
