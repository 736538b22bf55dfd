import Foundation

/// The logistic function and its logarithm, stable for any finite input.
package enum Logistic {
    /// log(sigmoid(x)) = -softplus(-x), without overflow.
    package static func logSigmoid(_ x: Double) -> Double {
        x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x))
    }

    package static func sigmoid(_ x: Double) -> Double {
        x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
    }
}
