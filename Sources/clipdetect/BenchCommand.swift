import ArgumentParser
import ClipDetect
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure throughput.",
        subcommands: [Encoder.self, Preprocessing.self], defaultSubcommand: Encoder.self)

    struct Preprocessing: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "preprocess", abstract: "Decode + resize + crop + normalise images/s over the given files.")

        @Option(help: "Passes over the files (after one warm-up).") var iterations = 3
        @Option(help: "Model input size.") var size = 224
        @Flag(help: "Print JSON.") var json = false
        @Argument(help: "Image files.") var images: [String]

        func run() throws {
            let preprocessor = Preprocessor(size: size)
            let data = try images.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
            func pass() throws { for bytes in data { _ = preprocessor(try ImageDecoder.decode(bytes)) } }
            try pass()
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<max(1, iterations) { try pass() }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let rate = Double(images.count * max(1, iterations)) / seconds
            print(json ? #"{"images_per_second": \#(rate)}"# : String(format: "%.1f images/s (decode + preprocess, files read beforehand)", rate))
        }
    }
}

extension BenchCommand {
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
            let sizes = batch.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 }
            guard !sizes.isEmpty else { throw ValidationError("--batch needs positive integers, e.g. 1,8") }
            var generator = SplitMix64(seed: 7)
            for size in sizes {
                let pixels = (0..<(size * 3 * d.imageSize * d.imageSize)).map { _ in Float(generator.nextUnit() * 4 - 2) }
                _ = try encoder.encode(pixels, count: size)
                let start = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<max(1, iterations) { _ = try encoder.encode(pixels, count: size) }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(max(1, iterations))
                let imagesPerSecond = Double(size) / seconds
                let gflops = d.flopsPerImage * imagesPerSecond / 1e9
                if json {
                    print(#"{"batch": \#(size), "images_per_second": \#(imagesPerSecond), "gflops": \#(gflops)}"#)
                } else {
                    print(String(format: "batch %3d: %8.3f images/s  %7.1f GFLOP/s  (%.3f s per pass)", size, imagesPerSecond, gflops, seconds))
                }
            }
        }
    }
}

/// A small deterministic generator so benchmark inputs are the same on every run.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
