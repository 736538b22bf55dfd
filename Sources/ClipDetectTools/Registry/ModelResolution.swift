import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// A backbone loaded from what a user names (a named model, a checkpoint file or a model folder),
/// with the named model's own head when it has one.
public struct ResolvedModel: Sendable {
    /// The named model, or the checkpoint path.
    public let name: String
    /// The loaded backbone.
    public let encoder: ImageEncoder
    /// The named model's own head (the reference detectors have one).
    public let ownHead: Head?

    /// The published backbone name when `name` is a named model: heads trained on it record it.
    public var backbone: String? { NamedModel.named(name)?.backbone.repository }

    /// The heads to score with: those given, else the named model's own.
    public func heads(given: [Head]) throws -> [Head] {
        if !given.isEmpty { return given }
        guard let ownHead else { throw ResolutionError.noHead(name) }
        return [ownHead]
    }
}

/// Why what a user named cannot be loaded: no such model, no head, no weights, or files missing offline.
public enum ResolutionError: Error, CustomStringConvertible, Equatable {
    case unknownModel(String, known: [String])
    case noHead(String)
    /// A head made on a local backbone that is not where the head says it was.
    case backboneNotFound(head: String, architecture: String, path: String?)
    case noWeightsInFolder(String)
    /// Offline, a named model's files that are not here.
    case offlineMissing(model: String, files: [MissingFile])

    /// One file a named model needs: where it comes from, where it goes, and its pinned SHA-256 if any.
    public struct MissingFile: Sendable, Equatable {
        /// The download URL, the local path it goes to, and the hash it must have (nil: none pinned).
        public var url: String, destination: String, sha256: String?
    }

    /// The names within a few edits of `name` (case and `_`/`-` aside), closest first.
    static func closest(to name: String, in known: [String]) -> String? {
        func normal(_ s: String) -> [Character] { Array(s.lowercased().replacingOccurrences(of: "_", with: "-")) }
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var row = Array(0...b.count)
            for (i, x) in a.enumerated() {
                var previous = row[0]
                row[0] = i + 1
                for (j, y) in b.enumerated() {
                    let substitution = previous + (x == y ? 0 : 1)
                    previous = row[j + 1]
                    row[j + 1] = min(substitution, row[j] + 1, row[j + 1] + 1)
                }
            }
            return row[b.count]
        }
        let target = normal(name)
        let scored = known.map { ($0, distance(target, normal($0))) }.filter { $0.1 <= max(2, target.count / 4) }.sorted { $0.1 < $1.1 }
        guard !scored.isEmpty else { return nil }
        return scored.prefix(2).map(\.0).joined(separator: " or ")
    }

    public var description: String {
        switch self {
        case .unknownModel(let name, let known):
            "\(name) is neither a file nor a named model" + (Self.closest(to: name, in: known).map { ": did you mean \($0)?" } ?? "")
                + " (named models: \(known.joined(separator: ", ")))"
        case .noHead(let name): "\(name) is a backbone without a head: give a head file"
        case .backboneNotFound(let head, let architecture, let path):
            "\(head) was made on a local \(architecture) backbone" + (path.map { " at \($0), which is not there" } ?? "")
                + ": put that checkpoint back there, or name the checkpoint it runs on"
        case .offlineMissing(let model, let files):
            "offline, and \(model) needs " + files.map { file in
                "\(file.url) at \(PathName.display(file.destination))" + (file.sha256.map { " (SHA-256 \($0))" } ?? " (no SHA-256 pinned: accept it once there)")
            }.joined(separator: " and ")
                + ": download them elsewhere and put them there, or work from local files"
        case .noWeightsInFolder(let folder):
            "\(folder) holds none of \(ModelResolution.folderFiles.joined(separator: ", "))"
        }
    }
}

/// From the names a user gives (models, checkpoints, folders, heads) to loaded encoders, heads and detectors.
public enum ModelResolution {
    /// What `detect`, `eval` and `train` use when nothing else is named.
    public static let defaultModel = "clipdet-latent10k-plus"

