import Foundation

/// Element types a checkpoint may hold; weights are computed in f32 whatever they were stored as.
package enum DType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    package var byteSize: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }

    var isFloatingPoint: Bool { self == .f64 || self == .f32 || self == .f16 || self == .bf16 }
}

/// Keeps the memory behind a tensor alive: a mapped file or an owned buffer.
package protocol ByteOwner: AnyObject, Sendable {}

/// Floats the encoder reads: either a view into a mapped f32 tensor or a buffer of its own.
package struct FloatArray: @unchecked Sendable {
    /// Valid only while this array (its owner) is alive: read through `withUnsafeBufferPointer` or `values`.
    package let pointer: UnsafePointer<Float>
    package let count: Int
    let owner: any ByteOwner

    package subscript(i: Int) -> Float {
        precondition(i >= 0 && i < count, "index \(i) out of \(count)")
        return withExtendedLifetime(owner) { pointer[i] }
    }

    /// The values copied out: safe after this array is gone.
    package var values: [Float] { withUnsafeBufferPointer { Array($0) } }

    /// The values in place, the owner kept alive for the call (a converted tensor owns a temporary buffer).
    package func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try withExtendedLifetime(owner) { try body(UnsafeBufferPointer(start: pointer, count: count)) }
    }

    /// A buffer of its own, filled by `fill`.
    package init(count: Int, fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let block = OwnedBytes(byteCount: max(count, 1) * MemoryLayout<Float>.stride)
        let floats = block.raw.bindMemory(to: Float.self, capacity: max(count, 1))
        try fill(UnsafeMutableBufferPointer(start: floats, count: count))
        self.pointer = UnsafePointer(floats)
        self.count = count
        self.owner = block
    }

    package init(_ values: [Float]) {
        self.init(count: values.count) { out in _ = out.initialize(from: values) }
    }

    init(view pointer: UnsafePointer<Float>, count: Int, owner: any ByteOwner) {
        self.pointer = pointer
        self.count = count
        self.owner = owner
    }

    /// True when this array reads the checkpoint's bytes in place.
    package func isView(of owner: AnyObject) -> Bool { self.owner === owner }
    package var ownerObject: AnyObject { owner }
}

final class OwnedBytes: ByteOwner, @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    init(byteCount: Int) { raw = .allocate(byteCount: byteCount, alignment: 64) }
    deinit { raw.deallocate() }
}

/// One tensor of a checkpoint, read lazily from bytes some owner keeps alive.
package struct Tensor: @unchecked Sendable {
    package let dtype: DType
    package let shape: [Int]
    /// Element strides; contiguous row-major unless a PyTorch checkpoint stored a view.
    package let strides: [Int]
    let base: UnsafeRawPointer
    let owner: any ByteOwner

    package var elementCount: Int { shape.reduce(1, *) }

    init(dtype: DType, shape: [Int], strides: [Int]? = nil, base: UnsafeRawPointer, owner: any ByteOwner) {
        self.dtype = dtype
        self.shape = shape
        self.strides = strides ?? Tensor.contiguousStrides(shape)
        self.base = base
        self.owner = owner
    }

    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = Array(repeating: 1, count: shape.count)
        var step = 1
        for axis in shape.indices.reversed() {
            strides[axis] = step
            step *= shape[axis]
        }
        return strides
    }

    var isContiguous: Bool {
        zip(zip(shape, strides), Tensor.contiguousStrides(shape)).allSatisfy { pair, expected in
            pair.0 == 1 || pair.1 == expected
        }
    }

    /// The values as f32, row-major. An aligned contiguous f32 tensor is returned in place.
    package func floats() throws -> FloatArray {
        guard dtype.isFloatingPoint else { throw WeightsError.unsupportedDType(dtype.rawValue) }
        let count = elementCount
        if dtype == .f32, isContiguous, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            return FloatArray(view: base.assumingMemoryBound(to: Float.self), count: count, owner: owner)
        }
        return FloatArray(count: count) { out in
            var index = 0
            forEachOffset { offset in
                out[index] = readFloat(at: offset)
                index += 1
            }
        }
    }

    private func readFloat(at element: Int) -> Float {
        let at = base + element * dtype.byteSize
        switch dtype {
        case .f32: return at.loadUnaligned(as: Float.self)
        case .f64: return Float(at.loadUnaligned(as: Double.self))
        case .f16: return Float(Float16(bitPattern: at.loadUnaligned(as: UInt16.self)))
        case .bf16: return Float(bitPattern: UInt32(at.loadUnaligned(as: UInt16.self)) << 16)
        default: return .nan
        }
    }

    /// Visits element offsets in row-major order of `shape`, following `strides`.
    private func forEachOffset(_ body: (Int) -> Void) {
        let count = elementCount
        if count == 0 { return }
        if shape.isEmpty { body(0); return }
        var index = Array(repeating: 0, count: shape.count)
        var offset = 0
        for _ in 0..<count {
            body(offset)
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                offset += strides[axis]
                if index[axis] < shape[axis] { break }
                offset -= strides[axis] * shape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// Why a weights file cannot be read: its format, its structure, or a tensor's type.
public enum WeightsError: Error, CustomStringConvertible, Equatable {
    /// Neither safetensors nor a PyTorch zip checkpoint.
    case unknownFormat
    /// PyTorch's format before 1.6 (a bare pickle stream).
    case legacyPyTorch
    case malformed(String)
    case refused(String)
    case unsupportedDType(String)
    /// A Git LFS pointer (the ~130-byte text git-lfs leaves when the object was not fetched).
    case lfsPointer(sha256: String, size: Int)

    public var description: String {
        switch self {
        case .lfsPointer(let sha256, let size):
            "this is a Git LFS pointer to a \(size)-byte file (sha256 \(sha256.prefix(16))…), not the file itself: run `git lfs pull` in the repository it came from"
        case .unknownFormat: "not a checkpoint: neither safetensors nor a PyTorch zip checkpoint"
        case .legacyPyTorch: "legacy (pre-1.6) PyTorch format; re-save it with torch.save from a current PyTorch"
        case .malformed(let why): "malformed checkpoint: \(why)"
        case .refused(let why): "refused checkpoint: \(why)"
        case .unsupportedDType(let dtype): "tensor dtype \(dtype) cannot be used as weights (need F32, F16, BF16 or F64)"
        }
    }
}

extension WeightsError: ClassifiedError {
    public var kind: FailureKind {
        switch self {
        case .unknownFormat, .malformed, .lfsPointer: .invalidInput
        case .legacyPyTorch: .unsupported
        case .refused: .refused
        case .unsupportedDType: .unsupported
        }
    }
}
