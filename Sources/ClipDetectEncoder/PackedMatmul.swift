import CDNNL
import ClipDetectCore

/// One weight matrix packed once at load into oneDNN's own layout (fp32 or bf16) and split into a
/// block of output columns per core; each block runs on its core as a single-threaded oneDNN
/// matmul. Products go through one image (`group` rows) at a time, as `Kernels.linear` does, so an
/// image's features do not depend on what it is batched with. Each run brings its own scratchpad:
/// one primitive may run in several passes at once (concurrent callers), and oneDNN's
/// library-managed scratchpad would be shared between them.
final class PackedMatmul: @unchecked Sendable {
    enum Element { case f32, bf16 }

    private struct Block {
        let first: Int, columns: Int
        let weights: dnnl_memory_t
        let bias: dnnl_memory_t?
        /// One primitive per row count the encoder uses (tokens per image, patches per image, 1).
        let primitives: [Int: (primitive: dnnl_primitive_t, source: dnnl_memory_desc_t, destination: dnnl_memory_desc_t,
                               scratchpad: dnnl_memory_desc_t)]
    }

    let inputs: Int, outputs: Int, element: Element
    /// The output's element type: fp32, or bf16 for a bf16 product whose output is only the next
    /// bf16 product's input (fc1's, read by fc2), rounded by the kernel as it writes.
    let destination: Element
    private let blocks: [Block]
    /// Bytes oneDNN holds for the packed weights.
    let packedBytes: Int
    /// oneDNN's name for the kernel it chose (e.g. `brg:avx512_core_bf16`).
    let implementation: String
    /// Scratchpad bytes one run needs (the largest of the primitives').
    let scratchpadBytes: Int

