import Foundation
import Testing
@testable import ClipDetect

/// Decoding and preprocessing against what Pillow + torchvision produced for the same files, no tolerance.
@Suite struct PreprocessTests {
    struct Expected: Decodable {
        struct Stage: Decodable { let width, height: Int; let fnv1a: String }
        struct Image: Decodable { let decoded, resized, cropped: Stage }
        let size: Int
        let images: [String: Image]
        let bad: [String]
    }

    static let expected: Expected = try! JSONDecoder().decode(
        Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("images", "expected.json"))))

    static func fnv1a(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return String(format: "%016llx", hash)
    }

    static func check(_ image: RGBImage, _ stage: Expected.Stage, _ comment: String) {
        #expect(image.width == stage.width && image.height == stage.height, "\(comment): size")
        #expect(fnv1a(image.pixels) == stage.fnv1a, "\(comment): pixels differ from Pillow's")
    }

    @Test(arguments: expected.images.keys.sorted())
    func matchesPillowAtEveryStage(name: String) throws {
        let want = Self.expected.images[name]!
        let preprocessor = Preprocessor(size: Self.expected.size)
        let decoded = try ImageDecoder.decode(path: Fixtures.path("images", name))
        Self.check(decoded, want.decoded, "\(name) decoded")
        let resized = preprocessor.resized(decoded)
        Self.check(resized, want.resized, "\(name) resized")
        Self.check(preprocessor.cropped(resized), want.cropped, "\(name) cropped")
    }

    @Test func normalisationMatchesTorchvision() throws {
        let reference = try Checkpoint.open(Fixtures.path("images", "normalized.safetensors"))
        let want = Array(try reference.tensors["jpeg_420.jpg"]!.floats().buffer)
        let ours = Preprocessor(size: 224)(try ImageDecoder.decode(path: Fixtures.path("images", "jpeg_420.jpg")))
        #expect(maxAbsDifference(ours, want) <= 1e-6)
    }

    @Test(arguments: expected.bad)
    func badFilesFailAloneWithAClearError(name: String) throws {
        let path = Fixtures.path("images", name)
        let error = #expect(throws: ImageFileError.self) { try ImageDecoder.decode(path: path) }
        let text = "\(error!)"
        #expect(text.hasPrefix(path + ": "))
        #expect(!text.contains("\n"))
    }

    @Test func limitsAreCheckedBeforeDecoding() throws {
        let path = Fixtures.path("images", "size_4000x3000.jpg")
        #expect(throws: ImageFileError.self) { try ImageDecoder.decode(path: path, limits: DecodeLimits(maxPixels: 1_000_000)) }
        #expect(throws: ImageFileError.self) { try ImageDecoder.decode(path: path, limits: DecodeLimits(maxBytes: 1000)) }
        #expect(throws: ImageFileError.self) { try ImageDecoder.decode(path: "/nonexistent.jpg") }
        #expect(throws: ImageFileError.self) { try ImageDecoder.decode(path: Fixtures.root.path) }
    }
}
