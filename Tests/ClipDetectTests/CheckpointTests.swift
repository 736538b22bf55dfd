import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Malformed and malicious checkpoints fail with one clear line and nothing executed.
@Suite struct CheckpointTests {
    static let marker = "/tmp/clipdetect-fixture-pwned"

    @Test(arguments: ["os_system.pth", "builtins_eval.pth", "subprocess_popen.pth"])
    func maliciousPicklesAreRefused(file: String) throws {
        try? FileManager.default.removeItem(atPath: Self.marker)
        let error = #expect(throws: CheckpointError.self) {
            try Checkpoint.open(Fixtures.path("malicious", file))
        }
        guard case .refused(let why)? = error?.underlying else {
            Issue.record("expected a refusal, got \(String(describing: error))")
            return
        }
        let named = ["os_system.pth": "posix.system", "builtins_eval.pth": ".eval", "subprocess_popen.pth": ".Popen"][file]!
        #expect(why.contains(named))
        #expect(!"\(error!)".contains("\n"))
        #expect(!FileManager.default.fileExists(atPath: Self.marker))
    }

    @Test func compressedArchivesAreRefusedClearly() throws {
        let error = #expect(throws: CheckpointError.self) { try Checkpoint.open(Fixtures.path("malicious", "deflated.pth")) }
        #expect("\(error!)".contains("compressed"))
    }

    private func writeRaw(_ bytes: [UInt8]) throws -> String {
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("file.safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func safetensors(header: String, data: Int) -> [UInt8] {
        let json = Array(header.utf8)
        return withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + Array(repeating: 0, count: data)
    }

    @Test(arguments: [
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}"#, 16, "expected 8"),
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, 16, "overlap"),
        (#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, 8, "outside the data"),
        (#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, 8, "non-negative"),
        (#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#, 8, "unknown dtype"),
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, 8, "outside the data"),
        (#"{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}}"#, 8, "overflows"),
        (#"{"a":[1,2]}"#, 8, "not an object"),
        (#"{"a":{"dtype":"F32""#, 8, "not valid JSON"),
    ])
    func malformedSafetensorsAreRefused(header: String, data: Int, reason: String) throws {
        let path = try writeRaw(safetensors(header: header, data: data))
        let error = #expect(throws: CheckpointError.self) { try Checkpoint.open(path) }
        #expect("\(error!)".contains(reason), "\(error!)")
    }

    @Test func truncatedAndForeignFilesAreRefused() throws {
        let header = safetensors(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: 8)
        let whole = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("encoder", "a_gelu_proj32", "openclip.pth")))
        for bytes in [Array(header.prefix(20)), [], Array("hello world".utf8), Array(whole.prefix(whole.count / 2)),
                      Array(whole.prefix(4096)) + Array(whole.suffix(22))] {
            let path = try writeRaw(bytes)
            let error = #expect(throws: CheckpointError.self) { try Checkpoint.open(path) }
            #expect(error.map { !"\($0)".contains("\n") } ?? false)
        }
        #expect(throws: FileError(.read, "/nonexistent/model.safetensors", .missing)) { try Checkpoint.open("/nonexistent/model.safetensors") }
    }

    @Test func missingUnexpectedAndMisshapenTensorsAreNamed() throws {
        let source = try Checkpoint.open(Fixtures.path("encoder", "c_bare_noproj28", "bare.safetensors"))
        var tensors = try source.tensors.mapValues { SafeTensorsWriter.Entry(shape: $0.shape, values: try $0.floats().values) }
        let folder = try Fixtures.temporaryDirectory()
        let hints = Fixtures.hints("c_bare_noproj28")

        var missing = tensors
        missing["transformer.resblocks.0.attn.in_proj_bias"] = nil
        try SafeTensorsWriter.write(missing, to: folder.appendingPathComponent("missing.safetensors").path)
        #expect(throws: ModelError.missingTensors(["transformer.resblocks.0.attn.in_proj_bias"])) {
            try ImageEncoder(path: folder.appendingPathComponent("missing.safetensors").path, hints: hints)
        }

        tensors["transformer.resblocks.0.extra.weight"] = .init(shape: [1], values: [0])
        try SafeTensorsWriter.write(tensors, to: folder.appendingPathComponent("extra.safetensors").path)
        #expect(throws: ModelError.unexpectedTensors(["transformer.resblocks.0.extra.weight"])) {
            try ImageEncoder(path: folder.appendingPathComponent("extra.safetensors").path, hints: hints)
        }
        tensors["transformer.resblocks.0.extra.weight"] = nil

        tensors["transformer.resblocks.0.ls_1.gamma"] = .init(shape: [64], values: Array(repeating: 1, count: 64))
        try SafeTensorsWriter.write(tensors, to: folder.appendingPathComponent("scale.safetensors").path)
        let scaleError = #expect(throws: ModelError.self) {
            try ImageEncoder(path: folder.appendingPathComponent("scale.safetensors").path, hints: hints)
        }
        #expect("\(scaleError!)".contains("layer scale"))
        tensors["transformer.resblocks.0.ls_1.gamma"] = nil

        let bias = tensors["transformer.resblocks.0.mlp.c_fc.bias"]!
        tensors["transformer.resblocks.0.mlp.c_fc.bias"] = .init(shape: [bias.values.count - 1], values: Array(bias.values.dropLast()))
        try SafeTensorsWriter.write(tensors, to: folder.appendingPathComponent("shape.safetensors").path)
        #expect(throws: ModelError.shapeMismatch(name: "transformer.resblocks.0.mlp.c_fc.bias", found: [255], expected: [256])) {
            try ImageEncoder(path: folder.appendingPathComponent("shape.safetensors").path, hints: hints)
        }
    }

    /// Damaged checkpoints of every kind: each opens or throws one error; none crashes.
    @Test(arguments: ["encoder/a_gelu_proj32/openclip.pth", "encoder/a_gelu_proj32/openclip_zip64.pth",
                      "encoder/a_gelu_proj32/openclip.safetensors", "heads/weights.pth", "encoder/c_bare_noproj28/bare.pth"])
    func damagedCheckpointsNeverCrash(file: String) throws {
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path(file))))
        let folder = try Fixtures.temporaryDirectory()
        var damage = Damage(seed: 0xC0FFEE)
        for round in 0..<60 {
            let bytes = damage.copy(of: original, round: round)
            let path = folder.appendingPathComponent("damaged-\(round)").path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            if let checkpoint = try? Checkpoint.open(path) {
                // Whatever opened must be readable within its declared bounds.
                for tensor in checkpoint.tensors.values where tensor.elementCount < 1_000_000 { _ = try? tensor.floats() }
                _ = try? ModelDescription.infer(from: checkpoint, hints: ModelHints(activation: .gelu))
            }
        }
    }

    @Test func metadataStatesActivationAndHeads() throws {
        let checkpoint = try Checkpoint.open(Fixtures.path("encoder", "a_gelu_proj32", "openclip_bf16.safetensors"))
        #expect(checkpoint.metadata["activation"] == "gelu")
        let description = try ModelDescription.infer(from: checkpoint)
        #expect(description.heads == 4)
    }
}