    /// Packs `weight` ([outputs, inputs], PyTorch's layout) for products of the given row counts;
    /// `activation` is applied by the same kernel as it writes each output (one pass fewer over memory).
    init(weight: FloatArray, bias: FloatArray?, inputs k: Int, outputs n: Int, rowCounts: Set<Int>, element: Element,
         destination: Element = .f32, activation: ModelDescription.Activation? = nil) throws {
        precondition(weight.count == n * k && (bias == nil || bias!.count == n) && !rowCounts.isEmpty)
        precondition(destination == .f32 || element == .bf16, "bf16 output from bf16 products only")
        OneDNN.useOneThreadHere()
        let engine = try OneDNN.engine()
        self.inputs = k; self.outputs = n; self.element = element; self.destination = destination
        let type = element == .bf16 ? dnnl_bf16 : dnnl_f32
        let count = min(Parallel.cores, max(1, n / 16))
        var blocks: [Block] = [], bytes = 0, implementation = "", scratchpadBytes = 0
        var attributes: dnnl_primitive_attr_t?
        try OneDNN.check(dnnl_primitive_attr_create(&attributes), "matmul attributes")
        defer { dnnl_primitive_attr_destroy(attributes) }
        try OneDNN.check(dnnl_primitive_attr_set_scratchpad_mode(attributes, dnnl_scratchpad_mode_user), "matmul scratchpad")
        if let activation {
            var postOps: dnnl_post_ops_t?
            try OneDNN.check(dnnl_post_ops_create(&postOps), "activation")
            defer { dnnl_post_ops_destroy(postOps) }
            // QuickGELU, x·σ(1.702x), is oneDNN's swish with α = 1.702.
            let status = activation == .gelu ? dnnl_post_ops_append_eltwise(postOps, 1, dnnl_eltwise_gelu_erf, 0, 0)
                : dnnl_post_ops_append_eltwise(postOps, 1, dnnl_eltwise_swish, 1.702, 0)
            try OneDNN.check(status, "activation")
            try OneDNN.check(dnnl_primitive_attr_set_post_ops(attributes, postOps), "activation")
        }
        do {
            for index in 0..<count {
                // Blocks of whole 16-column groups, the last one takes the rest.
                let first = n / 16 * index / count * 16, last = index == count - 1 ? n : n / 16 * (index + 1) / count * 16
                let columns = last - first
                var primitives: [Int: (dnnl_primitive_t, dnnl_memory_desc_t, dnnl_memory_desc_t, dnnl_memory_desc_t)] = [:]
                var packedDesc: dnnl_memory_desc_t?
                var packedMemory: dnnl_memory_t?, biasMemory: dnnl_memory_t?
                var appended = false
                // What this block made so far goes if a later step fails (the finished blocks go in the catch below).
                defer {
                    if !appended {
                        primitives.values.forEach { dnnl_primitive_destroy($0.0) }
                        if let packedMemory { dnnl_memory_destroy(packedMemory) }
                        if let biasMemory { dnnl_memory_destroy(biasMemory) }
                    }
                }
                for rows in rowCounts.sorted(by: >) {
                    var source = try OneDNN.desc([rows, k], type)
                    var destination = try OneDNN.desc([rows, columns], destination == .bf16 ? dnnl_bf16 : dnnl_f32)
                    var biasDesc = try OneDNN.desc([1, columns], dnnl_f32)
                    var weights = try packedDesc ?? OneDNN.desc([k, columns], type, tag: dnnl_format_tag_any)
                    var operation = dnnl_matmul_desc_t()
                    let status = bias == nil ? dnnl_matmul_desc_init(&operation, &source, &weights, nil, &destination)
                        : dnnl_matmul_desc_init(&operation, &source, &weights, &biasDesc, &destination)
                    try OneDNN.check(status, "matmul")
                    var pd: dnnl_primitive_desc_t?
                    try OneDNN.check(dnnl_primitive_desc_create(&pd, &operation, attributes, engine, nil), "matmul \(rows)×\(k)×\(columns)")
                    defer { dnnl_primitive_desc_destroy(pd) }
                    if packedDesc == nil {
                        packedDesc = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0).pointee
                        var name: UnsafePointer<CChar>?
                        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name)
                        implementation = name.map { String(cString: $0) } ?? "?"
                    }
                    var scratchpad = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0).pointee
                    scratchpadBytes = max(scratchpadBytes, dnnl_memory_desc_get_size(&scratchpad))
                    var primitive: dnnl_primitive_t?
                    try OneDNN.check(dnnl_primitive_create(&primitive, pd), "matmul primitive")
                    primitives[rows] = (primitive!, source, destination, scratchpad)
                }
                var packed = packedDesc!
                try OneDNN.check(dnnl_memory_create(&packedMemory, &packed, engine, OneDNN.allocate), "packed weights")
                bytes += dnnl_memory_desc_get_size(&packed)
                // The user's rows first..<last of [n, k] are the [k, columns] matrix in `ba` order.
                var user = try OneDNN.desc([k, columns], dnnl_f32, tag: dnnl_ba)
                try OneDNN.reorder(from: &user, UnsafeMutableRawPointer(mutating: weight.pointer + first * k), to: packedMemory!)
                if let bias {
                    var desc = try OneDNN.desc([1, columns], dnnl_f32)
                    try OneDNN.check(dnnl_memory_create(&biasMemory, &desc, engine, OneDNN.allocate), "bias")
                    var handle: UnsafeMutableRawPointer?
                    dnnl_memory_get_data_handle(biasMemory, &handle)
                    handle!.copyMemory(from: bias.pointer + first, byteCount: columns * 4)
                }
                blocks.append(Block(first: first, columns: columns, weights: packedMemory!, bias: biasMemory,
                                    primitives: primitives.mapValues { (primitive: $0.0, source: $0.1, destination: $0.2, scratchpad: $0.3) }))
                appended = true
            }
        } catch {
            Self.destroy(blocks)
            throw error
        }
        withExtendedLifetime(weight) {}
        self.blocks = blocks
        self.packedBytes = bytes
        self.implementation = implementation
        self.scratchpadBytes = (scratchpadBytes + 63) / 64 * 64
    }

    deinit { Self.destroy(blocks) }

    private static func destroy(_ blocks: [Block]) {
        for block in blocks {
            dnnl_memory_destroy(block.weights)
            if let bias = block.bias { dnnl_memory_destroy(bias) }
            for entry in block.primitives.values { dnnl_primitive_destroy(entry.primitive) }
        }
    }

    /// out[m, n] = a[m, k] · Wᵀ + bias, `a` in this matmul's element type and `out` in its
    /// destination type (bf16 as raw UInt16). `scratch` holds `group × outputs` floats per core:
    /// oneDNN's fast kernels write a dense block, whose columns are then copied into place.
    /// `scratchpad` holds `scratchpadStride` bytes per core.
    func apply(_ a: UnsafeRawPointer, rows m: Int, group: Int, into out: UnsafeMutableRawPointer, scratch: UnsafeMutablePointer<Float>,
               scratchpad: UnsafeMutableRawPointer, scratchpadStride: Int) {
        precondition(scratchpadStride >= scratchpadBytes, "scratchpad too small")
        precondition(group > 0 && m % group == 0, "rows come in whole images")
        let elementSize = element == .bf16 ? 2 : 4, outputSize = destination == .bf16 ? 2 : 4
        let n = outputs, k = inputs
        Parallel.chunks(blocks.count) { chunk, range in
            OneDNN.useOneThreadHere()
            let dense = UnsafeMutableRawPointer(scratch + chunk * group * n)
            for block in blocks[range] {
                guard let entry = block.primitives[group] else { preconditionFailure("no primitive for \(group) rows") }
                let stream = OneDNN.stream()
                var scratchpadDesc = entry.scratchpad
                var scratchpadMemory: dnnl_memory_t?
                dnnl_memory_create(&scratchpadMemory, &scratchpadDesc, OneDNN.shared, scratchpad + chunk * scratchpadStride)
                defer {
                    dnnl_memory_destroy(scratchpadMemory)
                    dnnl_stream_destroy(stream)
                }
                for start in stride(from: 0, to: m, by: group) {
                    var source = entry.source, destination = entry.destination
                    var sourceMemory: dnnl_memory_t?, destinationMemory: dnnl_memory_t?
                    dnnl_memory_create(&sourceMemory, &source, OneDNN.shared, UnsafeMutableRawPointer(mutating: a + start * k * elementSize))
                    dnnl_memory_create(&destinationMemory, &destination, OneDNN.shared, dense)
                    var arguments = [dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: sourceMemory),
                                     dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: block.weights),
                                     dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: destinationMemory),
                                     dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: scratchpadMemory)]
                    if let bias = block.bias { arguments.append(dnnl_exec_arg_t(arg: DNNL_ARG_BIAS, memory: bias)) }
                    let status = dnnl_primitive_execute(entry.primitive, stream, Int32(arguments.count), arguments)
                    precondition(status == dnnl_success, "oneDNN matmul failed (\(status.rawValue))")
                    dnnl_stream_wait(stream)
                    dnnl_memory_destroy(sourceMemory)
                    dnnl_memory_destroy(destinationMemory)
                    for row in 0..<group {
                        (out + ((start + row) * n + block.first) * outputSize)
                            .copyMemory(from: dense + row * block.columns * outputSize, byteCount: block.columns * outputSize)
                    }
                }
            }
        }
    }
}

