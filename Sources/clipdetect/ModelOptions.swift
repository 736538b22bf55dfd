import ArgumentParser
import ClipDetect
import Foundation

extension ModelDescription.Activation: ExpressibleByArgument {}
extension FeatureKind: ExpressibleByArgument {}

/// How the CLI finds a backbone and fills in what the checkpoint does not state.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "A named model (see `clipdetect model list`), or a checkpoint: .safetensors or torch.save (.pth/.pt/.bin).")
    var model = "clipdet-latent10k-plus"

    @Option(help: "Activation, when no config file or metadata states it (OpenAI checkpoints: quick_gelu).")
    var activation: ModelDescription.Activation?

    @Option(help: "Attention heads of the backbone, when no config states it (default: width / 64).")
    var attentionHeads: Int?

    @Flag(help: "Never download: use only files already in the cache.")
    var offline = false

    var hints: ModelHints { ModelHints(activation: activation, heads: attentionHeads) }

    func load() throws -> LoadedModel {
        try LoadedModel(model, hints: hints, offline: offline)
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

/// A backbone from a path or a name, with the named model's head when it has one.
struct LoadedModel {
    let encoder: ImageEncoder
    let head: Head?

    init(_ model: String, hints: ModelHints, offline: Bool) throws {
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

    /// The given head files, or the named model's own head.
    func heads(_ files: [String], model: String) throws -> [Head] {
        let chosen = files.isEmpty ? head.map { [$0] } ?? [] : try files.map(Head.read)
        guard !chosen.isEmpty else {
            throw CommandError("\(model) is a backbone without a head: give --head (import the reference's with `clipdetect head import`)")
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
        FileHandle.standardError.write(Data(text.utf8))
    }
}

/// Writes to a file or standard output.
final class OutputStream {
    private let handle: FileHandle
    init(path: String?, append: Bool = false) throws {
        if let path, path != "-" {
            if !append {
                guard FileManager.default.createFile(atPath: path, contents: nil) else {
                    throw CommandError("cannot write \(path)")
                }
            }
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            if append { handle.seekToEndOfFile() }
        } else {
            handle = FileHandle.standardOutput
        }
    }
    func write(_ text: String) { handle.write(Data(text.utf8)) }
    func write(_ data: Data) { handle.write(data) }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
