import ClipDetectCore
import ClipDetectEncoder
import Foundation

/// A linear detector on CLIP features: score = w · f + b, a log-likelihood ratio (> 0: synthetic).
public struct Head: Sendable, Equatable {
    /// What the head was trained on; a head refuses to score any other feature.
    public struct Feature: Codable, Sendable, Equatable {
        /// `ModelDescription.architecture` of the backbone.
        public var architecture: String
        /// `ImageEncoder.fingerprint` of the backbone weights, when known.
        public var fingerprint: String?
        /// The backbone's published name, when known (e.g. laion/CLIP-ViT-L-14-CommonPool.XL-s13B-b90K).
        public var backbone: String?
        /// Which vector of the encoder the head reads.
        public var kind: FeatureKind
        /// Whether the feature was L2-normalised before the head.
        public var normalized: Bool
        /// Values in one crop's feature: the encoder's `featureWidth` of `kind`.
        public var width: Int
        /// Where the backbone was when the head was made on a local file (not a named model): found
        /// again from here when no model is named.
        public var backbonePath: String?
        /// How images become the encoder's input for this head; nil (head files from before views): resize-crop.
        public var view: InputView?

        /// The view this head's features are computed with.
        public var inputView: InputView { view ?? .resizeCrop }

        /// A feature from its parts, as a head file records them.
        public init(architecture: String, fingerprint: String?, backbone: String?, kind: FeatureKind, normalized: Bool, width: Int,
                    backbonePath: String? = nil, view: InputView? = nil) {
            self.view = view
            self.architecture = architecture
            self.fingerprint = fingerprint
            self.backbone = backbone
            self.kind = kind
            self.normalized = normalized
            self.width = width
            self.backbonePath = backbonePath
        }

        /// The feature this encoder gives, bound to its weights by fingerprint.
        public init(encoder: ImageEncoder, kind: FeatureKind = .pooled, normalized: Bool = true, backbone: String? = nil) {
            self.init(architecture: encoder.description.architecture, fingerprint: encoder.fingerprint, backbone: backbone,
                      kind: kind, normalized: normalized, width: encoder.featureWidth(kind),
                      backbonePath: backbone == nil ? encoder.path.map { URL(fileURLWithPath: $0).standardizedFileURL.path } : nil)
        }

        /// What the architecture records that a checkpoint may not state: its activation and heads.
        public var hints: ModelHints {
            let parts = architecture.split(separator: "-")
            let heads = parts.first { $0.hasPrefix("h") }.flatMap { Int($0.dropFirst()) }
            return ModelHints(activation: ModelDescription.Activation.allCases.first { parts.contains(Substring($0.rawValue)) }, heads: heads)
        }
    }

    /// What a head file records beside its weights: its name, the feature it reads and how its score reads.
    public struct Metadata: Codable, Sendable, Equatable {
        /// The head's name: its score column in detection tables.
        public var name: String
        /// The feature the head was trained on.
        public var feature: Feature
        /// Maps the score to P(synthetic); nil: the plain sigmoid of the score.
        public var calibration: Calibration?
        /// Scores above it are labelled synthetic; nil: synthetic when the (calibrated) probability exceeds 1/2.
        public var threshold: Double?
        /// Where the verdict is `uncertain`; nil: never.
        public var band: UncertaintyBand?
        /// What the calibration, threshold and band were fitted on.
        public var calibrationSet: CalibrationSet?
        /// Free text: where the head came from or what it was trained on.
        public var provenance: String?

        /// Metadata from its parts.
        public init(name: String, feature: Feature, calibration: Calibration? = nil, threshold: Double? = nil, provenance: String? = nil,
                    band: UncertaintyBand? = nil, calibrationSet: CalibrationSet? = nil) {
            self.name = name
            self.feature = feature
            self.calibration = calibration
            self.threshold = threshold
            self.band = band
            self.calibrationSet = calibrationSet
            self.provenance = provenance
        }
    }

