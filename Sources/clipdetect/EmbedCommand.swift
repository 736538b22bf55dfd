import ArgumentParser
import ClipDetect
import Foundation

extension InputView: ExpressibleByArgument {}

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed", abstract: "Write one CLIP feature row per image, in input order.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case npy, jsonl, csv }

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var cacheOptions: CacheOptions
    @OptionGroup var progressOptions: ProgressOptions
    @Option(help: "pooled (before the projection, the detector's feature), projected, or blocks (every block's ln_2 class token, RINE's).") var features: FeatureKind = .pooled
    @Flag(help: "Keep raw features instead of L2-normalising them.") var noNormalize = false
    @Option(help: "resize-crop (resize the short side, then centre crop: the paper's detector), crop (centre crop without resizing, zero padding: UnivFD's and RINE's), or ten-crop (torchvision's TenCrop: ten features one after another in each row).")
    var view: InputView = .resizeCrop
    @Option(help: "npy (float32 N×D; a failed image is a row of NaN), jsonl or csv.") var format: Format = .jsonl
    @Option(name: [.customShort("o"), .long], help: "Output file (default: standard output).") var output: String?
    @Option(help: "Images per forward pass (1…256).") var batch = 8
    @Flag(help: "Apply EXIF orientation before preprocessing (the reference does not).") var exifOrientation = false
    @Argument(help: "Image files, directories (searched recursively), or - for paths on standard input.") var inputs: [String]

    func validate() throws {
        if !(1...256).contains(batch) { throw ValidationError("--batch takes 1…256") }
    }

    func run() throws {
        if let output { try checkWritable(output) }
        let images = try Inputs.collect(inputs).map(\.path)
        try refuseOverwritingInputs(output, images + modelOptions.files + cacheOptions.files)
        let encoder = try modelOptions.load().encoder
        let settings = ExtractionSettings(kind: features, normalize: !noNormalize, batchSize: batch, applyOrientation: exifOrientation,
                                          view: view)
        let extractor = FeatureExtractor(encoder: encoder, settings: settings, cache: cacheOptions.open())
        let out = try OutputStream(path: output)
        var rows: [[Float]] = []
        var failures = 0
        if format == .csv {
            try out.write(CSVTable.line(["filename"] + (0..<extractor.width).map { "f\($0)" } + ["error"]))
        }
        let progress = Progress(total: images.count, label: "embed", quiet: progressOptions.quiet)
        try extractor.run(paths: images) { index, result in
            let path = images[index]
            defer { progress.advance(failed: (try? result.get()) == nil) }
            switch result {
            case .success(let feature):
                switch format {
                case .npy: rows.append(feature)
                case .jsonl: try out.write(jsonLine(path: path, feature: feature, error: nil))
                case .csv: try out.write(CSVTable.line([path] + feature.map { "\($0)" } + [""]))
                }
            case .failure(let error):
                failures += 1
                if progress.visible { printError("") }
                printError("\(error)")
                switch format {
                case .npy: rows.append(Array(repeating: .nan, count: extractor.width))
                case .jsonl: try out.write(jsonLine(path: path, feature: nil, error: "\(error)"))
                case .csv: try out.write(CSVTable.line([path] + Array(repeating: "", count: extractor.width) + ["\(error)"]))
                }
            }
        }
        progress.finish()
        if format == .npy { try out.write(NPYWriter.data(rows: rows, width: extractor.width)) }
        if failures > 0 {
            printError("\(failures) of \(images.count) image(s) failed")
            throw partialFailure
        }
    }

    private func jsonLine(path: String, feature: [Float]?, error: String?) -> String {
        var object: [String: Any] = ["filename": path]
        if let feature { object["feature"] = feature.map { $0.isFinite ? Double($0) as Any : NSNull() } }
        if let error { object["error"] = error }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
