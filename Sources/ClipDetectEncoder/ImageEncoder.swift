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
    public var kind: FeatureKind
    public var normalize: Bool

    public init(kind: FeatureKind, normalize: Bool) {
        self.kind = kind
        self.normalize = normalize
    }
}

/// A CLIP ViT image tower: pixels (normalised, N×3×S×S) in, one feature vector per image out.
/// Building one sets OpenBLAS to a single thread for the process (`ProcessSettings`).
public final class ImageEncoder: Sendable {
    public let description: ModelDescription
    /// Identifies these weights in heads and in the feature cache, computed once.
    public let fingerprint: String
    /// The kernels and number format that compute features here.
    public let backend: ComputeBackend
    /// The tower's weights; with packed kernels, without the dense matrices (oneDNN holds those).
    let weights: VisionWeights
    let checkpoint: Checkpoint
    private let patchLayer: DenseLayer
    private let blocks: [(qkv: DenseLayer, out: DenseLayer, fc1: DenseLayer, fc2: DenseLayer)]
    /// Attention's products in bf16 (bf16 precision only; fp32 keeps them on OpenBLAS).
    private let packedAttention: PackedAttention?
    /// oneDNN scratchpad bytes one core needs for any of the encoder's products.
    private let scratchpadBytes: Int
    private let workspaces = WorkspacePool()

    /// `precision` is what the caller asks for; `backend` says what runs (bf16 only where the CPU has it).
    public convenience init(checkpoint: Checkpoint, description: ModelDescription, precision: Precision = .fp32) throws {
        let (kind, note) = ComputeBackend.choose(precision)
        try self.init(checkpoint: checkpoint, description: description, kind: kind, note: note)
    }

    init(checkpoint: Checkpoint, description: ModelDescription, kind: ComputeBackend.Kind, note: String? = nil) throws {
        ProcessSettings.useSingleThreadedBLAS()
        self.description = description
        self.checkpoint = checkpoint
        let weights = try VisionWeights(checkpoint: checkpoint, description: description)
        self.fingerprint = weights.fingerprint(architecture: description.architecture)
        let d = description, w = d.width
        // Rows per image: every token, the patches of the embedding, and the last block's class token.
        let rows: Set<Int> = [d.tokens, 1]
        // The patch embedding stays fp32 in every precision: its input is the pixels, and it costs
        // 0.2% of ViT-L/14's products.
        patchLayer = try DenseLayer(weight: weights.patchEmbedding, bias: nil, inputs: 3 * d.patchSize * d.patchSize, outputs: w,
                                    kind: kind == .packed(.bf16) ? .packed(.f32) : kind, rowCounts: [d.grid * d.grid])
        blocks = try weights.layers.map { layer in
            (qkv: try DenseLayer(weight: layer.qkvWeight, bias: layer.qkvBias, inputs: w, outputs: 3 * w, kind: kind, rowCounts: [d.tokens]),
             out: try DenseLayer(weight: layer.outWeight, bias: layer.outBias, inputs: w, outputs: w, kind: kind, rowCounts: rows),
             // In bf16, fc1's output is only fc2's input: the kernel writes it as bf16 (one pass fewer).
             fc1: try DenseLayer(weight: layer.fc1Weight, bias: layer.fc1Bias, inputs: w, outputs: d.mlpWidth, activation: d.activation,
                                 kind: kind, rowCounts: rows, halvesOut: true),
             fc2: try DenseLayer(weight: layer.fc2Weight, bias: layer.fc2Bias, inputs: d.mlpWidth, outputs: w, kind: kind, rowCounts: rows))
        }
        packedAttention = kind == .packed(.bf16) ? try PackedAttention(tokens: d.tokens, headWidth: d.headWidth) : nil
        scratchpadBytes = ([patchLayer.scratchpadBytes, packedAttention?.scratchpadBytes ?? 0]
            + blocks.flatMap { [$0.qkv, $0.out, $0.fc1, $0.fc2].map(\.scratchpadBytes) }).max()!
        let packed = patchLayer.packedBytes + blocks.reduce(0) { $0 + $1.qkv.packedBytes + $1.out.packedBytes + $1.fc1.packedBytes + $1.fc2.packedBytes }
        // Packed, the dense matrices live in oneDNN's copy only: converted fp32 ones are freed.
        self.weights = kind == .blas ? weights : weights.withoutDenseMatrices()
        backend = ComputeBackend(precision: kind.precision, library: kind.library, packedBytes: packed, note: note,
                                 readInPlace: kind == .blas && self.weights.all.allSatisfy { checkpoint.isMapped($0) },
                                 kernel: blocks.first?.qkv.kernel)
    }

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
    public var mappedFraction: Double {
        let arrays = weights.all
        let total = arrays.reduce(0) { $0 + $1.count }
        let mapped = arrays.filter { checkpoint.isMapped($0) }.reduce(0) { $0 + $1.count }
        return Double(mapped) / Double(max(total, 1))
    }

