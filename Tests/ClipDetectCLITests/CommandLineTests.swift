import Foundation
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools
import ClipDetectTestSupport

/// The command-line tool, run as a user would.
@Suite struct CommandLineTests {
    let cli = CLI()

    @Test func embedWritesEveryRowAndReportsFailures() throws {
        let output = try Fixtures.temporaryDirectory().appendingPathComponent("features.npy").path
        let result = try cli.run(["embed", "--model", Fixtures.backbone, "--format", "npy", "-o", output] + Fixtures.mixedImages)
        #expect(result.status == 2)
        #expect(result.stderr.contains("bad_truncated.jpg") && result.stderr.contains("2 of 5 image(s) failed"))
        let data = try Data(contentsOf: URL(fileURLWithPath: output))
        #expect(String(decoding: data.prefix(128), as: UTF8.self).contains("'shape': (5, 32)"))

        let jsonl = try cli.run(["embed", "--model", Fixtures.backbone, "--features", "projected", Fixtures.mixedImages[0]])
        #expect(jsonl.status == 0)
        let row = try JSONSerialization.jsonObject(with: Data(jsonl.stdout.utf8)) as! [String: Any]
        #expect((row["feature"] as! [Double]).count == 24)
    }

    @Test func refusalsAreOneLine() throws {
        let malicious = try cli.run(["model", "info", Fixtures.path("malicious", "os_system.pth")])
        #expect(malicious.status != 0)
        #expect(malicious.stderr.contains("refused") && malicious.stderr.split(separator: "\n").count == 1)
        let unknown = try cli.run(["model", "info", Fixtures.path("encoder", "c_bare_noproj28", "bare.pth")])
        #expect(unknown.status != 0 && unknown.stderr.contains("--activation"))
        let known = try cli.run(["model", "info", "--json", "--activation", "gelu", "--attention-heads", "2",
                             Fixtures.path("encoder", "c_bare_noproj28", "bare.pth")])
        #expect(known.status == 0 && known.stdout.contains("\"width\" : 64"))
    }

    @Test func preprocessWritesWhatTheEncoderSees() throws {
        let output = try Fixtures.temporaryDirectory().appendingPathComponent("seen.png").path
        let result = try cli.run(["preprocess", Fixtures.path("images", "jpeg_420.jpg"), "-o", output])
        #expect(result.status == 0)
        let written = try ImageDecoder.decode(path: output)
        let expected = Preprocessor(size: 224).cropped(try Preprocessor(size: 224).resized(
            try ImageDecoder.decode(path: Fixtures.path("images", "jpeg_420.jpg"))))
        #expect(written == expected)
    }
}