/// The process's oneDNN CPU engine and what the CPU offers it.
enum OneDNN {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    nonisolated(unsafe) private static let engineResult: Result<dnnl_engine_t, Failure> = {
        var engine: dnnl_engine_t?
        let status = dnnl_engine_create(&engine, dnnl_cpu, 0)
        return status == dnnl_success ? .success(engine!) : .failure(Failure(description: "oneDNN: no CPU engine (status \(status.rawValue))"))
    }()

    /// oneDNN's DNNL_MEMORY_ALLOCATE: the memory object allocates its own buffer.
    static var allocate: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: -1)! }

    static func engine() throws -> dnnl_engine_t { try engineResult.get() }
    /// Only used after `engine()` succeeded (a matmul exists).
    static var shared: dnnl_engine_t { try! engineResult.get() }

    static func stream() -> dnnl_stream_t {
        var stream: dnnl_stream_t?
        let status = dnnl_stream_create(&stream, shared, dnnl_stream_default_flags.rawValue)
        precondition(status == dnnl_success, "oneDNN stream (\(status.rawValue))")
        return stream!
    }

    /// oneDNN sizes a primitive's parallel work by the creating thread's OpenMP team, and runs it
    /// with that team: one thread, as each encoder worker runs one block.
    static func useOneThreadHere() { omp_set_num_threads(1) }

    /// The instruction set oneDNN dispatches to on this CPU (cpuid, at run time; `DNNL_MAX_CPU_ISA` caps it).
    static var isa: dnnl_cpu_isa_t { dnnl_get_effective_cpu_isa() }
    static var hasAVX512: Bool { isa.rawValue & dnnl_cpu_isa_avx512_core.rawValue == dnnl_cpu_isa_avx512_core.rawValue }
    static var hasBF16: Bool { isa.rawValue & dnnl_cpu_isa_avx512_core_bf16.rawValue == dnnl_cpu_isa_avx512_core_bf16.rawValue }

    static func check(_ status: dnnl_status_t, _ what: String) throws {
        guard status == dnnl_success else { throw Failure(description: "oneDNN could not create the \(what) (status \(status.rawValue))") }
    }

    static func desc(_ dims: [Int], _ type: dnnl_data_type_t, tag: dnnl_format_tag_t = dnnl_ab) throws -> dnnl_memory_desc_t {
        var desc = dnnl_memory_desc_t()
        let shape = dims.map { dnnl_dim_t($0) }
        try check(dnnl_memory_desc_init_by_tag(&desc, Int32(dims.count), shape, type, tag), "memory descriptor")
        return desc
    }

    /// Copies `data` (laid out as `from`) into `to`, converting layout and type.
    static func reorder(from: inout dnnl_memory_desc_t, _ data: UnsafeMutableRawPointer, to target: dnnl_memory_t) throws {
        let engine = try engine()
        var source: dnnl_memory_t?
        try check(dnnl_memory_create(&source, &from, engine, data), "source memory")
        defer { dnnl_memory_destroy(source) }
        var targetDesc: UnsafePointer<dnnl_memory_desc_t>?
        dnnl_memory_get_memory_desc(target, &targetDesc)
        var pd: dnnl_primitive_desc_t?
        try check(dnnl_reorder_primitive_desc_create(&pd, &from, engine, targetDesc, engine, nil), "weight reorder")
        defer { dnnl_primitive_desc_destroy(pd) }
        var primitive: dnnl_primitive_t?
        try check(dnnl_primitive_create(&primitive, pd), "weight reorder")
        defer { dnnl_primitive_destroy(primitive) }
        let stream = stream()
        defer { dnnl_stream_destroy(stream) }
        let arguments = [dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: source), dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: target)]
        try check(dnnl_primitive_execute(primitive, stream, 2, arguments), "weight reorder run")
        dnnl_stream_wait(stream)
    }
}
