import Foundation

/// Facts a user or a config file states that shapes cannot tell.
public struct ModelHints: Sendable, Equatable {
    /// The MLP's activation (quick_gelu for OpenAI's checkpoints, gelu for most others).
    public var activation: ModelDescription.Activation?
    /// Attention heads; needed when the width is not a multiple of 64.
    public var heads: Int?
    /// The layer norms' epsilon.
    public var layerNormEps: Float?
    /// Per-channel (R, G, B) normalisation mean, on pixels in 0…1.
    public var mean: [Float]?
    /// Per-channel (R, G, B) normalisation standard deviation, on pixels in 0…1.
    public var std: [Float]?

    /// Hints from the facts given; nil leaves a fact to the checkpoint, its configs or the defaults.
    public init(activation: ModelDescription.Activation? = nil, heads: Int? = nil, layerNormEps: Float? = nil,
                mean: [Float]? = nil, std: [Float]? = nil) {
        self.activation = activation
        self.heads = heads
        self.layerNormEps = layerNormEps
        self.mean = mean
        self.std = std
    }

    /// Fields set here win over `other`'s.
    public func overriding(_ other: ModelHints) -> ModelHints {
        ModelHints(activation: activation ?? other.activation, heads: heads ?? other.heads,
                   layerNormEps: layerNormEps ?? other.layerNormEps, mean: mean ?? other.mean, std: std ?? other.std)
    }
}

/// Why a checkpoint cannot be read as a vision tower, or how it differs from the one expected.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case noVisionTower(String)
    /// A tower of another family (timm's ViT or Eva, transformers' DINOv2 or SigLIP): named, refused.
    case otherFamily(path: String, family: String)
    case activationUnknown(String)
    case headsUnknown(width: Int)
    case missingTensors([String])
    case unexpectedTensors([String])
    case shapeMismatch(name: String, found: [Int], expected: [Int])
    case unsupported(String)
    case badConfig(String)

    public var description: String {
        switch self {
        case .noVisionTower(let path):
            "\(path): no CLIP vision tower found (looked for visual.conv1.weight, conv1.weight, vision_model.embeddings.patch_embedding.weight)"
        case .otherFamily(let path, let family):
            "\(path) is \(family): this version runs CLIP vision towers only (open_clip or Hugging Face CLIP names)"
        case .activationUnknown(let path):
            "\(path): nothing states the activation (no open_clip_config.json, config.json or safetensors metadata); state it: gelu, or quick_gelu for OpenAI checkpoints"
        case .headsUnknown(let width):
            "width \(width) is not a multiple of 64 and nothing states the number of attention heads; state it"
        case .missingTensors(let names):
            "checkpoint lacks \(names.count) tensor(s) the tower needs: \(Self.list(names))"
        case .unexpectedTensors(let names):
            "checkpoint has \(names.count) vision tensor(s) this tower does not use: \(Self.list(names))"
        case .shapeMismatch(let name, let found, let expected):
            "tensor \(name) has shape \(found), expected \(expected)"
        case .unsupported(let why): why
        case .badConfig(let why): why
        }
    }

    private static func list(_ names: [String]) -> String {
        names.count <= 6 ? names.joined(separator: ", ") : names.prefix(6).joined(separator: ", ") + ", …"
    }
}

