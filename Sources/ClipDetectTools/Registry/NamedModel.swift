import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// Named models: a backbone (from the Hugging Face hub) and, for detectors, the reference's head
/// (from its GitHub repository's LFS storage), fetched on first use into a cache.
public struct NamedModel: Sendable, Equatable {
    /// A file in a Hugging Face hub repository.
    public struct HubFile: Sendable, Equatable {
        /// The hub repository, owner/name (e.g. openai/clip-vit-large-patch14).
        public var repository: String
        /// Candidate file names, first found wins (the hub renamed some files over time).
        public var files: [String]
        /// The git revision fetched: a branch, tag or commit.
        public var revision: String

        /// A hub file from its repository, candidate names and revision.
        public init(repository: String, files: [String], revision: String = "main") {
            self.repository = repository
            self.files = files
            self.revision = revision
        }
    }

    /// A reference detector's head file, pinned by hash and size, and how to read it.
    public struct ReferenceHead: Sendable, Equatable {
        /// How the file is read: the paper's weights.pth (+ a config.yaml we write), UnivFD's fc_weights.pth, or RINE's checkpoint.
        public enum Format: String, Sendable { case cozzolino, univfd, rine }

        /// Path in `source`.
        public var path: String
        /// The SHA-256 the downloaded file must have, in hex.
        public var sha256: String
        /// The file's size in bytes.
        public var size: Int
        /// The reference's `arch` (written into the config.yaml of a cozzolino head).
        public var arch: String?
        /// Which reference's layout the file has.
        public var format: Format
        /// Where `path` is fetched from (`CLIPDETECT_HEADS_ENDPOINT` replaces it for every head).
        public var source: String
        /// The licence the head's repository states.
        public var license: String?

        /// The paper's repository (grip-unina/ClipBased-SyntheticImageDetection), through GitHub's LFS media host.
        public static let paperSource = "https://media.githubusercontent.com/media/grip-unina/ClipBased-SyntheticImageDetection/main"

        /// A head from its parts; by default the paper's format and repository.
        public init(path: String, sha256: String, size: Int, arch: String?, format: Format = .cozzolino,
                    source: String = paperSource, license: String? = nil) {
            self.path = path
            self.sha256 = sha256
            self.size = size
            self.arch = arch
            self.format = format
            self.source = source
            self.license = license
        }
    }

    /// The name users give (`--model`), e.g. clipdet-latent10k-plus.
    public var name: String
    /// One line for people: what the model is.
    public var summary: String
    /// The backbone's checkpoint on the hub.
    public var backbone: HubFile
    /// What the backbone's files do not say (the open_clip hub repos carry their config; OpenAI's say quick_gelu).
    public var hints: ModelHints
    /// The reference detector's head; nil for a backbone only.
    public var head: ReferenceHead?
    /// `ModelDescription.architecture` of the backbone: what a head made for it records.
    public var architecture: String
    /// The reference's `arch` name in config.yaml for heads on this backbone, when it has one.
    public var referenceArch: String?

    /// A named model from its parts.
    public init(name: String, summary: String, backbone: HubFile, hints: ModelHints, head: ReferenceHead?,
                architecture: String, referenceArch: String? = nil) {
        self.name = name
        self.summary = summary
        self.backbone = backbone
        self.hints = hints
        self.head = head
        self.architecture = architecture
        self.referenceArch = referenceArch
    }

