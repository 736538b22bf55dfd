import CBLAS
import ClipDetectCore

/// What computes a tower's heavy steps, in the spirit of ggml-backend: a backend takes the dense
/// layers' weights into its own storage once, owns the scratch its kernels need, says what it is,
/// and runs the two costly steps of every block (the dense layers, attention). The graph around
/// them (patch embedding, LayerNorms, residuals, pooling) is `Tower`'s, written once: a new
/// precision or device is a new conformance, not a branch in the forward pass.
protocol EncoderBackend: Sendable {
    /// One dense layer, y = act(x·Wᵀ + b), in this backend's storage.
    associatedtype Dense: Sendable
    /// What one pass needs besides the graph's own buffers.
    associatedtype Scratch: AnyObject

    var precision: Precision { get }
    var library: ComputeBackend.Library { get }
    /// True when the backend reads the fp32 matrices as they are (mapped in place, or converted
    /// at load); false when it holds its own copy and they can be let go.
    var readsMatrices: Bool { get }

    /// Takes a layer's weights ([outputs, inputs], PyTorch's layout). `rowCounts`: the rows per
    /// image it will be given. `exact`: fp32 whatever the precision (the patch embedding reads the
    /// pixels, and costs 0.2% of ViT-L/14's products). `feedsNext`: its output is only the next
    /// layer's input (fc1's, read by fc2), which a backend may keep in its own number format.
    func dense(weight: FloatArray, bias: FloatArray?, inputs: Int, outputs: Int, activation: ModelDescription.Activation?,
               rowCounts: Set<Int>, exact: Bool, feedsNext: Bool) throws -> Dense
    /// Scratch for passes of up to `images` images through `layers`.
    func scratch(images: Int, description: ModelDescription, layers: [Dense]) -> Scratch
    /// `rows` rows of `a` (whole images of `group` rows) through `layer` into `out`.
    func apply(_ layer: Dense, _ a: UnsafePointer<Float>, rows: Int, group: Int, into out: UnsafeMutablePointer<Float>, scratch: Scratch)
    /// fc2(fc1(a)) into `out`; `hidden` has room for rows × fc1's outputs floats.
    func mlp(_ fc1: Dense, _ fc2: Dense, _ a: UnsafePointer<Float>, rows: Int, group: Int, hidden: UnsafeMutablePointer<Float>,
             into out: UnsafeMutablePointer<Float>, scratch: Scratch)
    /// Multi-head self-attention of each image's first `queries` tokens over all its tokens; q, k,
    /// v packed in `qkv` rows of 3W, output `queries` rows of W per image.
    func attention(qkv: UnsafeMutablePointer<Float>, images: Int, queries: Int, description: ModelDescription,
                   into out: UnsafeMutablePointer<Float>, scratch: Scratch)
    /// Bytes the layer holds in the backend's own layout (0 when it reads the weights as they are).
    func packedBytes(_ layer: Dense) -> Int
    /// The backend's name for the kernel it chose for the layer, when it has one.
    func kernel(_ layer: Dense) -> String?
}

extension EncoderBackend {
    func mlp(_ fc1: Dense, _ fc2: Dense, _ a: UnsafePointer<Float>, rows: Int, group: Int, hidden: UnsafeMutablePointer<Float>,
             into out: UnsafeMutablePointer<Float>, scratch: Scratch) {
        apply(fc1, a, rows: rows, group: group, into: hidden, scratch: scratch)
        apply(fc2, hidden, rows: rows, group: group, into: out, scratch: scratch)
    }
}

/// Attention on OpenBLAS: heads in parallel, each on one core with single-threaded GEMMs.
enum BLASAttention {
    /// Floats of scratch: one t×t score matrix per core.
    static func scratchCount(_ d: ModelDescription) -> Int { Parallel.cores * d.tokens * d.tokens }

    static func run(qkv: UnsafeMutablePointer<Float>, images: Int, queries: Int, description d: ModelDescription,
                    into out: UnsafeMutablePointer<Float>, scores scratch: UnsafeMutablePointer<Float>) {
        let t = d.tokens, w = d.width, hd = d.headWidth, stride = 3 * w
        let scale = 1 / Float(hd).squareRoot()
        Parallel.chunks(images * d.heads) { chunk, tasks in
            let scores = scratch + chunk * queries * t
            for task in tasks {
                let image = task / d.heads, head = task % d.heads
                let base = qkv + image * t * stride
                let q = base + head * hd, k = base + w + head * hd, v = base + 2 * w + head * hd
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(queries), Int32(t), Int32(hd), scale,
                            q, Int32(stride), k, Int32(stride), 0, scores, Int32(t))
                for row in 0..<queries { Kernels.softmax(scores + row * t, length: t) }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(queries), Int32(hd), Int32(t), 1,
                            scores, Int32(t), v, Int32(stride), 0, out + image * queries * w + head * hd, Int32(w))
            }
        }
    }
}

