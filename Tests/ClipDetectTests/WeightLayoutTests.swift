import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Heads and towers stored in every dtype and alignment read to the same numbers (run under
/// AddressSanitizer by scripts/asan.sh: converted tensors own temporary buffers).
@Suite struct WeightLayoutTests {
    /// A safetensors file written byte by byte: `padding` spaces after the JSON move the data start
    /// off any alignment (the format allows trailing whitespace in the header).
    static func safetensors(_ tensors: [(name: String, dtype: DType, shape: [Int], values: [Float])],
                            metadata: [String: String] = [:], padding: Int) -> Data {
        var header: [String: Any] = metadata.isEmpty ? [:] : ["__metadata__": metadata]
        var body = Data(), offset = 0
        for tensor in tensors {
            let bytes = encode(tensor.values, as: tensor.dtype)
            header[tensor.name] = ["dtype": tensor.dtype.rawValue, "shape": tensor.shape, "data_offsets": [offset, offset + bytes.count]]
            body.append(bytes)
            offset += bytes.count
        }
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: Array(repeating: UInt8(ascii: " "), count: padding))
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        return out + json + body
    }

    static func encode(_ values: [Float], as dtype: DType) -> Data {
        var out = Data()
        for value in values {
            switch dtype {
            case .f32: withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) }
            case .f64: withUnsafeBytes(of: Double(value).bitPattern.littleEndian) { out.append(contentsOf: $0) }
            case .f16: withUnsafeBytes(of: Float16(value).bitPattern.littleEndian) { out.append(contentsOf: $0) }
            case .bf16: withUnsafeBytes(of: bfloat16Bits(value).littleEndian) { out.append(contentsOf: $0) }
            default: Issue.record("no float encoding for \(dtype)")
            }
        }
        return out
    }

    /// Round to nearest even, as torch's `.bfloat16()`.
    static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        return UInt16((bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    /// What a reader must give back for `values` stored as `dtype`.
    static func stored(_ values: [Float], as dtype: DType) -> [Float] {
        switch dtype {
        case .f16: values.map { Float(Float16($0)) }
        case .bf16: values.map { Float(bitPattern: UInt32(bfloat16Bits($0)) << 16) }
        default: values
        }
    }

    static let floatTypes: [DType] = [.f32, .f16, .bf16, .f64]

    @Test(arguments: floatTypes)
    func headSafetensorsReadExactlyInEveryDtypeAndAlignment(dtype: DType) throws {
        let (head, _) = try Fixtures.importedHead()
        let folder = try Fixtures.temporaryDirectory()
        let json = String(decoding: try JSONEncoder().encode(head.metadata), as: UTF8.self)
        let feature = (0..<head.weights.count).map { Float(sin(Double($0) * 0.7)) }
        for padding in 0..<8 {
            let path = folder.appendingPathComponent("head-\(dtype.rawValue)-\(padding).safetensors").path
            let data = Self.safetensors([("bias", dtype, [1], [head.bias]), ("weight", dtype, [1, head.weights.count], head.weights)],
                                        metadata: [Head.metadataKey: json], padding: padding)
            try data.write(to: URL(fileURLWithPath: path))
            let read = try Head.read(path)
            let weights = Self.stored(head.weights, as: dtype), bias = Self.stored([head.bias], as: dtype)[0]
            #expect(read.weights == weights, "\(dtype) padding \(padding)")
            #expect(read.bias == bias)
            let expected = zip(weights, feature).reduce(Double(bias)) { $0 + Double($1.0) * Double($1.1) }
            #expect(read.score(feature) == expected)
        }
    }

    /// The reference's weights.pth cast by torch and rewritten by zipfile at odd offsets: each imports
    /// to torch's own float() of it.
    @Test(arguments: ["f16", "bf16", "f64", "unaligned"])
    func referenceHeadImportsInEveryDtypeAndAlignment(variant: String) throws {
        let expected = try Checkpoint.open(Fixtures.path("layouts", "expected.safetensors"))
        let head = try Head.importReference(checkpoint: Fixtures.path("layouts", "head_\(variant).pth"), config: nil,
                                            name: variant, backbone: try ImageEncoder(path: Fixtures.backbone))
        #expect(head.weights == (try expected.tensors["head_\(variant).weight"]!.floats().values))
        #expect([head.bias] == (try expected.tensors["head_\(variant).bias"]!.floats().values))
        // Read twice: a reader that used freed memory would differ from run to run.
        let again = try Head.importReference(checkpoint: Fixtures.path("layouts", "head_\(variant).pth"), config: nil,
                                             name: variant, backbone: try ImageEncoder(path: Fixtures.backbone))
        #expect(again.weights == head.weights)
    }

    /// The tower in f64 and at odd offsets (torch.save + zipfile), and as safetensors in every dtype
    /// at every alignment: the features equal those of the aligned file of the same values.
    @Test func towersReadTheSameInEveryDtypeAndAlignment() throws {
        let model = "a_gelu_proj32"
        let pixels = try Fixtures.expected(model)["pixels"]!.values
        func features(_ path: String) throws -> [Float] {
            try ImageEncoder(path: path).encode(pixels, count: 2, kind: .projected, normalize: false).flatMap { $0 }
        }
        let reference = try features(Fixtures.path("encoder", model, "openclip.safetensors"))
        #expect(try features(Fixtures.path("layouts", "tower_f64.pth")) == reference)
        #expect(try features(Fixtures.path("layouts", "tower_unaligned.pth")) == reference)

        let source = try Checkpoint.open(Fixtures.path("encoder", model, "openclip.safetensors"))
        let tensors = try source.tensors.keys.sorted().map { name in (name, source.tensors[name]!.shape, try source.tensors[name]!.floats().values) }
        let folder = try Fixtures.temporaryDirectory()
        try FileManager.default.copyItem(atPath: Fixtures.path("encoder", model, "open_clip_config.json"),
                                         toPath: folder.appendingPathComponent("open_clip_config.json").path)
        var byType: [DType: [Float]] = [:]
        for dtype in Self.floatTypes {
            for padding in [0, 1, 2, 3, 5] {
                let path = folder.appendingPathComponent("tower-\(dtype.rawValue)-\(padding).safetensors").path
                try Self.safetensors(tensors.map { ($0.0, dtype, $0.1, $0.2) }, metadata: source.metadata, padding: padding)
                    .write(to: URL(fileURLWithPath: path))
                let found = try features(path)
                if let first = byType[dtype] { #expect(found == first, "\(dtype) padding \(padding)") } else { byType[dtype] = found }
            }
        }
        #expect(byType[.f32] == reference)
        #expect(byType[.f64] == reference)
        let f16 = try Fixtures.expected(model, "expected_f16.safetensors")["projected"]!.values
        #expect(maxAbsDifference(byType[.f16]!, f16) <= 1e-5)
    }
}
