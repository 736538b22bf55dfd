import CBLAS
import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// Training data: feature rows with labels (true: synthetic) and optional per-sample weights.
public struct TrainingSet: Sendable {
    /// One feature vector per image, all of one width.
    public var features: [[Float]]
    /// One label per row (true: synthetic).
    public var labels: [Bool]

    /// A set from its rows and labels; traps unless there is one label per row.
    public init(features: [[Float]], labels: [Bool]) {
        precondition(features.count == labels.count, "one label per feature row")
        self.features = features
        self.labels = labels
    }

    /// The features' width (0 for an empty set).
    public var width: Int { features.first?.count ?? 0 }
    /// Synthetic rows.
    public var positives: Int { labels.filter { $0 }.count }
    /// Real rows.
    public var negatives: Int { labels.count - positives }

    /// The rows at `indices`, in that order (a cross-validation fold).
    public func subset(_ indices: [Int]) -> TrainingSet {
        TrainingSet(features: indices.map { features[$0] }, labels: indices.map { labels[$0] })
    }

    /// Seeded synthetic features for benchmarks: `perClass` L2-normalised Gaussian rows of each
    /// class, the two classes shifted by ±0.03 along one random direction (they overlap, as CLIP
    /// features of real and generated images do), alternating real, synthetic.
    package static func synthetic(perClass: Int, width: Int, seed: UInt64 = 3) -> TrainingSet {
        var generator = SeededGenerator(seed: seed)
        func gaussian() -> Float {
            let u = max(Double(generator.next() >> 11) / Double(1 << 53), 1e-300), v = Double(generator.next() >> 11) / Double(1 << 53)
            return Float((-2 * log(u)).squareRoot() * cos(2 * .pi * v))
        }
        let direction = (0..<width).map { _ in gaussian() }
        var features: [[Float]] = [], labels: [Bool] = []
        for index in 0..<(2 * perClass) {
            let label = index % 2 == 1
            var row = (0..<width).map { j in gaussian() + (label ? 0.03 : -0.03) * direction[j] }
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            row = row.map { $0 / norm }
            features.append(row)
            labels.append(label)
        }
        return TrainingSet(features: features, labels: labels)
    }
}

/// The two linear classifiers of the paper's recipe, with scikit-learn's objectives:
/// - `svm`: LinearSVC(loss='hinge', dual=True): ½‖[w, b]‖² + Σ Cᵢ max(0, 1 − yᵢ(w·xᵢ + b)),
///   the intercept regularised as liblinear does (a bias feature of 1); dual coordinate descent.
/// - `logisticRegression`: LogisticRegression(penalty='l2'): ½‖w‖² + Σ Cᵢ log(1 + e^(−yᵢ(w·xᵢ + b))),
///   the intercept not regularised; Newton's method with conjugate gradients.
/// `balanced` weights Cᵢ by n / (2 · n_class), as class_weight='balanced'.
public enum LinearClassifier: String, Sendable, CaseIterable, Codable {
    case svm
    case logisticRegression = "logreg"

    /// A fitted hyperplane: scikit-learn's `coef_` and `intercept_`, in double precision.
    public struct Model: Sendable, Equatable {
        /// One weight per feature component.
        public var weights: [Double]
        /// The intercept.
        public var bias: Double

        /// w · x + b, as scikit-learn's `decision_function` (> 0: synthetic).
        public func decision(_ x: [Float]) -> Double {
            var sum = bias
            for i in 0..<weights.count { sum += weights[i] * Double(x[i]) }
            return sum
        }
    }

    /// `passes` caps the SVM's sweeps over its active set (liblinear's and scikit-learn's max_iter);
    /// Newton's method stops on `tolerance` alone.
    public func fit(_ data: TrainingSet, C: Double, balanced: Bool = false, tolerance: Double = 1e-8, passes: Int = 100_000) -> Model {
        let costs = Self.costs(data, C: C, balanced: balanced)
        switch self {
        case .svm: return Self.dualCoordinateDescent(data, costs: costs, tolerance: tolerance, passes: passes)
        case .logisticRegression: return Self.newton(data, costs: costs, tolerance: tolerance)
        }
    }

