import ClipDetectCore

/// A tower's weights in f32, each read in place from the mapped file when it is stored as
/// contiguous f32, converted once otherwise.
struct VisionWeights: Sendable {
    struct Layer: Sendable {
        var norm1Weight, norm1Bias, qkvWeight, qkvBias, outWeight, outBias: FloatArray
        var norm2Weight, norm2Bias, fc1Weight, fc1Bias, fc2Weight, fc2Bias: FloatArray
    }

    var patchEmbedding: FloatArray
    let classEmbedding, positionalEmbedding, preNormWeight, preNormBias: FloatArray
    var layers: [Layer]
    let postNormWeight, postNormBias: FloatArray
    /// [width, projectionDim], row-major: pooled · projection.
    let projection: FloatArray?

    init(checkpoint: Checkpoint, description: ModelDescription) throws {
        try description.validate(against: checkpoint)
        let naming = description.naming
        func load(_ role: TensorRole) throws -> FloatArray {
            switch naming.source(role) {
            case .tensor(let name):
                return try checkpoint.tensors[name]!.floats()
            case .transposed(let name):
                let tensor = checkpoint.tensors[name]!
                let (rows, columns) = (tensor.shape[0], tensor.shape[1])
                let source = try tensor.floats()
                return FloatArray(count: rows * columns) { out in
                    for r in 0..<rows { for c in 0..<columns { out[c * rows + r] = source[r * columns + c] } }
                }
            case .concatenated(let names):
                let parts = try names.map { try checkpoint.tensors[$0]!.floats() }
                return FloatArray(count: parts.reduce(0) { $0 + $1.count }) { out in
                    var at = 0
                    for part in parts {
                        for i in 0..<part.count { out[at + i] = part[i] }
                        at += part.count
                    }
                }
            }
        }
        patchEmbedding = try load(.patchEmbedding)
        classEmbedding = try load(.classEmbedding)
        positionalEmbedding = try load(.positionalEmbedding)
        preNormWeight = try load(.preNormWeight)
        preNormBias = try load(.preNormBias)
        layers = try (0..<description.layers).map { n in
            try Layer(norm1Weight: load(.norm1Weight(n)), norm1Bias: load(.norm1Bias(n)),
                      qkvWeight: load(.qkvWeight(n)), qkvBias: load(.qkvBias(n)),
                      outWeight: load(.outWeight(n)), outBias: load(.outBias(n)),
                      norm2Weight: load(.norm2Weight(n)), norm2Bias: load(.norm2Bias(n)),
                      fc1Weight: load(.fc1Weight(n)), fc1Bias: load(.fc1Bias(n)),
                      fc2Weight: load(.fc2Weight(n)), fc2Bias: load(.fc2Bias(n)))
        }
        postNormWeight = try load(.postNormWeight)
        postNormBias = try load(.postNormBias)
        projection = description.projectionDim == nil ? nil : try load(.projection)
    }

    /// The same weights without the matrices of the dense layers (patch embedding, qkv, out, fc1,
    /// fc2), which packed kernels hold in their own layout.
    func withoutDenseMatrices() -> VisionWeights {
        var copy = self
        let none = FloatArray([])
        copy.patchEmbedding = none
        copy.layers = layers.map { layer in
            var stripped = layer
            stripped.qkvWeight = none; stripped.outWeight = none; stripped.fc1Weight = none; stripped.fc2Weight = none
            return stripped
        }
        return copy
    }

    /// Every array, for checks that weights are read in place.
    var all: [FloatArray] {
        [patchEmbedding, classEmbedding, positionalEmbedding, preNormWeight, preNormBias, postNormWeight, postNormBias]
            + layers.flatMap { [$0.norm1Weight, $0.norm1Bias, $0.qkvWeight, $0.qkvBias, $0.outWeight, $0.outBias,
                                $0.norm2Weight, $0.norm2Bias, $0.fc1Weight, $0.fc1Bias, $0.fc2Weight, $0.fc2Bias] }
            + (projection.map { [$0] } ?? [])
    }
}
