// The experiment behind docs/performance.md's "weights packed once" paragraph: a 6×16 FMA tile
// kernel in Swift on weights packed once, against OpenBLAS packing on every call, over the four
// GEMMs of every ViT-L/14 layer at batch 1 (M = 257), two cores splitting the output columns as
// the encoder does. Not part of the product: it needs -target-cpu haswell (see packed_kernel.sh).
import Dispatch
import Foundation

let kc = 384  // rows of the K dimension per block: one weight panel block stays in L1

/// Weights [n, k] → [k block][16-column panel][row in block][16], zero-padded to whole panels.
func pack(_ w: UnsafePointer<Float>, n: Int, k: Int) -> UnsafeMutablePointer<Float> {
    let panels = (n + 15) / 16
    let out = UnsafeMutablePointer<Float>.allocate(capacity: panels * k * 16)
    out.initialize(repeating: 0, count: panels * k * 16)
    for j in 0..<n {
        for p in 0..<k {
            let block = p / kc, depth = min(kc, k - block * kc)
            out[block * kc * panels * 16 + (j / 16) * depth * 16 + (p - block * kc) * 16 + j % 16] = w[j * k + p]
        }
    }
    return out
}

/// C[rows × 16] (+)= packed A (depth × 6, interleaved) · one panel block (depth × 16).
@inline(__always)
func tile(_ rows: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, depth: Int, c: UnsafeMutablePointer<Float>, ldc: Int, first: Bool) {
    typealias V = SIMD8<Float>
    var acc = (V(), V(), V(), V(), V(), V(), V(), V(), V(), V(), V(), V())
    let panel = UnsafeRawPointer(b)
    for p in 0..<depth {
        let b0 = panel.load(fromByteOffset: p * 64, as: V.self), b1 = panel.load(fromByteOffset: p * 64 + 32, as: V.self)
        let row = a + p * 6
        var x = V(repeating: row[0]); acc.0 = acc.0.addingProduct(x, b0); acc.1 = acc.1.addingProduct(x, b1)
        if rows > 1 { x = V(repeating: row[1]); acc.2 = acc.2.addingProduct(x, b0); acc.3 = acc.3.addingProduct(x, b1) }
        if rows > 2 { x = V(repeating: row[2]); acc.4 = acc.4.addingProduct(x, b0); acc.5 = acc.5.addingProduct(x, b1) }
        if rows > 3 { x = V(repeating: row[3]); acc.6 = acc.6.addingProduct(x, b0); acc.7 = acc.7.addingProduct(x, b1) }
        if rows > 4 { x = V(repeating: row[4]); acc.8 = acc.8.addingProduct(x, b0); acc.9 = acc.9.addingProduct(x, b1) }
        if rows > 5 { x = V(repeating: row[5]); acc.10 = acc.10.addingProduct(x, b0); acc.11 = acc.11.addingProduct(x, b1) }
    }
    func store(_ r: Int, _ low: V, _ high: V) {
        let line = UnsafeMutableRawPointer(c + r * ldc)
        line.storeBytes(of: first ? low : low + line.loadUnaligned(as: V.self), as: V.self)
        line.storeBytes(of: first ? high : high + line.loadUnaligned(fromByteOffset: 32, as: V.self), toByteOffset: 32, as: V.self)
    }
    store(0, acc.0, acc.1)
    if rows > 1 { store(1, acc.2, acc.3) }
    if rows > 2 { store(2, acc.4, acc.5) }
    if rows > 3 { store(3, acc.6, acc.7) }
    if rows > 4 { store(4, acc.8, acc.9) }
    if rows > 5 { store(5, acc.10, acc.11) }
}

@inline(never) func tile6(a: UnsafePointer<Float>, b: UnsafePointer<Float>, depth: Int, c: UnsafeMutablePointer<Float>, ldc: Int, first: Bool) {
    tile(6, a: a, b: b, depth: depth, c: c, ldc: ldc, first: first)
}

@inline(never) func tileEdge(_ rows: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, depth: Int, c: UnsafeMutablePointer<Float>, ldc: Int, first: Bool) {
    switch rows {
    case 1: tile(1, a: a, b: b, depth: depth, c: c, ldc: ldc, first: first)
    case 2: tile(2, a: a, b: b, depth: depth, c: c, ldc: ldc, first: first)
    case 3: tile(3, a: a, b: b, depth: depth, c: c, ldc: ldc, first: first)
    case 4: tile(4, a: a, b: b, depth: depth, c: c, ldc: ldc, first: first)
    default: tile(5, a: a, b: b, depth: depth, c: c, ldc: ldc, first: first)
    }
}

