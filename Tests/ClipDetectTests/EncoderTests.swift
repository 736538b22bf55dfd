import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Features against open_clip's, for every fixture model in every file format and naming.
@Suite struct EncoderTests {
    static let tolerance: Float = 1e-5

    /// A manifest that cannot be read gives a case that fails, not an empty list (CaseListTests
    /// checks the list against the files on disk).
    static var cases: [(String, String)] {
        Fixtures.encoderModels.flatMap { model -> [(String, String)] in
            do { return try Fixtures.manifest(model).files.keys.sorted().map { (model, $0) } }
            catch { return [(model, "manifest.json unreadable: \(error)")] }
        }
    }

    /// An image's features do not depend on what it is batched with, to the last bit: batch sizes
    /// 1 to 9, the image first, last or in the middle (OpenBLAS blocks by the row count; the
    /// encoder multiplies one image at a time).
    @Test(arguments: Fixtures.encoderModels)
    func featuresAreTheSameInAnyBatch(model: String) throws {
        let file = try Fixtures.manifest(model).files.keys.sorted().first { $0.hasSuffix(".safetensors") && !$0.contains("16") }!
        let encoder = try ImageEncoder(path: Fixtures.path("encoder", model, file), hints: Fixtures.hints(model))
        let images = Fixtures.randomInputs(9, for: encoder, seed: 11)
        for kind in [FeatureKind.pooled] + (encoder.description.projectionDim == nil ? [] : [.projected]) {
            let alone = try encoder.encode(images[0], count: 1, kind: kind)[0]
            for count in 2...9 {
                for position in Set([0, count / 2, count - 1]) {
                    var batch = Array(images[1..<count])
                    batch.insert(images[0], at: position)
                    let features = try encoder.encode(batch.flatMap { $0 }, count: count, kind: kind)
                    #expect(features[position] == alone, "\(model) \(kind): batch of \(count), position \(position)")
                }
            }
        }
    }

    @Test(arguments: cases)
    func matchesOpenCLIP(model: String, file: String) throws {
        let manifest = try Fixtures.manifest(model)
        let encoder = try ImageEncoder(path: Fixtures.path("encoder", model, file), hints: Fixtures.hints(model))
        let d = encoder.description
        let m = manifest.description
        let found: [Int] = [d.imageSize, d.patchSize, d.width, d.layers, d.heads, d.mlpWidth]
        let wanted: [Int] = [m.imageSize, m.patchSize, m.width, m.layers, m.heads, m.mlpWidth]
        #expect(found == wanted)
        #expect(d.activation.rawValue == m.activation)
        #expect(d.projectionDim == m.projectionDim)
        #expect(d.naming.name == manifest.files[file])

        let expectedFile = file.contains("_f16") ? "expected_f16.safetensors"
            : file.contains("_bf16") ? "expected_bf16.safetensors" : "expected.safetensors"
        let expected = try Fixtures.expected(model, expectedFile)
        let pixels = expected["pixels"]!.values
        // Unobserved, the last block computes the class token only; observed, every token.
        let pooled = try encoder.encode(pixels, count: 2, kind: .pooled, normalize: false)
        #expect(maxAbsDifference(pooled.flatMap { $0 }, expected["pooled"]!.values) <= Self.tolerance)
        var stages: [ImageEncoder.Stage: [Float]] = [:]
        let observed = try encoder.encode(pixels, count: 2, kind: .pooled, normalize: false) { stage, values in
            stages[stage] = Array(values)
        }
        #expect(maxAbsDifference(observed.flatMap { $0 }, expected["pooled"]!.values) <= Self.tolerance)
        #expect(maxAbsDifference(stages[.afterPreNorm]!, expected["after_ln_pre"]!.values) <= Self.tolerance)
        #expect(maxAbsDifference(stages[.afterBlock(0)]!, expected["after_block0"]!.values) <= Self.tolerance)

        let normalized = try encoder.encode(pixels, count: 2, kind: .pooled, normalize: true)
        for (feature, raw) in zip(normalized, pooled) {
            let norm = raw.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(maxAbsDifference(feature, raw.map { $0 / norm }) <= 1e-6)
        }
        if let projected = expected["projected"] {
            let ours = try encoder.encode(pixels, count: 2, kind: .projected, normalize: false)
            #expect(maxAbsDifference(ours.flatMap { $0 }, projected.values) <= Self.tolerance)
        } else {
            #expect(throws: ModelError.self) { try encoder.encode(pixels, count: 2, kind: .projected) }
        }
    }

