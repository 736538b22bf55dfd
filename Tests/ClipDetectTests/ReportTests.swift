import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// `eval --report`: the HTML parses as XML, every figure is there, and the numbers in its tables are
/// `--save-tab`'s. (Tests/e2e/test_report.py renders it in Chromium.)
@Suite struct ReportTests {






    @Test func textThatIsNotXMLIsEscaped() {
        #expect(HTML.escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;")
        #expect(HTML.escape("bell\u{07}tab\t") == "bell\u{FFFD}tab\t")
        #expect(HTML.escape("\u{E0FF}") == "\u{E0FF}", "private-use scalars (stray bytes of a name) are legal XML")
    }

    @Test func ticksAreRoundAndCoverTheRange() {
        #expect(SVGChart.ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1])
        #expect(SVGChart.ticks(-7.3, 12.1) == [-5, 0, 5, 10])
        #expect(SVGChart.ticks(0, 0.013, count: 4) == [0, 0.005, 0.01])
        #expect(SVGChart.ticks(0, 0.01, count: 4) == [0, 0.0025, 0.005, 0.0075, 0.01])
        #expect(SVGChart.ticks(3, 3) == [3])
    }

    @Test func longCurvesAreThinnedToWhatTheEyeSees() {
        let few: [(Double, Double)] = (0...100).map { i in (Double(i) / 100, Double(i) / 100) }
        #expect(EvaluationReport.thinned(few).count == few.count, "short curves are drawn whole")
        let many: [(Double, Double)] = (0...100_000).map { i in
            let x = Double(i) / 100_000
            return (x, 1 - (1 - x) * (1 - x))
        }
        let thin = EvaluationReport.thinned(many)
        #expect(thin.count < 2_100 && thin[0] == many[0] && thin[thin.count - 1] == many[many.count - 1], "\(thin.count) points")
        // Kept points are at most 1/1000 (plus one raw step, ≤ 2e-5 here) apart: nothing visible is lost.
        var widest = 0.0
        for k in 1..<thin.count { widest = max(widest, thin[k].0 - thin[k - 1].0, thin[k].1 - thin[k - 1].1) }
        #expect(widest <= 1e-3 + 2e-5, "\(widest)")
    }

}