    /// Weights files a model folder may hold (Hugging Face and open_clip hub layouts), first found wins.
    package static let folderFiles = ["model.safetensors", "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                                     "pytorch_model.bin", "open_clip_pytorch_model.bin"]

    /// A checkpoint file as given, or the weights file inside a model folder.
    public static func checkpoint(at path: String) throws -> String {
        guard FileKind(path) == .directory else { return path }
        for file in folderFiles {
            let candidate = (path as NSString).appendingPathComponent(file)
            if FileKind(candidate) == .regular { return candidate }
        }
        throw ResolutionError.noWeightsInFolder(path)
    }

    /// True when `model` names a path rather than a named model.
    public static func isPath(_ model: String) -> Bool {
        FileKind(model) != .missing || model.contains("/") || model.hasSuffix(".safetensors")
    }

    /// The model to load: `explicit`, else the backbone the first head records (by name, or the
    /// local file it was made on), else the default.
    public static func modelName(explicit: String?, heads: [Head]) throws -> String {
        if let explicit { return explicit }
        guard let feature = heads.first?.metadata.feature else { return defaultModel }
        if let path = feature.backbonePath, FileKind(path) != .missing { return path }
        if let backbone = feature.backbone {
            // A backbone-only entry: the head file brings its own head.
            let named = NamedModel.all.filter { $0.backbone.repository == backbone }
            return (named.first { $0.head == nil } ?? named.first)?.name ?? defaultModel
        }
        if feature.fingerprint != nil {
            throw ResolutionError.backboneNotFound(head: heads[0].metadata.name, architecture: feature.architecture, path: feature.backbonePath)
        }
        return defaultModel
    }

    /// Loads the backbone `model` names: `hints` win, then what the checkpoint states, then what the
    /// first head records of its backbone (activation, heads) fills the gaps; a named model's
    /// pinned facts count as the user's.
    /// `precision` is what the encoder is asked to run in (see `ImageEncoder.backend` for what runs).
    /// A named model's own head is fetched only with `ownHead` (not when other heads are given).
    public static func load(_ model: String, hints: ModelHints, store: ModelStore, heads: [Head] = [],
                            precision: Precision = .fp32, ownHead: Bool = true) throws -> ResolvedModel {
        let fromHeads = heads.first?.metadata.feature.hints ?? ModelHints()
        if isPath(model) {
            let encoder = try ImageEncoder(path: checkpoint(at: model), hints: hints, defaults: fromHeads, precision: precision)
            return ResolvedModel(name: model, encoder: encoder, ownHead: nil)
        }
        guard let named = NamedModel.named(model) else { throw ResolutionError.unknownModel(model, known: NamedModel.all.map(\.name)) }
        if store.offline {
            // Every file the run needs, in one message, not one per attempt.
            let missing = store.missing(named, head: ownHead)
            if !missing.isEmpty { throw ResolutionError.offlineMissing(model: model, files: missing.map { .init(url: $0.url, destination: $0.destination, sha256: $0.sha256) }) }
        }
        let encoder = try ImageEncoder(path: store.backbone(named), hints: hints.overriding(named.hints), precision: precision)
        return ResolvedModel(name: model, encoder: encoder, ownHead: ownHead ? try store.head(named, backbone: nil) : nil)
    }

    /// The heads a user names: head files, one head-set file alone, or named models (their own head,
    /// fetched like the model's). With each head, the named model it came from (nil for a file).
    public static func heads(_ names: [String], store: ModelStore) throws -> (selection: HeadSelection, models: [String?]) {
        var files: [String] = [], named: [(index: Int, head: Head, model: String)] = []
        for (index, name) in names.enumerated() {
            if FileKind(name) == .missing, let model = NamedModel.named(name) {
                guard let head = try store.head(model, backbone: nil) else { throw ResolutionError.noHead(name) }
                named.append((index, head, name))
            } else {
                files.append(name)
            }
        }
        let fromFiles = try HeadSelection.read(files)
        if fromFiles.set != nil, !named.isEmpty {
            throw HeadError.setNotAlone
        }
        var next = fromFiles.heads.makeIterator()
        var heads: [Head] = [], models: [String?] = []
        for index in fromFiles.set == nil ? Array(names.indices) : Array(fromFiles.heads.indices) {
            if let entry = named.first(where: { $0.index == index }) {
                heads.append(entry.head)
                models.append(entry.model)
            } else {
                heads.append(next.next()!)
                models.append(nil)
            }
        }
        return (HeadSelection(heads: heads, set: fromFiles.set), models)
    }

    /// A detector from what a user names: `heads` (see `heads(_:store:)`; none: the model's own) on
    /// `explicit` (every head on that backbone) or, when no model is named, on the backbones the
    /// heads record, each loaded once. `fusion` is what the user asked for, if anything. The models
    /// are those of `detector.encoders`, in that order.
    public static func detector(heads names: [String], model explicit: String?, hints: ModelHints, store: ModelStore,
                                precision: Precision = .fp32, configuration: Detector.Configuration,
                                fusion: Fusion? = nil) throws -> (detector: Detector, models: [ResolvedModel]) {
        let (given, wanted) = try heads(names, store: store)
        let configured = try given.configure(configuration, fusionGiven: fusion)
        if given.heads.isEmpty || explicit != nil {
            let model = try load(explicit ?? defaultModel, hints: hints, store: store, heads: given.heads, precision: precision,
                                 ownHead: given.heads.isEmpty)
            return (try Detector(encoder: model.encoder, heads: model.heads(given: given.heads), configuration: configured), [model])
        }
        // One load per backbone: named models that share one (univfd, rine-2class) load it once.
        var models: [ResolvedModel] = [], loadedFor: [String: Int] = [:], assigned: [(head: Head, encoder: ImageEncoder)] = []
        for (head, from) in zip(given.heads, wanted) {
            // A named model's head runs on its backbone; a head file on the one it records.
            let name = try from ?? modelName(explicit: nil, heads: [head])
            let key = NamedModel.named(name).map { "hub:" + $0.backbone.repository } ?? URL(fileURLWithPath: name).standardizedFileURL.path
            if loadedFor[key] == nil {
                loadedFor[key] = models.count
                models.append(try load(name, hints: hints, store: store, heads: [head], precision: precision, ownHead: false))
            }
            assigned.append((head, models[loadedFor[key]!].encoder))
        }
        let detector = try Detector(heads: assigned, configuration: configured)
        // Two files of the same weights run as one encoder: one model each.
        return (detector, detector.encoders.map { encoder in models.first { $0.encoder === encoder }! })
    }
}

extension ResolutionError: ClassifiedError {
    public var kind: FailureKind {
        switch self {
        case .unknownModel, .backboneNotFound, .noWeightsInFolder: .notFound
        case .offlineMissing: .network
        case .noHead: .invalidInput
        }
    }
}
