import Foundation
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Files → features: order kept, a bad file fails alone, and the CLI writes what the library computes.
@Suite struct FeatureTests {
    static let model = Fixtures.path("encoder", "a_gelu_proj32", "openclip.safetensors")
    static let images = ["jpeg_420.jpg", "bad_truncated.jpg", "png_rgba.png", "bad_text.png", "size_33x17.png"]
        .map { Fixtures.path("images", $0) }

    @Test func badFilesFailAloneAndOrderIsKept() throws {
        let encoder = try ImageEncoder(path: Self.model)
        let extractor = FeatureExtractor(encoder: encoder, settings: ExtractionSettings(batchSize: 4))
        var results: [(Int, Result<[Float], Error>)] = []
        try extractor.run(paths: Self.images) { results.append(($0, $1)) }
        #expect(results.map(\.0) == [0, 1, 2, 3, 4])
        for (index, result) in results {
            let path = Self.images[index]
            switch result {
            case .success(let feature):
                #expect(!path.contains("bad_"))
                // Same as decoding, preprocessing and encoding this one file alone.
                let alone = try encoder.encode(Preprocessor(encoder.description)(ImageDecoder.decode(path: path)), count: 1)
                #expect(maxAbsDifference(feature, alone[0]) <= 1e-6)
            case .failure(let error):
                #expect(path.contains("bad_"))
                #expect("\(error)".hasPrefix(path))
            }
        }
    }

    /// Batches give what one image at a time gives, in order, across batch boundaries, whatever
    /// fails; an emit that throws stops the run at once.
    @Test func batchesGiveWhatOneAtATimeGives() throws {
        let encoder = try ImageEncoder(path: Self.model)
        let sources: [ImageSource] = (Self.images + Self.images.reversed() + [Self.images[0]]).map(ImageSource.file)
            + [.bytes(Data("not an image".utf8)), .decoded(try ImageDecoder.decode(path: Self.images[2]))]
        let alone = FeatureExtractor(encoder: encoder, settings: ExtractionSettings(batchSize: 1))
        for batch in [2, 3, 5] {
            let extractor = FeatureExtractor(encoder: encoder, settings: ExtractionSettings(batchSize: batch))
            var results: [(Int, Result<ExtractedFeature, Error>)] = []
            try extractor.run(sources) { results.append(($0, $1)) }
            #expect(results.map(\.0) == Array(sources.indices), "batch \(batch)")
            for (index, result) in results {
                let single = alone.features([sources[index]])
                #expect(single.count == 1)
                switch (result, single[0]) {
                case (.success(let a), .success(let b)): #expect(a == b, "batch \(batch), source \(index)")
                case (.failure(let a), .failure(let b)): #expect("\(a)" == "\(b)")
                default: Issue.record("batch \(batch), source \(index): \(result) alone \(single[0])")
                }
            }
            struct Stop: Error {}
            var seen = 0
            #expect(throws: Stop.self) {
                try extractor.run(sources) { _, _ in
                    seen += 1
                    if seen == batch + 1 { throw Stop() }
                }
            }
            #expect(seen == batch + 1)
        }
    }

    @Test func npyIsFloat32RowsNumpyCanRead() {
        let data = NPYWriter.data(rows: [[1, 2, 3], [4, 5, .nan]], width: 3)
        #expect(Array(data.prefix(8)) == [0x93] + Array("NUMPY".utf8) + [1, 0])
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.contains("'descr': '<f4'") && header.contains("'shape': (2, 3)") && header.hasSuffix("\n"))
        let values = data[(10 + headerLength)...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(Array(values.prefix(5)) == [1, 2, 3, 4, 5] && values[5].isNaN)
    }
}

/// The command-line tool, run as a user would.
@Suite struct CommandLineTests {
    init() {}
    static var binary: URL {
        // Tests run from the build folder beside the products.
        Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("clipdetect")
    }

    /// `environment` is applied over the hermetic one (a nil value removes the variable); `output`
    /// replaces the captured standard output (e.g. /dev/full).
    func run(_ arguments: [String], environment overrides: [String: String?] = [:], output: FileHandle? = nil) throws
        -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        // Hermetic: each run has its own model store, feature cache and (empty) Hugging Face cache.
        var environment = ProcessInfo.processInfo.environment
        let home = try Fixtures.temporaryDirectory()
        environment["CLIPDETECT_HOME"] = home.path
        environment["HF_HUB_CACHE"] = home.appendingPathComponent("hub").path
        for (key, value) in overrides { environment[key] = value }
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = output ?? out
        process.standardError = err
        try process.run()
        let stdout = output == nil ? out.fileHandleForReading.readDataToEndOfFile() : Data()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    @Test func embedWritesEveryRowAndReportsFailures() throws {
        let output = try Fixtures.temporaryDirectory().appendingPathComponent("features.npy").path
        let result = try run(["embed", "--model", FeatureTests.model, "--format", "npy", "-o", output] + FeatureTests.images)
        #expect(result.status == 2)
        #expect(result.stderr.contains("bad_truncated.jpg") && result.stderr.contains("2 of 5 image(s) failed"))
        let data = try Data(contentsOf: URL(fileURLWithPath: output))
        #expect(String(decoding: data.prefix(128), as: UTF8.self).contains("'shape': (5, 32)"))

        let jsonl = try run(["embed", "--model", FeatureTests.model, "--features", "projected", FeatureTests.images[0]])
        #expect(jsonl.status == 0)
        let row = try JSONSerialization.jsonObject(with: Data(jsonl.stdout.utf8)) as! [String: Any]
        #expect((row["feature"] as! [Double]).count == 24)
    }

    @Test func refusalsAreOneLine() throws {
        let malicious = try run(["model", "info", Fixtures.path("malicious", "os_system.pth")])
        #expect(malicious.status != 0)
        #expect(malicious.stderr.contains("refused") && malicious.stderr.split(separator: "\n").count == 1)
        let unknown = try run(["model", "info", Fixtures.path("encoder", "c_bare_noproj28", "bare.pth")])
        #expect(unknown.status != 0 && unknown.stderr.contains("--activation"))
        let known = try run(["model", "info", "--json", "--activation", "gelu", "--attention-heads", "2",
                             Fixtures.path("encoder", "c_bare_noproj28", "bare.pth")])
        #expect(known.status == 0 && known.stdout.contains("\"width\" : 64"))
    }

    @Test func preprocessWritesWhatTheEncoderSees() throws {
        let output = try Fixtures.temporaryDirectory().appendingPathComponent("seen.png").path
        let result = try run(["preprocess", Fixtures.path("images", "jpeg_420.jpg"), "-o", output])
        #expect(result.status == 0)
        let written = try ImageDecoder.decode(path: output)
        let expected = Preprocessor(size: 224).cropped(try Preprocessor(size: 224).resized(
            try ImageDecoder.decode(path: Fixtures.path("images", "jpeg_420.jpg"))))
        #expect(written == expected)
    }
}
