import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Decoding and preprocessing against what Pillow + torchvision produced for the same files, no tolerance.
@Suite struct PreprocessTests {
    struct Expected: Decodable {
        struct Stage: Decodable { let width, height: Int; let fnv1a: String }
        struct Image: Decodable { let decoded, resized, cropped, oriented: Stage }
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
        let resized = try preprocessor.resized(decoded)
        Self.check(resized, want.resized, "\(name) resized")
        Self.check(preprocessor.cropped(resized), want.cropped, "\(name) cropped")
        // The encoder's path computes only the crop: the same pixels.
        Self.check(preprocessor.resizedAndCropped(decoded), want.cropped, "\(name) fused resize + crop")
    }

    @Test(arguments: expected.images.keys.sorted().filter { $0.hasPrefix("exif_") || $0.hasPrefix("jpeg_4") })
    func exifOrientationOnRequestMatchesExifTranspose(name: String) throws {
        let upright = try ImageDecoder.decode(path: Fixtures.path("images", name), applyOrientation: true)
        Self.check(upright, Self.expected.images[name]!.oriented, "\(name) oriented")
    }

    @Test func normalisationMatchesTorchvision() throws {
        let reference = try Checkpoint.open(Fixtures.path("images", "normalized.safetensors"))
        let want = try reference.tensors["jpeg_420.jpg"]!.floats().values
        let ours = try Preprocessor(size: 224)(ImageDecoder.decode(path: Fixtures.path("images", "jpeg_420.jpg")))
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

    @Test func extremeAspectRatiosStayBounded() throws {
        // 1×5000 resizes to 224×1,120,000 in torchvision; the crop alone is computed, and the whole
        // resized image is refused rather than allocated.
        let tall = RGBImage(width: 1, height: 5000, pixels: (0..<15000).map { UInt8($0 % 251) })
        let preprocessor = Preprocessor(size: 224)
        #expect(preprocessor.resizedSize(of: tall) == (224, 1_120_000))
        let crop = preprocessor.resizedAndCropped(tall)
        #expect(crop.width == 224 && crop.height == 224)
        #expect(throws: ImageError.self) { try preprocessor.resized(tall) }
    }

    /// Damaged copies of every format: each either decodes or throws; none crashes or hangs.
    @Test(arguments: ["jpeg_420.jpg", "jpeg_progressive.jpg", "cjpeg_arithmetic.jpg", "png_interlaced.png", "gif_animated.gif", "bmp_palette.bmp", "tiff_rgb_tiff_lzw.tif",
                      "png_palette_trns.png", "png_rgb16.png", "webp_lossy.webp", "webp_animated.webp", "webp_alpha_lossless.webp"])
    func damagedFilesNeverCrash(name: String) throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path("images", name))))
        var damage = Damage(seed: 0x5EED)
        for round in 0..<40 {
            let bytes = damage.copy(of: original, round: round)
            let decoded = Result { try ImageDecoder.decode(Data(bytes), limits: DecodeLimits(maxPixels: 50_000_000)) }
            // A copy cut short is refused (as Pillow's load() refuses it), never padded out; an
            // animated GIF cut after its first frame still has that frame whole (Pillow reads it too).
            if round % 5 == 0, bytes.count < original.count, name != "gif_animated.gif" {
                #expect(throws: ImageError.self, "\(name) cut to \(bytes.count) bytes") { try decoded.get() }
            }
        }
    }

    @Test func limitsAreCheckedBeforeDecoding() throws {
        let path = Fixtures.path("images", "size_4000x3000.jpg")
        #expect(throws: ImageFileError.self) { try ImageDecoder.decode(path: path, limits: DecodeLimits(maxPixels: 1_000_000)) }
        #expect(throws: FileError(.read, path, .tooLarge(size: 210_705, limit: 1000))) { try ImageDecoder.decode(path: path, limits: DecodeLimits(maxBytes: 1000)) }
        let missing = #expect(throws: FileError(.read, "/nonexistent.jpg", .missing)) { try ImageDecoder.decode(path: "/nonexistent.jpg") }
        #expect(missing?.kind == .notFound)
        #expect(throws: FileError(.read, Fixtures.root.path, .folder)) { try ImageDecoder.decode(path: Fixtures.root.path) }
    }
}

