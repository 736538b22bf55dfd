import ArgumentParser
import ClipDetect
import Foundation

extension ModelDescription.Activation: ExpressibleByArgument {}
extension FeatureKind: ExpressibleByArgument {}

/// How the CLI finds a backbone and fills in what the checkpoint does not state.
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("model"), help: """
        A named model (see `clipdetect model list`), or a checkpoint: .safetensors or torch.save (.pth/.pt/.bin). \
        Default: the backbone a --head file names, else clipdet-latent10k-plus.
        """)
    var explicitModel: String?

    @Option(help: "Activation, when no config file or metadata states it (OpenAI checkpoints: quick_gelu).")
    var activation: ModelDescription.Activation?

    @Option(help: "Attention heads of the backbone, when no config states it (default: width / 64).")
    var attentionHeads: Int?

    @Flag(help: "Never download: use only files already in the cache.")
    var offline = false

    var hints: ModelHints { ModelHints(activation: activation, heads: attentionHeads) }

    static let defaultModel = "clipdet-latent10k-plus"

    /// The model to load: --model, else the named backbone the first head was made on.
    func model(for heads: [Head]) -> String {
        if let explicitModel { return explicitModel }
        guard let backbone = heads.first?.metadata.feature.backbone else { return Self.defaultModel }
        // A backbone-only entry: the head file brings its own head.
        let named = NamedModel.all.filter { $0.backbone.repository == backbone }
        return (named.first { $0.head == nil } ?? named.first)?.name ?? Self.defaultModel
    }

    /// Reads the head files (once), then loads the model they or --model name.
    func load(heads files: [String] = []) throws -> LoadedModel {
        let given = try files.map(Head.read)
        return try LoadedModel(model(for: given), hints: hints, offline: offline, heads: given)
    }
}

/// Where computed features are kept between runs.
struct CacheOptions: ParsableArguments {
    @Flag(help: "Do not read or write the feature cache.") var noCache = false
    @Option(help: "Feature cache file (default: features.sqlite in $CLIPDETECT_HOME).") var cache: String?

    func open() -> FeatureCache? {
        guard !noCache else { return nil }
        do { return try FeatureCache(path: cache ?? FeatureCache.defaultPath()) } catch {
            printError("feature cache unavailable (\(error)); computing every feature")
            return nil
        }
    }
}

/// A backbone from a path or a name, with the head files given or the named model's own head.
struct LoadedModel {
    let name: String
    let encoder: ImageEncoder
    private let given: [Head]
    let head: Head?

    init(_ model: String, hints: ModelHints, offline: Bool, heads given: [Head] = []) throws {
        name = model
        self.given = given
        if FileManager.default.fileExists(atPath: model) || model.contains("/") || model.hasSuffix(".safetensors") {
            encoder = try ImageEncoder(path: model, hints: hints)
            head = nil
            return
        }
        guard let named = NamedModel.named(model) else {
            throw CommandError("\(model) is neither a file nor a named model (\(NamedModel.all.map(\.name).joined(separator: ", ")))")
        }
        var store = ModelStore(offline: offline)
        store.downloader.progress = downloadProgress()
        encoder = try ImageEncoder(path: store.backbone(named), hints: hints.overriding(named.hints))
        head = try store.head(named, backbone: nil)
    }

    /// The given heads, or the named model's own head.
    func heads() throws -> [Head] {
        let chosen = given.isEmpty ? head.map { [$0] } ?? [] : given
        guard !chosen.isEmpty else {
            throw CommandError("\(name) is a backbone without a head: give --head (import the reference's with `clipdetect head import`)")
        }
        return chosen
    }
}

/// A download bar on standard error when it is a terminal.
func downloadProgress() -> (@Sendable (Int, Int?) -> Void)? {
    guard isatty(STDERR_FILENO) != 0 else { return nil }
    return { received, total in
        let text = total.map { String(format: "\rdownloading %.1f / %.1f MB", Double(received) / 1e6, Double($0) / 1e6) }
            ?? String(format: "\rdownloading %.1f MB", Double(received) / 1e6)
        try? FileHandle.standardError.write(contentsOf: Data(text.utf8))
    }
}

/// Writes to a file or standard output; a failed write (a full disk) is an error that names the file.
final class OutputStream {
    private let handle: FileHandle
    private let name: String

    init(path: String?, append: Bool = false) throws {
        if let path, path != "-" {
            name = path
            if !append {
                guard FileManager.default.createFile(atPath: path, contents: nil) else {
                    throw CommandError("cannot write \(path)")
                }
            }
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            if append { try handle.seekToEnd() }
        } else {
            name = "standard output"
            handle = FileHandle.standardOutput
        }
    }

    func write(_ text: String) throws { try write(Data(text.utf8)) }

    func write(_ data: Data) throws {
        do { try handle.write(contentsOf: data) } catch {
            throw CommandError("cannot write \(name): \(describe(error)); what was written before is kept")
        }
    }
}

/// Refuses an output path whose folder is missing or not writable, before any work is done.
func checkWritable(_ path: String) throws {
    guard path != "-" else { return }
    let folder = (path as NSString).deletingLastPathComponent
    let directory = folder.isEmpty ? "." : folder
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw ValidationError("cannot write \(path): no folder \(directory)")
    }
    guard access(directory, W_OK) == 0 else { throw ValidationError("cannot write \(path): \(directory) is not writable") }
}

/// One line for a Foundation or POSIX error (the POSIX reason when there is one).
func describe(_ error: Error) -> String {
    let ns = error as NSError
    if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(underlying.code)))
    }
    return ns.localizedDescription
}

func printError(_ message: String) {
    try? FileHandle.standardError.write(contentsOf: Data((message + "\n").utf8))
}
