import ArgumentParser
import ClipDetect
import Foundation

extension ModelDescription.Activation: ExpressibleByArgument {}
extension FeatureKind: ExpressibleByArgument {}

/// How the CLI finds a backbone and fills in what the checkpoint does not state.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Backbone checkpoint: .safetensors, or a torch.save file (.pth/.pt/.bin).")
    var model: String

    @Option(help: "Activation, when no config file or metadata states it (OpenAI checkpoints: quick_gelu).")
    var activation: ModelDescription.Activation?

    @Option(help: "Attention heads, when no config states it (default: width / 64).")
    var heads: Int?

    var hints: ModelHints { ModelHints(activation: activation, heads: heads) }

    func loadEncoder() throws -> ImageEncoder {
        try ImageEncoder(path: model, hints: hints)
    }
}

/// Writes to a file or standard output.
final class OutputStream {
    private let handle: FileHandle
    init(path: String?, append: Bool = false) throws {
        if let path, path != "-" {
            if !append {
                guard FileManager.default.createFile(atPath: path, contents: nil) else {
                    throw ValidationError("cannot write \(path)")
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
