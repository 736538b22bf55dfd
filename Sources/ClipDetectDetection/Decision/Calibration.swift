import ClipDetectCore
import ClipDetectEncoder
import Foundation

/// How a head's score reads as P(synthetic): Platt scaling, or an isotonic (monotone, piecewise
/// linear) map fitted on labelled images.
public enum Calibration: Sendable, Equatable {
    /// P = sigmoid(a · score + b), as scikit-learn's sigmoid calibration.
    case platt(a: Double, b: Double)
    /// scikit-learn's `IsotonicRegression(out_of_bounds='clip')`: linear between the knots,
    /// constant beyond the first and last.
    case isotonic(IsotonicRegression)

    /// Platt scaling with slope `a` and offset `b`.
    public init(a: Double, b: Double) { self = .platt(a: a, b: b) }

    /// P(synthetic) for a score, in [0, 1].
    public func probability(_ score: Double) -> Double {
        switch self {
        case .platt(let a, let b): Logistic.sigmoid(a * score + b)
        case .isotonic(let map): map.predict(score)
        }
    }

    /// log(p / (1 − p)). An isotonic map can give exactly 0 or 1; where a logit is needed
    /// (NLL, fusion of probabilities) those read as 1e-12 and 1 − 1e-12.
    public func logit(_ score: Double) -> Double {
        switch self {
        case .platt(let a, let b): return a * score + b
        case .isotonic(let map):
            let p = min(max(map.predict(score), 1e-12), 1 - 1e-12)
            return log(p) - log1p(-p)
        }
    }

    /// Refuses a map that would not rise with the score or is not made of numbers.
    public func validate() throws(CalibrationError) {
        switch self {
        case .platt(let a, let b):
            guard a.isFinite, b.isFinite, a > 0 else {
                throw .invalid("Platt calibration a = \(a), b = \(b) does not rise with the score (a must be a number above 0)")
            }
            // A slope this steep is a threshold, and its probabilities are 0 or 1: a fit gone wrong.
            guard a < 1e6, abs(b) < 1e12 else {
                throw .invalid("Platt calibration a = \(a), b = \(b) is out of range (a below 1e6, |b| below 1e12)")
            }
        case .isotonic(let map): try map.validate()
        }
    }

    /// One line for people: what the probability is.
    public var summary: String {
        switch self {
        case .platt(let a, let b): String(format: "Platt: P = sigmoid(%.6g · score %@ %.6g)", a, b < 0 ? "−" : "+", abs(b))
        case .isotonic(let map): "isotonic: \(map.x.count) knots on scores \(String(format: "%.4g", map.x.first ?? 0))…\(String(format: "%.4g", map.x.last ?? 0))"
        }
    }
}

/// Why a calibration, threshold or band cannot be used or fitted.
public enum CalibrationError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    /// Not enough images, or not both classes, for what was asked.
    case tooFew(String)

    public var description: String {
        switch self {
        case .invalid(let why): why
        case .tooFew(let why): why
        }
    }
}

extension CalibrationError: ClassifiedError {
    public var kind: FailureKind {
        switch self {
        case .invalid: .invalidInput
        case .tooFew: .tooSmall
        }
    }
}

extension Calibration: Codable {
    enum Keys: String, CodingKey { case method, a, b, x, y }

    /// Files written before isotonic maps existed hold `{"a", "b"}` alone: Platt.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        switch try container.decodeIfPresent(String.self, forKey: .method) ?? "platt" {
        case "platt": self = .platt(a: try container.decode(Double.self, forKey: .a), b: try container.decode(Double.self, forKey: .b))
        case "isotonic": self = .isotonic(IsotonicRegression(x: try container.decode([Double].self, forKey: .x),
                                                             y: try container.decode([Double].self, forKey: .y)))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .method, in: container, debugDescription: "unknown calibration method \(other)")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        switch self {
        case .platt(let a, let b):
            try container.encode("platt", forKey: .method)
            try container.encode(a, forKey: .a)
            try container.encode(b, forKey: .b)
        case .isotonic(let map):
            try container.encode("isotonic", forKey: .method)
            try container.encode(map.x, forKey: .x)
            try container.encode(map.y, forKey: .y)
        }
    }
}
