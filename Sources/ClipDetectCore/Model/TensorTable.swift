/// The tensors a vision tower needs, by role, and where each naming scheme keeps them.
/// This table is the only place that knows tensor names.
package enum TensorRole: Hashable {
    case patchEmbedding, classEmbedding, positionalEmbedding, preNormWeight, preNormBias
    case norm1Weight(Int), norm1Bias(Int), qkvWeight(Int), qkvBias(Int), outWeight(Int), outBias(Int)
    case norm2Weight(Int), norm2Bias(Int), fc1Weight(Int), fc1Bias(Int), fc2Weight(Int), fc2Bias(Int)
    case postNormWeight, postNormBias, projection
}

/// How a role's tensor is built from the file.
package enum TensorSource {
    case tensor(String)
    /// Several tensors stacked along the first axis (Hugging Face keeps q, k, v apart).
    case concatenated([String])
    /// A matrix stored transposed (Hugging Face's `visual_projection.weight` is [D, W]).
    case transposed(String)

    var names: [String] {
        switch self {
        case .tensor(let name), .transposed(let name): [name]
        case .concatenated(let names): names
        }
    }
}

extension TensorNaming {
    /// Names in the file that the tower ignores without complaint (other towers, buffers).
    func isOutsideVisionTower(_ name: String) -> Bool {
        switch self {
        case .openCLIP(let prefix):
            return prefix.isEmpty ? false : !name.hasPrefix(prefix)
        case .huggingFace:
            return !(name.hasPrefix("vision_model.") || name.hasPrefix("visual_projection."))
                || name == "vision_model.embeddings.position_ids"
        }
    }

    package func source(_ role: TensorRole) -> TensorSource {
        switch self {
        case .openCLIP(let p): return .tensor(p + Self.openCLIPName(role))
        case .huggingFace: return Self.huggingFaceSource(role)
        }
    }

    private static func openCLIPName(_ role: TensorRole) -> String {
        func block(_ n: Int, _ rest: String) -> String { "transformer.resblocks.\(n).\(rest)" }
        switch role {
        case .patchEmbedding: return "conv1.weight"
        case .classEmbedding: return "class_embedding"
        case .positionalEmbedding: return "positional_embedding"
        case .preNormWeight: return "ln_pre.weight"
        case .preNormBias: return "ln_pre.bias"
        case .norm1Weight(let n): return block(n, "ln_1.weight")
        case .norm1Bias(let n): return block(n, "ln_1.bias")
        case .qkvWeight(let n): return block(n, "attn.in_proj_weight")
        case .qkvBias(let n): return block(n, "attn.in_proj_bias")
        case .outWeight(let n): return block(n, "attn.out_proj.weight")
        case .outBias(let n): return block(n, "attn.out_proj.bias")
        case .norm2Weight(let n): return block(n, "ln_2.weight")
        case .norm2Bias(let n): return block(n, "ln_2.bias")
        case .fc1Weight(let n): return block(n, "mlp.c_fc.weight")
        case .fc1Bias(let n): return block(n, "mlp.c_fc.bias")
        case .fc2Weight(let n): return block(n, "mlp.c_proj.weight")
        case .fc2Bias(let n): return block(n, "mlp.c_proj.bias")
        case .postNormWeight: return "ln_post.weight"
        case .postNormBias: return "ln_post.bias"
        case .projection: return "proj"
        }
    }

    private static func huggingFaceSource(_ role: TensorRole) -> TensorSource {
        func layer(_ n: Int, _ rest: String) -> String { "vision_model.encoder.layers.\(n).\(rest)" }
        func qkv(_ n: Int, _ kind: String) -> TensorSource {
            .concatenated(["q", "k", "v"].map { layer(n, "self_attn.\($0)_proj.\(kind)") })
        }
        switch role {
        case .patchEmbedding: return .tensor("vision_model.embeddings.patch_embedding.weight")
        case .classEmbedding: return .tensor("vision_model.embeddings.class_embedding")
        case .positionalEmbedding: return .tensor("vision_model.embeddings.position_embedding.weight")
        case .preNormWeight: return .tensor("vision_model.pre_layrnorm.weight")
        case .preNormBias: return .tensor("vision_model.pre_layrnorm.bias")
        case .norm1Weight(let n): return .tensor(layer(n, "layer_norm1.weight"))
        case .norm1Bias(let n): return .tensor(layer(n, "layer_norm1.bias"))
        case .qkvWeight(let n): return qkv(n, "weight")
        case .qkvBias(let n): return qkv(n, "bias")
        case .outWeight(let n): return .tensor(layer(n, "self_attn.out_proj.weight"))
        case .outBias(let n): return .tensor(layer(n, "self_attn.out_proj.bias"))
        case .norm2Weight(let n): return .tensor(layer(n, "layer_norm2.weight"))
        case .norm2Bias(let n): return .tensor(layer(n, "layer_norm2.bias"))
        case .fc1Weight(let n): return .tensor(layer(n, "mlp.fc1.weight"))
        case .fc1Bias(let n): return .tensor(layer(n, "mlp.fc1.bias"))
        case .fc2Weight(let n): return .tensor(layer(n, "mlp.fc2.weight"))
        case .fc2Bias(let n): return .tensor(layer(n, "mlp.fc2.bias"))
        case .postNormWeight: return .tensor("vision_model.post_layernorm.weight")
        case .postNormBias: return .tensor("vision_model.post_layernorm.bias")
        case .projection: return .transposed("visual_projection.weight")
        }
    }
}

extension ModelDescription {
    /// Every role with the shape the description requires of it.
    var roles: [(TensorRole, [Int])] {
        let w = width, m = mlpWidth
        var roles: [(TensorRole, [Int])] = [
            (.patchEmbedding, [w, 3, patchSize, patchSize]), (.classEmbedding, [w]), (.positionalEmbedding, [tokens, w]),
            (.preNormWeight, [w]), (.preNormBias, [w]),
        ]
        for n in 0..<layers {
            roles += [
                (.norm1Weight(n), [w]), (.norm1Bias(n), [w]), (.qkvWeight(n), [3 * w, w]), (.qkvBias(n), [3 * w]),
                (.outWeight(n), [w, w]), (.outBias(n), [w]), (.norm2Weight(n), [w]), (.norm2Bias(n), [w]),
                (.fc1Weight(n), [m, w]), (.fc1Bias(n), [m]), (.fc2Weight(n), [w, m]), (.fc2Bias(n), [w]),
            ]
        }
        roles += [(.postNormWeight, [w]), (.postNormBias, [w])]
        if let projection = projectionDim { roles.append((.projection, [w, projection])) }
        return roles
    }
}