extension ModelDescription {
    /// Reads the description off a checkpoint: numbers from tensor shapes, the rest from `hints`
    /// (which win: the user's word), the checkpoint's safetensors metadata, the config files beside
    /// it, and last `defaults` (what a head recorded of its backbone: it fills gaps, but never
    /// overrides what the checkpoint states, or a head would decide how its own backbone runs).
    package static func infer(from checkpoint: Checkpoint, hints: ModelHints = ModelHints(),
                             defaults: ModelHints = ModelHints()) throws -> ModelDescription {
        let tensors = checkpoint.tensors
        let naming: TensorNaming
        if tensors["visual.conv1.weight"] != nil {
            naming = .openCLIP(prefix: "visual.")
        } else if let family = ModelHints.otherFamily(tensors.keys, path: checkpoint.path) {
            throw ModelError.otherFamily(path: checkpoint.path, family: family)
        } else if tensors["vision_model.embeddings.patch_embedding.weight"] != nil {
            naming = .huggingFace
        } else if tensors["conv1.weight"] != nil {
            naming = .openCLIP(prefix: "")
        } else {
            throw ModelError.noVisionTower(checkpoint.path)
        }
        func shape(_ role: TensorRole) throws -> [Int] {
            guard let name = naming.source(role).names.first, let tensor = tensors[name] else {
                throw ModelError.missingTensors(naming.source(role).names)
            }
            return tensor.shape
        }
        let patch = try shape(.patchEmbedding)
        guard patch.count == 4, patch[1] == 3, patch[2] == patch[3], patch[2] > 0, patch[0] > 0 else {
            throw ModelError.unsupported("patch embedding has shape \(patch), expected [width, 3, patch, patch]")
        }
        let positions = try shape(.positionalEmbedding)
        let grid = Int(Double(max(positions.first ?? 1, 1) - 1).squareRoot().rounded())
        guard positions.count == 2, grid > 0, grid * grid + 1 == positions[0] else {
            throw ModelError.unsupported("positional embedding has shape \(positions), expected [grid² + 1, width]")
        }
        var layers = 0
        while let name = naming.source(.norm1Weight(layers)).names.first, tensors[name] != nil { layers += 1 }
        guard layers > 0 else { throw ModelError.missingTensors(naming.source(.norm1Weight(0)).names) }
        let fc1 = try shape(.fc1Weight(0))
        let projection: Int?
        if let name = naming.source(.projection).names.first, let tensor = tensors[name], tensor.shape.count == 2 {
            projection = naming == .huggingFace ? tensor.shape[0] : tensor.shape[1]
        } else {
            projection = nil
        }

        let stated = try hints
            .overriding(ModelHints(metadata: checkpoint.metadata))
            .overriding(ModelHints(configBeside: checkpoint.path, naming: naming))
            .overriding(defaults)
        let width = patch[0]
        guard let activation = stated.activation else { throw ModelError.activationUnknown(checkpoint.path) }
        // open_clip and Hugging Face both default to 64-wide heads for every CLIP tower.
        guard let heads = stated.heads ?? (width % 64 == 0 ? width / 64 : nil) else { throw ModelError.headsUnknown(width: width) }
        guard heads > 0, width % heads == 0 else { throw ModelError.badConfig("\(heads) heads do not divide width \(width)") }
        if let eps = stated.layerNormEps, !(eps > 0 && eps < 0.1) {
            throw ModelError.badConfig("layer_norm_eps \(eps) is not in (0, 0.1)")
        }
        guard heads <= width else { throw ModelError.badConfig("\(heads) heads for width \(width)") }
        guard grid * patch[2] <= ModelDescription.maxImageSize else {
            throw ModelError.unsupported("image size \(grid * patch[2]) is above \(ModelDescription.maxImageSize) pixels")
        }
        for (name, values) in [("mean", stated.mean), ("std", stated.std)] {
            guard let values else { continue }
            guard values.allSatisfy({ $0.isFinite }), name == "mean" || values.allSatisfy({ $0 > 0 }) else {
                throw ModelError.badConfig("preprocessing \(name) \(values) is not usable")
            }
        }
        let description = ModelDescription(
            imageSize: grid * patch[2], patchSize: patch[2], width: width, layers: layers, heads: heads,
            mlpWidth: fc1.first ?? 0, activation: activation, layerNormEps: stated.layerNormEps ?? 1e-5,
            projectionDim: projection, mean: stated.mean ?? clipMean, std: stated.std ?? clipStd, naming: naming)
        try description.validate(against: checkpoint)
        return description
    }

    /// Checks that the file holds exactly the tensors this description needs, with their shapes.
    package func validate(against checkpoint: Checkpoint) throws {
        let tensors = checkpoint.tensors
        var missing: [String] = []
        var used = Set<String>()
        for (role, expected) in roles {
            let source = naming.source(role)
            for name in source.names {
                used.insert(name)
                guard let tensor = tensors[name] else { missing.append(name); continue }
                let found = tensor.shape
                let want: [Int]
                switch source {
                case .tensor: want = expected
                case .transposed: want = expected.reversed()
                case .concatenated(let parts): want = [expected[0] / parts.count] + expected.dropFirst()
                }
                guard found == want else { throw ModelError.shapeMismatch(name: name, found: found, expected: want) }
            }
        }
        guard missing.isEmpty else { throw ModelError.missingTensors(missing) }
        let extra = tensors.keys.filter { !used.contains($0) && !naming.isOutsideVisionTower($0) }.sorted()
        if let scale = extra.first(where: { $0.contains(".ls_1.") || $0.contains(".ls_2.") }) {
            throw ModelError.unsupported("layer scale (\(scale)) is not supported: this tower type has none in the reference")
        }
        guard extra.isEmpty else { throw ModelError.unexpectedTensors(extra) }
    }
}

extension ModelHints {
    /// safetensors `__metadata__` keys: `activation`/`hidden_act`, `quick_gelu`, `heads`/`num_attention_heads`, `layer_norm_eps`.
    init(metadata: [String: String]) throws {
        self.init()
        if let name = metadata["activation"] ?? metadata["hidden_act"] { activation = try Self.activation(named: name) }
        if let flag = metadata["quick_gelu"] { activation = flag.lowercased() == "true" ? .quickGELU : .gelu }
        if let text = metadata["heads"] ?? metadata["num_attention_heads"] {
            guard let value = Int(text) else { throw ModelError.badConfig("metadata heads = \(text) is not an integer") }
            heads = value
        }
        if let text = metadata["layer_norm_eps"] {
            guard let value = Float(text) else { throw ModelError.badConfig("metadata layer_norm_eps = \(text) is not a number") }
            layerNormEps = value
        }
    }