    @Test(arguments: Fixtures.encoderModels)
    func sameWeightsInEveryFileGiveIdenticalFeatures(model: String) throws {
        let files = try Fixtures.manifest(model).files.keys.filter { !$0.contains("f16") }.sorted()
        let pixels = try Fixtures.expected(model)["pixels"]!.values
        let kind: FeatureKind = try Fixtures.manifest(model).description.projectionDim == nil ? .pooled : .projected
        let outputs = try files.map { file in
            try ImageEncoder(path: Fixtures.path("encoder", model, file), hints: Fixtures.hints(model))
                .encode(pixels, count: 2, kind: kind)
        }
        for output in outputs.dropFirst() { #expect(output == outputs[0]) }
    }

    @Test func batchOfOneEqualsRowOfABatch() throws {
        let model = "a_gelu_proj32"
        let encoder = try ImageEncoder(path: Fixtures.path("encoder", model, "openclip.safetensors"))
        let pixels = try Fixtures.expected(model)["pixels"]!.values
        let both = try encoder.encode(pixels, count: 2)
        let second = try encoder.encode(Array(pixels[(pixels.count / 2)...]), count: 1)
        #expect(maxAbsDifference(both[1], second[0]) <= 1e-6)
    }

    @Test func f32WeightsAreReadInPlace() throws {
        let encoder = try ImageEncoder(path: Fixtures.path("encoder", "a_gelu_proj32", "openclip.safetensors"))
        #expect(encoder.mappedFraction == 1)
        let half = try ImageEncoder(path: Fixtures.path("encoder", "a_gelu_proj32", "openclip_f16.safetensors"))
        #expect(half.mappedFraction == 0)
    }

    @Test func activationIsNeverGuessed() throws {
        let path = Fixtures.path("encoder", "c_bare_noproj28", "bare.safetensors")
        #expect(throws: ModelError.activationUnknown(path)) { try ImageEncoder(path: path) }
        // The library names what is missing, not a flag of one front end.
        #expect("\(ModelError.activationUnknown(path))".contains("quick_gelu for OpenAI") && !"\(ModelError.activationUnknown(path))".contains("--"))
    }

    @Test func configFilesStateActivationAndHeads() throws {
        for (model, activation) in [("a_gelu_proj32", ModelDescription.Activation.gelu), ("b_quickgelu_proj48", .quickGELU)] {
            for file in ["openclip.safetensors", "hf.safetensors"] {
                let checkpoint = try Checkpoint.open(Fixtures.path("encoder", model, file))
                let description = try ModelDescription.infer(from: checkpoint)
                #expect(description.activation == activation)
                // Hints win over the config file.
                let flipped: ModelDescription.Activation = activation == .gelu ? .quickGELU : .gelu
                #expect(try ModelDescription.infer(from: checkpoint, hints: ModelHints(activation: flipped)).activation == flipped)
            }
        }
    }

    /// Towers of the families beyond CLIP (timm's hub layout, open_clip's timm trunk, transformers'
    /// DINOv2 and SigLIP) are named and refused in one line, never read as a CLIP tower.
    @Test func towersOfOtherFamiliesAreNamedAndRefused() throws {
        for folder in try FileManager.default.contentsOfDirectory(atPath: Fixtures.path("timm")).sorted() {
            let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("timm", folder, "manifest.json")))) as! [String: Any]
            let architecture = try #require(manifest["architecture"] as? String)
            let error = #expect(throws: ModelError.self) { try ImageEncoder(path: Fixtures.path("timm", folder, "model.safetensors")) }
            #expect(error == .otherFamily(path: Fixtures.path("timm", folder, "model.safetensors"), family: "timm's \(architecture)"), "\(folder)")
            #expect(error.map { FailureKind(of: $0) } == .unsupported && error.map { !"\($0)".contains("\n") } == true)
        }
        let folder = try Fixtures.temporaryDirectory()
        let one = SafeTensorsWriter.Entry(shape: [1], values: [0])
        for (names, config, family) in [
            (["visual.trunk.patch_embed.proj.weight"], ("open_clip_config.json", #"{"model_cfg": {"vision_cfg": {"timm_model_name": "vit_pe_core_large_patch14_336"}}}"#),
             "open_clip's wrapping of timm's vit_pe_core_large_patch14_336"),
            (["embeddings.patch_embeddings.projection.weight"], ("config.json", #"{"architectures": ["Dinov2Model"]}"#), "transformers' Dinov2Model"),
            (["vision_model.embeddings.patch_embedding.weight", "vision_model.head.probe"], ("config.json", #"{"architectures": ["SiglipVisionModel"]}"#),
             "transformers' SiglipVisionModel"),
        ] {
            let model = folder.appendingPathComponent(family.filter(\.isLetter))
            try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
            let path = model.appendingPathComponent("model.safetensors").path
            try SafeTensorsWriter.data(Dictionary(uniqueKeysWithValues: names.map { ($0, one) })).write(to: URL(fileURLWithPath: path))
            try config.1.write(to: model.appendingPathComponent(config.0), atomically: true, encoding: .utf8)
            #expect(throws: ModelError.otherFamily(path: path, family: family)) { try ImageEncoder(path: path) }
        }
    }

}