    /// Every named model, the default (the paper's detector) first.
    public static let all: [NamedModel] = {
        let commonPool = HubFile(repository: "laion/CLIP-ViT-L-14-CommonPool.XL-s13B-b90K",
                                 files: ["open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin"])
        let laion2B = HubFile(repository: "laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
                              files: ["open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin"])
        func openAI(_ repository: String) -> HubFile { HubFile(repository: repository, files: ["model.safetensors", "pytorch_model.bin"]) }
        let l14 = "vit-224/14-w1024-l24-h16-m4096-gelu-p768", l14Quick = "vit-224/14-w1024-l24-h16-m4096-quick_gelu-p768"
        return [
            NamedModel(name: "clipdet-latent10k-plus", summary: "the paper's detector: ViT-L/14 CommonPool + head trained on 10k+10k images (more data)",
                       backbone: commonPool, hints: ModelHints(activation: .gelu),
                       head: ReferenceHead(path: "weights/clipdet_latent10k_plus/weights.pth",
                                           sha256: "1c9c9f48a47d975bde67e9924983aa4e4ccda96a15e7e983b6305f0c56d9ee18", size: 5155,
                                           arch: "opencliplinearnext_clipL14commonpool"),
                       architecture: l14, referenceArch: nil),
            NamedModel(name: "clipdet-latent10k", summary: "the paper's detector: ViT-L/14 CommonPool + head trained on 10k+10k images",
                       backbone: commonPool, hints: ModelHints(activation: .gelu),
                       head: ReferenceHead(path: "weights/clipdet_latent10k/weights.pth",
                                           sha256: "04b022c6990709acb132337d7e432fc57090cec9db3869577111b031d40c19f9", size: 5227,
                                           arch: "opencliplinearnext_clipL14commonpool"),
                       architecture: l14, referenceArch: nil),
            NamedModel(name: "clip-vit-l14-commonpool", summary: "backbone only: laion ViT-L/14 CommonPool.XL",
                       backbone: commonPool, hints: ModelHints(activation: .gelu), head: nil,
                       architecture: l14, referenceArch: "opencliplinearnext_clipL14commonpool"),
            NamedModel(name: "clip-vit-l14-laion2b", summary: "backbone only: laion ViT-L/14 LAION-2B",
                       backbone: laion2B, hints: ModelHints(activation: .gelu), head: nil,
                       architecture: l14, referenceArch: "opencliplinearnext_clipL14laion2B"),
            NamedModel(name: "openai-vit-l14", summary: "backbone only: OpenAI CLIP ViT-L/14",
                       backbone: openAI("openai/clip-vit-large-patch14"), hints: ModelHints(activation: .quickGELU), head: nil,
                       architecture: l14Quick, referenceArch: "opencliplinearnext_clipL14openai"),
            NamedModel(name: "univfd", summary: "UnivFD (Ojha et al., CVPR 2023): OpenAI ViT-L/14, linear layer on the raw projected feature of the centre crop",
                       backbone: openAI("openai/clip-vit-large-patch14"), hints: ModelHints(activation: .quickGELU),
                       head: ReferenceHead(path: "pretrained_weights/fc_weights.pth",
                                           sha256: "477100745713bcc957beb2b40859536859b6483fd6301b3b9293151b194c7847", size: 4083,
                                           arch: nil, format: .univfd,
                                           source: "https://raw.githubusercontent.com/WisconsinAIVision/UniversalFakeDetect/main",
                                           license: "MIT (WisconsinAIVision/UniversalFakeDetect)"),
                       architecture: l14Quick, referenceArch: nil),
            NamedModel(name: "rine-2class", summary: "RINE (Koutlis & Papadopoulos, ECCV 2024): OpenAI ViT-L/14, every block's class token, trained on 2 classes",
                       backbone: openAI("openai/clip-vit-large-patch14"), hints: ModelHints(activation: .quickGELU),
                       head: ReferenceHead(path: "ckpt/model_2class_trainable.pth",
                                           sha256: "680d301b6d191da85b9dabcebf42cd3df20c5c669fa8320c498f835d02bf5ccb", size: 1_139_686,
                                           arch: nil, format: .rine, source: "https://raw.githubusercontent.com/mever-team/rine/main",
                                           license: "Apache-2.0 (mever-team/rine)"),
                       architecture: l14Quick, referenceArch: nil),
            NamedModel(name: "openai-vit-b16", summary: "backbone only: OpenAI CLIP ViT-B/16",
                       backbone: openAI("openai/clip-vit-base-patch16"), hints: ModelHints(activation: .quickGELU), head: nil,
                       architecture: "vit-224/16-w768-l12-h12-m3072-quick_gelu-p512", referenceArch: nil),
            NamedModel(name: "openai-vit-b32", summary: "backbone only: OpenAI CLIP ViT-B/32",
                       backbone: openAI("openai/clip-vit-base-patch32"), hints: ModelHints(activation: .quickGELU), head: nil,
                       architecture: "vit-224/32-w768-l12-h12-m3072-quick_gelu-p512", referenceArch: nil),
        ]
    }()

    /// The named model called `name` exactly, or nil.
    public static func named(_ name: String) -> NamedModel? { all.first { $0.name == name } }

    /// The backbone-only model a reference config's `arch` names.
    public static func forReferenceArch(_ arch: String) -> NamedModel? { all.first { $0.referenceArch == arch } }
}