/// fp32 on OpenBLAS, reading the matrices as the checkpoint holds them (mapped when they are f32).
struct BLASBackend: EncoderBackend {
    struct Dense: Sendable {
        let weight: FloatArray, bias: FloatArray?
        let inputs: Int, outputs: Int
        let activation: ModelDescription.Activation?
    }

    final class Scratch {
        let scores: UnsafeMutablePointer<Float>
        init(_ d: ModelDescription) { scores = .allocate(capacity: BLASAttention.scratchCount(d)) }
        deinit { scores.deallocate() }
    }

    var precision: Precision { .fp32 }
    var library: ComputeBackend.Library { .openBLAS }
    var readsMatrices: Bool { true }

    func dense(weight: FloatArray, bias: FloatArray?, inputs: Int, outputs: Int, activation: ModelDescription.Activation?,
               rowCounts: Set<Int>, exact: Bool, feedsNext: Bool) -> Dense {
        Dense(weight: weight, bias: bias, inputs: inputs, outputs: outputs, activation: activation)
    }

    func scratch(images: Int, description: ModelDescription, layers: [Dense]) -> Scratch { Scratch(description) }

    func apply(_ layer: Dense, _ a: UnsafePointer<Float>, rows: Int, group: Int, into out: UnsafeMutablePointer<Float>, scratch: Scratch) {
        Kernels.linear(a, rows: rows, group: group, inputs: layer.inputs, weight: layer.weight, bias: layer.bias, outputs: layer.outputs, into: out)
        if let activation = layer.activation { Kernels.activate(out, count: rows * layer.outputs, activation) }
    }

    func attention(qkv: UnsafeMutablePointer<Float>, images: Int, queries: Int, description: ModelDescription,
                   into out: UnsafeMutablePointer<Float>, scratch: Scratch) {
        BLASAttention.run(qkv: qkv, images: images, queries: queries, description: description, into: out, scores: scratch.scores)
    }

    func packedBytes(_ layer: Dense) -> Int { 0 }
    func kernel(_ layer: Dense) -> String? { nil }
}

/// oneDNN with each matrix packed once at load: fp32 (attention on OpenBLAS), or bf16 (weights and
/// layer inputs rounded to bfloat16, products accumulated in fp32, attention in bf16 too; fc1's
/// output kept in bf16 for fc2). The fp32 matrices are not kept.
struct OneDNNBackend: EncoderBackend {
    typealias Dense = PackedMatmul

    /// Per pass: each core's dense output block, oneDNN scratchpad, a layer's input rounded to bf16,
    /// the bf16 attention's q, k, v and probabilities, and the attention scores.
    final class Scratch {
        let blocks: UnsafeMutablePointer<Float>
        let scratchpad: UnsafeMutableRawPointer
        let scratchpadStride: Int
        let halves: UnsafeMutablePointer<UInt16>
        let halvesCount: Int
        let attentionHalves: UnsafeMutablePointer<UInt16>
        let scores: UnsafeMutablePointer<Float>

        init(images: Int, description d: ModelDescription, scratchpad: Int, bf16: Bool) {
            let widest = max(3 * d.width, d.mlpWidth)
            blocks = .allocate(capacity: Parallel.cores * d.tokens * widest)
            scratchpadStride = (scratchpad + 63) / 64 * 64
            self.scratchpad = .allocate(byteCount: max(64, Parallel.cores * scratchpadStride), alignment: 64)
            // qkv's, out's and fc1's inputs are `width` wide (fc2 reads fc1's bf16 output).
            halvesCount = bf16 ? images * d.tokens * d.width : 0
            halves = .allocate(capacity: max(1, halvesCount))
            attentionHalves = .allocate(capacity: bf16 ? Parallel.cores * PackedAttention.halvesPerCore(tokens: d.tokens, headWidth: d.headWidth) : 1)
            scores = .allocate(capacity: BLASAttention.scratchCount(d))
        }

        deinit {
            blocks.deallocate(); scratchpad.deallocate(); halves.deallocate(); attentionHalves.deallocate(); scores.deallocate()
        }
    }

    let element: PackedMatmul.Element
    /// Attention's products in bf16 (bf16 only; fp32 keeps them on OpenBLAS).
    private let packedAttention: PackedAttention?

