import ArgumentParser

@main
struct ClipDetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clipdetect",
        abstract: "Tell AI-generated images from real ones with CLIP features (Cozzolino et al., CVPRW 2024).",
        subcommands: [DetectCommand.self, EvalCommand.self, TrainCommand.self, ImpairCommand.self, HeadCommand.self, CacheCommand.self, ModelCommand.self, EmbedCommand.self,
                      PreprocessCommand.self, BenchCommand.self])
}

/// Exit status for a run where some inputs failed but the rest were processed.
let partialFailure = ExitCode(2)

/// A run-time failure of the command itself (not of its arguments): printed as one line, no usage.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
