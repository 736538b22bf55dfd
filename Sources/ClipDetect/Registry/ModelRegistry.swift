import Foundation

/// Named models: a backbone (from the Hugging Face hub) and, for detectors, the reference's head
/// (from its GitHub repository's LFS storage), fetched on first use into a cache.
public struct NamedModel: Sendable, Equatable {
    public struct HubFile: Sendable, Equatable {
        public var repository: String
        /// Candidate file names, first found wins (the hub renamed some files over time).
        public var files: [String]
        public var revision = "main"
    }

    public struct ReferenceHead: Sendable, Equatable {
        /// Path in grip-unina/ClipBased-SyntheticImageDetection.
        public var path: String
        public var sha256: String
        public var size: Int
        public var arch: String
    }

    public var name: String
    public var summary: String
    public var backbone: HubFile
    /// What the backbone's files do not say (the open_clip hub repos carry their config; OpenAI's say quick_gelu).
    public var hints: ModelHints
    public var head: ReferenceHead?

    public static let all: [NamedModel] = {
        let commonPool = HubFile(repository: "laion/CLIP-ViT-L-14-CommonPool.XL-s13B-b90K",
                                 files: ["open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin"])
        func openAI(_ repository: String) -> HubFile { HubFile(repository: repository, files: ["model.safetensors", "pytorch_model.bin"]) }
        return [
            NamedModel(name: "clipdet-latent10k-plus", summary: "the paper's detector: ViT-L/14 CommonPool + head trained on 10k+10k images (more data)",
                       backbone: commonPool, hints: ModelHints(activation: .gelu),
                       head: ReferenceHead(path: "weights/clipdet_latent10k_plus/weights.pth",
                                           sha256: "1c9c9f48a47d975bde67e9924983aa4e4ccda96a15e7e983b6305f0c56d9ee18", size: 5155,
                                           arch: "opencliplinearnext_clipL14commonpool")),
            NamedModel(name: "clipdet-latent10k", summary: "the paper's detector: ViT-L/14 CommonPool + head trained on 10k+10k images",
                       backbone: commonPool, hints: ModelHints(activation: .gelu),
                       head: ReferenceHead(path: "weights/clipdet_latent10k/weights.pth",
                                           sha256: "04b022c6990709acb132337d7e432fc57090cec9db3869577111b031d40c19f9", size: 5227,
                                           arch: "opencliplinearnext_clipL14commonpool")),
            NamedModel(name: "clip-vit-l14-commonpool", summary: "backbone only: laion ViT-L/14 CommonPool.XL",
                       backbone: commonPool, hints: ModelHints(activation: .gelu), head: nil),
            NamedModel(name: "openai-vit-l14", summary: "backbone only: OpenAI CLIP ViT-L/14",
                       backbone: openAI("openai/clip-vit-large-patch14"), hints: ModelHints(activation: .quickGELU), head: nil),
            NamedModel(name: "openai-vit-b16", summary: "backbone only: OpenAI CLIP ViT-B/16",
                       backbone: openAI("openai/clip-vit-base-patch16"), hints: ModelHints(activation: .quickGELU), head: nil),
            NamedModel(name: "openai-vit-b32", summary: "backbone only: OpenAI CLIP ViT-B/32",
                       backbone: openAI("openai/clip-vit-base-patch32"), hints: ModelHints(activation: .quickGELU), head: nil),
        ]
    }()

    public static func named(_ name: String) -> NamedModel? { all.first { $0.name == name } }
}