    init(element: PackedMatmul.Element, description d: ModelDescription) throws {
        self.element = element
        packedAttention = element == .bf16 ? try PackedAttention(tokens: d.tokens, headWidth: d.headWidth) : nil
    }

    var precision: Precision { element == .bf16 ? .bf16 : .fp32 }
    var library: ComputeBackend.Library { .oneDNN }
    var readsMatrices: Bool { false }

    func dense(weight: FloatArray, bias: FloatArray?, inputs: Int, outputs: Int, activation: ModelDescription.Activation?,
               rowCounts: Set<Int>, exact: Bool, feedsNext: Bool) throws -> Dense {
        let element: PackedMatmul.Element = exact ? .f32 : self.element
        let packed = try PackedMatmul(weight: weight, bias: bias, inputs: inputs, outputs: outputs, rowCounts: rowCounts, element: element,
                                      destination: feedsNext && element == .bf16 ? .bf16 : .f32, activation: activation)
        // The packed copy is what runs: the file's pages need not stay resident beside it.
        (weight.ownerObject as? MappedFile)?.release(weight.pointer, byteCount: weight.count * MemoryLayout<Float>.stride)
        return packed
    }

    func scratch(images: Int, description: ModelDescription, layers: [Dense]) -> Scratch {
        let bytes = (layers.map(\.scratchpadBytes) + [packedAttention?.scratchpadBytes ?? 0]).max()!
        return Scratch(images: images, description: description, scratchpad: bytes, bf16: element == .bf16)
    }

    func apply(_ layer: Dense, _ a: UnsafePointer<Float>, rows: Int, group: Int, into out: UnsafeMutablePointer<Float>, scratch: Scratch) {
        precondition(layer.destination == .f32, "this layer writes bf16: it runs in mlp")
        if layer.element == .bf16 {
            precondition(rows * layer.inputs <= scratch.halvesCount, "bf16 input buffer too small")
            Kernels.roundToBF16(a, count: rows * layer.inputs, into: scratch.halves)
            layer.apply(scratch.halves, rows: rows, group: group, into: out, scratch: scratch.blocks,
                        scratchpad: scratch.scratchpad, scratchpadStride: scratch.scratchpadStride)
        } else {
            layer.apply(a, rows: rows, group: group, into: out, scratch: scratch.blocks,
                        scratchpad: scratch.scratchpad, scratchpadStride: scratch.scratchpadStride)
        }
    }

    /// In bf16, fc1 writes its output as bf16, which fc2 reads as it is (one pass fewer over memory).
    func mlp(_ fc1: Dense, _ fc2: Dense, _ a: UnsafePointer<Float>, rows: Int, group: Int, hidden: UnsafeMutablePointer<Float>,
             into out: UnsafeMutablePointer<Float>, scratch: Scratch) {
        guard fc1.destination == .bf16 else {
            apply(fc1, a, rows: rows, group: group, into: hidden, scratch: scratch)
            return apply(fc2, hidden, rows: rows, group: group, into: out, scratch: scratch)
        }
        precondition(rows * fc1.inputs <= scratch.halvesCount, "bf16 input buffer too small")
        Kernels.roundToBF16(a, count: rows * fc1.inputs, into: scratch.halves)
        UnsafeMutableRawPointer(hidden).withMemoryRebound(to: UInt16.self, capacity: rows * fc1.outputs) { halves in
            fc1.apply(scratch.halves, rows: rows, group: group, into: halves, scratch: scratch.blocks,
                      scratchpad: scratch.scratchpad, scratchpadStride: scratch.scratchpadStride)
            fc2.apply(halves, rows: rows, group: group, into: out, scratch: scratch.blocks,
                      scratchpad: scratch.scratchpad, scratchpadStride: scratch.scratchpadStride)
        }
    }

    func attention(qkv: UnsafeMutablePointer<Float>, images: Int, queries: Int, description d: ModelDescription,
                   into out: UnsafeMutablePointer<Float>, scratch: Scratch) {
        guard let packedAttention else {
            return BLASAttention.run(qkv: qkv, images: images, queries: queries, description: d, into: out, scores: scratch.scores)
        }
        packedAttention.apply(qkv: qkv, images: images, heads: d.heads, queries: queries, into: out, scores: scratch.scores,
                              halves: scratch.attentionHalves, dense: scratch.blocks, scratchpad: scratch.scratchpad,
                              scratchpadStride: scratch.scratchpadStride)
    }

    func packedBytes(_ layer: Dense) -> Int { layer.packedBytes }
    func kernel(_ layer: Dense) -> String? { layer.implementation }
}
