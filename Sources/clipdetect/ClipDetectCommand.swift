import ArgumentParser
import ClipDetect
import ClipDetectServer
import Foundation

@main
struct ClipDetectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clipdetect",
        abstract: "Tell AI-generated images from real ones with CLIP features (Cozzolino et al., CVPRW 2024).",
        version: clipdetectVersion,
        subcommands: [DetectCommand.self, ServeCommand.self, EvalCommand.self, TrainCommand.self, CalibrateCommand.self, ImpairCommand.self, HeadCommand.self, CacheCommand.self, ModelCommand.self, EmbedCommand.self,
                      PreprocessCommand.self, BenchCommand.self])

    /// File names on the command line keep their bytes, UTF-8 or not.
    static func main() async {
        do {
            let arguments = Array(PathName.arguments.dropFirst())
            try refuseNegativeValues(arguments)
            var command = try parseAsRoot(arguments)
            if var asynchronous = command as? AsyncParsableCommand { try await asynchronous.run() } else { try command.run() }
        } catch {
            flushStandardOutput()
            exit(withError: explained(error))
        }
        flushStandardOutput()
    }

    /// `--band -1,2`: the parser takes a value that starts with `-` for an option and says only that
    /// the value is missing. Said here as it is, with the spelling that works.
    static func refuseNegativeValues(_ arguments: [String]) throws {
        for (option, value) in zip(arguments, arguments.dropFirst()) where option.hasPrefix("--") && !option.contains("=") && option != "--" {
            guard value.count > 1, value.hasPrefix("-"), let second = value.dropFirst().first, second.isNumber || second == "." else { continue }
            throw CommandError("\(option) \(value): a value that starts with - reads as an option; write \(option)=\(value)")
        }
    }

    /// The library's error with what only the command line knows: the command or option that helps.
    static func explained(_ error: Error) -> Error {
        commandHint(for: error).map { CommandError("\(error)\($0)") } ?? error
    }

    static func commandHint(for error: Error) -> String? {
        switch error {
        case let error as CheckpointError:
            guard case .lfsPointer(let sha256, _) = error.underlying, let model = NamedModel.all.first(where: { $0.head?.sha256 == sha256 }) else { return nil }
            return ", or `clipdetect model fetch \(model.name)`, which downloads that file (its SHA-256 is pinned)"
        case HeadError.noMetadata: return "; import reference heads with `clipdetect head import`"
        case HeadError.sameName: return " (import or train one with another --name)"
        case ResolutionError.noHead: return " (import the reference's with `clipdetect head import`)"
        case ResolutionError.backboneNotFound: return " with --model (every head then runs on it: score heads of other backbones in another run)"
        case ResolutionError.offlineMissing(let model, _):
            return " (--model CHECKPOINT with --head FILE made by `clipdetect head import`); a file without a SHA-256 is taken by `clipdetect model accept \(model)`"
        case FeatureCacheError.notSQLite: return " (remove it, or name another --cache)"
        case VerificationError.unverified(let model, _), DownloadError.offline(_, _, _, let model?):
            return " (`clipdetect model accept \(model)`)"
        case ListenError.cannotBind: return ": give another --port (0 picks a free one) or --host"
        case ListenError.unknownHost: return ": give --host an address such as 127.0.0.1, 0.0.0.0 or ::"
        case HeadError.fusionOfOne: return " (drop --fusion, or give another --head)"
        default: return nil
        }
    }

    /// What print() buffered must reach its destination: a full disk behind stdout is a failure.
    static func flushStandardOutput() {
        if fflush(nil) != 0 {
            printError("cannot write standard output: \(String(cString: strerror(errno)))")
            Foundation.exit(1)
        }
    }
}

/// Exit status for a run where some inputs failed but the rest were processed.
let partialFailure = ExitCode(2)

/// A run-time failure of the command itself (not of its arguments): printed as one line, no usage.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