    static func costs(_ data: TrainingSet, C: Double, balanced: Bool) -> [Double] {
        guard balanced else { return Array(repeating: C, count: data.labels.count) }
        let n = Double(data.labels.count)
        let positive = n / (2 * Double(max(data.positives, 1))), negative = n / (2 * Double(max(data.negatives, 1)))
        return data.labels.map { C * ($0 ? positive : negative) }
    }

    @inline(__always)
    static func dot(_ w: UnsafeBufferPointer<Double>, _ x: [Float]) -> Double {
        var sum = 0.0
        for i in 0..<x.count { sum += w[i] * Double(x[i]) }
        return sum
    }

    /// Rows as one contiguous double matrix with a trailing 1 (the bias feature), for BLAS level-1 calls.
    static func augmented(_ data: TrainingSet) -> [Double] {
        let d = data.width
        var matrix = [Double](repeating: 1, count: data.labels.count * (d + 1))
        for (i, row) in data.features.enumerated() {
            for j in 0..<d { matrix[i * (d + 1) + j] = Double(row[j]) }
        }
        return matrix
    }

    /// Hsieh et al. (2008), as liblinear's L1-loss SVC dual solver with shrinking: coordinates are
    /// visited in a seeded random order; those stuck at a bound leave the active set until the
    /// projected-gradient gap over the active set is below `tolerance`, then all are checked again.
    static func dualCoordinateDescent(_ data: TrainingSet, costs: [Double], tolerance: Double, passes: Int) -> Model {
        let n = data.labels.count, d = data.width, stride = d + 1
        let x = augmented(data)
        var w = [Double](repeating: 0, count: stride)
        var alpha = [Double](repeating: 0, count: n)
        let y = data.labels.map { $0 ? 1.0 : -1.0 }
        let diagonal = (0..<n).map { i in x.withUnsafeBufferPointer { cblas_ddot(Int32(stride), $0.baseAddress! + i * stride, 1, $0.baseAddress! + i * stride, 1) } }
        var active = Array(0..<n)
        var generator = SeededGenerator(seed: 1)
        var oldMax = Double.infinity, oldMin = -Double.infinity
        x.withUnsafeBufferPointer { xp in
            for _ in 0..<passes {
                active.shuffle(using: &generator)
                var gapMax = -Double.infinity, gapMin = Double.infinity
                var kept: [Int] = []
                kept.reserveCapacity(active.count)
                for i in active {
                    let row = xp.baseAddress! + i * stride
                    let gradient = y[i] * w.withUnsafeBufferPointer { cblas_ddot(Int32(stride), $0.baseAddress!, 1, row, 1) } - 1
                    var projected = gradient
                    if alpha[i] == 0 {
                        if gradient > oldMax { continue }  // shrink: stays at the lower bound
                        projected = min(gradient, 0)
                    } else if alpha[i] == costs[i] {
                        if gradient < oldMin { continue }  // shrink: stays at the upper bound
                        projected = max(gradient, 0)
                    }
                    kept.append(i)
                    gapMax = max(gapMax, projected)
                    gapMin = min(gapMin, projected)
                    guard abs(projected) > 1e-14 else { continue }
                    let old = alpha[i]
                    alpha[i] = min(max(old - gradient / diagonal[i], 0), costs[i])
                    let step = (alpha[i] - old) * y[i]
                    w.withUnsafeMutableBufferPointer { cblas_daxpy(Int32(stride), step, row, 1, $0.baseAddress!, 1) }
                }
                active = kept
                if gapMax - gapMin <= tolerance {
                    if active.count == n { break }
                    // Converged on the active set: check everything once more.
                    active = Array(0..<n)
                    oldMax = .infinity
                    oldMin = -.infinity
                    continue
                }
                oldMax = gapMax > 0 ? gapMax : .infinity
                oldMin = gapMin < 0 ? gapMin : -.infinity
            }
        }
        return Model(weights: Array(w[0..<d]), bias: w[d])
    }