    public func featureWidth(_ kind: FeatureKind) -> Int {
        switch kind {
        case .pooled: description.width
        case .projected: description.projectionDim ?? description.width
        case .blocks: description.layers * description.width
        }
    }

    /// Intermediate activations a test may observe: the tokens after ln_pre and after each block.
    public enum Stage: Hashable, Sendable { case afterPreNorm, afterBlock(Int) }

    /// Features for `count` images laid out N×3×S×S.
    public func encode(_ pixels: [Float], count: Int, kind: FeatureKind = .pooled, normalize: Bool = true,
                       observe: ((Stage, UnsafeBufferPointer<Float>) -> Void)? = nil) throws -> [[Float]] {
        try encode(pixels, count: count, outputs: [FeatureOutput(kind: kind, normalize: normalize)], observe: observe)[0]
    }

    /// Several features of the same images from one forward pass: `[output][image]`.
    public func encode(_ pixels: [Float], count: Int, outputs: [FeatureOutput],
                       observe: ((Stage, UnsafeBufferPointer<Float>) -> Void)? = nil) throws -> [[[Float]]] {
        let d = description
        let s = d.imageSize
        guard pixels.count == count * 3 * s * s else {
            throw ModelError.badConfig("encoder expects \(count)×3×\(s)×\(s) values, got \(pixels.count)")
        }
        if outputs.contains(where: { $0.kind == .projected }), d.projectionDim == nil {
            throw ModelError.unsupported("this checkpoint has no projection: only the pooled feature exists")
        }
        guard count > 0 else { return outputs.map { _ in [] } }
        let workspace = workspaces.take(images: count, description: d, scratchpad: scratchpadBytes)
        defer { workspaces.give(workspace) }
        let w = d.width, t = d.tokens, rows = count * t
        let x = workspace.x, normed = workspace.normed, wide = workspace.wide, mixed = workspace.mixed
        var compacted = false
        let wantsBlocks = outputs.contains { $0.kind == .blocks }
        var blockTokens = wantsBlocks ? [[Float]](repeating: [Float](repeating: 0, count: d.layers * w), count: count) : []

        pixels.withUnsafeBufferPointer { embed($0.baseAddress!, count: count, into: x, workspace: workspace) }
        Kernels.layerNorm(x, rows: rows, width: w, weight: weights.preNormWeight, bias: weights.preNormBias,
                          eps: d.layerNormEps, into: x)
        observe?(.afterPreNorm, UnsafeBufferPointer(start: x, count: rows * w))
        for (n, (layer, dense)) in zip(weights.layers, blocks).enumerated() {
            Kernels.layerNorm(x, rows: rows, width: w, weight: layer.norm1Weight, bias: layer.norm1Bias, eps: d.layerNormEps, into: normed)
            dense.qkv.apply(normed, rows: rows, group: t, into: wide, workspace: workspace)
            // Only the class token leaves the last block: past its keys and values, the other tokens'
            // rows are not needed (unless a caller observes the whole block).
            let classOnly = n == blocks.count - 1 && observe == nil
            let queries = classOnly ? 1 : t, live = count * queries
            if let packedAttention {
                packedAttention.apply(qkv: wide, images: count, heads: d.heads, queries: queries, into: normed, scores: workspace.scores,
                                      halves: workspace.attentionHalves, dense: workspace.blocks, scratchpad: workspace.scratchpad,
                                      scratchpadStride: workspace.scratchpadStride)
            } else {
                attention(qkv: wide, images: count, queries: queries, into: normed, scratch: workspace.scores)
            }
            if classOnly {
                for image in 0..<count { (x + image * w).update(from: x + image * t * w, count: w) }
            }
            dense.out.apply(normed, rows: live, group: queries, into: mixed, workspace: workspace)
            Kernels.add(x, mixed, count: live * w)
            Kernels.layerNorm(x, rows: live, width: w, weight: layer.norm2Weight, bias: layer.norm2Bias, eps: d.layerNormEps, into: normed)
            if wantsBlocks {
                for image in 0..<count {
                    blockTokens[image].withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: n * w).update(from: normed + image * queries * w, count: w) }
                }
            }
            if dense.fc1.writesHalves {
                UnsafeMutableRawPointer(wide).withMemoryRebound(to: UInt16.self, capacity: live * d.mlpWidth) { hidden in
                    dense.fc1.apply(normed, rows: live, group: queries, intoHalves: hidden, workspace: workspace)
                    dense.fc2.apply(halves: hidden, rows: live, group: queries, into: mixed, workspace: workspace)
                }
            } else {
                dense.fc1.apply(normed, rows: live, group: queries, into: wide, workspace: workspace)
                dense.fc2.apply(wide, rows: live, group: queries, into: mixed, workspace: workspace)
            }
            Kernels.add(x, mixed, count: live * w)
            if classOnly { compacted = true; break }
            observe?(.afterBlock(n), UnsafeBufferPointer(start: x, count: rows * w))
        }
        let pooled = outputs.contains { $0.kind != .blocks } ? pool(x, images: count, tokens: compacted ? 1 : t) : []
        return outputs.map { output in
            let features = switch output.kind {
            case .blocks: blockTokens
            case .pooled: pooled
            case .projected: pooled.map(project)
            }
            return output.normalize ? features.map(Self.normalized) : features
        }
    }

    /// Patch embedding (a stride-P convolution as one GEMM), class token and positions.
    private func embed(_ pixels: UnsafePointer<Float>, count: Int, into x: UnsafeMutablePointer<Float>, workspace: Workspace) {
        let d = description
        let s = d.imageSize, p = d.patchSize, g = d.grid, w = d.width, patchValues = 3 * p * p
        let patches = count * g * g
        // The patch columns and their embeddings borrow the MLP's buffer and the residual's.
        let columns = workspace.wide, embedded = workspace.mixed
        // Each patch flattened as (channel, row, column), the order of the conv weight.
        Parallel.rows(patches) { index in
            let image = index / (g * g), gy = (index % (g * g)) / g, gx = index % g
            var out = columns + index * patchValues
            for c in 0..<3 {
                for py in 0..<p {
                    let source = pixels + ((image * 3 + c) * s + gy * p + py) * s + gx * p
                    out.update(from: source, count: p)
                    out += p
                }
            }
        }
        patchLayer.apply(columns, rows: patches, group: g * g, into: embedded, workspace: workspace)
        let positions = weights.positionalEmbedding.pointer, token = weights.classEmbedding.pointer
        Parallel.rows(count * d.tokens) { row in
            let image = row / d.tokens, slot = row % d.tokens
            let target = x + row * w, position = positions + slot * w
            let source = slot == 0 ? token : UnsafePointer(embedded + (image * g * g + slot - 1) * w)
            for j in 0..<w { target[j] = source[j] + position[j] }
        }
    }

    /// Multi-head self-attention of each image's first `queries` tokens over all its tokens; q, k, v
    /// packed in `qkv` rows of 3W, output `queries` rows per image. Heads run in parallel, each on
    /// one core with a single-threaded GEMM.
    private func attention(qkv: UnsafeMutablePointer<Float>, images: Int, queries: Int, into out: UnsafeMutablePointer<Float>,
                           scratch: UnsafeMutablePointer<Float>) {
        let d = description
        let t = d.tokens, w = d.width, hd = d.headWidth, stride = 3 * w
        let scale = 1 / Float(hd).squareRoot()
        Parallel.chunks(images * d.heads) { chunk, tasks in
            let scores = scratch + chunk * queries * t
            for task in tasks {
                let image = task / d.heads, head = task % d.heads
                let base = qkv + image * t * stride
                let q = base + head * hd, k = base + w + head * hd, v = base + 2 * w + head * hd
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(queries), Int32(t), Int32(hd), scale,
                            q, Int32(stride), k, Int32(stride), 0, scores, Int32(t))
                for row in 0..<queries { Kernels.softmax(scores + row * t, length: t) }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(queries), Int32(hd), Int32(t), 1,
                            scores, Int32(t), v, Int32(stride), 0, out + image * queries * w + head * hd, Int32(w))
            }
        }
    }

    /// The vector over its L2 norm (unchanged when it is zero).
    private static func normalized(_ feature: [Float]) -> [Float] {
        let norm = Float(feature.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
        return norm > 0 ? feature.map { $0 / norm } : feature
    }

    /// ln_post on each class token (the first of each image's `tokens` rows).
    private func pool(_ x: UnsafeMutablePointer<Float>, images: Int, tokens: Int) -> [[Float]] {
        let w = description.width
        return (0..<images).map { image in
            [Float](unsafeUninitializedCapacity: w) { out, initialized in
                Kernels.layerNorm(x + image * tokens * w, rows: 1, width: w, weight: weights.postNormWeight,
                                  bias: weights.postNormBias, eps: description.layerNormEps, into: out.baseAddress!)
                initialized = w
            }
        }
    }

    /// A pooled token times the projection (CLIP's image embedding).
    private func project(_ token: [Float]) -> [Float] {
        guard let projection = weights.projection, let dim = description.projectionDim else { return token }
        var feature = [Float](repeating: 0, count: dim)
        for i in 0..<description.width {
            let value = token[i], row = projection.pointer + i * dim
            for j in 0..<dim { feature[j] += value * row[j] }
        }
        return feature
    }
}