/// Where named models live and how they are fetched.
public struct ModelStore: Sendable {
    /// `$CLIPDETECT_HOME`, else `$XDG_CACHE_HOME/clipdetect`, else `~/.cache/clipdetect`.
    public var home: String
    /// The Hugging Face hub cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`): files there are used in place.
    public var huggingFaceCache: String
    public var hubEndpoint: URL
    public var headEndpoint: URL
    public var offline: Bool
    public var downloader = Downloader()

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, offline: Bool = false) {
        let user = environment["HOME"] ?? NSHomeDirectory()
        let cache = environment["XDG_CACHE_HOME"] ?? "\(user)/.cache"
        home = environment["CLIPDETECT_HOME"] ?? "\(cache)/clipdetect"
        huggingFaceCache = environment["HF_HUB_CACHE"] ?? environment["HF_HOME"].map { "\($0)/hub" } ?? "\(cache)/huggingface/hub"
        hubEndpoint = URL(string: environment["CLIPDETECT_HF_ENDPOINT"] ?? environment["HF_ENDPOINT"] ?? "https://huggingface.co")!
        headEndpoint = URL(string: environment["CLIPDETECT_HEADS_ENDPOINT"]
                           ?? "https://media.githubusercontent.com/media/grip-unina/ClipBased-SyntheticImageDetection/main")!
        self.offline = offline || environment["CLIPDETECT_OFFLINE"] == "1" || environment["HF_HUB_OFFLINE"] == "1"
    }

    /// The backbone's local path: the Hugging Face cache if it has the file, else ours (downloaded when missing).
    public func backbone(_ model: NamedModel) throws -> String {
        let hub = model.backbone
        for file in hub.files {
            if let cached = huggingFaceCached(hub.repository, file) { return cached }
            let local = "\(home)/models/\(hub.repository.replacingOccurrences(of: "/", with: "--"))/\(file)"
            if FileManager.default.fileExists(atPath: local) { return local }
        }
        var lastError: Error?
        for file in hub.files {
            let local = "\(home)/models/\(hub.repository.replacingOccurrences(of: "/", with: "--"))/\(file)"
            let url = hubEndpoint.appendingPathComponent(hub.repository).appendingPathComponent("resolve")
                .appendingPathComponent(hub.revision).appendingPathComponent(file)
            do {
                try fetch(RemoteFile(url: url), to: local)
                return local
            } catch DownloadError.notFound(let url) {
                lastError = DownloadError.notFound(url)  // try the next candidate name
            }
        }
        throw lastError ?? DownloadError.offline(hubEndpoint, destination: home)
    }

    /// The reference head, downloaded, verified by its pinned SHA-256 and imported (safe unpickler).
    public func head(_ model: NamedModel, backbone: ImageEncoder?) throws -> Head? {
        guard let reference = model.head else { return nil }
        let raw = "\(home)/heads/\(model.name)/weights.pth"
        if !FileManager.default.fileExists(atPath: raw) {
            try fetch(RemoteFile(url: headEndpoint.appendingPathComponent(reference.path), sha256: reference.sha256, size: reference.size), to: raw)
        }
        let config = "\(home)/heads/\(model.name)/config.yaml"
        if !FileManager.default.fileExists(atPath: config) {
            try "arch: \(reference.arch)\nnorm_type: clip\npatch_size: Clip224\n".write(toFile: config, atomically: true, encoding: .utf8)
        }
        return try Head.importReference(checkpoint: raw, config: config, name: model.name, backbone: backbone)
    }

    private func fetch(_ file: RemoteFile, to destination: String) throws {
        if offline { throw DownloadError.offline(file.url, destination: destination) }
        do { try downloader.fetch(file, to: destination) } catch DownloadError.network(let url, let why) {
            throw DownloadError.network(url, "\(why); without network, download it elsewhere and put it at \(destination) (or use --model PATH)")
        }
    }

    private func huggingFaceCached(_ repository: String, _ file: String) -> String? {
        let snapshots = "\(huggingFaceCache)/models--\(repository.replacingOccurrences(of: "/", with: "--"))/snapshots"
        guard let revisions = try? FileManager.default.contentsOfDirectory(atPath: snapshots) else { return nil }
        return revisions.sorted().map { "\(snapshots)/\($0)/\(file)" }.first { FileManager.default.fileExists(atPath: $0) }
    }
}
