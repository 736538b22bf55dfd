import ClipDetectCore
import Foundation

extension HeadSelection {
    /// The detector's configuration with the set's fusion and fused rule; refuses another fusion,
    /// which the set's calibration does not describe, and a fusion asked of one head (a second
    /// head forgotten would otherwise go unnoticed: one head's score is the result).
    public func configure(_ configuration: Detector.Configuration, fusionGiven: Fusion?) throws -> Detector.Configuration {
        var configuration = configuration
        guard let set else {
            if let fusionGiven, heads.count < 2 {
                throw HeadError.invalid("\(fusionGiven.rawValue) fusion needs two or more heads, not \(heads.isEmpty ? "none" : "only \(heads[0].metadata.name)")")
            }
            configuration.fusion = fusionGiven ?? configuration.fusion
            return configuration
        }
        if let fusionGiven, fusionGiven != set.fusion {
            throw HeadError.invalid("the head set was calibrated for \(set.fusion.rawValue) fusion, not \(fusionGiven.rawValue)")
        }
        configuration.fusion = set.fusion
        configuration.fusedDecision = set.decision
        return configuration
    }
}
