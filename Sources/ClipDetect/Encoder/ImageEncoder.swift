import CBLAS

/// Which vector the encoder returns for each image.
public enum FeatureKind: String, Sendable, CaseIterable, Codable {
    /// The class token after ln_post, before the projection: the detector's "next-to-last" feature.
    case pooled
    /// The pooled token times the projection (CLIP's image embedding).
    case projected
}

/// A CLIP ViT image tower: pixels (normalised, N×3×S×S) in, one feature vector per image out.
/// Building one sets OpenBLAS to a single thread for the process (`ProcessSettings`).
public final class ImageEncoder: Sendable {
    public let description: ModelDescription
    /// Identifies these weights in heads and in the feature cache, computed once.
    public let fingerprint: String
    let weights: VisionWeights
    let checkpoint: Checkpoint

    public init(checkpoint: Checkpoint, description: ModelDescription) throws {
        ProcessSettings.useSingleThreadedBLAS()
        self.description = description
        self.checkpoint = checkpoint
        self.weights = try VisionWeights(checkpoint: checkpoint, description: description)
        self.fingerprint = weights.fingerprint(architecture: description.architecture)
    }

    /// Opens a checkpoint and infers its description (config files beside it and `hints` fill the gaps).
    public convenience init(path: String, hints: ModelHints = ModelHints()) throws {
        let checkpoint = try Checkpoint.open(path)
        try self.init(checkpoint: checkpoint, description: ModelDescription.infer(from: checkpoint, hints: hints))
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
        kind == .projected ? (description.projectionDim ?? description.width) : description.width
    }

    /// Intermediate activations a test may observe: the tokens after ln_pre and after each block.
    public enum Stage: Hashable, Sendable { case afterPreNorm, afterBlock(Int) }

    /// Features for `count` images laid out N×3×S×S.
    public func encode(_ pixels: [Float], count: Int, kind: FeatureKind = .pooled, normalize: Bool = true,
                       observe: ((Stage, UnsafeBufferPointer<Float>) -> Void)? = nil) throws -> [[Float]] {
        let d = description
        let s = d.imageSize
        guard pixels.count == count * 3 * s * s else {
            throw ModelError.badConfig("encoder expects \(count)×3×\(s)×\(s) values, got \(pixels.count)")
        }
        if kind == .projected, d.projectionDim == nil {
            throw ModelError.unsupported("this checkpoint has no projection: only the pooled feature exists")
        }
        guard count > 0 else { return [] }
        let w = d.width, t = d.tokens, rows = count * t
        let x = UnsafeMutablePointer<Float>.allocate(capacity: rows * w)
        let normed = UnsafeMutablePointer<Float>.allocate(capacity: rows * w)
        let wide = UnsafeMutablePointer<Float>.allocate(capacity: rows * max(3 * w, d.mlpWidth))
        let mixed = UnsafeMutablePointer<Float>.allocate(capacity: rows * w)
        defer { [x, normed, wide, mixed].forEach { $0.deallocate() } }

        pixels.withUnsafeBufferPointer { embed($0.baseAddress!, count: count, into: x) }
        Kernels.layerNorm(x, rows: rows, width: w, weight: weights.preNormWeight, bias: weights.preNormBias,
                          eps: d.layerNormEps, into: x)
        observe?(.afterPreNorm, UnsafeBufferPointer(start: x, count: rows * w))
        for (n, layer) in weights.layers.enumerated() {
            Kernels.layerNorm(x, rows: rows, width: w, weight: layer.norm1Weight, bias: layer.norm1Bias, eps: d.layerNormEps, into: normed)
            Kernels.linear(normed, rows: rows, group: t, inputs: w, weight: layer.qkvWeight, bias: layer.qkvBias, outputs: 3 * w, into: wide)
            // Only the class token leaves the last block: past its keys and values, the other tokens'
            // rows are not needed (unless a caller observes the whole block).
            let classOnly = n == weights.layers.count - 1 && observe == nil
            let queries = classOnly ? 1 : t, live = count * queries
            attention(qkv: wide, images: count, queries: queries, into: normed)
            if classOnly {
                for image in 0..<count { (x + image * w).update(from: x + image * t * w, count: w) }
            }
            Kernels.linear(normed, rows: live, group: queries, inputs: w, weight: layer.outWeight, bias: layer.outBias, outputs: w, into: mixed)
            Kernels.add(x, mixed, count: live * w)
            Kernels.layerNorm(x, rows: live, width: w, weight: layer.norm2Weight, bias: layer.norm2Bias, eps: d.layerNormEps, into: normed)
            Kernels.linear(normed, rows: live, group: queries, inputs: w, weight: layer.fc1Weight, bias: layer.fc1Bias, outputs: d.mlpWidth, into: wide)
            Kernels.activate(wide, count: live * d.mlpWidth, d.activation)
            Kernels.linear(wide, rows: live, group: queries, inputs: d.mlpWidth, weight: layer.fc2Weight, bias: layer.fc2Bias, outputs: w, into: mixed)
            Kernels.add(x, mixed, count: live * w)
            if classOnly { return pool(x, images: count, tokens: 1, kind: kind, normalize: normalize) }
            observe?(.afterBlock(n), UnsafeBufferPointer(start: x, count: rows * w))
        }
        return pool(x, images: count, tokens: t, kind: kind, normalize: normalize)
    }

