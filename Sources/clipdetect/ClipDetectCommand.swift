import ArgumentParser
import ClipDetect

@main
struct ClipDetectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clipdetect",
        abstract: "Tell AI-generated images from real ones with CLIP features (Cozzolino et al., CVPRW 2024).",
        version: clipdetectVersion,
        subcommands: [DetectCommand.self, ServeCommand.self, EvalCommand.self, TrainCommand.self, ImpairCommand.self, HeadCommand.self, CacheCommand.self, ModelCommand.self, EmbedCommand.self,
                      PreprocessCommand.self, BenchCommand.self])

    /// File names on the command line keep their bytes, UTF-8 or not.
    static func main() async {
        await main(Array(PathName.arguments.dropFirst()))
    }
}

/// Exit status for a run where some inputs failed but the rest were processed.
let partialFailure = ExitCode(2)

/// A run-time failure of the command itself (not of its arguments): printed as one line, no usage.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
