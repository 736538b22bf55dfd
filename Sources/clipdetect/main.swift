import ArgumentParser
import ClipDetect

struct ClipDetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "clipdetect", abstract: "Detect AI-generated images with CLIP features.")
}
ClipDetectCommand.main()
