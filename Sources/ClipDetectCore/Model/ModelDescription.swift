/// What a CLIP vision tower is, as numbers: every tower (B/32 … H/14) differs only here.
public struct ModelDescription: Codable, Sendable, Equatable {
    /// The largest input side a tower may take (CLIP towers use 224 to 448).
    public static let maxImageSize = 4096

    /// The MLP's nonlinearity: exact GELU, or OpenAI's `x·sigmoid(1.702x)` (open_clip's QuickGELU).
    public enum Activation: String, Codable, Sendable, CaseIterable {
        case gelu
        case quickGELU = "quick_gelu"
    }

    /// The input side, in pixels (224 for most towers).
    public var imageSize: Int
    /// The side of one patch, in pixels (14, 16 or 32: the /14 of ViT-L/14).
    public var patchSize: Int
    /// The transformer's width: the length of each token's vector.
    public var width: Int
    /// Residual attention blocks.
    public var layers: Int
    /// Attention heads in each block.
    public var heads: Int
    /// The hidden width of each block's MLP (4 × `width` in most towers).
    public var mlpWidth: Int
    /// The MLP's activation.
    public var activation: Activation
    /// The layer norms' epsilon (1e-5 in open_clip and transformers).
    public var layerNormEps: Float
    /// Output width of the projection after the pooled token; nil when the file has none.
    public var projectionDim: Int?
    /// Per-channel (R, G, B) mean subtracted from pixels in 0…1.
    public var mean: [Float]
    /// Per-channel (R, G, B) standard deviation pixels are divided by, after the mean.
    public var std: [Float]
    /// How the checkpoint names the tower's tensors.
    public var naming: TensorNaming

    /// OpenAI CLIP's normalisation mean (open_clip's `OPENAI_DATASET_MEAN`).
    public static let clipMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    /// OpenAI CLIP's normalisation standard deviation (open_clip's `OPENAI_DATASET_STD`).
    public static let clipStd: [Float] = [0.26862954, 0.26130258, 0.27577711]

    /// Patches along each side.
    public var grid: Int { imageSize / patchSize }
    /// Tokens the transformer sees: one per patch and the class token.
    public var tokens: Int { grid * grid + 1 }
    /// The width of one attention head.
    public var headWidth: Int { width / heads }

    /// Multiply-adds ×2 of one forward pass (no projection), for throughput reports.
    public var flopsPerImage: Double {
        let t = Double(tokens), w = Double(width), m = Double(mlpWidth), p = Double(patchSize)
        let patch = 2 * Double(grid * grid) * w * 3 * p * p
        let perLayer = 2 * t * w * (3 * w + w + 2 * m) + 2 * 2 * t * t * w
        return patch + Double(layers) * perLayer
    }
}

/// Which naming scheme a checkpoint uses, and under which prefix.
public enum TensorNaming: Codable, Sendable, Equatable {
    /// open_clip: `visual.conv1.weight`, …; prefix "" for a bare vision tower's state dict.
    case openCLIP(prefix: String)
    /// Hugging Face transformers: `vision_model.*` and `visual_projection.weight`.
    case huggingFace

    /// The scheme's name as written in heads and reports: `open_clip` or `huggingface`.
    public var name: String {
        switch self {
        case .openCLIP: "open_clip"
        case .huggingFace: "huggingface"
        }
    }
}
