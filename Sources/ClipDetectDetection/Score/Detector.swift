import ClipDetectCore
import ClipDetectEncoder
import Dispatch
import Foundation

/// The verdict on one image.
public struct Detection: Sendable, Equatable {
    /// One score per head, in head order (log-likelihood ratios, > 0: synthetic).
    public var scores: [Double]
    /// The fused score when there are several heads.
    public var fused: Double?
    /// P(synthetic), calibrated when the head is (`DecisionRule`).
    public var probability: Double
    /// The two-way label (threshold, or P > 1/2).
    public var isSynthetic: Bool
    /// The label, or `uncertain` inside the rule's band.
    public var verdict: Verdict
    /// The decoded image's size; nil when the feature came from the cache.
    public var imageWidth: Int?
    /// The decoded image's height in pixels; nil from the cache.
    public var imageHeight: Int?

    /// A detection from its parts; `verdict` nil is the two-way label.
    public init(scores: [Double], fused: Double?, probability: Double, isSynthetic: Bool, verdict: Verdict? = nil,
                imageWidth: Int? = nil, imageHeight: Int? = nil) {
        self.scores = scores
        self.fused = fused
        self.probability = probability
        self.isSynthetic = isSynthetic
        self.verdict = verdict ?? (isSynthetic ? .synthetic : .real)
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
    }

    /// The score the verdict is read from: the fused one, or the only head's.
    public var score: Double { fused ?? scores[0] }
    /// The two-way label, "synthetic" or "real" (a table's `label` column, the service's `label`).
    public var label: String { isSynthetic ? "synthetic" : "real" }
}

/// Features → heads → (fusion) → score, probability and label.
public struct Detector: Sendable {
    /// How a detector runs, in one value.
    public struct Configuration: Sendable {
        /// How several heads' scores are combined (soft-or of probabilities by default); unused with one head.
        public var fusion: Fusion
        /// Images per forward pass.
        public var batchSize: Int
        /// Turn images upright by their EXIF orientation first (the reference does not).
        public var applyOrientation: Bool
        /// Bounds on each image's file size and pixels.
        public var limits: DecodeLimits
        /// Features computed before are read from here instead of computed again.
        public var cache: FeatureCache?
        /// How the fused score of several heads reads (calibration, threshold, band); nil: plainly.
        public var fusedDecision: DecisionRule?
        /// An uncertainty band that replaces the final rule's own (the command line's or the service's).
        public var band: UncertaintyBand?

        /// A configuration from its parts; the batch size is at least one.
        public init(fusion: Fusion = .softOrProb, batchSize: Int = 8, applyOrientation: Bool = false,
                    limits: DecodeLimits = DecodeLimits(), cache: FeatureCache? = nil,
                    fusedDecision: DecisionRule? = nil, band: UncertaintyBand? = nil) {
            self.fusedDecision = fusedDecision
            self.band = band
            self.fusion = fusion
            self.batchSize = max(1, batchSize)
            self.applyOrientation = applyOrientation
            self.limits = limits
            self.cache = cache
        }
    }

    /// Computes every feature the heads read (`requests`), each image decoded once. Set once, when
    /// the detector is built: what a run varies is an argument of the run.
    private(set) var extractor: FeatureExtractor
    /// The heads, in the order their scores are written.
    public let heads: [Head]
    /// For each head, the index of its feature in `extractor.requests`.
    public let inputs: [Int]
    /// How the heads' scores are fused when there are several.
    public let fusion: Fusion
    /// The rule that reads the final score: the only head's, or the fused score's.
    public let decision: DecisionRule

    /// Heads on one encoder.
    public init(encoder: ImageEncoder, heads: [Head], configuration: Configuration = Configuration()) throws {
        try self.init(heads: heads.map { ($0, encoder) }, configuration: configuration)
    }

