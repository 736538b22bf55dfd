import ClipDetectCore

/// Number format of the encoder's matrix products.
public enum Precision: String, Sendable, CaseIterable, Codable {
    /// Single precision throughout: features equal to the reference's.
    case fp32
    /// Weights and layer inputs rounded to bfloat16, products accumulated in fp32 (AVX-512 BF16 or AMX only).
    case bf16
    /// bf16 where the CPU has the instructions (measured twice as fast there), fp32 elsewhere.
    case auto
}

/// How an encoder computes its dense layers, decided once at load from the CPU it runs on.
public struct ComputeBackend: Sendable, Equatable, CustomStringConvertible {
    public enum Library: String, Sendable { case openBLAS = "OpenBLAS", oneDNN }

    /// What runs: `.fp32` or `.bf16`, never `.auto`.
    public let precision: Precision
    public let library: Library
    /// Bytes of weights copied at load into the library's packed layout (0 when read in place).
    public let packedBytes: Int
    /// Why the precision asked for is not the one that runs, when it is not.
    public let note: String?
    /// OpenBLAS reads the weights in place from the mapped file (false: converted to fp32 at load, or packed).
    public let readInPlace: Bool
    /// oneDNN's name for the kernel it chose for the blocks' products (e.g. `brg:avx512_core_bf16`); nil on OpenBLAS.
    public let kernel: String?

    public var description: String {
        let packing = packedBytes > 0 ? String(format: "weights packed at load (%.0f MB)", Double(packedBytes) / 1_048_576)
            : readInPlace ? "weights read in place" : "weights converted to fp32 at load"
        return "\(precision.rawValue), \(library.rawValue)\(kernel.map { " \($0)" } ?? ""), \(packing)"
    }

    /// The kernels that will run on this CPU for `requested`: bf16 needs AVX-512 BF16 (or AMX);
    /// fp32 uses oneDNN's packed weights on AVX-512 (a quarter faster than OpenBLAS per GEMM there)
    /// and OpenBLAS on the mapped weights elsewhere.
    static func choose(_ requested: Precision, avx512: Bool = OneDNN.hasAVX512, bf16: Bool = OneDNN.hasBF16) -> (Kind, note: String?) {
        let fp32: Kind = avx512 ? .packed(.f32) : .blas
        switch requested {
        case .bf16 where bf16, .auto where bf16: return (.packed(.bf16), nil)
        case .bf16: return (fp32, "bf16 needs AVX-512 BF16 or AMX, which this CPU lacks (or DNNL_MAX_CPU_ISA hides): running fp32")
        case .fp32, .auto: return (fp32, nil)
        }
    }

    /// The encoder's own choice of kernels; tests force each one.
    enum Kind: Equatable {
        case blas
        case packed(PackedMatmul.Element)

        var precision: Precision { self == .packed(.bf16) ? .bf16 : .fp32 }
        var library: Library { self == .blas ? .openBLAS : .oneDNN }
    }
}

/// One dense layer, y = act(x·Wᵀ + b), as the chosen kernels compute it.
struct DenseLayer: Sendable {
    private enum Storage: Sendable {
        /// OpenBLAS reads the fp32 weights (mapped in place, or converted at load).
        case blas(weight: FloatArray, bias: FloatArray?)
        /// oneDNN holds its packed copy; the fp32 weights are not kept.
        case packed(PackedMatmul)
    }

    let inputs: Int, outputs: Int
    /// bf16 kernels, output kept in bf16 for the next layer (`apply(_:rows:group:intoHalves:workspace:)`).
    let writesHalves: Bool
    private let storage: Storage
    private let activation: ModelDescription.Activation?

    /// `rowCounts`: the rows per image the encoder will pass (packed kernels are made for each).
    /// `halvesOut`: with bf16 kernels, write the output as bf16 (it is only a bf16 layer's input).
    init(weight: FloatArray, bias: FloatArray?, inputs: Int, outputs: Int, activation: ModelDescription.Activation? = nil,
         kind: ComputeBackend.Kind, rowCounts: Set<Int>, halvesOut: Bool = false) throws {
        self.inputs = inputs; self.outputs = outputs; self.activation = activation
        writesHalves = halvesOut && kind == .packed(.bf16)
        switch kind {
        case .blas: storage = .blas(weight: weight, bias: bias)
        case .packed(let element):
            storage = .packed(try PackedMatmul(weight: weight, bias: bias, inputs: inputs, outputs: outputs, rowCounts: rowCounts,
                                               element: element, destination: writesHalves ? .bf16 : .f32, activation: activation))
            // The packed copy is what runs: the file's pages need not stay resident beside it.
            (weight.ownerObject as? MappedFile)?.release(weight.pointer, byteCount: weight.count * MemoryLayout<Float>.stride)
        }
    }

    var packedBytes: Int { if case .packed(let matmul) = storage { matmul.packedBytes } else { 0 } }
    var kernel: String? { if case .packed(let matmul) = storage { matmul.implementation } else { nil } }
    var scratchpadBytes: Int { if case .packed(let matmul) = storage { matmul.scratchpadBytes } else { 0 } }

    func apply(_ a: UnsafePointer<Float>, rows: Int, group: Int, into out: UnsafeMutablePointer<Float>, workspace: Workspace) {
        precondition(!writesHalves, "this layer writes bf16")
        switch storage {
        case .blas(let weight, let bias):
            Kernels.linear(a, rows: rows, group: group, inputs: inputs, weight: weight, bias: bias, outputs: outputs, into: out)
            if let activation { Kernels.activate(out, count: rows * outputs, activation) }
        case .packed(let packed) where packed.element == .bf16:
            precondition(rows * inputs <= workspace.halvesCount, "bf16 input buffer too small")
            Kernels.roundToBF16(a, count: rows * inputs, into: workspace.halves)
            packed.apply(workspace.halves, rows: rows, group: group, into: out, scratch: workspace.blocks,
                         scratchpad: workspace.scratchpad, scratchpadStride: workspace.scratchpadStride)
        case .packed(let packed):
            packed.apply(a, rows: rows, group: group, into: out, scratch: workspace.blocks,
                         scratchpad: workspace.scratchpad, scratchpadStride: workspace.scratchpadStride)
        }
    }

    /// A `writesHalves` layer: `a` rounded to bf16, the output written as bf16 by the kernel.
    func apply(_ a: UnsafePointer<Float>, rows: Int, group: Int, intoHalves out: UnsafeMutablePointer<UInt16>, workspace: Workspace) {
        guard writesHalves, case .packed(let packed) = storage else { preconditionFailure("this layer writes floats") }
        precondition(rows * inputs <= workspace.halvesCount, "bf16 input buffer too small")
        Kernels.roundToBF16(a, count: rows * inputs, into: workspace.halves)
        packed.apply(workspace.halves, rows: rows, group: group, into: out, scratch: workspace.blocks,
                     scratchpad: workspace.scratchpad, scratchpadStride: workspace.scratchpadStride)
    }

    /// A bf16 layer whose input is already bf16 (a `writesHalves` layer's output).
    func apply(halves a: UnsafePointer<UInt16>, rows: Int, group: Int, into out: UnsafeMutablePointer<Float>, workspace: Workspace) {
        guard !writesHalves, case .packed(let packed) = storage, packed.element == .bf16 else { preconditionFailure("not a bf16 layer") }
        packed.apply(a, rows: rows, group: group, into: out, scratch: workspace.blocks,
                     scratchpad: workspace.scratchpad, scratchpadStride: workspace.scratchpadStride)
    }
}