    /// The last (or only) linear layer.
    public var weights: [Float]
    /// The last layer's bias, added to w · f.
    public var bias: Float
    /// The head's name, feature, calibration, threshold and provenance.
    public var metadata: Metadata
    /// RINE's network before its last layer; nil for a linear head.
    public var trunk: RINETrunk?

    /// A head from its last layer, metadata and (for RINE) trunk.
    public init(weights: [Float], bias: Float, metadata: Metadata, trunk: RINETrunk? = nil) {
        self.weights = weights
        self.bias = bias
        self.metadata = metadata
        self.trunk = trunk
    }

    /// The score of one crop's feature; a linear head traps on a feature of another width.
    public func score(_ feature: [Float]) -> Double {
        if let trunk {
            let z = trunk(feature)
            var sum = Double(bias)
            for i in 0..<weights.count { sum += Double(weights[i]) * z[i] }
            return sum
        }
        precondition(feature.count == weights.count, "feature width \(feature.count) != head width \(weights.count)")
        var sum = Double(bias)
        for i in 0..<weights.count { sum += Double(weights[i]) * Double(feature[i]) }
        return sum
    }

    /// The score of one image in this head's view. A view of several crops gives the crops'
    /// features one after another (`FeatureExtractor`, the cache, `embed`); the image's score is the
    /// mean of theirs, as RINE averages its ten crops' logits.
    public func score(image feature: [Float]) -> Double {
        let crops = metadata.feature.inputView.crops, width = feature.count / crops
        guard crops > 1 else { return score(feature) }
        return (0..<crops).reduce(0.0) { $0 + score(Array(feature[($1 * width)..<(($1 + 1) * width)])) } / Double(crops)
    }

    /// How this head's scores read as probabilities and labels.
    public var decision: DecisionRule { DecisionRule(calibration: metadata.calibration, threshold: metadata.threshold, band: metadata.band) }

    /// Calibrated when the head carries a calibration, the plain sigmoid of the score otherwise.
    public func probability(_ score: Double) -> Double { decision.probability(score) }

    /// The two-way label of a score by this head's rule (`DecisionRule.isSynthetic`).
    public func isSynthetic(_ score: Double) -> Bool { decision.isSynthetic(score) }

    /// Gives the same scores as `other` on the same encoder: the same weights, network and feature.
    /// Name, calibration and threshold are not compared (they read the score, they do not make it),
    /// nor the backbone recorded (the caller compares the encoders the heads run on).
    public func scoresLike(_ other: Head) -> Bool {
        let f = metadata.feature, g = other.metadata.feature
        return weights == other.weights && bias == other.bias && trunk == other.trunk && f.kind == g.kind && f.normalized == g.normalized
            && f.inputView == g.inputView
    }

    /// Columns of a detection table that are not scores (`eval` reads every other column as one).
    package static let nonScoreColumns = Set(["filename", "probability", "label", "verdict", "error"] + stabilityColumns)

    /// The columns a stability check adds to a detection table, after the verdict (`StabilityCheck`).
    public static let stabilityColumns = ["agreement", "score_min", "score_median", "score_max", "stability"]

    /// How a head's score reads as P(synthetic) (`Calibration`, in the decision rules).
    public typealias Calibration = ClipDetectDetection.Calibration
    /// Column names of the output that a head may not take (the fused score's, and a list's label).
    package static let reservedNames = nonScoreColumns.union(["fusion", "typ"])

    /// Refuses numbers that would give a wrong verdict silently: non-finite weights, a calibration
    /// that does not rise with the score, a threshold that is not a number, a name that is a column.
    public func validate(_ source: String = "head") throws {
        guard weights.allSatisfy(\.isFinite), bias.isFinite else { throw HeadError.notFinite(source: source) }
        do { try decision.validate() } catch { throw HeadError.badDecision(source: source, error) }
        try Self.validate(name: metadata.name, source: source)
    }

