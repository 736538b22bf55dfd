import ClipDetect
import FuzzSupport

/// Head files: safetensors with the clipdetect.head JSON metadata. What reads takes the width its
/// metadata states (a linear head's weights, or RINE's network's input), and scores a feature of that width.
runFuzzer { bytes in
    guard let checkpoint = try? Checkpoint.read(bytes), let head = try? Head.read(checkpoint) else { return }
    check(head)
}

func check(_ head: Head) {
    let width = head.metadata.feature.width
    if let trunk = head.trunk {
        if trunk.inputWidth != width { fatalError("RINE's network takes another width than its metadata's") }
        if trunk.dim != head.weights.count { fatalError("RINE's last layer disagrees with its network") }
    } else if head.weights.count != width {
        fatalError("head width disagrees with its metadata")
    }
    let score = head.score([Float](repeating: 0.5, count: width))
    _ = head.decision.isSynthetic(score)
    _ = head.probability(score)
}
