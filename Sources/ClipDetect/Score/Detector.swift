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
        for head in heads {
            try head.check(encoder: encoder, kind: first.metadata.feature.kind, normalized: first.metadata.feature.normalized)
        }
        extractor = FeatureExtractor(encoder: encoder, kind: first.metadata.feature.kind,
                                     normalize: first.metadata.feature.normalized, batchSize: batchSize)
        self.heads = heads
        self.fusion = fusion
    }

    public func detect(_ feature: [Float]) -> Detection {
        let scores = heads.map { $0.score(feature) }
        if heads.count == 1 {
            return Detection(scores: scores, fused: nil, probability: heads[0].probability(scores[0]),
                             isSynthetic: heads[0].isSynthetic(scores[0]))
        }
        let fused = fusion.fuse(scores)
        return Detection(scores: scores, fused: fused, probability: Fusion.sigmoid(fused), isSynthetic: fused > 0)
    }

    /// Calls `emit` once per path, in order, as each batch finishes.
    public func run(paths: [String], applyOrientation: Bool = false,
                    emit: (Int, Result<Detection, Error>) throws -> Void) throws {
        var extractor = self.extractor
        extractor.applyOrientation = applyOrientation
        try extractor.run(paths: paths) { index, result in try emit(index, result.map(detect)) }
    }
}
