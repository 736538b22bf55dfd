import ArgumentParser
import ClipDetect
import Foundation

extension ModelDescription.Activation: ExpressibleByArgument {}
extension FeatureKind: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// How the CLI finds a backbone and fills in what the checkpoint does not state.
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("model"), help: """
        A named model (see `clipdetect model list`), or a checkpoint: .safetensors or torch.save (.pth/.pt/.bin). \
        Default: the backbone a --head file names, else clipdet-latent10k-plus.
        """)
    var explicitModel: String?

    /// The checkpoint file when one is named (a named model is not a file here): an input.
    var files: [String] { (explicitModel.map { [$0] } ?? []) + storeFiles }

    @Option(help: "Activation, when no config file or metadata states it (OpenAI checkpoints: quick_gelu).")
    var activation: ModelDescription.Activation?

    @Option(help: "Attention heads of the backbone, when no config states it (default: width / 64).")
    var attentionHeads: Int?

    @Flag(help: "Never download: use only files already in the cache.")
    var offline = false

    @Option(help: """
        Number format of the encoder's products: fp32 (features equal to the reference's), bf16 (about twice as fast, \
        features within a cosine of 0.9999; needs AVX-512 BF16 or AMX, else fp32 runs and a line says so), auto (bf16 where the CPU has it).
        """)
    var precision: Precision = .fp32

    var hints: ModelHints { ModelHints(activation: activation, heads: attentionHeads) }

    var store: ModelStore {
        var store = ModelStore(offline: offline)
        store.downloader.progress = downloadProgress()
        return store
    }

    /// The backbone --model names (default: the paper's detector's), without its head.
    func load() throws -> ResolvedModel {
        let model = try namingFlags {
            try ModelResolution.load(explicitModel ?? ModelResolution.defaultModel, hints: hints, store: store, precision: precision, ownHead: false)
        }
        if let note = model.encoder.backend.note { printError("note: \(note)") }
        return model
    }

    /// The heads to score with (head files, a head set, or named models; none: the model's own) on
    /// --model or the backbones they record, with a head set's fusion and fused rule; `fusion` is
    /// what the command line asked for, if anything. With the models' names (named or paths).
    func loadDetector(_ heads: HeadOptions, configuration: Detector.Configuration) throws -> (detector: Detector, models: [String]) {
        let (detector, models) = try namingFlags {
            try ModelResolution.detector(heads: heads.heads, model: explicitModel, hints: hints, store: store, precision: precision,
                                         configuration: configuration, fusion: heads.fusion)
        }
        if let note = models.first?.encoder.backend.note { printError("note: \(note)") }
        return (detector, models.map(\.name))
    }
}

/// Runs `body`; the library says what a checkpoint does not state, and the CLI adds the flag that states it.
func namingFlags<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as ModelError {
        switch error {
        case .activationUnknown: throw CommandError("\(error) with --activation gelu|quick_gelu")
        case .headsUnknown: throw CommandError("\(error) with --attention-heads")
        default: throw error
        }
    }
}

/// Where computed features are kept between runs.
struct CacheOptions: ParsableArguments {
    @Flag(help: "Do not read or write the feature cache.") var noCache = false
    @Option(help: "Feature cache file (default: features.sqlite in $CLIPDETECT_HOME).") var cache: String?

    /// The cache file when one is named: an input no output may replace.
    var files: [String] { noCache ? [] : [cache ?? FeatureCache.defaultPath()] }

    func open() -> FeatureCache? {
        guard !noCache else { return nil }
        do {
            let opened = try FeatureCache(path: cache ?? FeatureCache.defaultPath(), owned: cache == nil)
            if let aside = opened.movedAside {
                printError("note: the feature cache \(PathName.display(opened.path)) was damaged: kept as \(PathName.display(aside)), and a new one started")
            }
            return opened
        } catch {
            printError("feature cache unavailable (\(error)\(ClipDetectCommand.commandHint(for: error) ?? "")); computing every feature")
            return nil
        }
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
            guard FileKind(path) != .directory else { throw CommandError("cannot write \(path): it is a folder") }
            // open(2) follows a link and writes into a device; it never replaces what is there.
            let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
            let fd = try Files.openForWriting(path, flags: flags)
            handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
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
    _ = try Files.writeTarget(path)
}

/// A binary file is never written where the command's report goes (standard output).
func refuseStandardOutput(_ output: String, holding what: String) throws {
    var standard = stat(), target = stat()
    guard fstat(1, &standard) == 0, stat(output, &target) == 0, standard.st_dev == target.st_dev, standard.st_ino == target.st_ino else { return }
    throw CommandError("-o \(output) is standard output, where the report goes: write the \(what) to a file")
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

/// How the final score reads as a verdict, beyond what the heads carry.
struct VerdictOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Uncertain where P(synthetic) is strictly between LOW and HIGH (e.g. 0.2,0.8); replaces the head's own band.",
                               valueName: "low,high"))
    var band: String?

    func parsedBand() throws -> UncertaintyBand? { try Self.parse(band) }

    static func parse(_ band: String?) throws -> UncertaintyBand? {
        guard let band else { return nil }
        let parts = band.split(separator: ",", omittingEmptySubsequences: false).map { Numbers.decimal($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let low = parts[0], let high = parts[1] else { throw ValidationError("--band takes two probabilities, LOW,HIGH") }
        let parsed = UncertaintyBand(scale: .probability, low: low, high: high)
        do { try parsed.validate() } catch { throw ValidationError("--band: \(error)") }
        return parsed
    }

    func validate() throws { _ = try parsedBand() }
}

/// The store's own files, which no output may replace: the verification record and the feature cache.
var storeFiles: [String] { [ModelStore().home + "/verified.json", FeatureCache.defaultPath()] }

/// An output that is one of the inputs would be emptied before it is read: refused. Compared by
/// device and inode, so a link or another spelling of the path is the same file.
func refuseOverwritingInputs(_ output: String?, _ inputs: [String], option: String = "-o") throws {
    guard let output, output != "-" else { return }
    var target = stat()
    guard stat(output, &target) == 0 else {
        // Not there yet: the same path spelled the same way is still the same file.
        let spelled = URL(fileURLWithPath: output).standardizedFileURL.path
        if let input = inputs.first(where: { URL(fileURLWithPath: $0).standardizedFileURL.path == spelled }) {
            throw CommandError("\(option) \(output) is also an input or another output (\(PathName.display(input))): one would overwrite the other")
        }
        return
    }
    for input in inputs {
        var source = stat()
        if stat(input, &source) == 0, source.st_dev == target.st_dev, source.st_ino == target.st_ino {
            throw CommandError("\(option) \(output) is also an input (\(PathName.display(input))): it would be overwritten before it is read")
        }
    }
}

/// The heads a command scores with, and how their scores are combined.
struct HeadOptions: ParsableArguments {
    @Option(name: .customLong("head"), help: "Head file or named model (repeat for several: their scores are fused). Default: the named model's head.")
    var heads: [String] = []
    @Option(help: "How several heads' scores are combined (default soft_or_prob, or the head set's).") var fusion: Fusion?
}
