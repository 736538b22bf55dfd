import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Every set of kernels the encoder can choose, on every host: both fp32 ones against open_clip,
/// bf16 against the accuracy gate where the CPU has the instructions.
@Suite struct BackendTests {
    /// OpenBLAS and oneDNN fp32 run on any x86-64 host; bf16 only with AVX-512 BF16 or AMX.
    static let fp32Kinds: [ComputeBackend.Kind] = [.blas, .packed(.f32)]
    static let allKinds = fp32Kinds + (OneDNN.hasBF16 ? [.packed(.bf16)] : [])

    static func encoder(_ model: String, _ kind: ComputeBackend.Kind, file: String = "openclip.safetensors") throws -> ImageEncoder {
        let checkpoint = try Checkpoint.open(Fixtures.path("encoder", model, file))
        return try ImageEncoder(checkpoint: checkpoint, description: ModelDescription.infer(from: checkpoint, hints: Fixtures.hints(model)),
                                kind: kind)
    }

    static var modelsWithOpenCLIPFiles: [String] {
        Fixtures.encoderModels.filter { (try? Fixtures.manifest($0).files.keys.contains("openclip.safetensors")) ?? true }
    }

    @Test(arguments: modelsWithOpenCLIPFiles, fp32Kinds)
    func fp32KernelsMatchOpenCLIP(model: String, kind: ComputeBackend.Kind) throws {
        let encoder = try Self.encoder(model, kind)
        #expect(encoder.backend.precision == .fp32 && encoder.backend.library == kind.library)
        #expect((encoder.backend.packedBytes > 0) == (kind != .blas))
        // oneDNN names the kernel it chose (a reference fallback would show here); OpenBLAS has none.
        #expect((encoder.backend.kernel != nil) == (kind != .blas) && encoder.backend.kernel?.contains("ref") != true)
        let expected = try Fixtures.expected(model)
        let pixels = expected["pixels"]!.values
        let pooled = try encoder.encode(pixels, count: 2, kind: .pooled, normalize: false)
        #expect(maxAbsDifference(pooled.flatMap { $0 }, expected["pooled"]!.values) <= EncoderTests.tolerance)
        var stages: [ImageEncoder.Stage: [Float]] = [:]
        _ = try encoder.encode(pixels, count: 2, kind: .pooled, normalize: false) { stage, values in stages[stage] = Array(values) }
        #expect(maxAbsDifference(stages[.afterBlock(0)]!, expected["after_block0"]!.values) <= EncoderTests.tolerance)
        if let projected = expected["projected"] {
            let ours = try encoder.encode(pixels, count: 2, kind: .projected, normalize: false)
            #expect(maxAbsDifference(ours.flatMap { $0 }, projected.values) <= EncoderTests.tolerance)
        }
    }

    /// RINE's intermediate features (every block's ln_2 class token) against forward hooks on
    /// open_clip's blocks (tools/fixtures/make_block_feature_fixtures.py), from the same single pass.
    @Test(arguments: Fixtures.encoderModels, fp32Kinds)
    func blockFeaturesMatchTheReferenceHooks(model: String, kind: ComputeBackend.Kind) throws {
        let file = model.hasPrefix("c_") ? "bare.safetensors" : "openclip.safetensors"
        let encoder = try Self.encoder(model, kind, file: file)
        let expected = try Fixtures.expected(model, "expected_blocks.safetensors")
        let d = encoder.description
        #expect(expected["blocks"]!.shape == [2, d.layers * d.width] && encoder.featureWidth(.blocks) == d.layers * d.width)
        let raw = try encoder.encode(expected["pixels"]!.values, count: 2, kind: .blocks, normalize: false)
        #expect(maxAbsDifference(raw.flatMap { $0 }, expected["blocks"]!.values) <= EncoderTests.tolerance)
        let unit = try encoder.encode(expected["pixels"]!.values, count: 2, kind: .blocks)
        for (a, b) in zip(unit, raw) {
            let norm = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(maxAbsDifference(a, b.map { $0 / norm }) <= 1e-6)
        }
        // Observed, the last block computes every token (other row counts, other last bits): the same to 1e-6.
        let observed = try encoder.encode(expected["pixels"]!.values, count: 2, kind: .blocks, normalize: false) { _, _ in }
        #expect(maxAbsDifference(observed.flatMap { $0 }, raw.flatMap { $0 }) <= 1e-6)
    }

