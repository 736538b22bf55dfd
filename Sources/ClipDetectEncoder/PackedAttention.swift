import CDNNL
import ClipDetectCore

/// Attention's two products in bf16 on oneDNN (bf16 precision only): per image and head,
/// S = Q·Kᵀ/√d and O = softmax(S)·V with fp32 accumulation, as PyTorch's bf16 autocast does them.
/// oneDNN picks its brgemm kernels only for dense operands (2.4× OpenBLAS's fp32 at these shapes;
/// strided, it falls back to gemm:jit), so each head's q, k and v are gathered into dense bf16
/// blocks first (the rounding pass bf16 needs anyway), and its output scattered into place. The
/// same primitives run on every core at once, so each core brings its own scratchpad (oneDNN's
/// library-managed one is shared by a primitive's concurrent runs: it gave NaN on ViT-L/14).
final class PackedAttention: @unchecked Sendable {
    private struct Products {
        let scores: dnnl_primitive_t, values: dnnl_primitive_t
        let q: dnnl_memory_desc_t, k: dnnl_memory_desc_t, s: dnnl_memory_desc_t
        let p: dnnl_memory_desc_t, v: dnnl_memory_desc_t, o: dnnl_memory_desc_t
        let scoresScratch: dnnl_memory_desc_t, valuesScratch: dnnl_memory_desc_t
    }

    let tokens: Int, headWidth: Int
    /// Scratchpad bytes each core needs (the largest of the primitives').
    let scratchpadBytes: Int
    /// One pair of products per query count (every token; the last block's class token).
    private let products: [Int: Products]

    init(tokens t: Int, headWidth d: Int) throws {
        OneDNN.useOneThreadHere()
        let engine = try OneDNN.engine()
        self.tokens = t; self.headWidth = d
        var attributes: dnnl_primitive_attr_t?
        try OneDNN.check(dnnl_primitive_attr_create(&attributes), "attention attributes")
        defer { dnnl_primitive_attr_destroy(attributes) }
        var plain: dnnl_primitive_attr_t?
        try OneDNN.check(dnnl_primitive_attr_create(&plain), "attention attributes")
        defer { dnnl_primitive_attr_destroy(plain) }
        for attribute in [attributes, plain] {
            try OneDNN.check(dnnl_primitive_attr_set_scratchpad_mode(attribute, dnnl_scratchpad_mode_user), "attention scratchpad")
        }
        var scale = 1 / Float(d).squareRoot()
        try OneDNN.check(dnnl_primitive_attr_set_output_scales(attributes, 1, 0, &scale), "attention scale")
        var made: [Int: Products] = [:], bytes = 0
        do {
            for queries in [t, 1] {
                var q = try OneDNN.desc([queries, d], dnnl_bf16), k = try OneDNN.desc([d, t], dnnl_bf16, tag: dnnl_ba)
                var s = try OneDNN.desc([queries, t], dnnl_f32), p = try OneDNN.desc([queries, t], dnnl_bf16)
                var v = try OneDNN.desc([t, d], dnnl_bf16), o = try OneDNN.desc([queries, d], dnnl_f32)
                let scores = try Self.matmul(&q, &k, &s, attributes: attributes, engine: engine)
                do {
                    let values = try Self.matmul(&p, &v, &o, attributes: plain, engine: engine)
                    var first = scores.scratchpad, second = values.scratchpad
                    bytes = max(bytes, dnnl_memory_desc_get_size(&first), dnnl_memory_desc_get_size(&second))
                    made[queries] = Products(scores: scores.primitive, values: values.primitive, q: q, k: k, s: s, p: p, v: v, o: o,
                                             scoresScratch: first, valuesScratch: second)
                } catch {
                    dnnl_primitive_destroy(scores.primitive)
                    throw error
                }
            }
        } catch {
            made.values.forEach { dnnl_primitive_destroy($0.scores); dnnl_primitive_destroy($0.values) }
            throw error
        }
        products = made
        scratchpadBytes = (bytes + 63) / 64 * 64
    }

    deinit { products.values.forEach { dnnl_primitive_destroy($0.scores); dnnl_primitive_destroy($0.values) } }

