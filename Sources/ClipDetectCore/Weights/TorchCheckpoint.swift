/// Reads `torch.save` zip checkpoints (.pth/.pt/.bin) without Python: the central directory,
/// then `data.pkl` through the restricted unpickler, then tensors viewed in `data/<key>`.
enum TorchCheckpoint {
    /// Keys under which training scripts nest the state dict (as the reference loader accepts).
    static let nestedKeys = ["state_dict", "model", "net"]

    static func looksLikeLegacy(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 2 && bytes[0] == 0x80 && bytes[1] <= 5
    }

    static func read(_ file: MappedFile) throws -> Checkpoint {
        let archive = try ZipArchive(file.bytes)
        guard let pickle = archive.entries.values.filter({ $0.name.hasSuffix("/data.pkl") || $0.name == "data.pkl" })
            .min(by: { $0.name.count < $1.name.count })
        else { throw WeightsError.malformed("zip archive has no data.pkl: not a PyTorch checkpoint") }
        let prefix = String(pickle.name.dropLast("data.pkl".count))
        if let order = archive.entries[prefix + "byteorder"] {
            let text = String(decoding: try archive.data(order), as: UTF8.self)
            guard text == "little" else { throw WeightsError.malformed("checkpoint byte order \(text) is not supported") }
        }
        let root = try RestrictedUnpickler.load(try archive.data(pickle))
        guard case .dict(var dict) = root else { throw WeightsError.malformed("checkpoint does not hold a dict of tensors") }
        for key in nestedKeys {
            if let nested = dict.items.first(where: { if case .string(key) = $0.key { true } else { false } }),
               case .dict(let inner) = nested.value {
                dict = inner
                break
            }
        }
        var tensors: [String: Tensor] = [:]
        for (key, value) in dict.items {
            guard case .string(var name) = key, case .tensor(let ref) = value else { continue }
            if name.hasPrefix("module.") { name.removeFirst("module.".count) }
            tensors[name] = try tensor(ref, name: name, archive: archive, prefix: prefix, file: file)
        }
        return Checkpoint(format: .pytorch, tensors: tensors, metadata: [:], storage: file)
    }

    private static func tensor(_ ref: RestrictedUnpickler.TensorRef, name: String, archive: ZipArchive,
                               prefix: String, file: MappedFile) throws -> Tensor {
        guard let entry = archive.entries[prefix + "data/" + ref.storage.key] else {
            throw WeightsError.malformed("tensor \(name): storage \(ref.storage.key) missing from the archive")
        }
        let bytes = try archive.data(entry)
        let elementSize = ref.storage.dtype.byteSize
        guard ref.storage.count <= bytes.count / elementSize else {
            throw WeightsError.malformed("tensor \(name): storage holds \(bytes.count) bytes, fewer than \(ref.storage.count) elements")
        }
        // The furthest element the view reaches must lie inside the storage.
        var last = ref.offset
        for (size, stride) in zip(ref.shape, ref.strides) where size > 0 {
            let (reach, overflow) = (size - 1).multipliedReportingOverflow(by: stride)
            let (sum, past) = last.addingReportingOverflow(reach)
            guard !overflow, !past else { throw WeightsError.malformed("tensor \(name): strides overflow") }
            last = sum
        }
        if ref.shape.contains(0) { last = ref.offset - 1 }
        // A weight never repeats elements: a view with more elements than its storage (stride 0,
        // overlapping strides) is refused, which also bounds every count by the file's size.
        var elements = 1
        for size in ref.shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: size)
            guard !overflow, product <= max(ref.storage.count, 1) else {
                throw WeightsError.malformed("tensor \(name): a view of shape \(ref.shape) repeats elements of its storage of \(ref.storage.count)")
            }
            elements = product
        }
        guard last < ref.storage.count else {
            throw WeightsError.malformed("tensor \(name): view reaches element \(last) of a storage of \(ref.storage.count)")
        }
        let base = bytes.baseAddress.map { $0 + ref.offset * elementSize } ?? UnsafeRawPointer(bitPattern: 64)!
        return Tensor(dtype: ref.storage.dtype, shape: ref.shape, strides: ref.strides, base: base, owner: file)
    }
}
