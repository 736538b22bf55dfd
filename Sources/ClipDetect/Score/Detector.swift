/// The verdict on one image.
public struct Detection: Sendable {
    /// One score per head, in head order (log-likelihood ratios, > 0: synthetic).
    public var scores: [Double]
    /// The fused score when there are several heads.
    public var fused: Double?
    public var probability: Double
    public var isSynthetic: Bool

    public var score: Double { fused ?? scores[0] }
}

/// Features → heads → (fusion) → score, probability and label.
public struct Detector: Sendable {
    public var extractor: FeatureExtractor
    public let heads: [Head]
    public let fusion: Fusion

    /// Checks that every head fits the encoder, and sets the feature the heads were made for.
    public init(encoder: ImageEncoder, heads: [Head], fusion: Fusion = .softOrProb, batchSize: Int = 8) throws {
        guard let first = heads.first else { throw HeadError.invalid("no head given") }
        var names = Set<String>()
        for head in heads where !names.insert(head.metadata.name).inserted {
            throw HeadError.invalid("two heads are named \(head.metadata.name): a head given twice would count twice in the fusion")
        }
        for head in heads {
            try head.check(encoder: encoder, kind: first.metadata.feature.kind, normalized: first.metadata.feature.normalized)
        }
        extractor = FeatureExtractor(encoder: encoder, kind: first.metadata.feature.kind,
                                     normalize: first.metadata.feature.normalized, batchSize: batchSize)
        self.heads = heads
        self.fusion = fusion
    }

    /// The rule that reads the final score: the head's own, or the plain one for a fused score.
    public var decision: DecisionRule { heads.count == 1 ? heads[0].decision : .plain }

    /// Output columns and how each reads: one per head, then `fusion` when there are several.
    public var columns: [(name: String, decision: DecisionRule)] {
        heads.map { ($0.metadata.name, $0.decision) } + (heads.count > 1 ? [("fusion", DecisionRule.plain)] : [])
    }

    public func detect(_ feature: [Float]) -> Detection {
        let scores = heads.map { $0.score(feature) }
        let fused = heads.count > 1 ? fusion.fuse(scores) : nil
        let score = fused ?? scores[0]
        return Detection(scores: scores, fused: fused, probability: decision.probability(score), isSynthetic: decision.isSynthetic(score))
    }

    /// Calls `emit` once per path, in order, as each batch finishes.
    public func run(paths: [String], applyOrientation: Bool = false,
                    emit: (Int, Result<Detection, Error>) throws -> Void) throws {
        var extractor = self.extractor
        extractor.applyOrientation = applyOrientation
        try extractor.run(paths: paths) { index, result in try emit(index, result.map(detect)) }
    }
}
