import ClipDetectCore
import ClipDetectEncoder
import Crypto
import Foundation

/// Heads as safetensors: `weight` [1, D], `bias` [1] (RINE's network before them under `trunk.`),
/// and the metadata as JSON under `clipdetect.head`.
extension Head {
    static let metadataKey = "clipdetect.head"

    /// Writes a head only if it would be read back (`validate`): a name a column takes, or weights
    /// that are not finite, are refused here rather than at the first use.
    public func write(to path: String) throws {
        try validate(PathName.display(path))
        let json = try JSONEncoder().encode(metadata)
        try SafeTensorsWriter.write(entries(prefix: ""), metadata: [Self.metadataKey: String(decoding: json, as: UTF8.self)], to: path)
    }

    /// SHA-256 over everything that decides this head's columns (metadata, weights, network): equal
    /// digests score and read an image alike.
    public var digest: String {
        var hash = SHA256()
        let json = JSONEncoder()
        json.outputFormatting = .sortedKeys
        hash.update(data: (try? json.encode(metadata)) ?? Data())
        for (name, entry) in entries(prefix: "").sorted(by: { $0.key < $1.key }) {
            hash.update(data: Data("\(name)\(entry.shape)".utf8))
            entry.values.withUnsafeBytes { hash.update(bufferPointer: $0) }
        }
        return hash.finalize().hex
    }

    /// This head's tensors under `prefix` (a head file: "", a head set: "heads.N.").
    func entries(prefix: String) -> [String: SafeTensorsWriter.Entry] {
        var out: [String: SafeTensorsWriter.Entry] = [prefix + "weight": .init(shape: [1, weights.count], values: weights),
                                                      prefix + "bias": .init(shape: [1], values: [bias])]
        for (name, entry) in trunk?.entries(prefix: prefix + "trunk.") ?? [:] { out[name] = entry }
        return out
    }

    /// The head whose tensors are under `prefix`, checked against its metadata; with how many tensors it took.
    static func read(_ tensors: [String: Tensor], prefix: String, metadata: Metadata, source: String) throws -> (head: Head, tensors: Int) {
        let hasTrunk = tensors.keys.contains { $0.hasPrefix(prefix + "trunk.") }
        let trunk = hasTrunk ? try RINETrunk.read(tensors, prefix: prefix + "trunk.", lastLayer: false, source: source).trunk : nil
        let width = trunk?.dim ?? metadata.feature.width
        guard let weight = tensors[prefix + "weight"], let bias = tensors[prefix + "bias"], weight.shape == [1, width], bias.shape == [1]
        else { throw HeadError.tensors(source: source, found: "weight \(tensors[prefix + "weight"]?.shape ?? []) and bias \(tensors[prefix + "bias"]?.shape ?? [])", expected: "weight [1, \(width)] and bias [1]") }
        if let trunk, trunk.inputWidth != metadata.feature.width || metadata.feature.kind != .blocks || metadata.feature.normalized
            || ![.crop, .tenCrop].contains(metadata.feature.inputView) {
            throw HeadError.rineFeature(source: source, takes: trunk.inputWidth, given: metadata.feature)
        }
        let head = Head(weights: try weight.floats().values, bias: try bias.floats()[0], metadata: metadata, trunk: trunk)
        try head.validate(source)
        return (head, 2 + (trunk?.entries(prefix: "").count ?? 0))
    }

    /// Reads and validates the head in a safetensors file: its weights and the JSON under `metadataKey`.
    public static func read(_ path: String) throws -> Head {
        try read(Checkpoint.open(path))
    }

    /// The same from a head file's bytes held in memory (a database row, an upload); `name` stands
    /// for the file in messages.
    public static func read(data: Data, name: String = "<memory>") throws -> Head {
        try read(Checkpoint.read(data, name: name))
    }

    /// A head from a checkpoint already read (a file, or bytes in memory).
    package static func read(_ file: Checkpoint) throws -> Head {
        let path = file.path
        guard let text = file.metadata[metadataKey] else { throw HeadError.noMetadata(path: path) }
        let metadata: Metadata
        do { metadata = try JSONDecoder().decode(Metadata.self, from: Data(text.utf8)) } catch {
            throw HeadError.badMetadata(path: path, reason: describeDecoding(error))
        }
        let (head, count) = try read(file.tensors, prefix: "", metadata: metadata, source: PathName.display(path))
        guard file.tensors.count == count else { throw HeadError.unnamedTensors(path: path) }
        return head
    }
}
