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
                throw HeadError.fusionOfOne(fusionGiven, head: heads.first?.metadata.name)
            }
            configuration.fusion = fusionGiven ?? configuration.fusion
            return configuration
        }
        if let fusionGiven, fusionGiven != set.fusion {
            throw HeadError.setFusion(calibrated: set.fusion, asked: fusionGiven)
        }
        configuration.fusion = set.fusion
        configuration.fusedDecision = set.decision
        return configuration
    }
}