    /// Newton's method on the primal, each step solved by conjugate gradients (Hessian-vector
    /// products only), with a backtracking line search; stops when ‖gradient‖ ≤ tolerance · ‖gradient₀‖.
    static func newton(_ data: TrainingSet, costs: [Double], tolerance: Double) -> Model {
        let n = data.labels.count, d = data.width
        let y = data.labels.map { $0 ? 1.0 : -1.0 }
        var w = [Double](repeating: 0, count: d + 1)  // last: the intercept, not regularised

        func margins(_ w: [Double]) -> [Double] {
            w.withUnsafeBufferPointer { p in data.features.map { dot(p, $0) + w[d] } }
        }
        func objective(_ w: [Double], _ m: [Double]) -> Double {
            var value = 0.0
            for j in 0..<d { value += 0.5 * w[j] * w[j] }
            for i in 0..<n { value -= costs[i] * Logistic.logSigmoid(y[i] * m[i]) }
            return value
        }
        var m = margins(w)
        var value = objective(w, m)
        var firstNorm = 0.0
        for iteration in 0..<200 {
            // Gradient and the curvature of each sample.
            var gradient = Array(w[0..<d]) + [0]
            var curvature = [Double](repeating: 0, count: n)
            for i in 0..<n {
                let s = Logistic.sigmoid(y[i] * m[i])
                let coefficient = -costs[i] * (1 - s) * y[i]
                curvature[i] = costs[i] * s * (1 - s)
                let x = data.features[i]
                for j in 0..<d { gradient[j] += coefficient * Double(x[j]) }
                gradient[d] += coefficient
            }
            let norm = gradient.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if iteration == 0 { firstNorm = max(norm, 1e-300) }
            if norm <= tolerance * firstNorm || norm < 1e-12 { break }

            func hessian(_ v: [Double]) -> [Double] {
                var out = Array(v[0..<d]) + [0]
                for i in 0..<n where curvature[i] > 0 {
                    let x = data.features[i]
                    let projection = (v.withUnsafeBufferPointer { dot($0, x) } + v[d]) * curvature[i]
                    for j in 0..<d { out[j] += projection * Double(x[j]) }
                    out[d] += projection
                }
                return out
            }
            // Conjugate gradients for H · step = −gradient.
            var step = [Double](repeating: 0, count: d + 1)
            var residual = gradient.map { -$0 }, direction = residual
            var rr = residual.reduce(0) { $0 + $1 * $1 }
            let target = min(0.1, norm.squareRoot()) * norm
            for _ in 0..<(2 * (d + 1)) where rr.squareRoot() > target {
                let hd = hessian(direction)
                let dhd = zip(direction, hd).reduce(0) { $0 + $1.0 * $1.1 }
                guard dhd > 0 else { break }
                let a = rr / dhd
                for j in 0...d { step[j] += a * direction[j]; residual[j] -= a * hd[j] }
                let next = residual.reduce(0) { $0 + $1 * $1 }
                for j in 0...d { direction[j] = residual[j] + next / rr * direction[j] }
                rr = next
            }
            // Backtracking (Armijo) line search.
            let slope = zip(gradient, step).reduce(0) { $0 + $1.0 * $1.1 }
            var t = 1.0
            while t > 1e-10 {
                let candidate = zip(w, step).map { $0 + t * $1 }
                let candidateMargins = margins(candidate)
                let candidateValue = objective(candidate, candidateMargins)
                if candidateValue <= value + 1e-4 * t * slope {
                    w = candidate
                    m = candidateMargins
                    value = candidateValue
                    break
                }
                t /= 2
            }
            if t <= 1e-10 { break }
        }
        return Model(weights: Array(w[0..<d]), bias: w[d])
    }
}
