import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

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

    @Test func thePaperCropDrawsAsTheReferenceScript() throws {
        // GRIP's random_operations.py: a side uniform in max(⌊5m/8⌋, 160)…m, m = min(short side, 2048).
        let crop = try ImpairmentChain(parsing: ["crop:side=0.625..1,min=160,max=2048,mode=random"], seed: 5)
        for (width, height, low, high) in [(2100, 2060, 1280, 2048), (640, 480, 300, 480), (300, 250, 160, 250), (170, 900, 160, 170)] {
            let image = RGBImage(width: width, height: height, pixels: [UInt8](repeating: 9, count: width * height * 3))
            var sides = Set<Int>()
            for index in 0..<100 {
                let out = try crop.apply(image, index: index).0
                #expect(out.width == out.height)
                sides.insert(out.width)
            }
            let tenth = (high - low) / 10
            #expect(sides.min()! >= low && sides.min()! <= low + tenth, "\(width)×\(height)")
            #expect(sides.max()! <= high && sides.max()! >= high - tenth, "\(width)×\(height)")
        }
        // The reference asserts on images whose short side is under 160 pixels; here that image fails, clearly.
        let small = RGBImage(width: 150, height: 400, pixels: [UInt8](repeating: 9, count: 150 * 400 * 3))
        #expect(throws: ImageError.tooSmall("the short side of 150×400 is under the crop's min=160")) { try ImpairmentChain(condition: "paper").apply(small) }
        // Named chains compose with operations.
        #expect(try ImpairmentChain(condition: "paper+jpeg:q=50").operations.count == 4)
    }

    @Test func badSpecsAreExplained() {
        for spec in ["jpeg:q=abc", "resize:filter=cubic,factor=2", "crop:size=5,fraction=0.5", "warp:x=1", "jpeg:quality=10,foo=1", "blur",
                     // Values that trapped or were silently accepted.
                     "jpeg:q=inf", "jpeg:q=1e300", "jpeg:q=nan", "webp:q=inf", "resize:factor=1e20", "resize:to=1e10", "resize:side=1e300",
                     "crop:size=1e300", "crop:size=10,x=1e300,y=0", "blur:sigma=inf", "jpeg:q=-5", "jpeg:q=0", "jpeg:q=101", "jpeg:q=50.5",
                     "resize:factor=0", "resize:factor=-1", "crop:fraction=0", "crop:fraction=2", "blur:sigma=-1", "noise:sigma=inf",
                     "jpeg:q=50,q=60", "jpeg:q=50,quality=60", "jpeg:q=9..3", "jpeg:q=1..2..3", "crop:size=10,x=3", "crop:size=10,min=0",
                     "crop:size=10,min=5,max=2", "resize:factor=0.5,side=100", ":q=1", ""] {
            let error = #expect(throws: ImpairmentError.self, "\(spec)") { try Impairment(parsing: spec) }
            #expect(error.map { !"\($0)".contains("\n") } ?? false)
        }
        // A chain with an empty step says so, not "unknown operation " with nothing after it.
        for chain in ["jpeg:q=75+", "+", "jpeg:q=75++resize:factor=0.5"] {
            let error = #expect(throws: ImpairmentError.self, "\(chain)") { try ImpairmentChain(condition: chain) }
            #expect(error.map { "\($0)".contains("an operation is missing") } ?? false, "\(chain): \(String(describing: error))")
        }
        // Built in code, not parsed: still checked before any pixel is touched.
        let image = RGBImage(width: 4, height: 4, pixels: [UInt8](repeating: 0, count: 48))
        var generator = SeededGenerator(seed: 0)
        #expect(throws: (any Error).self) { _ = try Parameter(.infinity) }
        #expect(throws: ImpairmentError.self) { _ = try Impairment.jpeg(quality: try Parameter(0), subsampling: .s420).apply(image, &generator) }
        #expect(throws: ImpairmentError.self) { _ = try Impairment.resize(.factor(try Parameter(1000)), filter: nil).apply(image, &generator) }
        // Legal but too big for memory: refused by the pixel limit, not allocated.
        #expect(throws: ImageError.self) { _ = try Impairment(parsing: "resize:factor=100").apply(RGBImage(width: 2000, height: 2000, pixels: [UInt8](repeating: 0, count: 12_000_000)), &generator) }
    }


}
