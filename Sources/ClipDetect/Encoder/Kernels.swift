import CBLAS
import Dispatch
import Foundation

/// The dense math of the forward pass: GEMM on OpenBLAS, the element-wise steps on both cores.
enum Kernels {
    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// out[m, n] = a[m, k] · w[n, k]ᵀ + bias[n]  (weights stored [out, in], as PyTorch does).
    static func linear(_ a: UnsafePointer<Float>, rows m: Int, inputs k: Int, weight w: FloatArray, bias: FloatArray?,
                       outputs n: Int, into out: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1,
                    a, Int32(k), w.pointer, Int32(k), 0, out, Int32(n))
        if let bias {
            parallelRows(m) { row in
                let line = out + row * n
                for j in 0..<n { line[j] += bias.pointer[j] }
            }
        }
    }

    /// Splits rows over the cores; the body handles one row.
    static func parallelRows(_ rows: Int, _ body: (Int) -> Void) {
        let chunks = min(cores, rows)
        if chunks <= 1 {
            for row in 0..<rows { body(row) }
            return
        }
        // Rows are disjoint, so sharing the body across threads is safe.
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = rows * chunk / chunks, end = rows * (chunk + 1) / chunks
                for row in start..<end { shared.value(row) }
            }
        }
    }

    /// LayerNorm over each row of `width`, statistics accumulated in double.
    static func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, weight: FloatArray, bias: FloatArray,
                          eps: Float, into out: UnsafeMutablePointer<Float>) {
        parallelRows(rows) { row in
            let line = x + row * width, target = out + row * width
            var sum = 0.0
            for j in 0..<width { sum += Double(line[j]) }
            let mean = sum / Double(width)
            var squares = 0.0
            for j in 0..<width { let d = Double(line[j]) - mean; squares += d * d }
            let inverse = Float(1 / (squares / Double(width) + Double(eps)).squareRoot())
            let m = Float(mean)
            for j in 0..<width { target[j] = (line[j] - m) * inverse * weight.pointer[j] + bias.pointer[j] }
        }
    }

    static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        parallelRows(cores) { part in
            let start = count * part / cores, end = count * (part + 1) / cores
            for i in start..<end { x[i] += y[i] }
        }
    }

    /// In-place activation over `count` values.
    static func activate(_ x: UnsafeMutablePointer<Float>, count: Int, _ activation: ModelDescription.Activation) {
        parallelRows(cores) { part in
            let start = count * part / cores, end = count * (part + 1) / cores
            var i = start
            while i < end {
                let n = min(16, end - i)
                var v = SIMD16<Float>(repeating: 0)
                for k in 0..<n { v[k] = x[i + k] }
                let y = activation == .gelu ? FastMath.gelu(v) : FastMath.quickGELU(v)
                for k in 0..<n { x[i + k] = y[k] }
                i += n
            }
        }
    }

    /// Row-wise softmax in place.
    static func softmax(_ x: UnsafeMutablePointer<Float>, length: Int) {
        var peak = -Float.infinity
        for j in 0..<length { peak = max(peak, x[j]) }
        var total: Float = 0
        var j = 0
        while j < length {
            let n = min(16, length - j)
            var v = SIMD16<Float>(repeating: -.infinity)
            for k in 0..<n { v[k] = x[j + k] - peak }
            let e = FastMath.exp(v)
            for k in 0..<n { x[j + k] = e[k]; total += e[k] }
            j += n
        }
        let inverse = 1 / total
        for k in 0..<length { x[k] *= inverse }
    }
}

/// Vector exp, erf-GELU and QuickGELU accurate to a few float ulps.
enum FastMath {
    @inline(__always)
    static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        // exp(x) = 2ⁿ · exp(r), |r| ≤ ln2/2, with a degree-7 Taylor polynomial (error < 1e-8 relative).
        let clamped = x.clamped(lowerBound: SIMD16(repeating: -87.0), upperBound: SIMD16(repeating: 88.0))
        let n = (clamped * 1.442695041).rounded(.toNearestOrEven)
        let r = clamped - n * 0.693359375 + n * 2.12194440e-4
        var p = SIMD16<Float>(repeating: 1 / 5040)
        p = p * r + 1 / 720
        p = p * r + 1 / 120
        p = p * r + 1 / 24
        p = p * r + 1 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let exponent = (SIMD16<Int32>(n, rounding: .towardZero) &+ 127) &<< 23
        let scale = unsafeBitCast(exponent, to: SIMD16<Float>.self)
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

struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
