import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Inputs the fuzzers found (scripts/fuzz.sh), kept as regressions.
@Suite struct FuzzRegressionTests {
    /// A quote or comma followed by a combining mark is one Character: the writer must still quote it.
    @Test func csvFieldsWithCombiningMarksRoundTrip() throws {
        for text in ["fil!\"\u{073A}x", "a,\u{0301}b", "\"\u{0301}", "plain", "new\nline", "cr\r", "q\"\"q", "caf\u{10FDE9}.jpg"] {
            let line = CSVTable.line(["name", text])
            let table = try CSVTable(text: line + line)
            #expect(table.header == ["name", text.trimmingCharacters(in: .whitespaces)], "\(text.unicodeScalars.map { $0.value })")
            #expect(table.rows == [["name", text]])
        }
    }

    /// FuzzImages: a GIF whose giflib error has no text hit a force-unwrap; FuzzImpair: a resize to
    /// 8810² of a tiny image is legal but bounded by the caller's pixel limit.
    @Test func foundByTheImageAndImpairmentFuzzers() throws {
        let gif = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("fuzz", "gif_error_without_text.gif")))
        #expect(throws: ImageError.self) { try ImageDecoder.decode(gif) }
        let spec = try String(contentsOfFile: Fixtures.path("fuzz", "impair_resize_to_8810.txt"), encoding: .utf8)
        let small = RGBImage(width: 24, height: 17, pixels: [UInt8](repeating: 7, count: 24 * 17 * 3))
        #expect(throws: ImageError.self) { try ImpairmentChain(condition: spec).apply(small, maxPixels: 1 << 20) }
        // FuzzImpair: "blur:sigma=3.\0garbage" read as sigma 3 (Double parses up to a NUL); now refused.
        let slow = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("fuzz", "impair_slow_chain.bin")))
        #expect(throws: ImpairmentError.self) { try ImpairmentChain(condition: String(decoding: slow, as: UTF8.self)) }
        for text in ["blur:sigma=3.\u{0}1", "jpeg:q=0x50", "resize:factor=0.5\u{0}", "noise:sigma= 2"] {
            #expect(throws: ImpairmentError.self, "\(text)") { try Impairment(parsing: text) }
        }
        #expect(Numbers.decimal("1e-3") == 0.001 && Numbers.decimal("3.\u{0}1") == nil && Numbers.decimal("") == nil)
    }

    /// A second byte-order mark is kept in the first column's name (only one is a BOM).
    @Test func onlyTheFirstByteOrderMarkIsDropped() throws {
        let table = try CSVTable(text: "\u{FEFF}\u{FEFF}filename,typ\n")
        #expect(table.header == ["\u{FEFF}filename", "typ"])
        #expect(throws: ReportError.self) { try table.values("filename") }
    }
}
