import CBLAS
import ClipDetectCore
import Foundation

/// Which vector the encoder returns for each image.
public enum FeatureKind: String, Sendable, CaseIterable, Codable {
    /// The class token after ln_post, before the projection: the detector's "next-to-last" feature.
    case pooled
    /// The pooled token times the projection (CLIP's image embedding).
    case projected
    /// The class token of every block's ln_2 output, LN2(x + attention(LN1(x))), block after block
    /// (layers × width values): the intermediate features RINE reads with forward hooks.
    case blocks
}

/// One vector the encoder returns: a kind, L2-normalised or raw.
public struct FeatureOutput: Hashable, Sendable {
    /// Which vector.
    public var kind: FeatureKind
    /// Scale each image's vector to L2 norm 1 (a zero vector stays zero).
    public var normalize: Bool

    /// An output from its kind and normalisation.
    public init(kind: FeatureKind, normalize: Bool) {
        self.kind = kind
        self.normalize = normalize
    }
}

/// A CLIP ViT image tower: pixels (normalised, N×3×S×S) in, one feature vector per image out.
/// Building one sets OpenBLAS to a single thread for the process (`ProcessSettings`).
public final class ImageEncoder: Sendable {
    /// The tower's numbers: sizes, activation, normalisation and tensor naming.
    public let description: ModelDescription
    /// Identifies these weights in heads and in the feature cache, computed once.
    public let fingerprint: String
    /// The kernels and number format that compute features here.
    public let backend: ComputeBackend
    let checkpoint: Checkpoint
    /// The forward pass on the chosen backend.
    private let tower: any TowerPass

    /// `precision` is what the caller asks for; `backend` says what runs (bf16 only where the CPU has it).
    package convenience init(checkpoint: Checkpoint, description: ModelDescription, precision: Precision = .fp32) throws {
        let (kind, note) = ComputeBackend.choose(precision)
        try self.init(checkpoint: checkpoint, description: description, kind: kind, note: note)
    }

    init(checkpoint: Checkpoint, description: ModelDescription, kind: ComputeBackend.Kind, note: String? = nil) throws {
        ProcessSettings.useSingleThreadedBLAS()
        self.description = description
        self.checkpoint = checkpoint
        let weights = try VisionWeights(checkpoint: checkpoint, description: description)
        self.fingerprint = weights.fingerprint(architecture: description.architecture)
        let tower: any TowerPass = switch kind {
        case .blas: try Tower(backend: BLASBackend(), weights: weights, description: description)
        case .packed(let element): try Tower(backend: OneDNNBackend(element: element, description: description), weights: weights, description: description)
        }
        self.tower = tower
        backend = ComputeBackend(precision: tower.precision, library: tower.library, packedBytes: tower.packedBytes, note: note,
                                 readInPlace: tower.readsMatrices && tower.weights.all.allSatisfy { checkpoint.isMapped($0) },
                                 kernel: tower.kernel)
    }

    /// The tower's weights; with packed kernels, without the dense matrices (the backend holds those).
    var weights: VisionWeights { tower.weights }

    /// Opens a checkpoint and infers its description (config files beside it and `hints` fill the gaps).
    public convenience init(path: String, hints: ModelHints = ModelHints(), defaults: ModelHints = ModelHints(),
                            precision: Precision = .fp32) throws {
        let checkpoint = try Checkpoint.open(path)
        try self.init(checkpoint: checkpoint, description: ModelDescription.infer(from: checkpoint, hints: hints, defaults: defaults),
                      precision: precision)
    }

    /// What the features depend on beyond the fingerprint (weights and architecture): the input
    /// normalisation and LayerNorm's eps; empty for CLIP's own, so older cache keys stay valid.
    public var settingsTag: String {
        let d = description
        guard d.mean != ModelDescription.clipMean || d.std != ModelDescription.clipStd || d.layerNormEps != 1e-5 else { return "" }
        return "mean" + d.mean.map { "\($0.bitPattern)" }.joined(separator: ",") + "std" + d.std.map { "\($0.bitPattern)" }.joined(separator: ",")
            + "eps\(d.layerNormEps.bitPattern)"
    }

    /// True when both give the same features: the same weights and settings, in the same number format.
    public func computesLike(_ other: ImageEncoder) -> Bool {
        self === other || (fingerprint == other.fingerprint && settingsTag == other.settingsTag && backend.precision == other.backend.precision)
    }

    /// Opens a checkpoint to know it (description, fingerprint) rather than to run it fast: nothing is
    /// packed (OpenBLAS on the weights as they are), so ViT-L/14 loads in a fraction of the time.
    public convenience init(inspecting path: String, hints: ModelHints = ModelHints()) throws {
        let checkpoint = try Checkpoint.open(path)
        try self.init(checkpoint: checkpoint, description: ModelDescription.infer(from: checkpoint, hints: hints), kind: .blas)
    }

    /// The checkpoint file, when the weights came from one.
    public var path: String? { checkpoint.storage.mapped ? checkpoint.path : nil }

    /// Fraction of weight values read in place from the mapped file (1 for an f32 file in open_clip naming).
    package var mappedFraction: Double {
        let arrays = weights.all
        let total = arrays.reduce(0) { $0 + $1.count }
        let mapped = arrays.filter { checkpoint.isMapped($0) }.reduce(0) { $0 + $1.count }
        return Double(mapped) / Double(max(total, 1))
    }

    /// Values in one image's vector of `kind`: the width, the projection's output, or layers × width.
    public func featureWidth(_ kind: FeatureKind) -> Int {
        switch kind {
        case .pooled: description.width
        case .projected: description.projectionDim ?? description.width
        case .blocks: description.layers * description.width
        }
    }

    /// Features for `count` images laid out N×3×S×S.
    public func encode(_ pixels: [Float], count: Int, kind: FeatureKind = .pooled, normalize: Bool = true) throws -> [[Float]] {
        try encode(pixels, count: count, outputs: [FeatureOutput(kind: kind, normalize: normalize)], observe: nil)[0]
    }

    /// Several features of the same images from one forward pass: `[output][image]`.
    public func encode(_ pixels: [Float], count: Int, outputs: [FeatureOutput]) throws -> [[[Float]]] {
        try encode(pixels, count: count, outputs: outputs, observe: nil)
    }

    /// Intermediate activations the tests compare with the reference's, block by block: the tokens
    /// after ln_pre and after each block.
    package enum Stage: Hashable, Sendable { case afterPreNorm, afterBlock(Int) }

    package func encode(_ pixels: [Float], count: Int, kind: FeatureKind = .pooled, normalize: Bool = true,
                        observe: @escaping (Stage, UnsafeBufferPointer<Float>) -> Void) throws -> [[Float]] {
        try encode(pixels, count: count, outputs: [FeatureOutput(kind: kind, normalize: normalize)], observe: observe)[0]
    }

    package func encode(_ pixels: [Float], count: Int, outputs: [FeatureOutput],
                        observe: ((Stage, UnsafeBufferPointer<Float>) -> Void)?) throws -> [[[Float]]] {
        let d = description
        let s = d.imageSize
        guard pixels.count == count * 3 * s * s else {
            throw ModelError.badConfig("encoder expects \(count)×3×\(s)×\(s) values, got \(pixels.count)")
        }
        if outputs.contains(where: { $0.kind == .projected }), d.projectionDim == nil {
            throw ModelError.unsupported("this checkpoint has no projection: only the pooled feature exists")
        }
        guard count > 0 else { return outputs.map { _ in [] } }
        return tower.encode(pixels, count: count, outputs: outputs, observe: observe)
    }
}
