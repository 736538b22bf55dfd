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
    /// The library that runs the dense layers' products.
    public enum Library: String, Sendable { case openBLAS = "OpenBLAS", oneDNN }

    /// What runs: `.fp32` or `.bf16`, never `.auto`.
    public let precision: Precision
    /// OpenBLAS on the weights as they are, or oneDNN on weights packed at load.
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
