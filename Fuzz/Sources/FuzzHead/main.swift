import ClipDetect
import FuzzSupport

/// Head files: safetensors with the clipdetect.head JSON metadata. What reads takes the width its
/// metadata states (a linear head's weights, or RINE's network's input), and scores a feature of that width.
runFuzzer { bytes in
    guard let checkpoint = try? Checkpoint.read(bytes), let head = try? Head.read(checkpoint) else { return }
    guard (head.trunk?.inputWidth ?? head.weights.count) == head.metadata.feature.width else { fatalError("head width disagrees with its metadata") }
    guard head.trunk == nil || head.trunk?.dim == head.weights.count else { fatalError("RINE's last layer disagrees with its network") }
    let score = head.score([Float](repeating: 0.5, count: head.metadata.feature.width))
    _ = head.decision.isSynthetic(score)
    _ = head.probability(score)
}