    /// Refuses a name no score column can take: empty, one of the other columns, or with a control
    /// or format character (a newline breaks the row, an escape sequence reaches whoever prints the
    /// table, a right-to-left override makes it read as another name).
    public static func validate(name: String, source: String = "head") throws {
        func hidden(_ scalar: Unicode.Scalar) -> Bool { [.control, .format].contains(scalar.properties.generalCategory) }
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, !reservedNames.contains(trimmed), !name.unicodeScalars.contains(where: hidden) else {
            let shown = name.unicodeScalars.map { hidden($0) ? "\\u{\(String($0.value, radix: 16, uppercase: true))}" : String($0) }.joined()
            throw HeadError.badName(source: source, shown: shown)
        }
    }

    /// Refuses an encoder the head was not made for (its weights, or the feature it takes).
    public func check(encoder: ImageEncoder) throws {
        let f = metadata.feature
        func mismatch(_ why: HeadError.Mismatch) -> HeadError { .mismatch(head: metadata.name, why) }
        if f.architecture != encoder.description.architecture {
            throw mismatch(.architecture(head: f.architecture, backbone: encoder.description.architecture))
        }
        if let expected = f.fingerprint, expected != encoder.fingerprint { throw mismatch(.fingerprint(head: expected, backbone: encoder.fingerprint)) }
        if f.kind == .projected, encoder.description.projectionDim == nil { throw mismatch(.noProjection) }
        if f.width != encoder.featureWidth(f.kind) { throw mismatch(.feature(f, backboneWidth: encoder.featureWidth(f.kind))) }
        if let trunk, trunk.blocks != encoder.description.layers || trunk.tokenWidth != encoder.description.width {
            throw mismatch(.trunk(blocks: trunk.blocks, width: trunk.tokenWidth, backboneBlocks: encoder.description.layers,
                                  backboneWidth: encoder.description.width))
        }
    }
}

/// Why a head, or a choice of heads, cannot be used. `source` names the file (and the head within a set).
public enum HeadError: Error, Equatable, Sendable {
    case noHead
    /// One head given twice, or two names for the same weights on the same feature.
    case givenTwice(String, alias: String?)
    /// Two heads would share one score column.
    case sameName(String)
    /// A fusion asked of fewer than two heads (the one there, if any).
    case fusionOfOne(Fusion, head: String?)
    case setFusion(calibrated: Fusion, asked: Fusion)
    /// A head set is calibrated as a whole and scores alone.
    case setNotAlone
    case noMetadata(path: String)
    case badMetadata(path: String, reason: String)
    case setSize(path: String, count: Int)
    case unnamedTensors(path: String)
    case badDecision(source: String, CalibrationError)
    case notFinite(source: String)
    case badName(source: String, shown: String)
    /// Tensors missing or of the wrong shape: what was found and what the format takes.
    case tensors(source: String, found: String, expected: String)
    /// RINE's network on a feature it does not take.
    case rineFeature(source: String, takes: Int, given: Head.Feature)
    case notRINE(source: String, reason: String)
    case rineResized
    case unknownArchitecture(String)
    case unsupportedNorm(String)
    case backboneUnnamed
    /// A head that does not fit the backbone it is given (`head` when it has a name yet).
    case mismatch(head: String?, Mismatch)

    /// How a head and the backbone it is given differ.
    public enum Mismatch: Equatable, Sendable {
        case architecture(head: String, backbone: String)
        case fingerprint(head: String, backbone: String)
        case noProjection
        case feature(Head.Feature, backboneWidth: Int)
        case trunk(blocks: Int, width: Int, backboneBlocks: Int, backboneWidth: Int)
        case width(head: Int, backbone: Int, feature: FeatureKind)
        /// The reference's config names a backbone of another architecture than the one given.
        case referenceArch(arch: String, model: String, architecture: String, given: String, givenArchitecture: String)
    }
}

