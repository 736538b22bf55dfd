import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Files → features: order kept, a bad file fails alone, and the CLI writes what the library computes.
@Suite struct FeatureTests {

    @Test func badFilesFailAloneAndOrderIsKept() throws {
        let encoder = try ImageEncoder(path: Fixtures.backbone)
        let extractor = FeatureExtractor(encoder: encoder, settings: ExtractionSettings(batchSize: 4))
        var results: [(Int, Result<[Float], Error>)] = []
        try extractor.run(paths: Fixtures.mixedImages) { results.append(($0, $1)) }
        #expect(results.map(\.0) == [0, 1, 2, 3, 4])
        for (index, result) in results {
            let path = Fixtures.mixedImages[index]
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
        let encoder = try ImageEncoder(path: Fixtures.backbone)
        let sources: [ImageSource] = (Fixtures.mixedImages + Fixtures.mixedImages.reversed() + [Fixtures.mixedImages[0]]).map(ImageSource.file)
            + [.bytes(Data("not an image".utf8)), .decoded(try ImageDecoder.decode(path: Fixtures.mixedImages[2]))]
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

