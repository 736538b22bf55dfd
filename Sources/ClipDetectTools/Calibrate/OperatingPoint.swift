import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// A threshold chosen on scores of known real images so that at most a given share of them is
/// called synthetic, with what that share is and how sure one can be of it.
public struct OperatingPoint: Sendable, Equatable, Codable {
    /// Scores above it are synthetic.
    public var threshold: Double
    /// The false-positive rate asked for, in [0, 1).
    public var targetFPR: Double
    /// Real images above the threshold, of those seen.
    public var falsePositives: BinomialInterval

    /// The achieved false-positive rate on the images it was chosen on.
    public var achievedFPR: Double { falsePositives.proportion }

    /// Lets at most k = ⌊target · n⌋ of the real scores lie above the threshold (ties stay below:
    /// a tie at the threshold is real). The threshold sits just above the (k+1)-th highest real
    /// score: by 1e-5 of its size, or halfway to the k-th when that is closer, since a score can
    /// move by that much with the batch it is computed in. With no room for any false positive,
    /// it sits above the highest real score.
    public static func choose(realScores: [Double], targetFPR: Double, confidence: Double = 0.95) throws(CalibrationError) -> OperatingPoint {
        guard targetFPR >= 0, targetFPR < 1 else { throw .invalid("target false-positive rate \(targetFPR) is not in [0, 1)") }
        guard !realScores.isEmpty else { throw .tooFew("a false-positive rate needs scores of real images") }
        guard realScores.allSatisfy(\.isFinite) else { throw .invalid("real-image scores that are not finite") }
        let descending = realScores.sorted(by: >)
        let allowed = min(Int((targetFPR * Double(descending.count)).rounded(.down)), descending.count - 1)
        let chosen = descending[allowed], margin = Self.margin * max(1, abs(chosen))
        let threshold = allowed > 0 ? chosen + min(margin, (descending[allowed - 1] - chosen) / 2) : chosen + margin
        let above = descending.filter { $0 > threshold }.count
        return OperatingPoint(threshold: threshold, targetFPR: targetFPR,
                              falsePositives: BinomialInterval(successes: above, trials: descending.count, confidence: confidence))
    }

    /// How far (relative) a score may move with the composition of its batch (docs/performance.md).
    package static let margin = 1e-5

    /// The fewest real images with no false positive that bound the rate below `targetFPR` at
    /// this confidence: n with (α/2)^(1/n) ≤ 1 − target, the rule of three's exact form. nil when
    /// that is more than 10^15.
    public static func imagesNeeded(toCertify targetFPR: Double, confidence: Double = 0.95) -> Int? {
        guard targetFPR > 0, targetFPR < 1 else { return nil }
        let n = (log((1 - confidence) / 2) / log1p(-targetFPR)).rounded(.up)
        return n.isFinite && n <= 1e15 ? Int(n) : nil
    }

    /// One line for people.
    public var summary: String {
        let interval = falsePositives
        var line = String(format: "threshold %.6g: %d of %d real images above it (FPR %.4g%%, %.0f%% interval %.4g%%–%.4g%%)",
                          threshold, interval.successes, interval.trials, 100 * achievedFPR, 100 * interval.confidence,
                          100 * interval.lower, 100 * interval.upper)
        if interval.upper > targetFPR {
            line += String(format: "; the interval reaches above the target %.4g%%, so these images cannot certify it", 100 * targetFPR)
            let needed = Self.imagesNeeded(toCertify: targetFPR, confidence: interval.confidence)
            if let needed, needed > interval.trials {
                line += ": even with none above, that takes at least \(needed) real images"
            } else if needed == nil {
                line += ": no practical number of images can"
            } else {
                line += ": more real images would narrow it"
            }
        }
        return line
    }
}
