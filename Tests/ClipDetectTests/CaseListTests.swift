import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Every parameterised test's case list against the fixture set it is read from: a list that is
/// empty, or shorter than the files on disk and the generators' output, fails here instead of
/// giving a green run over nothing.
@Suite struct CaseListTests {
    static func files(_ folder: String...) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.reduce(Fixtures.root) { $0.appendingPathComponent($1) }.path).sorted()
    }

    @Test func encoderCasesAreEveryWeightFileOnDisk() throws {
        for model in Fixtures.encoderModels {
            let onDisk = try Self.files("encoder", model).filter { file in
                !file.hasPrefix("expected") && [".safetensors", ".pth", ".bin"].contains { file.hasSuffix($0) }
            }
            let cases = EncoderTests.cases.filter { $0.0 == model }.map(\.1).sorted()
            #expect(!onDisk.isEmpty && cases == onDisk, "\(model): cases \(cases), files \(onDisk)")
        }
    }

    @Test func imageCasesAreEveryImageOnDisk() throws {
        let onDisk = try Self.files("images").filter { $0 != "expected.json" && $0 != "normalized.safetensors" }
        #expect(onDisk.count == 90)
        #expect(PreprocessTests.expected.images.keys.sorted() == onDisk.filter { !$0.hasPrefix("bad_") })
        #expect(PreprocessTests.expected.bad.sorted() == onDisk.filter { $0.hasPrefix("bad_") })
    }

    /// The counts the generators in tools/fixtures write.
    @Test func generatedCaseListsHaveTheirFullLength() {
        #expect(ScoreTests.fixture.cases.count == 7)         // make_metric_fixtures.py
        #expect(ScoreTests.fixture.fusions.count == 6)
        #expect(TrainTests.fixture.cases.count == 5)         // make_training_fixtures.py
        #expect(TrainTests.fixture.test_x.count == 200)
        #expect(CalibrationTests.cases.isotonic.count == 5)  // make_calibration_fixtures.py
        #expect(CalibrationTests.cases.platt.count == 2)
        #expect(CalibrationTests.cases.intervals.count == 22)
        #expect(ImpairTests.cases.count == 77)               // make_impairment_fixtures.py
    }
}
