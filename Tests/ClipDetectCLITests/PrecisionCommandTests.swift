import Foundation
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools
import ClipDetectTestSupport

/// `--precision` as a user meets it: what runs is stated, and bf16 asked for on a CPU without it
/// (oneDNN capped below AVX-512 by `DNNL_MAX_CPU_ISA`) says so on one line and gives fp32's features.
@Suite struct PrecisionCommandTests {
    let cli = CLI()

    func embed(_ precision: String, cap: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        try cli.run(["embed", "--no-cache", "--precision", precision, "--model", Fixtures.backbone, Fixtures.path("images", "jpeg_420.jpg")],
                    environment: ["DNNL_MAX_CPU_ISA": cap])
    }

    @Test func bf16WithoutTheInstructionsRunsFP32AndSaysSo() throws {
        let exact = try embed("fp32", cap: "AVX2"), asked = try embed("bf16", cap: "AVX2")
        #expect(exact.status == 0 && asked.status == 0, "\(asked.stderr)")
        #expect(asked.stderr.contains("note: bf16 needs AVX-512 BF16 or AMX, which this CPU lacks (or DNNL_MAX_CPU_ISA hides): running fp32"))
        #expect(!exact.stderr.contains("note:"))
        #expect(asked.stdout == exact.stdout && !exact.stdout.isEmpty)
        let info = try cli.run(["model", "info", Fixtures.backbone, "--precision", "bf16"], environment: ["DNNL_MAX_CPU_ISA": "AVX2"])
        #expect(info.stdout.contains("compute     fp32, OpenBLAS, weights read in place"), "\(info.stdout)")
    }

    @Test(.enabled(if: OneDNN.hasBF16, "this CPU has no AVX-512 BF16"))
    func bf16RunsWhereTheCPUHasIt() throws {
        let exact = try embed("fp32"), fast = try embed("bf16"), auto = try embed("auto")
        #expect(fast.status == 0 && !fast.stderr.contains("note:"))
        #expect(fast.stdout != exact.stdout && auto.stdout == fast.stdout)
        let info = try cli.run(["model", "info", Fixtures.backbone, "--precision", "auto", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any]
        #expect(object?["width"] as? Int == 32, "the description's fields stay at the top")
        let compute = object?["compute"] as? [String: Any]
        #expect(compute?["precision"] as? String == "bf16" && compute?["library"] as? String == "oneDNN")
        #expect((compute?["packedBytes"] as? Int ?? 0) > 0)
    }

    @Test func unknownPrecisionIsRefused() throws {
        let result = try embed("fp16")
        #expect(result.status != 0 && result.stderr.contains("fp16"))
    }
}
