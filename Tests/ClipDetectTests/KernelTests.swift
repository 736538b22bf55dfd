import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// The vector kernels against scalar loops, at every tail length.
@Suite struct KernelTests {
    /// Widest SIMD type in Kernels/FastMath is SIMD16<Float>: lengths 0 … 2·16 + 1 give every tail
    /// length (0 … 15) after zero, one and two whole vectors.
    static let lengths = 0...33

    /// Deterministic values in [-range, range] with no two equal (a max or a sort cannot hide a lane).
    static func values(_ count: Int, seed: UInt64, range: Float = 4) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Float(Double(generator.next() >> 11) / Double(1 << 53) * 2 - 1) * range }
    }

    /// Runs `body` on a copy of `x` followed by 16 sentinel values, and checks the sentinels are untouched
    /// (a padded tail must not write past the end).
    static func inPlace(_ x: [Float], _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        var buffer = x + Array(repeating: Float(-12345.5), count: 16)
        buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
        #expect(buffer[x.count...].allSatisfy { $0 == -12345.5 }, "wrote past \(x.count) values")
        return Array(buffer[..<x.count])
    }

    /// One lane of a SIMD16 function: what the function gives this value alone.
    static func lane(_ f: (SIMD16<Float>) -> SIMD16<Float>, _ value: Float) -> Float { f(SIMD16(repeating: value))[0] }

    @Test func elementwiseKernelsEqualAScalarLoopAtEveryTailLength() {
        // Element-wise: each output depends on its own input only, so the vector body, the padded
        // tail and the split over cores must give exactly what one value at a time gives.
        let functions: [(String, (SIMD16<Float>) -> SIMD16<Float>)] = [("exp", FastMath.exp), ("gelu", FastMath.gelu),
                                                                       ("quickGELU", FastMath.quickGELU), ("affine", { $0 * 3 - 1 })]
        for n in Self.lengths {
            let x = Self.values(n, seed: UInt64(n))
            for (name, f) in functions {
                let mapped = Self.inPlace(x) { Kernels.map($0, count: n, f) }
                #expect(mapped == x.map { Self.lane(f, $0) }, "map \(name), n = \(n)")
            }
            for (activation, f) in [(ModelDescription.Activation.gelu, FastMath.gelu), (.quickGELU, FastMath.quickGELU)] {
                let activated = Self.inPlace(x) { Kernels.activate($0, count: n, activation) }
                #expect(activated == x.map { Self.lane(f, $0) }, "activate \(activation), n = \(n)")
            }
            let y = Self.values(n, seed: 1000 + UInt64(n))
            let added = Self.inPlace(x) { pointer in (y + [0]).withUnsafeBufferPointer { Kernels.add(pointer, $0.baseAddress!, count: n) } }
            #expect(added == zip(x, y).map { $0 + $1 }, "add, n = \(n)")
        }
    }

    /// FastMath against libm in double (u = 2⁻²⁴, float's unit roundoff). Bounds:
    /// - exp: a degree-7 Taylor polynomial on |r| ≤ ln2/2 (truncation < 1e-8 ≈ 0.2u relative) and
    ///   ~10 float roundings: 8u relative.
    /// - erf-GELU: Numerical Recipes' erfc fit, 1.2e-7 relative; its exponent −a² + p is formed in
    ///   float from a = |x|/√2 rounded (a² off by ≤ 4u·a², the constant and the product), −a·a rounded
    ///   (u·a²) and + p rounded (≤ u·a² more), an absolute error ≤ 6u·a² that exp turns into the same
    ///   relative error; then exp's 8u and ~8 roundings of the products and sums: (6a² + 16)u + 1.2e-7.
    ///   (a ≤ 2.83 here, so at most ≈ 3.9e-6 at the ends, 1.2e-7 + 16u ≈ 1.1e-6 near 0.)
    /// - QuickGELU: one exp of a rounded product (u·1.702|x| ≤ 7u absolute in the exponent), one add,
    ///   one divide: (8 + 7 + 2)u, rounded up to 20u.
    @Test func vectorMathIsAccurateToItsStatedBound() {
        let ulp = Double(Float.ulpOfOne) / 2  // 2⁻²⁴, the unit roundoff
        let x = Self.values(4096, seed: 99)
        for value in x {
            let v = Double(value)
            let exp = Double(Self.lane(FastMath.exp, value)), expected = Foundation.exp(v)
            #expect(abs(exp - expected) <= 8 * ulp * expected, "exp(\(value)) = \(exp), libm \(expected)")
            let gelu = Double(Self.lane(FastMath.gelu, value)), geluExpected = 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
            let geluBound = (6 * v * v / 2 + 16) * ulp + 1.2e-7
            #expect(abs(gelu - geluExpected) <= geluBound * abs(geluExpected), "gelu(\(value)) = \(gelu), libm \(geluExpected)")
            let quick = Double(Self.lane(FastMath.quickGELU, value)), quickExpected = v / (1 + Foundation.exp(-1.702 * v))
            #expect(abs(quick - quickExpected) <= 20 * ulp * abs(quickExpected), "quickGELU(\(value)) = \(quick), libm \(quickExpected)")
        }
        // Far tails: exp underflows to 0 below -87 (as softmax's -inf needs) and does not overflow at 88.
        #expect(Self.lane(FastMath.exp, -.infinity) == 0 && Self.lane(FastMath.exp, -100) == 0)
        #expect(Self.lane(FastMath.exp, 88).isFinite)
        #expect(Self.lane(FastMath.gelu, -30) == 0)
        #expect(Self.lane(FastMath.gelu, 30) == 30)
    }

    @Test func softmaxEqualsAScalarLoopAtEveryTailLength() {
        let u = Double(Float.ulpOfOne) / 2
        for n in Self.lengths where n > 0 {
            let x = Self.values(n, seed: 500 + UInt64(n), range: 6)
            let out = Self.inPlace(x) { Kernels.softmax($0, length: n) }
            let peak = x.max()!
            let exps = x.map { Self.lane(FastMath.exp, $0 - peak) }
            if n < 16 {
                // No whole vector: the kernel's sum is the tail loop from 0, in index order, as here. Exact.
                var total: Float = 0
                for e in exps { total += e }
                let inverse = 1 / total
                #expect(out == exps.map { $0 * inverse }, "n = \(n)")
            }
            // Any length, against double precision on the same float shifts: each exp ≤ 8u (above), so the
            // sum ≤ 8u + (n − 1)u for n positive terms in any order, the reciprocal and the product 2u:
            // (n + 17)u relative.
            let reference = x.map { Foundation.exp(Double($0 - peak)) }
            let sum = reference.reduce(0, +)
            for (i, value) in out.enumerated() {
                let expected = reference[i] / sum
                #expect(abs(Double(value) - expected) <= Double(n + 17) * u * expected, "n = \(n), i = \(i): \(value) vs \(expected)")
            }
            #expect(abs(out.reduce(0.0) { $0 + Double($1) } - 1) <= Double(n + 17) * u, "n = \(n)")
        }
        // Length 0 touches nothing.
        #expect(Self.inPlace([]) { Kernels.softmax($0, length: 0) } == [])
    }

    @Test func layerNormEqualsAScalarLoopAtEveryWidth() {
        // The reference takes its statistics in double, in index order; the kernel sums sixteen
        // float lanes. Every output is within 4e-7 of the row's largest (a few float ulps there).
        let rows = 3
        for width in Self.lengths where width > 0 {
            let x = Self.values(rows * width, seed: 7000 + UInt64(width), range: 3).map { $0 + 0.5 }
            let weight = Self.values(width, seed: 8000 + UInt64(width)), bias = Self.values(width, seed: 9000 + UInt64(width))
            let eps: Float = 1e-5
            var expected: [Float] = []
            for row in 0..<rows {
                let line = Array(x[(row * width)..<((row + 1) * width)])
                var sum = 0.0
                for v in line { sum += Double(v) }
                let mean = sum / Double(width)
                var squares = 0.0
                for v in line { squares += (Double(v) - mean) * (Double(v) - mean) }
                let inverse = Float(1 / (squares / Double(width) + Double(eps)).squareRoot())
                for j in 0..<width { expected.append((line[j] - Float(mean)) * inverse * weight[j] + bias[j]) }
            }
            let out = Self.inPlace(Array(repeating: 0, count: rows * width)) { target in
                x.withUnsafeBufferPointer { Kernels.layerNorm($0.baseAddress!, rows: rows, width: width, weight: FloatArray(weight),
                                                              bias: FloatArray(bias), eps: eps, into: target) }
            }
            let scale = expected.map(abs).max() ?? 0
            #expect(zip(out, expected).allSatisfy { abs($0 - $1) <= 4e-7 * scale }, "width \(width): \(zip(out, expected).map { abs($0 - $1) }.max()!) of \(scale)")
        }
    }

    @Test func linearEqualsAScalarLoopForEveryColumnTail() {
        // Columns go to the cores in blocks of 16: output counts 1 … 33 leave every block tail.
        // BLAS sums in its own order, so the bound: a float dot product of k terms is within
        // (k + 1)·u·Σ|aᵢwᵢ| (+ the bias) of the exact one, in any order (Higham, 3.1).
        let u = Double(Float.ulpOfOne) / 2
        let (k, m) = (7, 4)
        for n in 1...33 {
            let a = Self.values(m * k, seed: 11 + UInt64(n)), w = Self.values(n * k, seed: 111 + UInt64(n)), bias = Self.values(n, seed: 1111 + UInt64(n))
            for (group, withBias) in [(1, true), (2, false), (4, true)] {
                let out = Self.inPlace(Array(repeating: .nan, count: m * n)) { target in
                    a.withUnsafeBufferPointer { Kernels.linear($0.baseAddress!, rows: m, group: group, inputs: k, weight: FloatArray(w),
                                                               bias: withBias ? FloatArray(bias) : nil, outputs: n, into: target) }
                }
                for row in 0..<m {
                    for column in 0..<n {
                        var exact = withBias ? Double(bias[column]) : 0, magnitude = abs(exact)
                        for j in 0..<k {
                            exact += Double(a[row * k + j]) * Double(w[column * k + j])
                            magnitude += abs(Double(a[row * k + j]) * Double(w[column * k + j]))
                        }
                        let value = Double(out[row * n + column])
                        #expect(abs(value - exact) <= Double(k + 2) * u * magnitude, "n = \(n), group \(group), [\(row), \(column)]: \(value) vs \(exact)")
                    }
                }
            }
        }
    }
}