    /// Heads, each with the encoder (backbone) it reads; they may differ in backbone, feature and view.
    /// Each image is decoded once; each encoder runs one pass per view its heads take, which gives all
    /// their features. Checks that every head fits its encoder, and that no head is given twice.
    public init(heads assigned: [(head: Head, encoder: ImageEncoder)], configuration: Configuration = Configuration()) throws {
        guard !assigned.isEmpty else { throw HeadError.noHead }
        // The same scores, under any name, would count twice in the fusion.
        for (index, (head, encoder)) in assigned.enumerated() {
            if let same = assigned[..<index].first(where: { $0.head.scoresLike(head) && $0.encoder.computesLike(encoder) }) {
                throw HeadError.givenTwice(same.head.metadata.name, alias: same.head.metadata.name == head.metadata.name ? nil : head.metadata.name)
            }
        }
        var names = Set<String>()
        for (head, _) in assigned where !names.insert(head.metadata.name).inserted {
            throw HeadError.sameName(head.metadata.name)
        }
        var encoders: [ImageEncoder] = [], requests: [FeatureRequest] = [], inputs: [Int] = []
        for (head, given) in assigned {
            try head.validate(head.metadata.name)
            // The same weights and settings loaded twice still run once.
            let encoder = encoders.first { $0.computesLike(given) } ?? given
            if !encoders.contains(where: { $0 === encoder }) { encoders.append(encoder) }
            try head.check(encoder: encoder)
            let f = head.metadata.feature
            let request = FeatureRequest(encoder: encoder, view: f.inputView, output: FeatureOutput(kind: f.kind, normalize: f.normalized))
            if let at = requests.firstIndex(where: { $0.same(as: request) }) {
                inputs.append(at)
            } else {
                inputs.append(requests.count)
                requests.append(request)
            }
        }
        let first = requests[0]
        let settings = ExtractionSettings(kind: first.output.kind, normalize: first.output.normalize, limits: configuration.limits,
                                          batchSize: configuration.batchSize, applyOrientation: configuration.applyOrientation, view: first.view)
        extractor = FeatureExtractor(encoder: first.encoder, settings: settings, cache: configuration.cache)
        extractor.alongside = Array(requests.dropFirst())
        self.inputs = inputs
        self.heads = assigned.map(\.head)
        self.fusion = configuration.fusion
        var decision = heads.count == 1 ? heads[0].decision : configuration.fusedDecision ?? .plain
        if let band = configuration.band { decision.band = band }
        try decision.validate()
        self.decision = decision
    }

    /// What decides this detector's numbers for an image, as one JSON object: each head's digest and
    /// column, the encoders (weights, settings, precision that runs), the fusion (of several heads)
    /// and final rule, EXIF orientation, and the stability check's draws when one is made. Two runs
    /// with equal identities write equal rows (`detect --resume`).
    package func identity(stability: StabilityCheck? = nil) -> String {
        struct Identity: Encodable {
            let heads: [String], encoders: [String], fusion: Fusion?, decision: DecisionRule, exifOrientation: Bool, stability: String?
            /// How each output column reads (what `eval --scores` applies to it).
            let rules: [String: DecisionRule]
        }
        let value = Identity(heads: heads.map { "\($0.metadata.name) \($0.digest)" },
                             encoders: encoders.map { "\($0.fingerprint) \($0.settingsTag) \($0.backend.precision.rawValue)" },
                             fusion: heads.count > 1 ? fusion : nil, decision: decision, exifOrientation: extractor.settings.applyOrientation,
                             stability: stability.map { "\($0.draws) draws, agreement \($0.minimumAgreement), seed \($0.chain.seed): \($0.chain.operations)" },
                             rules: Dictionary(columns.map { ($0.name, $0.decision) }, uniquingKeysWith: { first, _ in first }))
        let json = JSONEncoder()
        json.outputFormatting = .sortedKeys
        return String(decoding: (try? json.encode(value)) ?? Data(), as: UTF8.self)
    }

    /// The encoders the heads read, each once, in the heads' order.
    public var encoders: [ImageEncoder] {
        extractor.requests.reduce(into: []) { found, request in if !found.contains(where: { $0 === request.encoder }) { found.append(request.encoder) } }
    }

    /// The encoder head `index` reads.
    public func encoder(ofHead index: Int) -> ImageEncoder { extractor.requests[inputs[index]].encoder }

    /// Output columns and how each reads: one per head, then `fusion` when there are several.
    public var columns: [(name: String, decision: DecisionRule)] {
        heads.count == 1 ? [(heads[0].metadata.name, decision)]
            : heads.map { ($0.metadata.name, $0.decision) } + [("fusion", decision)]
    }

