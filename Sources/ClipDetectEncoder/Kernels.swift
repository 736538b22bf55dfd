import CBLAS
import ClipDetectCore
import Dispatch
import Foundation

/// The dense math of the forward pass: GEMM on OpenBLAS, the element-wise steps on both cores.
enum Kernels {
    /// out[m, n] = a[m, k] · w[n, k]ᵀ + bias[n]  (weights stored [out, in], as PyTorch does).
    /// Each core computes a block of output columns. The rows go through OpenBLAS one image
    /// (`group` rows) at a time: its kernels block and choose code paths by the row count, so one
    /// product over the whole batch would give an image's features other last bits in another
    /// batch. Per image, a verdict is the same whatever it is batched with.
    static func linear(_ a: UnsafePointer<Float>, rows m: Int, group: Int, inputs k: Int, weight w: FloatArray, bias: FloatArray?,
                       outputs n: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(group > 0 && m % group == 0, "rows come in whole images")
        let blocks = (n + 15) / 16
        Parallel.chunks(blocks) { _, range in
            let first = range.lowerBound * 16, columns = min(range.upperBound * 16, n) - first
            guard columns > 0 else { return }
            // The bias goes in first and the product is added to it (beta 1): no separate pass to
            // clear the output, none to add the bias.
            if let bias {
                for row in 0..<m { (out + row * n + first).update(from: bias.pointer + first, count: columns) }
            }
            for start in stride(from: 0, to: m, by: group) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(group), Int32(columns), Int32(k), 1,
                            a + start * k, Int32(k), w.pointer + first * k, Int32(k), bias == nil ? 0 : 1, out + start * n + first, Int32(n))
            }
        }
    }

    /// LayerNorm over each row of `width`: 16 lanes of float partial sums (each lane adds a
    /// sixteenth of the row, so rounding stays near the reference's pairwise sums), two passes.
    static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: FloatArray, bias: FloatArray,
                          eps: Float, into out: UnsafeMutablePointer<Float>) {
        Parallel.rows(rows) { row in
            let line = UnsafeRawPointer(x + row * width), target = UnsafeMutableRawPointer(out + row * width)
            let gain = UnsafeRawPointer(weight.pointer), shift = UnsafeRawPointer(bias.pointer)
            let whole = width / 16 * 16
            var sums = SIMD16<Float>(repeating: 0)
            for j in stride(from: 0, to: whole, by: 16) { sums += line.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self) }
            var sum = Double(sums.sum())
            for j in whole..<width { sum += Double(line.load(fromByteOffset: j * 4, as: Float.self)) }
            let mean = Float(sum / Double(width)), center = SIMD16<Float>(repeating: mean)
            var squares = SIMD16<Float>(repeating: 0)
            for j in stride(from: 0, to: whole, by: 16) {
                let d = line.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self) - center
                squares += d * d
            }
            var total = Double(squares.sum())
            for j in whole..<width { let d = line.load(fromByteOffset: j * 4, as: Float.self) - mean; total += Double(d * d) }
            let inverse = Float(1 / (total / Double(width) + Double(eps)).squareRoot()), scale = SIMD16<Float>(repeating: inverse)
            for j in stride(from: 0, to: whole, by: 16) {
                let v = line.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                let g = gain.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                let b = shift.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                target.storeBytes(of: (v - center) * scale * g + b, toByteOffset: j * 4, as: SIMD16<Float>.self)
            }
            for j in whole..<width {
                let v = line.load(fromByteOffset: j * 4, as: Float.self)
                target.storeBytes(of: (v - mean) * inverse * weight.pointer[j] + bias.pointer[j], toByteOffset: j * 4, as: Float.self)
            }
        }
    }

    /// Rounds floats to bfloat16 (nearest, ties to even), as bit patterns. A NaN stays a NaN (its
    /// top bits, made quiet): rounding its payload could carry into the exponent and give 0 or ∞.
    /// On both cores, or on the caller's alone (`parallel: false`, for work already split by core).
    static func roundToBF16(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<UInt16>, parallel: Bool = true) {
        guard parallel else { return roundToBF16(x, range: 0..<count, into: out) }
        Parallel.chunks(count) { _, range in roundToBF16(x, range: range, into: out) }
    }

    private static func roundToBF16(_ x: UnsafePointer<Float>, range: Range<Int>, into out: UnsafeMutablePointer<UInt16>) {
        let source = UnsafeRawPointer(x), target = UnsafeMutableRawPointer(out)
        var i = range.lowerBound
        while i + 16 <= range.upperBound {
            target.storeBytes(of: bf16Bits(source.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)), toByteOffset: i * 2,
                              as: SIMD16<UInt16>.self)
            i += 16
        }
        while i < range.upperBound {
            out[i] = bf16Bits(x[i])
            i += 1
        }
    }

    /// 16 floats to bfloat16 bits, as `bf16Bits(_: Float)` rounds each.
    @inline(__always)
    static func bf16Bits(_ values: SIMD16<Float>) -> SIMD16<UInt16> {
        let bits = unsafeBitCast(values, to: SIMD16<UInt32>.self)
        let rounded = (bits &+ SIMD16<UInt32>(repeating: 0x7FFF) &+ ((bits &>> 16) & SIMD16<UInt32>(repeating: 1))) &>> 16
        let nan = (bits & SIMD16<UInt32>(repeating: 0x7FFF_FFFF)) .> SIMD16<UInt32>(repeating: 0x7F80_0000)
        return SIMD16<UInt16>(truncatingIfNeeded: rounded.replacing(with: (bits &>> 16) | SIMD16<UInt32>(repeating: 0x0040), where: nan))
    }

    /// One float to bfloat16 bits, as `roundToBF16` rounds it.
    static func bf16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if bits & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x0040) }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        Parallel.chunks(count) { _, range in for i in range { x[i] += y[i] } }
    }

    /// In-place activation over `count` values.
    static func activate(_ x: UnsafeMutablePointer<Float>, count: Int, _ activation: ModelDescription.Activation) {
        Parallel.chunks(count) { _, range in
            switch activation {
            case .gelu: map(x + range.lowerBound, count: range.count, FastMath.gelu)
            case .quickGELU: map(x + range.lowerBound, count: range.count, FastMath.quickGELU)
            }
        }
    }

    /// Applies `f` in place, 16 lanes at a time; the tail is padded.
    @inline(__always)
    static func map(_ x: UnsafeMutablePointer<Float>, count: Int, _ f: (SIMD16<Float>) -> SIMD16<Float>) {
        let raw = UnsafeMutableRawPointer(x)
        var i = 0
        while i + 16 <= count {
            raw.storeBytes(of: f(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)), toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        if i < count {
            var v = SIMD16<Float>(repeating: 0)
            for k in 0..<(count - i) { v[k] = x[i + k] }
            let y = f(v)
            for k in 0..<(count - i) { x[i + k] = y[k] }
        }
    }

    /// Softmax of one row in place.
    static func softmax(_ x: UnsafeMutablePointer<Float>, length: Int) {
        let inverse = SIMD16<Float>(repeating: exponentiate(x, length: length))
        map(x, count: length) { $0 * inverse }
    }

    /// Softmax of one row, written as bfloat16 bits to `out` (`x` is left holding the exponentials).
    static func softmax(_ x: UnsafeMutablePointer<Float>, length: Int, into out: UnsafeMutablePointer<UInt16>) {
        let inverse = exponentiate(x, length: length)
        let raw = UnsafeMutableRawPointer(x), target = UnsafeMutableRawPointer(out)
        var j = 0
        while j + 16 <= length {
            let v = raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self) * inverse
            target.storeBytes(of: bf16Bits(v), toByteOffset: j * 2, as: SIMD16<UInt16>.self)
            j += 16
        }
        while j < length { out[j] = bf16Bits(x[j] * inverse); j += 1 }
    }

    /// exp(x - max) in place; returns 1 / their sum.
    private static func exponentiate(_ x: UnsafeMutablePointer<Float>, length: Int) -> Float {
        let raw = UnsafeMutableRawPointer(x)
        var peaks = SIMD16<Float>(repeating: -.infinity)
        var j = 0
        while j + 16 <= length {
            let v = raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
            peaks = peaks.replacing(with: v, where: v .> peaks)
            j += 16
        }
        var peak = peaks.max()
        while j < length { peak = max(peak, x[j]); j += 1 }
        let shift = SIMD16<Float>(repeating: peak)
        map(x, count: length) { FastMath.exp($0 - shift) }
        var sums = SIMD16<Float>(repeating: 0)
        j = 0
        while j + 16 <= length {
            sums += raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
            j += 16
        }
        var total = sums.sum()
        while j < length { total += x[j]; j += 1 }
        return 1 / total
    }
}