    /// A config number that must be a whole number: JSON true or 3.5 is refused, not read as 1 or 3.
    static func integer(_ value: Any?, _ key: String) throws -> Int? {
        guard let value else { return nil }
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c",
              number.doubleValue == number.doubleValue.rounded(), abs(number.doubleValue) < 1e9 else {
            throw ModelError.badConfig("config \(key) = \(value) is not a whole number")
        }
        return number.intValue
    }

    static func number(_ value: Any?, _ key: String) throws -> Float? {
        guard let value else { return nil }
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c", number.doubleValue.isFinite else {
            throw ModelError.badConfig("config \(key) = \(value) is not a number")
        }
        return number.floatValue
    }

    static func activation(named name: String) throws -> ModelDescription.Activation {
        switch name.lowercased() {
        case "gelu": return .gelu
        case "quick_gelu", "quickgelu": return .quickGELU
        default: throw ModelError.unsupported("activation \(name) is not supported (gelu or quick_gelu)")
        }
    }

    /// What a checkpoint that is no CLIP tower is, when its names say: timm's (the hub's layout, or
    /// wrapped by open_clip as `visual.trunk`), or transformers' DINOv2 and SigLIP; the architecture
    /// the config beside it names, when there is one.
    static func otherFamily(_ names: Dictionary<String, Tensor>.Keys, path: String) -> String? {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        func config(_ file: String) -> [String: Any]? {
            guard let data = try? Files.read(folder.appendingPathComponent(file).path, limit: 1 << 20) else { return nil }
            return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        }
        if names.contains("patch_embed.proj.weight") {
            return (config("config.json")?["architecture"] as? String).map { "timm's \($0)" } ?? "a timm ViT or Eva tower"
        }
        if names.contains("visual.trunk.patch_embed.proj.weight") {
            let model = config("open_clip_config.json")?["model_cfg"] as? [String: Any]
            let trunk = (model?["vision_cfg"] as? [String: Any])?["timm_model_name"] as? String
            return "open_clip's wrapping of " + (trunk.map { "timm's \($0)" } ?? "a timm tower")
        }
        if names.contains("embeddings.patch_embeddings.projection.weight") {
            return (config("config.json")?["architectures"] as? [String])?.first.map { "transformers' \($0)" } ?? "a transformers DINOv2 tower"
        }
        // transformers' SigLIP shares CLIP's vision_model.* names; its attention-pool probe tells it apart.
        if names.contains("vision_model.head.probe") {
            return (config("config.json")?["architectures"] as? [String])?.first.map { "transformers' \($0)" } ?? "a transformers SigLIP tower"
        }
        return nil
    }

    /// Reads `open_clip_config.json`, or `config.json` (+ `preprocessor_config.json`) for Hugging Face files.
    init(configBeside path: String, naming: TensorNaming) throws {
        self.init()
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        func json(_ name: String) throws -> [String: Any]? {
            let url = folder.appendingPathComponent(name)
            guard let data = try? Data(contentsOf: url) else { return nil }
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ModelError.badConfig("\(url.path) is not a JSON object")
            }
            return object
        }
        func floats(_ value: Any?) -> [Float]? {
            guard let list = value as? [NSNumber], list.count == 3 else { return nil }
            return list.map { $0.floatValue }
        }
        switch naming {
        case .openCLIP:
            guard let config = try json("open_clip_config.json") else { return }
            let model = config["model_cfg"] as? [String: Any] ?? config
            // open_clip builds nn.GELU unless the config sets quick_gelu.
            activation = (model["quick_gelu"] as? Bool ?? false) ? .quickGELU : .gelu
            if let vision = model["vision_cfg"] as? [String: Any], let width = try Self.integer(vision["width"], "width") {
                let headWidth = try Self.integer(vision["head_width"], "head_width") ?? 64
                guard headWidth > 0, width % headWidth == 0 else { throw ModelError.badConfig("open_clip config: head_width \(headWidth) does not divide width \(width)") }
                heads = width / headWidth
            }
            let preprocess = config["preprocess_cfg"] as? [String: Any]
            mean = floats(preprocess?["mean"])
            std = floats(preprocess?["std"])
        case .huggingFace:
            guard let config = try json("config.json") else { return }
            let vision = config["vision_config"] as? [String: Any] ?? config
            // transformers' CLIPVisionConfig defaults hidden_act to quick_gelu.
            activation = try Self.activation(named: vision["hidden_act"] as? String ?? "quick_gelu")
            heads = try Self.integer(vision["num_attention_heads"], "num_attention_heads")
            layerNormEps = try Self.number(vision["layer_norm_eps"], "layer_norm_eps")
            let preprocessor = try json("preprocessor_config.json")
            mean = floats(preprocessor?["image_mean"])
            std = floats(preprocessor?["image_std"])
        }
    }
}

extension ModelError: ClassifiedError {
    public var kind: FailureKind {
        switch self {
        case .noVisionTower, .missingTensors, .unexpectedTensors, .shapeMismatch, .badConfig: .invalidInput
        case .activationUnknown, .headsUnknown, .unsupported, .otherFamily: .unsupported
        }
    }
}
