/// What a CLIP vision tower is, as numbers: every tower (B/32 … H/14) differs only here.
public struct ModelDescription: Codable, Sendable, Equatable {
    /// The largest input side a tower may take (CLIP towers use 224 to 448).
    public static let maxImageSize = 4096

    public enum Activation: String, Codable, Sendable, CaseIterable {
        case gelu
        case quickGELU = "quick_gelu"
    }

    public var imageSize: Int
    public var patchSize: Int
    public var width: Int
    public var layers: Int
    public var heads: Int
    public var mlpWidth: Int
    public var activation: Activation
    public var layerNormEps: Float
    /// Output width of the projection after the pooled token; nil when the file has none.
    public var projectionDim: Int?
    public var mean: [Float]
    public var std: [Float]
    public var naming: TensorNaming

    public static let clipMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public static let clipStd: [Float] = [0.26862954, 0.26130258, 0.27577711]

    public var grid: Int { imageSize / patchSize }
    public var tokens: Int { grid * grid + 1 }
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

    public var name: String {
        switch self {
        case .openCLIP: "open_clip"
        case .huggingFace: "huggingface"
        }
    }
}