    private static func matmul(_ a: inout dnnl_memory_desc_t, _ b: inout dnnl_memory_desc_t, _ c: inout dnnl_memory_desc_t,
                               attributes: dnnl_primitive_attr_t?, engine: dnnl_engine_t) throws -> (primitive: dnnl_primitive_t, scratchpad: dnnl_memory_desc_t) {
        var operation = dnnl_matmul_desc_t()
        try OneDNN.check(dnnl_matmul_desc_init(&operation, &a, &b, nil, &c), "attention matmul")
        var pd: dnnl_primitive_desc_t?
        try OneDNN.check(dnnl_primitive_desc_create(&pd, &operation, attributes, engine, nil), "attention matmul")
        defer { dnnl_primitive_desc_destroy(pd) }
        let scratchpad = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0).pointee
        var primitive: dnnl_primitive_t?
        try OneDNN.check(dnnl_primitive_create(&primitive, pd), "attention primitive")
        return (primitive!, scratchpad)
    }

    /// bf16 values each core needs: q, k, v of one head and the probabilities.
    static func halvesPerCore(tokens t: Int, headWidth d: Int) -> Int { 3 * t * d + t * t }

    /// Multi-head attention of each image's first `queries` tokens over all its tokens; q, k, v packed
    /// in `qkv` rows of 3W, output `queries` rows of W per image. Per core: `scores` t×t floats,
    /// `halves` `halvesPerCore` values, `dense` t×d floats, `scratchpad` `scratchpadStride` bytes.
    func apply(qkv: UnsafeMutablePointer<Float>, images: Int, heads: Int, queries: Int, into out: UnsafeMutablePointer<Float>,
               scores: UnsafeMutablePointer<Float>, halves: UnsafeMutablePointer<UInt16>, dense: UnsafeMutablePointer<Float>,
               scratchpad: UnsafeMutableRawPointer, scratchpadStride: Int) {
        precondition(scratchpadStride >= scratchpadBytes, "scratchpad too small")
        let t = tokens, d = headWidth, w = heads * d, stride = 3 * w
        guard let pair = products[queries] else { preconditionFailure("no attention products for \(queries) queries") }
        Parallel.chunks(images * heads) { chunk, tasks in
            OneDNN.useOneThreadHere()
            let s = scores + chunk * t * t, o = dense + chunk * t * d
            let q = halves + chunk * PackedAttention.halvesPerCore(tokens: t, headWidth: d), k = q + t * d, v = k + t * d, p = v + t * d
            let stream = OneDNN.stream()
            var memories: [dnnl_memory_t?] = Array(repeating: nil, count: 8)
            var descs = [pair.q, pair.k, pair.s, pair.p, pair.v, pair.o, pair.scoresScratch, pair.valuesScratch]
            let pad = scratchpad + chunk * scratchpadStride
            let handles: [UnsafeMutableRawPointer] = [UnsafeMutableRawPointer(q), UnsafeMutableRawPointer(k), UnsafeMutableRawPointer(s),
                                                       UnsafeMutableRawPointer(p), UnsafeMutableRawPointer(v), UnsafeMutableRawPointer(o), pad, pad]
            for index in 0..<8 { dnnl_memory_create(&memories[index], &descs[index], OneDNN.shared, handles[index]) }
            defer {
                memories.forEach { dnnl_memory_destroy($0) }
                dnnl_stream_destroy(stream)
            }
            let first = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: memories[0]), dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: memories[1]),
                         dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: memories[2]), dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: memories[6])]
            let second = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: memories[3]), dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: memories[4]),
                          dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: memories[5]), dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: memories[7])]
            for task in tasks {
                let image = task / heads, head = task % heads
                let base = qkv + image * t * stride + head * d
                for row in 0..<t {
                    if row < queries { Kernels.roundToBF16(base + row * stride, count: d, into: q + row * d, parallel: false) }
                    Kernels.roundToBF16(base + row * stride + w, count: d, into: k + row * d, parallel: false)
                    Kernels.roundToBF16(base + row * stride + 2 * w, count: d, into: v + row * d, parallel: false)
                }
                var status = dnnl_primitive_execute(pair.scores, stream, Int32(first.count), first)
                precondition(status == dnnl_success, "oneDNN attention failed (\(status.rawValue))")
                dnnl_stream_wait(stream)
                for row in 0..<queries { Kernels.softmax(s + row * t, length: t, into: p + row * t) }
                status = dnnl_primitive_execute(pair.values, stream, Int32(second.count), second)
                precondition(status == dnnl_success, "oneDNN attention failed (\(status.rawValue))")
                dnnl_stream_wait(stream)
                for row in 0..<queries { (out + (image * queries + row) * w + head * d).update(from: o + row * d, count: d) }
            }
        }
    }
}