/// C[:, n0..<n1] = A[m × k] · Wᵀ from packed W (n columns in all); n0, n1 multiples of 16.
func gemm(m: Int, n: Int, n0: Int, n1: Int, k: Int, a: UnsafePointer<Float>, packed: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
    let blocks = (m + 5) / 6, panels = (n + 15) / 16
    let packedA = UnsafeMutablePointer<Float>.allocate(capacity: blocks * 6 * kc)
    defer { packedA.deallocate() }
    var p0 = 0
    while p0 < k {
        let depth = min(kc, k - p0)
        for block in 0..<blocks {
            for r in 0..<6 {
                let row = block * 6 + r
                for p in 0..<depth { packedA[block * 6 * depth + p * 6 + r] = row < m ? a[row * k + p0 + p] : 0 }
            }
        }
        for j in stride(from: n0, to: n1, by: 16) {
            let panel = packed + p0 * panels * 16 + (j / 16) * depth * 16
            for block in 0..<blocks {
                let rows = min(6, m - block * 6), target = c + block * 6 * n + j
                if rows == 6 {
                    tile6(a: packedA + block * 6 * depth, b: panel, depth: depth, c: target, ldc: n, first: p0 == 0)
                } else {
                    tileEdge(rows, a: packedA + block * 6 * depth, b: panel, depth: depth, c: target, ldc: n, first: p0 == 0)
                }
            }
        }
        p0 += depth
    }
}

struct Shared<T>: @unchecked Sendable { let value: T }

let arguments = CommandLine.arguments
let m = arguments.count > 1 ? Int(arguments[1])! : 257, layers = arguments.count > 2 ? Int(arguments[2])! : 24
openblas_set_num_threads(1)
let shapes = [(3072, 1024), (1024, 1024), (4096, 1024), (1024, 4096)]  // (outputs, inputs) of qkv, out, fc1, fc2
var raw: [[UnsafeMutablePointer<Float>]] = [], packed: [[UnsafeMutablePointer<Float>]] = []
for _ in 0..<layers {
    raw.append(shapes.map { n, k in
        let w = UnsafeMutablePointer<Float>.allocate(capacity: n * k)
        for i in 0..<(n * k) { w[i] = Float(i % 97) * 0.001 - 0.05 }
        return w
    })
    packed.append(zip(raw.last!, shapes).map { pack($0, n: $1.0, k: $1.1) })
}
let a = UnsafeMutablePointer<Float>.allocate(capacity: m * 4096)
for i in 0..<(m * 4096) { a[i] = Float(i % 13) * 0.01 - 0.06 }
let c1 = UnsafeMutablePointer<Float>.allocate(capacity: m * 4096), c2 = UnsafeMutablePointer<Float>.allocate(capacity: m * 4096)

func pass(packedKernel: Bool) {
    for layer in 0..<layers {
        for (s, (n, k)) in shapes.enumerated() {
            let w = Shared(value: raw[layer][s]), p = Shared(value: packed[layer][s]), input = Shared(value: a)
            let out = Shared(value: packedKernel ? c2 : c1)
            DispatchQueue.concurrentPerform(iterations: 2) { half in
                let n0 = half == 0 ? 0 : (n / 32) * 16, n1 = half == 0 ? (n / 32) * 16 : n
                if packedKernel {
                    gemm(m: m, n: n, n0: n0, n1: n1, k: k, a: input.value, packed: p.value, c: out.value)
                } else {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n1 - n0), Int32(k), 1, input.value, Int32(k),
                                w.value + n0 * k, Int32(k), 0, out.value + n0, Int32(n))
                }
            }
        }
    }
}

pass(packedKernel: false)
pass(packedKernel: true)
var difference: Float = 0
for i in 0..<(m * 1024) { difference = max(difference, abs(c1[i] - c2[i])) }
let flops = 2.0 * Double(m * layers) * Double(shapes.reduce(0) { $0 + $1.0 * $1.1 })
print("M = \(m), \(layers) layers; max |Δ| of the last output \(difference)")
var best = (openblas: Double.infinity, packed: Double.infinity)
for round in 1...3 {
    for packedKernel in [false, true] {
        let start = Date()
        pass(packedKernel: packedKernel)
        let seconds = Date().timeIntervalSince(start)
        if packedKernel { best.packed = min(best.packed, seconds) } else { best.openblas = min(best.openblas, seconds) }
        print(String(format: "round %d  %-28@ %.3f s  %.1f GFLOP/s", round, packedKernel ? "packed once (Swift)" : "OpenBLAS (packs per call)", seconds, flops / seconds / 1e9))
    }
}
print(String(format: "best: OpenBLAS %.1f, packed once %.1f GFLOP/s", flops / best.openblas / 1e9, flops / best.packed / 1e9))
