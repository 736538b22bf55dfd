import ArgumentParser
import ClipDetect

struct PreprocessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preprocess", abstract: "Write what the encoder sees, as a lossless PNG.")

    enum Stage: String, ExpressibleByArgument, CaseIterable { case decoded, resized, cropped }

    @Argument(help: "Image file.") var image: String
    @Option(name: [.customShort("o"), .long], help: "Output PNG.") var output: String
    @Option(help: "decoded (RGB as Pillow's convert('RGB')), resized, or cropped.") var stage: Stage = .cropped
    @Option(help: "Model input size.") var size = 224

    func run() throws {
        let preprocessor = Preprocessor(size: size)
        var result = try ImageDecoder.decode(path: image)
        if stage != .decoded { result = preprocessor.resized(result) }
        if stage == .cropped { result = preprocessor.cropped(result) }
        try PNGEncoder.write(result, to: output)
    }
}
