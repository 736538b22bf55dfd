import Foundation
import Testing
@testable import ClipDetect

/// Impairments against Pillow: JPEG re-encoding and resizing give Pillow's pixels; chains are deterministic.
@Suite struct ImpairTests {
    struct Case: Decodable { let source, op: String; let width, height: Int; let fnv1a: String }
    static let cases = try! JSONDecoder().decode([Case].self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("impairments", "expected.json"))))

    @Test(arguments: cases.map { "\($0.source) \($0.op)" })
    func matchesPillow(label: String) throws {
        let c = Self.cases.first { "\($0.source) \($0.op)" == label }!
        let image = try ImageDecoder.decode(path: Fixtures.path("images", c.source))
        let (out, _) = try ImpairmentChain(condition: c.op).apply(image)
        #expect(out.width == c.width && out.height == c.height)
        #expect(PreprocessTests.fnv1a(out.pixels) == c.fnv1a)
    }

    @Test func chainsAreDeterministicPerSeedAndImage() throws {
        let image = try ImageDecoder.decode(path: Fixtures.path("images", "photo_chelsea.png"))
        let specs = ["crop:fraction=0.5..1,mode=random", "resize:factor=0.5..1.5", "blur:sigma=0..2", "noise:sigma=0..5", "jpeg:q=65..100"]
        let chain = try ImpairmentChain(parsing: specs, seed: 7)
        let a = try chain.apply(image, index: 3), b = try chain.apply(image, index: 3)
        #expect(a.0 == b.0 && a.encoded == b.encoded && a.encoded != nil)
        #expect(try chain.apply(image, index: 4).0 != a.0)
        #expect(try ImpairmentChain(parsing: specs, seed: 8).apply(image, index: 3).0 != a.0)
    }

    @Test func thePaperChainGivesJPEGsOf200Pixels() throws {
        let image = try ImageDecoder.decode(path: Fixtures.path("images", "photo_chelsea.png"))
        let chain = try ImpairmentChain(condition: "paper", seed: 1)
        for index in 0..<4 {
            let (out, encoded) = try chain.apply(image, index: index)
            #expect(out.width == 200 && out.height == 200 && encoded.map { $0.starts(with: [0xFF, 0xD8]) } == true)
        }
    }

    @Test func badSpecsAreExplained() {
        for spec in ["jpeg:q=abc", "resize:filter=cubic,factor=2", "crop:size=5,fraction=0.5", "warp:x=1", "jpeg:quality=10,foo=1", "blur"] {
            #expect(throws: ImpairmentError.self, "\(spec)") { try Impairment(parsing: spec) }
        }
    }

    @Test func aLongChainOnALargeImageFinishes() throws {
        let image = try ImageDecoder.decode(path: Fixtures.path("images", "size_4000x3000.jpg"))
        let chain = try ImpairmentChain(parsing: Array(repeating: "jpeg:q=90", count: 5) + ["resize:factor=0.5", "crop:fraction=0.9",
                                                   "resize:side=1200", "webp:q=80", "jpeg:q=70"])
        let (out, encoded) = try chain.apply(image)
        #expect(out.width == 1200 && out.height == 900 && encoded != nil)
    }
}
