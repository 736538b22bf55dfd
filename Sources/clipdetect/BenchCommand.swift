import ArgumentParser
import ClipDetect
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure throughput.",
        subcommands: [Encoder.self, Preprocessing.self, Training.self], defaultSubcommand: Encoder.self)

    struct Preprocessing: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "preprocess", abstract: "Decode + resize + crop + normalise images/s over the given files.")

        @Option(help: "Passes over the files (after one warm-up).") var iterations = 3
        @Option(help: "Model input size.") var size = 224
        @Flag(help: "Print JSON.") var json = false
        @Argument(help: "Image files or directories (searched recursively).") var images: [String]

        func validate() throws {
            guard (1...Preprocessor.maxSize).contains(size) else { throw ValidationError("--size takes 1…\(Preprocessor.maxSize) pixels") }
            guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1, not \(iterations)") }
        }

        func run() throws {
            let preprocessor = Preprocessor(size: size)
            let files = try Inputs.collect(images).map(\.path)
            guard !files.isEmpty else { throw CommandError("no image files in \(images.joined(separator: ", "))") }
            let data = try files.map { path in try ImageFileError.naming(path) { try ImageDecoder.read(path: path, limits: DecodeLimits()) } }
            func pass() throws { for (path, bytes) in zip(files, data) { _ = try ImageFileError.naming(path) { try preprocessor(ImageDecoder.decode(bytes)) } } }
            try pass()
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<iterations { try pass() }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let rate = Double(files.count * iterations) / seconds
            print(json ? #"{"images_per_second": \#(rate)}"# : String(format: "%.1f images/s (decode + preprocess, files read beforehand)", rate))
        }
    }
}

extension BenchCommand {
    struct Training: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train", abstract: "Time fitting a head on synthetic L2-normalised features (two overlapping classes).")

        @Option(help: "Images per class.") var perClass = 20_000
        @Option(help: "Feature width.") var width = 1024
        @Option(help: "svm or logreg.") var classifier: LinearClassifier = .svm
        @Option(name: .customLong("C"), help: "Regularisation: a number (one fit), or auto (train's 5-fold search over 7 values, then the final fit).")
        var C = "1"

        func validate() throws {
            if C != "auto" && Double(C) == nil { throw ValidationError("--C takes a number or auto") }
        }

        func run() throws {
            let data = TrainingSet.synthetic(perClass: perClass, width: width)
            let start = DispatchTime.now().uptimeNanoseconds
            var options = TrainingOptions()
            options.classifier = classifier
            options.C = Double(C)
            let feature = Head.Feature(architecture: "synthetic", fingerprint: nil, backbone: nil, kind: .pooled, normalized: true, width: width)
            let (head, report) = try Trainer.train(data, options: options, name: "bench", feature: feature, provenance: nil)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let auc = Metrics.auc(labels: data.labels, scores: data.features.map { head.score($0) })
            print(String(format: "%@ C=%@ (chosen %g) on %d + %d features of %d: %.2f s (training AUC %.4f)",
                         classifier.rawValue, C, report.C, perClass, perClass, width, seconds, auc))
        }
    }

    struct Encoder: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "encoder", abstract: "Encoder throughput (images/s, GFLOP/s) on random pixels.")

        @OptionGroup var modelOptions: ModelOptions
        @Option(help: "Comma-separated batch sizes.") var batch = "1,8"
        @Option(help: "Timed forward passes per batch size (after one warm-up).") var iterations = 3
        @Flag(help: "Print one JSON object per batch size.") var json = false

        func run() throws {
            let encoder = try modelOptions.load().encoder
            let d = encoder.description
            let sizes = try batch.split(separator: ",", omittingEmptySubsequences: false).map { entry in
                let text = entry.trimmingCharacters(in: .whitespaces)
                guard let size = Int(text), (1...256).contains(size) else {
                    throw ValidationError("--batch takes batch sizes 1…256 separated by commas, e.g. 1,8; not \(text.isEmpty ? "an empty entry" : text)")
                }
                return size
            }
            guard iterations >= 1 else { throw ValidationError("--iterations must be at least 1, not \(iterations)") }
            var generator = SeededGenerator(seed: 7)
            if !json { print("compute: \(encoder.backend)") }
            for size in sizes {
                let pixels = (0..<(size * 3 * d.imageSize * d.imageSize)).map { _ in Float(Double(generator.next() >> 11) / Double(1 << 53) * 4 - 2) }
                _ = try encoder.encode(pixels, count: size)
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<iterations { _ = try encoder.encode(pixels, count: size) }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(iterations)
                let imagesPerSecond = Double(size) / seconds
                let gflops = d.flopsPerImage * imagesPerSecond / 1e9
                if json {
                    print(#"{"batch": \#(size), "images_per_second": \#(imagesPerSecond), "gflops": \#(gflops), "precision": "\#(encoder.backend.precision.rawValue)"}"#)
                } else {
                    print(String(format: "batch %3d: %8.3f images/s  %7.1f GFLOP/s  (%.3f s per pass)", size, imagesPerSecond, gflops, seconds))
                }
            }
        }
    }
}