    /// The fused score of the heads' scores. The probability rules (mean_prob, soft_or_prob) take
    /// each head's calibrated logit, so a calibrated head enters as the probability it reports; the
    /// logit rules take the raw scores, as the reference does.
    public func fuse(_ scores: [Double]) -> Double {
        switch fusion {
        case .meanProb, .softOrProb: fusion.fuse(zip(heads, scores).map { $0.decision.logit($1) })
        case .meanLogit, .maxLogit, .medianLogit, .lseLogit: fusion.fuse(scores)
        }
    }

    /// The verdict from an image's features, one per `extractor.requests`.
    public func detect(features: [[Float]]) -> Detection {
        let scores = zip(heads, inputs).map { head, input in head.score(image: features[input]) }
        let fused = heads.count > 1 ? fuse(scores) : nil
        let score = fused ?? scores[0]
        return Detection(scores: scores, fused: fused, probability: decision.probability(score), isSynthetic: decision.isSynthetic(score),
                         verdict: decision.verdict(score))
    }

    /// A score that is not a number is an error, never a label.
    private func detection(_ feature: ExtractedFeature) throws -> Detection {
        var detection = detect(features: feature.outputs)
        guard detection.scores.allSatisfy(\.isFinite), detection.score.isFinite else { throw ScoreError.notFinite }
        (detection.imageWidth, detection.imageHeight) = (feature.width, feature.height)
        return detection
    }

    /// How images are read, decoded and batched (from the configuration it was built with).
    public var settings: ExtractionSettings { extractor.settings }

    /// The same heads with other limits, orientation and batch size: a new detector, this one unchanged.
    public func with(limits: DecodeLimits, applyOrientation: Bool, batchSize: Int) -> Detector {
        var copy = self
        copy.extractor.settings.limits = limits
        copy.extractor.settings.applyOrientation = applyOrientation
        copy.extractor.settings.batchSize = max(1, batchSize)
        return copy
    }

    /// Calls `emit` once per source, in order, as each batch finishes. `impairment`: each image is
    /// impaired in memory first (see `FeatureExtractor.run`).
    public func run(_ sources: [ImageSource], impairment: ImpairmentChain? = nil, emit: (Int, Result<Detection, Error>) throws -> Void) throws {
        try extractor.run(sources, impairment: impairment) { index, result in try emit(index, result.flatMap { feature in Result { try detection(feature) } }) }
    }

    /// Calls `emit` once per path, in order, as each batch finishes.
    public func run(paths: [String], impairment: ImpairmentChain? = nil, emit: (Int, Result<Detection, Error>) throws -> Void) throws {
        try run(paths.map(ImageSource.file), impairment: impairment, emit: emit)
    }

    /// Verdicts on a few images (files, bytes or decoded images), one result each, in order; an image
    /// that fails does not fail the others.
    /// `wanted`: see `FeatureExtractor.run(_:wanted:emit:)`.
    public func detect(_ sources: [ImageSource], wanted: (@Sendable (Int) -> Bool)? = nil) -> [Result<Detection, Error>] {
        extractor.features(sources, wanted: wanted).map { $0.flatMap { feature in Result { try detection(feature) } } }
    }

    /// The verdict on one image.
    public func detect(_ source: ImageSource) throws -> Detection {
        try detect([source])[0].get()
    }

    /// `detect(_:)` off the caller's thread: the forward pass blocks its cores for a while, which an
    /// async caller (a server) must not do on the cooperative pool.
    public func detect(_ sources: [ImageSource], wanted: (@Sendable (Int) -> Bool)? = nil) async -> [Result<Detection, Error>] {
        await withCheckedContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async { continuation.resume(returning: self.detect(sources, wanted: wanted)) }
        }
    }

    /// The verdict on one image, off the caller's thread.
    public func detect(_ source: ImageSource) async throws -> Detection {
        try await detect([source])[0].get()
    }
}

/// A score that is not a finite number: reported as the image's error, not read as a label.
public enum ScoreError: Error, CustomStringConvertible, ClassifiedError {
    case notFinite
    public var description: String { "the score is not a finite number (the image or the weights give NaN or infinity)" }
    public var kind: FailureKind { .invalidInput }
}
