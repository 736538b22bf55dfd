import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// Heads in the formats their authors published, read into clipdetect's: the reference's
/// `weights.pth` + `config.yaml`, UnivFD's `fc_weights.pth`, RINE's checkpoint. Each names its
/// backbone through the registry when no backbone file is given.
extension Head {
    /// The reference's `weights.pth` (a `ChannelLinear` saved as `fc.weight` [1, D], `fc.bias` [1], possibly
    /// nested under model/state_dict/net) with its `config.yaml`, read through the safe unpickler.
    public static func importReference(checkpoint path: String, config: String?, name: String,
                                       backbone: ImageEncoder?) throws -> Head {
        let file = try Checkpoint.open(path)
        guard let weight = file.tensors["fc.weight"], let bias = file.tensors["fc.bias"] else {
            throw HeadError.tensors(source: PathName.display(path), found: "tensors \(file.tensors.keys.sorted().prefix(6).joined(separator: ", "))", expected: "fc.weight and fc.bias")
        }
        guard weight.shape.count == 2, weight.shape[0] == 1, bias.elementCount == 1 else {
            throw HeadError.tensors(source: PathName.display(path), found: "fc.weight \(weight.shape)", expected: "[1, D]")
        }
        let width = weight.shape[1]
        let settings = try config.map(ReferenceConfig.init(path:)) ?? ReferenceConfig()
        let known = settings.arch.flatMap(NamedModel.forReferenceArch)
        if let arch = settings.arch, known == nil, backbone == nil {
            throw HeadError.unknownArchitecture(arch)
        }
        if settings.arch != nil, settings.normType != nil, settings.normType != "clip" {
            throw HeadError.unsupportedNorm(settings.normType!)
        }
        if let known, let backbone, backbone.description.architecture != known.architecture {
            let given = backbone.path.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "the backbone given"
            throw HeadError.mismatch(head: nil, .referenceArch(arch: settings.arch!, model: known.name, architecture: known.architecture,
                                                               given: given, givenArchitecture: backbone.description.architecture))
        }
        if known != nil, backbone == nil, width != 1024 {
            throw HeadError.mismatch(head: nil, .width(head: width, backbone: 1024, feature: .pooled))
        }
        let architecture = backbone?.description.architecture ?? known?.architecture
        guard let architecture else {
            throw HeadError.backboneUnnamed
        }
        let feature = Feature(architecture: architecture, fingerprint: backbone?.fingerprint,
                              backbone: known?.backbone.repository, kind: .pooled, normalized: true, width: width,
                              backbonePath: backbone?.path.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        if let backbone, backbone.featureWidth(.pooled) != width {
            throw HeadError.mismatch(head: nil, .width(head: width, backbone: backbone.featureWidth(.pooled), feature: .pooled))
        }
        let provenance = "imported from \(URL(fileURLWithPath: path).lastPathComponent)" + (settings.arch.map { " (arch \($0))" } ?? "")
        return Head(weights: try weight.floats().values, bias: try bias.floats()[0],
                    metadata: Metadata(name: name, feature: feature, provenance: provenance))
    }
}

extension Head {
    /// UnivFD's `fc_weights.pth` (Ojha et al., CVPR 2023): a plain state dict, `weight` [1, D] and
    /// `bias` [1], read by the restricted unpickler. The layer scores the projected feature of
    /// OpenAI's ViT-L/14, not normalised, of the centre crop without resizing; `backbone` must be
    /// that tower (its projection width is D); without one, the head names OpenAI's ViT-L/14
    /// (`openai-vit-l14`) by architecture and repository, as the registry's `univfd` does.
    public static func importUnivFD(checkpoint path: String, name: String, backbone: ImageEncoder?) throws -> Head {
        let file = try Checkpoint.open(path)
        guard Set(file.tensors.keys) == ["weight", "bias"], let weight = file.tensors["weight"], let bias = file.tensors["bias"] else {
            throw HeadError.tensors(source: "\(PathName.display(path)) (UnivFD's fc_weights.pth)",
                                    found: "tensors \(file.tensors.keys.sorted().prefix(6).joined(separator: ", "))", expected: "weight and bias")
        }
        guard weight.shape.count == 2, weight.shape[0] == 1, bias.shape == [1] else {
            throw HeadError.tensors(source: PathName.display(path), found: "weight \(weight.shape) and bias \(bias.shape)", expected: "[1, D] and [1]")
        }
        let openAI = NamedModel.named("openai-vit-l14")!
        let projection = backbone.map { $0.description.projectionDim } ?? 768
        guard let projection, projection == weight.shape[1] else {
            throw HeadError.mismatch(head: "UnivFD's layer", projection.map { .width(head: weight.shape[1], backbone: $0, feature: .projected) } ?? .noProjection)
        }
        let feature = Feature(architecture: backbone?.description.architecture ?? openAI.architecture, fingerprint: backbone?.fingerprint,
                              backbone: backbone == nil ? openAI.backbone.repository : nil,
                              kind: .projected, normalized: false, width: projection,
                              backbonePath: backbone?.path.map { URL(fileURLWithPath: $0).standardizedFileURL.path }, view: .crop)
        let head = Head(weights: try weight.floats().values, bias: try bias.floats()[0],
                        metadata: Metadata(name: name, feature: feature, provenance: "UnivFD, imported from \(URL(fileURLWithPath: path).lastPathComponent)"))
        try head.validate(path)
        return head
    }
}

extension Head {
    /// RINE's checkpoint (`ckpt/model_*_trainable.pth`: α, proj1, proj2, head), read by the restricted
    /// unpickler. It scores the class tokens of every block's ln_2 output (`FeatureKind.blocks`, raw)
    /// of the centre crop without resizing, on OpenAI's ViT-L/14; `backbone` binds it to a checkpoint
    /// whose blocks and width match, else it names that tower (`openai-vit-l14`). `view` is how the
    /// network was evaluated: `crop`, or `tenCrop` for the LDM checkpoint.
    public static func importRINE(checkpoint path: String, name: String, backbone: ImageEncoder?, view: InputView = .crop) throws -> Head {
        guard view != .resizeCrop else { throw HeadError.rineResized }
        let file = try Checkpoint.open(path)
        let (trunk, last) = try RINETrunk.read(file.tensors, prefix: "", lastLayer: true, source: path)
        let openAI = NamedModel.named("openai-vit-l14")!
        let (layers, width) = backbone.map { ($0.description.layers, $0.description.width) } ?? (24, 1024)
        guard trunk.blocks == layers, trunk.tokenWidth == width else {
            throw HeadError.mismatch(head: "RINE", .trunk(blocks: trunk.blocks, width: trunk.tokenWidth, backboneBlocks: layers, backboneWidth: width))
        }
        let feature = Feature(architecture: backbone?.description.architecture ?? openAI.architecture, fingerprint: backbone?.fingerprint,
                              backbone: backbone == nil ? openAI.backbone.repository : nil, kind: .blocks, normalized: false,
                              width: trunk.inputWidth, backbonePath: backbone?.path.map { URL(fileURLWithPath: $0).standardizedFileURL.path },
                              view: view)
        let head = Head(weights: last!.weight, bias: last!.bias,
                        metadata: Metadata(name: name, feature: feature, provenance: "RINE, imported from \(URL(fileURLWithPath: path).lastPathComponent)"),
                        trunk: trunk)
        try head.validate(path)
        return head
    }
}

/// The few keys of the reference's config.yaml (flat `key: value` lines); its `arch` names a
/// backbone through `NamedModel.referenceArch`. All of them use the pooled token, L2-normalised.
struct ReferenceConfig {
    var arch: String?
    var normType: String?

    init() {}

    init(path: String) throws {
        guard let text = String(data: try Files.read(path, limit: 1 << 20), encoding: .utf8) else {
            throw HeadError.badMetadata(path: path, reason: "config.yaml is not UTF-8 text")
        }
        for line in text.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            let value = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
            switch parts[0] {
            case "arch": arch = value
            case "norm_type": normType = value
            default: break
            }
        }
    }
}
