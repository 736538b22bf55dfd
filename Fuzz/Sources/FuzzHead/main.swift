import ClipDetect
import FuzzSupport

/// Head files: safetensors with the clipdetect.head JSON metadata. What reads has the width its
/// metadata states, and scores a feature of that width.
runFuzzer { bytes in
    guard let checkpoint = try? Checkpoint.read(bytes), let head = try? Head.read(checkpoint) else { return }
    guard head.weights.count == head.metadata.feature.width else { fatalError("head width disagrees with its metadata") }
    let score = head.score([Float](repeating: 0.5, count: head.weights.count))
    _ = head.decision.isSynthetic(score)
    _ = head.probability(score)
}
