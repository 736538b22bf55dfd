import ArgumentParser
import ClipDetect
import Foundation

struct ImpairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "impair", abstract: "Write an image after a chain of impairments, to inspect or reuse it.",
        discussion: """
            Operations: jpeg:q=Q[,sub=444|422|420]  webp:q=Q
            resize:factor=F|side=S|max=S|to=S[,filter=bilinear|bicubic|lanczos|auto]
            crop:fraction=F|size=S|side=F[,min=P,max=P][,mode=center|random|x=X,y=Y]  blur:sigma=S  noise:sigma=S
            and the named chains paper and social (docs/impairments.md). Any number may be a range low..high, drawn
            per image from --seed. A chain ending in jpeg or webp is written as those bytes; otherwise as PNG.
            """)

    @Argument(help: "Image file.") var image: String
    @Option(name: .customLong("op"), help: "An operation (repeat, applied in order).") var operations: [String]
    @Option(help: "Seed for the parameters drawn from ranges.") var seed: UInt64 = 0
    @Option(name: [.customShort("o"), .long], help: "Output file.") var output: String

    func run() throws {
        let chain = try ImpairmentChain(parsing: operations, seed: seed)
        let ext = URL(fileURLWithPath: output).pathExtension.lowercased()
        guard ["png", "jpg", "jpeg", "webp"].contains(ext) else {
            throw CommandError("-o \(output): the format is the file's extension: .png, or .jpg/.webp after a jpeg/webp step")
        }
        try checkWritable(output)
        // The image first: a missing one is said to be missing, not to be the output.
        let decoded = try ImageDecoder.decode(path: image)
        try refuseOverwritingInputs(output, [image] + storeFiles)
        let (result, encoded) = try ImageFileError.naming(image) { try chain.apply(decoded) }
        switch (ext, chain.operations.last) {
        case ("png", _):
            try PNGEncoder.write(result, to: output)
        case ("jpg", .jpeg?), ("jpeg", .jpeg?), ("webp", .webp?):
            try Files.write(encoded!, to: output)
        default:
            throw CommandError("\(output): end the chain with jpeg to write .jpg, with webp to write .webp, or write .png")
        }
    }
}