    /// Patch embedding (a stride-P convolution as one GEMM), class token and positions.
    private func embed(_ pixels: UnsafePointer<Float>, count: Int, into x: UnsafeMutablePointer<Float>) {
        let d = description
        let s = d.imageSize, p = d.patchSize, g = d.grid, w = d.width, patchValues = 3 * p * p
        let patches = count * g * g
        let columns = UnsafeMutablePointer<Float>.allocate(capacity: patches * patchValues)
        let embedded = UnsafeMutablePointer<Float>.allocate(capacity: patches * w)
        defer { columns.deallocate(); embedded.deallocate() }
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
        Kernels.linear(columns, rows: patches, group: g * g, inputs: patchValues, weight: weights.patchEmbedding, bias: nil,
                       outputs: w, into: embedded)
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
    private func attention(qkv: UnsafeMutablePointer<Float>, images: Int, queries: Int, into out: UnsafeMutablePointer<Float>) {
        let d = description
        let t = d.tokens, w = d.width, hd = d.headWidth, stride = 3 * w
        let scale = 1 / Float(hd).squareRoot()
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: Parallel.cores * queries * t)
        defer { scratch.deallocate() }
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

    /// ln_post on each class token (the first of each image's `tokens` rows), then the optional
    /// projection and L2 normalisation.
    private func pool(_ x: UnsafeMutablePointer<Float>, images: Int, tokens: Int, kind: FeatureKind, normalize: Bool) -> [[Float]] {
        let d = description
        let w = d.width
        var features: [[Float]] = []
        var token = [Float](repeating: 0, count: w)
        for image in 0..<images {
            token.withUnsafeMutableBufferPointer { out in
                Kernels.layerNorm(x + image * tokens * w, rows: 1, width: w, weight: weights.postNormWeight,
                                  bias: weights.postNormBias, eps: d.layerNormEps, into: out.baseAddress!)
            }
            var feature = token
            if kind == .projected, let projection = weights.projection, let dim = d.projectionDim {
                feature = [Float](repeating: 0, count: dim)
                for i in 0..<w {
                    let value = token[i], row = projection.pointer + i * dim
                    for j in 0..<dim { feature[j] += value * row[j] }
                }
            }
            if normalize {
                let norm = Float(feature.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
                if norm > 0 { feature = feature.map { $0 / norm } }
            }
            features.append(feature)
        }
        return features
    }
}