extension HeadError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .mismatch(let head, let why):
            if case .trunk = why { "head does not fit: " + (head.map { "\($0)'s " } ?? "its ") + "\(why)" } else {
                "head does not fit: " + (head.map { "\($0) " } ?? "") + "\(why)"
            }
        default: "invalid head: \(problem)"
        }
    }

    private var problem: String {
        switch self {
        case .noHead: "no head given"
        case .givenTwice(let name, nil): "\(name) is given twice: it would count twice in the fusion"
        case .givenTwice(let name, let alias?): "\(name) and \(alias) are the same head (same weights on the same feature): it would count twice in the fusion"
        case .sameName(let name): "two heads are named \(name): each needs its own column"
        case .fusionOfOne(let fusion, let head): "\(fusion.rawValue) fusion needs two or more heads, not \(head.map { "only \($0)" } ?? "none")"
        case .setFusion(let calibrated, let asked): "the head set was calibrated for \(calibrated.rawValue) fusion, not \(asked.rawValue)"
        case .setNotAlone: "a head set is calibrated as a whole: give it alone, not with other heads or sets"
        case .noMetadata(let path): "\(PathName.display(path)) has no \(Head.metadataKey) metadata"
        case .badMetadata(let path, let reason): "\(PathName.display(path)): metadata is not valid (\(reason))"
        case .setSize(let path, let count): "\(PathName.display(path)): a head set holds 2…\(HeadSet.maxHeads) heads, not \(count)"
        case .unnamedTensors(let path): "\(PathName.display(path)): tensors that no head names"
        case .badDecision(let source, let error): "\(source): \(error)"
        case .notFinite(let source): "\(source): weights that are not finite"
        case .badName(let source, let shown): "\(source): a head may not be named \"\(shown)\""
        case .tensors(let source, let found, let expected): "\(source): \(found), expected \(expected)"
        case .rineFeature(let source, let takes, let given):
            "\(source): RINE's network takes the raw blocks feature (\(takes) values) of the crop or ten-crop view; "
                + "the metadata says \(given.normalized ? "normalised" : "raw") \(given.kind.rawValue) (\(given.width)) of the \(given.inputView.rawValue) view"
        case .notRINE(let source, let reason): "\(source): not RINE's network: \(reason)"
        case .rineResized: "RINE is evaluated on a crop or ten crops, not resized"
        case .unknownArchitecture(let arch): "config arch \(arch) is not a known CLIP backbone; give the backbone checkpoint"
        case .unsupportedNorm(let norm): "config norm_type \(norm) is not supported (clip)"
        case .backboneUnnamed: "nothing says which backbone this head needs: give the backbone checkpoint or the reference's config.yaml"
        case .mismatch: ""
        }
    }
}

extension HeadError.Mismatch: CustomStringConvertible {
    public var description: String {
        switch self {
        case .architecture(let head, let backbone): "was made for a \(head) backbone, not \(backbone)"
        case .fingerprint(let head, let backbone): "was made for backbone weights \(head.prefix(12))…, not \(backbone.prefix(12))…"
        case .noProjection: "takes projected features, and this backbone has no projection"
        case .feature(let f, let width): "takes \(f.normalized ? "normalised" : "raw") \(f.kind.rawValue) features of width \(f.width), not the backbone's \(width)"
        case .trunk(let blocks, let width, let backboneBlocks, let backboneWidth):
            "network takes \(blocks) blocks of \(width), not the backbone's \(backboneBlocks) of \(backboneWidth)"
        case .width(let head, let backbone, let kind): "takes \(head)-d \(kind.rawValue) features, and the backbone gives \(backbone)"
        case .referenceArch(let arch, let model, let architecture, let given, let givenArchitecture):
            "config arch \(arch) is a head for \(model) (\(architecture)); \(given) is a \(givenArchitecture)"
        }
    }
}

extension HeadError: ClassifiedError {
    public var kind: FailureKind {
        switch self {
        case .mismatch: .mismatch
        case .unsupportedNorm: .unsupported
        default: .invalidInput
        }
    }
}
