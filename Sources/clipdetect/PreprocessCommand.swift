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
    @Flag(help: "Apply EXIF orientation first (the reference does not).") var exifOrientation = false

    func validate() throws {
        guard (1...Preprocessor.maxSize).contains(size) else { throw ValidationError("--size takes 1…\(Preprocessor.maxSize) pixels") }
    }

    func run() throws {
        try refuseOverwritingInputs(output, [image] + storeFiles)
        let preprocessor = Preprocessor(size: size)
        let decoded = try ImageDecoder.decode(path: image, applyOrientation: exifOrientation)
        let result: RGBImage
        switch stage {
        case .decoded: result = decoded
        case .resized:
            result = try ImageFileError.naming(image) { try preprocessor.resized(decoded) }
        case .cropped: result = preprocessor.resizedAndCropped(decoded)
        }
        try PNGEncoder.write(result, to: output)
    }
}
