import Foundation
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools
import ClipDetectTestSupport

/// `eval --conditions` and `impair` as a user runs them.
@Suite struct ImpairCommandTests {
    let cli = CLI()

    /// A bad condition is refused before anything is scored, so no computed condition is lost.
    @Test func evalRefusesABadConditionBeforeScoring() throws {
        let cli = CLI()
        let result = try cli.run(["eval", "--csv", Fixtures.path("metrics", "list.csv"), "--model", Fixtures.backbone,
                                  "--head", "none.safetensors", "--impair", "social", "--impair", "jpeg:q=inf"])
        #expect(result.status != 0 && result.stderr.contains("q=inf") && !result.stderr.contains("none.safetensors"), "\(result.stderr)")
        for size in ["0", "-1", "100000"] {
            let out = try cli.run(["preprocess", Fixtures.path("images", "jpeg_420.jpg"), "--size=\(size)", "-o", "/tmp/never.png"])
            #expect(out.status != 0 && out.stderr.contains("--size"), "\(size): \(out.stderr)")
        }
    }

    /// Each operation holds the image and at most one working copy, so peak memory stays bounded and
    /// does not grow with the chain's length (measured on the tool's own process, not this one).
    @Test func longChainsOnALargeImageStayInBoundedMemory() throws {
        let source = Fixtures.path("images", "size_4000x3000.jpg"), imageBytes = 4000 * 3000 * 3
        let output = try Fixtures.temporaryDirectory().appendingPathComponent("out.jpg").path
        let ten = ["jpeg:q=90", "webp:q=90", "jpeg:q=80", "resize:factor=0.5", "blur:sigma=0.5", "noise:sigma=2", "jpeg:q=90",
                   "crop:fraction=0.9", "resize:side=1200", "jpeg:q=70"]
        let twenty = Array(repeating: "jpeg:q=90", count: 10) + ten
        let short = try runMeasuringPeakMemory(["impair", source] + ten.flatMap { ["--op", $0] } + ["-o", output])
        #expect(short.status == 0)
        #expect(try ImageDecoder.decode(path: output).width == 1200)
        let long = try runMeasuringPeakMemory(["impair", source] + twenty.flatMap { ["--op", $0] } + ["-o", output])
        #expect(long.status == 0)
        #expect(short.peakBytes < 12 * imageBytes, "\(short.peakBytes) bytes")
        #expect(long.peakBytes < short.peakBytes + imageBytes, "\(short.peakBytes) → \(long.peakBytes) bytes")
    }
}