    /// Each kernel set gives an image the same features whatever it is batched with, and reusing
    /// kept buffers across batch sizes (large, small, large) changes nothing.
    @Test(arguments: allKinds)
    func featuresDoNotDependOnTheBatchOrOnReusedBuffers(kind: ComputeBackend.Kind) throws {
        let encoder = try Self.encoder("b_quickgelu_proj48", kind)
        let images = Fixtures.randomInputs(5, for: encoder, seed: 23)
        let alone = try images.map { try encoder.encode($0, count: 1)[0] }
        for _ in 0..<2 {
            #expect(try encoder.encode(images.flatMap { $0 }, count: 5) == alone)
            #expect(try encoder.encode(images[3], count: 1)[0] == alone[3])
            #expect(try encoder.encode(images[1...2].flatMap { $0 }, count: 2) == Array(alone[1...2]))
        }
    }

    /// Callers on several threads share one encoder (a library user, a server): each pass brings its
    /// own oneDNN scratchpad, so concurrent passes give exactly the features of passes one at a time.
    @Test(arguments: allKinds)
    func concurrentPassesEqualPassesOneAtATime(kind: ComputeBackend.Kind) throws {
        let encoder = try Self.encoder("b_quickgelu_proj48", kind)
        let images = Fixtures.randomInputs(4, for: encoder, seed: 29)
        let alone = try images.map { try encoder.encode($0, count: 1)[0] }
        let results = UnsafeMutableBufferPointer<[Float]>.allocate(capacity: 4 * 12)
        results.initialize(repeating: [])
        defer { results.deallocate() }
        let shared = UncheckedSendable(results)
        DispatchQueue.concurrentPerform(iterations: 4 * 12) { index in
            shared.value[index] = (try? encoder.encode(images[index % 4], count: 1)[0]) ?? []
        }
        for index in 0..<(4 * 12) { #expect(results[index] == alone[index % 4], "pass \(index)") }
    }

    /// The accuracy gate: bf16 features within a cosine of 0.9999 of fp32, and the detector's
    /// scores within 0.02, on the fixture towers and the imported reference head.
    @Test(.enabled(if: OneDNN.hasBF16, "this CPU has no AVX-512 BF16"), arguments: modelsWithOpenCLIPFiles)
    func bf16StaysWithinTheAccuracyGate(model: String) throws {
        let exact = try Self.encoder(model, .blas), fast = try Self.encoder(model, .packed(.bf16))
        #expect(fast.backend.precision == .bf16)
        let pixels = try Fixtures.expected(model)["pixels"]!.values
        for kind in [FeatureKind.pooled] + (exact.description.projectionDim == nil ? [] : [.projected]) {
            let reference = try exact.encode(pixels, count: 2, kind: kind), ours = try fast.encode(pixels, count: 2, kind: kind)
            for (a, b) in zip(reference, ours) {
                let cosine = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                #expect(cosine >= 0.9999, "\(model) \(kind): cosine \(cosine)")
                #expect(cosine < 1 - 1e-9, "\(model) \(kind): bf16 gave fp32's features exactly; it did not run")
            }
        }
    }

    @Test(.enabled(if: OneDNN.hasBF16, "this CPU has no AVX-512 BF16"))
    func bf16DetectorScoresStayWithinTwoHundredths() throws {
        let (head, exact) = try Fixtures.importedHead()
        let fast = try ImageEncoder(path: Fixtures.backbone, precision: .bf16)
        #expect(fast.fingerprint == exact.fingerprint, "a head trained on fp32 features applies to bf16 ones")
        var scores: [[Double]] = []
        for encoder in [exact, fast] {
            var run: [Double] = []
            try Detector(encoder: encoder, heads: [head]).run(paths: DetectTests.expected.images.map { Fixtures.path("images", $0) }) {
                _, result in run.append(try result.get().score)
            }
            scores.append(run)
        }
        #expect(scores[0].count == DetectTests.expected.scores.count && scores[1].count == scores[0].count)
        for (a, b) in zip(scores[0], scores[1]) { #expect(abs(a - b) <= 0.02, "\(scores)") }
    }

    /// bf16 rounding, in the 16-lane loop and the tail alike: nearest with ties to even, ±∞ and
    /// overflow to ∞ kept, and every NaN a NaN (payloads that would carry into 0 or ∞ included).
    @Test func bf16RoundingKeepsNaNsAndRoundsToEven() {
        let cases: [(UInt32, UInt16)] = [
            (0x3F80_0000, 0x3F80), (0x3F80_8000, 0x3F80), (0x3F81_8000, 0x3F82), (0x3F80_8001, 0x3F81), (0xBF80_7FFF, 0xBF80),
            (0x7F80_0000, 0x7F80), (0xFF80_0000, 0xFF80), (0x7F7F_FFFF, 0x7F80), (0x0000_0001, 0x0000),
            (0x7FFF_FFFF, 0x7FFF), (0x7FFF_8000, 0x7FFF), (0xFFFF_FFFF, 0xFFFF), (0x7F80_0001, 0x7FC0), (0x7FC0_0000, 0x7FC0),
        ]
        // 56 values: on two cores, each half is one 16-lane group and a tail of 12.
        let all = cases + cases + cases + cases
        let values = all.map { Float(bitPattern: $0.0) }
        var out = [UInt16](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { source in out.withUnsafeMutableBufferPointer { Kernels.roundToBF16(source.baseAddress!, count: values.count, into: $0.baseAddress!) } }
        #expect(out == all.map(\.1))
        for (bits, _) in cases where Float(bitPattern: bits).isNaN { #expect(Float(bitPattern: UInt32(Kernels.bf16Bits(Float(bitPattern: bits))) << 16).isNaN) }
    }

    /// What a backend keeps: OpenBLAS the fp32 weights (in place, or converted from f16); packed
    /// kernels only their own copy, so converted fp32 matrices are freed.
    @Test func packedKernelsKeepNoFP32CopyOfTheMatrices() throws {
        let half = try Self.encoder("a_gelu_proj32", .blas, file: "openclip_f16.safetensors")
        #expect(half.backend.description == "fp32, OpenBLAS, weights converted to fp32 at load")
        #expect(try Self.encoder("a_gelu_proj32", .blas).backend.description == "fp32, OpenBLAS, weights read in place")
        let packed = try Self.encoder("a_gelu_proj32", .packed(.f32), file: "openclip_f16.safetensors")
        #expect(packed.weights.patchEmbedding.count == 0 && packed.weights.layers.allSatisfy { $0.qkvWeight.count + $0.fc1Weight.count + $0.fc2Weight.count + $0.outWeight.count == 0 })
        #expect(half.weights.layers.allSatisfy { $0.qkvWeight.count > 0 })
        let pixels = try Fixtures.expected("a_gelu_proj32", "expected_f16.safetensors")["pixels"]!.values
        #expect(maxAbsDifference(try packed.encode(pixels, count: 2).flatMap { $0 }, try half.encode(pixels, count: 2).flatMap { $0 }) <= 1e-6)
    }

    @Test func precisionChoiceFollowsTheCPU() {
        // bf16 runs only where the instructions exist; asked for elsewhere, fp32 runs and says why.
        #expect(ComputeBackend.choose(.bf16, avx512: true, bf16: true) == (.packed(.bf16), nil))
        let (kind, note) = ComputeBackend.choose(.bf16, avx512: true, bf16: false)
        #expect(kind == .packed(.f32) && note?.contains("AVX-512 BF16") == true)
        #expect(ComputeBackend.choose(.bf16, avx512: false, bf16: false).0 == .blas)
        #expect(ComputeBackend.choose(.auto, avx512: true, bf16: true) == (.packed(.bf16), nil))
        #expect(ComputeBackend.choose(.auto, avx512: true, bf16: false) == (.packed(.f32), nil))
        #expect(ComputeBackend.choose(.auto, avx512: false, bf16: false) == (.blas, nil))
        #expect(ComputeBackend.choose(.fp32, avx512: true, bf16: true) == (.packed(.f32), nil))
        #expect(ComputeBackend.choose(.fp32, avx512: false, bf16: false) == (.blas, nil))
        // This host: what the encoder reports is what was chosen.
        let here = ComputeBackend.choose(.bf16)
        #expect((here.note == nil) == OneDNN.hasBF16)
    }

    /// bf16 features are cached apart from fp32 ones; fp32 keys are those of earlier versions.
    @Test func cacheKeysKeepPrecisionsApart() {
        let fp32 = FeatureCache.key(fileDigest: "d", fingerprint: "f", kind: .pooled, normalized: true, oriented: true)
        let bf16 = FeatureCache.key(fileDigest: "d", fingerprint: "f", kind: .pooled, normalized: true, oriented: true, precision: .bf16)
        #expect(fp32 != bf16 && bf16.hasPrefix(fp32))
        #expect(fp32 == "d:f:\(FeatureCache.preprocessingVersion):pooled:l2:exif")
    }
}