/// Centre crop without resizing (UnivFD's and RINE's test-time view) against torchvision's
/// CenterCrop(224) on PIL images smaller than, larger than and straddling the crop: bit for bit,
/// padding included (tools/fixtures/make_center_crop_fixtures.py).
@Suite struct CenterCropTests {
    struct Case: Decodable { let width, height: Int; let sha256: String; let zeros: Int }
    struct Expected: Decodable { let size: Int; let cases: [Case] }

    static let expected: Expected = try! JSONDecoder().decode(
        Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("preprocess", "center_crop.json"))))

    /// The fixture script's input: (7x + 13y + 5c) mod 251 + 1, never 0.
    static func pattern(width: Int, height: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height { for x in 0..<width { for c in 0..<3 { pixels[(y * width + x) * 3 + c] = UInt8((7 * x + 13 * y + 5 * c) % 251 + 1) } } }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    @Test func cropMatchesTorchvisionAtEverySize() {
        #expect(Self.expected.cases.count == 14)
        for item in Self.expected.cases {
            let out = Preprocessor(size: Self.expected.size).cropped(Self.pattern(width: item.width, height: item.height))
            let zeros = stride(from: 0, to: out.pixels.count, by: 3).filter { out.pixels[$0] == 0 && out.pixels[$0 + 1] == 0 && out.pixels[$0 + 2] == 0 }.count
            #expect(zeros == item.zeros, "\(item.width)×\(item.height): padding")
            #expect(sha256Hex(Data(out.pixels)) == item.sha256, "\(item.width)×\(item.height)")
        }
    }
}

extension CenterCropTests {
    struct TenCropCase: Decodable { let width, height: Int; let sha256: [String] }
    struct TenCropExpected: Decodable { let size: Int; let cases: [TenCropCase] }

    /// torchvision's TenCrop at sizes with odd and even gaps: every crop, in its order, bit for bit.
    @Test func tenCropMatchesTorchvision() throws {
        let expected = try JSONDecoder().decode(TenCropExpected.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("preprocess", "ten_crop.json"))))
        #expect(expected.cases.count == 8)
        let preprocessor = Preprocessor(size: expected.size)
        for item in expected.cases {
            let crops = try preprocessor.tenCropped(Self.pattern(width: item.width, height: item.height))
            #expect(crops.map { sha256Hex(Data($0.pixels)) } == item.sha256, "\(item.width)×\(item.height)")
        }
        // torchvision refuses an image smaller than the crop; so do we, in one line.
        for (width, height) in [(223, 300), (300, 223), (1, 1)] {
            #expect(throws: ImageError.tooSmall("\(width)×\(height) is smaller than the 224×224 crops of the ten-crop view")) {
                try preprocessor.tenCropped(Self.pattern(width: width, height: height))
            }
        }
    }

    /// The crop view end to end: features of the centre crop without resizing (files larger than,
    /// straddling and smaller than the tower's 32-pixel crop), cached apart from the resize-crop view's.
    @Test func cropViewFeaturesAreTheEncodersOnTheCrop() throws {
        let encoder = try ImageEncoder(path: Fixtures.backbone)
        let preprocessor = Preprocessor(encoder.description)
        let files = ["jpeg_420.jpg", "size_33x17.png", "size_1x1.png"].map { Fixtures.path("images", $0) }
        let cache = try FeatureCache(path: Fixtures.temporaryDirectory().appendingPathComponent("f.sqlite").path)
        for view in [InputView.resizeCrop, .crop] {
            var extractor = FeatureExtractor(encoder: encoder, settings: ExtractionSettings(view: view), cache: cache)
            for _ in 0..<2 {  // computed, then read from the cache
                var features: [[Float]] = []
                try extractor.run(paths: files) { features.append(try $1.get()) }
                for (file, feature) in zip(files, features) {
                    let image = try ImageDecoder.decode(path: file)
                    let pixels = view == .crop ? preprocessor.normalized(preprocessor.cropped(image)) : try preprocessor(image)
                    #expect(feature == (try encoder.encode(pixels, count: 1)[0]), "\(view) \(file)")
                }
            }
            extractor.cache = nil
        }
        #expect(try cache.stats().entries == 6)
    }
}