/// The activation buffers of one pass (about 80 MB for a ViT-L/14 batch of 8), kept between calls
/// so that a long run allocates them once.
final class Workspace: @unchecked Sendable {
    let images: Int
    let x, normed, wide, mixed, scores: UnsafeMutablePointer<Float>
    /// A layer's input rounded to bf16: qkv's, out's and fc1's are `width` wide (fc2 reads fc1's
    /// bf16 output from `wide`; the patch embedding stays fp32).
    let halves: UnsafeMutablePointer<UInt16>
    let halvesCount: Int
    /// One dense block of output columns per core, for packed kernels (they write densely, then the
    /// block is copied into place).
    let blocks: UnsafeMutablePointer<Float>
    /// Each core's bf16 q, k, v and probabilities of one head, for bf16 attention.
    let attentionHalves: UnsafeMutablePointer<UInt16>
    /// Each core's oneDNN scratchpad (`scratchpadStride` bytes apart).
    let scratchpad: UnsafeMutableRawPointer
    let scratchpadStride: Int

    init(images: Int, description d: ModelDescription, scratchpad: Int = 0) {
        self.images = images
        let rows = images * d.tokens, patchValues = 3 * d.patchSize * d.patchSize, widest = max(3 * d.width, d.mlpWidth)
        x = .allocate(capacity: rows * d.width)
        normed = .allocate(capacity: rows * d.width)
        wide = .allocate(capacity: rows * max(widest, patchValues))
        mixed = .allocate(capacity: rows * d.width)
        scores = .allocate(capacity: Parallel.cores * d.tokens * d.tokens)
        halvesCount = rows * d.width
        halves = .allocate(capacity: halvesCount)
        blocks = .allocate(capacity: Parallel.cores * d.tokens * widest)
        attentionHalves = .allocate(capacity: Parallel.cores * PackedAttention.halvesPerCore(tokens: d.tokens, headWidth: d.headWidth))
        scratchpadStride = (scratchpad + 63) / 64 * 64
        self.scratchpad = .allocate(byteCount: max(64, Parallel.cores * scratchpadStride), alignment: 64)
    }

    deinit {
        [x, normed, wide, mixed, scores, blocks].forEach { $0.deallocate() }
        [halves, attentionHalves].forEach { $0.deallocate() }
        scratchpad.deallocate()
    }
}

/// The largest idle workspace is kept: passes run one at a time in the CLI and the service;
/// concurrent callers each get their own.
final class WorkspacePool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: Workspace?

    func take(images: Int, description: ModelDescription, scratchpad: Int = 0) -> Workspace {
        let found: Workspace? = lock.withLock {
            guard let idle, idle.images >= images else { return nil }
            self.idle = nil
            return idle
        }
        return found ?? Workspace(images: images, description: description, scratchpad: scratchpad)
    }

    func give(_ workspace: Workspace) {
        lock.withLock { if workspace.images >= idle?.images ?? 0 { idle = workspace } }
    }
}