/// Vector exp, erf-GELU and QuickGELU accurate to a few float ulps.
enum FastMath {
    /// Adding 1.5·2²³ rounds a float to an integer (half to even) held in the low mantissa bits.
    private static let roundingMagic = SIMD16<Float>(repeating: 12_582_912)
    private static let roundingMagicBits = SIMD16<Int32>(repeating: 0x4B40_0000)

    @inline(__always)
    static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        // exp(x) = 2ⁿ · exp(r), |r| ≤ ln2/2, with a degree-7 Taylor polynomial (error < 1e-8 relative).
        // Masked selects compile to vector instructions; `clamped` and `pointwiseMin` do not.
        let low = SIMD16<Float>(repeating: -87), high = SIMD16<Float>(repeating: 88)
        let clamped = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
        let shifted = clamped * 1.442695041 + roundingMagic
        let n = shifted - roundingMagic
        let r = clamped - n * 0.693359375 + n * 2.12194440e-4
        var p = SIMD16<Float>(repeating: 1 / 5040)
        p = p * r + 1 / 720
        p = p * r + 1 / 120
        p = p * r + 1 / 24
        p = p * r + 1 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let integer = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- roundingMagicBits
        let scale = unsafeBitCast((integer &+ 127) &<< 23, to: SIMD16<Float>.self)
        // Below the clamp the true value underflows: return 0, as softmax expects for -inf.
        return (p * scale).replacing(with: 0, where: x .< -87.0)
    }

    /// 0.5·x·(1 + erf(x/√2)) through erfc's Chebyshev fit (relative error < 1.2e-7), so both tails stay exact.
    @inline(__always)
    static func gelu(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let z = x * 0.70710678118654752
        let a = z.replacing(with: -z, where: z .< 0)
        let t = 1 / (1 + 0.5 * a)
        var p = SIMD16<Float>(repeating: 0.17087277)
        p = p * t - 0.82215223
        p = p * t + 1.48851587
        p = p * t - 1.13520398
        p = p * t + 0.27886807
        p = p * t - 0.18628806
        p = p * t + 0.09678418
        p = p * t + 0.37409196
        p = p * t + 1.00002368
        p = p * t - 1.26551223
        let erfcAbs = t * exp(-a * a + p)
        // 1 + erf(z) = 2 - erfc(z) for z ≥ 0, erfc(-z) for z < 0.
        let onePlusErf = (2 - erfcAbs).replacing(with: erfcAbs, where: z .< 0)
        return 0.5 * x * onePlusErf
    }

    @inline(__always)
    static func quickGELU(_ x: SIMD16<Float>) -> SIMD16<Float> {
        x / (1 + exp(-1.702 * x))
    }
}
