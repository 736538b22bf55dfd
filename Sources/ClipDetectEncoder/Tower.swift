import ClipDetectCore
import Foundation

/// What `ImageEncoder` asks of its tower, whatever the backend.
protocol TowerPass: Sendable {
    var weights: VisionWeights { get }
    var precision: Precision { get }
    var library: ComputeBackend.Library { get }
    var readsMatrices: Bool { get }
    var packedBytes: Int { get }
    var kernel: String? { get }
    /// Features of `count` images (checked by the caller): `[output][image]`.
    func encode(_ pixels: [Float], count: Int, outputs: [FeatureOutput],
                observe: ((ImageEncoder.Stage, UnsafeBufferPointer<Float>) -> Void)?) -> [[[Float]]]
}

/// open_clip's ViT forward pass, written once: the patch embedding, class token and positions,
/// ln_pre, the residual blocks (LN → qkv → attention → out → add, LN → MLP → add), ln_post on the
/// class token and the projection. What the dense layers and attention cost is `Backend`'s.
final class Tower<Backend: EncoderBackend>: TowerPass {
    let backend: Backend
    let description: ModelDescription
    /// The tower's weights; without the dense matrices when the backend holds its own copy.
    let weights: VisionWeights
    private let patchLayer: Backend.Dense
    private let blocks: [(qkv: Backend.Dense, out: Backend.Dense, fc1: Backend.Dense, fc2: Backend.Dense)]
    private let workspaces = WorkspacePool<Backend.Scratch>()

    init(backend: Backend, weights: VisionWeights, description d: ModelDescription) throws {
        self.backend = backend
        self.description = d
        let w = d.width
        // Rows per image: every token, the patches of the embedding, and the last block's class token.
        let rows: Set<Int> = [d.tokens, 1]
        patchLayer = try backend.dense(weight: weights.patchEmbedding, bias: nil, inputs: 3 * d.patchSize * d.patchSize, outputs: w,
                                       activation: nil, rowCounts: [d.grid * d.grid], exact: true, feedsNext: false)
        blocks = try weights.layers.map { layer in
            (qkv: try backend.dense(weight: layer.qkvWeight, bias: layer.qkvBias, inputs: w, outputs: 3 * w, activation: nil,
                                    rowCounts: [d.tokens], exact: false, feedsNext: false),
             out: try backend.dense(weight: layer.outWeight, bias: layer.outBias, inputs: w, outputs: w, activation: nil,
                                    rowCounts: rows, exact: false, feedsNext: false),
             fc1: try backend.dense(weight: layer.fc1Weight, bias: layer.fc1Bias, inputs: w, outputs: d.mlpWidth, activation: d.activation,
                                    rowCounts: rows, exact: false, feedsNext: true),
             fc2: try backend.dense(weight: layer.fc2Weight, bias: layer.fc2Bias, inputs: d.mlpWidth, outputs: w, activation: nil,
                                    rowCounts: rows, exact: false, feedsNext: false))
        }
        self.weights = backend.readsMatrices ? weights : weights.withoutDenseMatrices()
    }

    private var allDense: [Backend.Dense] { [patchLayer] + blocks.flatMap { [$0.qkv, $0.out, $0.fc1, $0.fc2] } }
    var precision: Precision { backend.precision }
    var library: ComputeBackend.Library { backend.library }
    var readsMatrices: Bool { backend.readsMatrices }
    var packedBytes: Int { allDense.reduce(0) { $0 + backend.packedBytes($1) } }
    var kernel: String? { blocks.first.flatMap { backend.kernel($0.qkv) } }

    func encode(_ pixels: [Float], count: Int, outputs: [FeatureOutput],
                observe: ((ImageEncoder.Stage, UnsafeBufferPointer<Float>) -> Void)?) -> [[[Float]]] {
        let d = description
        let workspace = workspaces.take(images: count) { Workspace(images: count, description: d, scratch: backend.scratch(images: count, description: d, layers: allDense)) }
        defer { workspaces.give(workspace) }
        let scratch = workspace.scratch
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
            backend.apply(dense.qkv, normed, rows: rows, group: t, into: wide, scratch: scratch)
            // Only the class token leaves the last block: past its keys and values, the other tokens'
            // rows are not needed (unless a caller observes the whole block).
            let classOnly = n == blocks.count - 1 && observe == nil
            let queries = classOnly ? 1 : t, live = count * queries
            backend.attention(qkv: wide, images: count, queries: queries, description: d, into: normed, scratch: scratch)
            if classOnly {
                for image in 0..<count { (x + image * w).update(from: x + image * t * w, count: w) }
            }
            backend.apply(dense.out, normed, rows: live, group: queries, into: mixed, scratch: scratch)
            Kernels.add(x, mixed, count: live * w)
            Kernels.layerNorm(x, rows: live, width: w, weight: layer.norm2Weight, bias: layer.norm2Bias, eps: d.layerNormEps, into: normed)
            if wantsBlocks {
                for image in 0..<count {
                    blockTokens[image].withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: n * w).update(from: normed + image * queries * w, count: w) }
                }
            }
            backend.mlp(dense.fc1, dense.fc2, normed, rows: live, group: queries, hidden: wide, into: mixed, scratch: scratch)
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
    private func embed(_ pixels: UnsafePointer<Float>, count: Int, into x: UnsafeMutablePointer<Float>, workspace: Workspace<Backend.Scratch>) {
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
        backend.apply(patchLayer, columns, rows: patches, group: g * g, into: embedded, scratch: workspace.scratch)
        let positions = weights.positionalEmbedding.pointer, token = weights.classEmbedding.pointer
        Parallel.rows(count * d.tokens) { row in
            let image = row / d.tokens, slot = row % d.tokens
            let target = x + row * w, position = positions + slot * w
            let source = slot == 0 ? token : UnsafePointer(embedded + (image * g * g + slot - 1) * w)
            for j in 0..<w { target[j] = source[j] + position[j] }
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

/// The graph's buffers for one pass (about 80 MB for a ViT-L/14 batch of 8) and the backend's
/// scratch, kept between calls so that a long run allocates them once.
final class Workspace<Scratch: AnyObject>: @unchecked Sendable {
    let images: Int
    let x, normed, wide, mixed: UnsafeMutablePointer<Float>
    let scratch: Scratch

    init(images: Int, description d: ModelDescription, scratch: Scratch) {
        self.images = images
        self.scratch = scratch
        let rows = images * d.tokens, patchValues = 3 * d.patchSize * d.patchSize, widest = max(3 * d.width, d.mlpWidth)
        x = .allocate(capacity: rows * d.width)
        normed = .allocate(capacity: rows * d.width)
        // qkv's output, the MLP's hidden activations, the patch columns.
        wide = .allocate(capacity: rows * max(widest, patchValues))
        mixed = .allocate(capacity: rows * d.width)
    }

    deinit { [x, normed, wide, mixed].forEach { $0.deallocate() } }
}

/// The largest idle workspace is kept: passes run one at a time in the CLI and the service;
/// concurrent callers each get their own.
final class WorkspacePool<Scratch: AnyObject>: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: Workspace<Scratch>?

    func take(images: Int, make: () -> Workspace<Scratch>) -> Workspace<Scratch> {
        let found: Workspace<Scratch>? = lock.withLock {
            guard let idle, idle.images >= images else { return nil }
            self.idle = nil
            return idle
        }
        return found ?? make()
    }

    func give(_ workspace: Workspace<Scratch>) {
        lock.withLock { if workspace.images >= idle?.images ?? 0 { idle = workspace } }
    }
}
