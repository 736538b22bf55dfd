import Foundation

/// The tensors of one weights file, whatever its format, read in place from a memory map.
package struct Checkpoint: Sendable {
    package enum Format: String, Sendable { case safetensors, pytorch }

    package let format: Format
    package let tensors: [String: Tensor]
    /// safetensors `__metadata__`; empty for PyTorch files.
    package let metadata: [String: String]
    package let storage: MappedFile

    package var path: String { storage.path }

    /// Opens a checkpoint, telling the format from its bytes, never from its name.
    package static func open(_ path: String) throws -> Checkpoint {
        do { return try read(MappedFile(path: path)) } catch let error as WeightsError {
            throw CheckpointError(path: path, underlying: error)
        }
    }

    /// Reads a checkpoint held in memory (an upload, a fuzzer's input); the bytes are copied once.
    package static func read(_ data: Data, name: String = "<memory>") throws -> Checkpoint {
        do { return try read(MappedFile(copying: data, name: name)) } catch let error as WeightsError {
            throw CheckpointError(path: name, underlying: error)
        }
    }

    private static func read(_ file: MappedFile) throws -> Checkpoint {
        do {
            let bytes = file.bytes
            if ZipArchive.looksLike(bytes) {
                do { return try TorchCheckpoint.read(file) } catch let overrun as ByteReader.Overrun { throw WeightsError.malformed("\(overrun)") }
            }
            if SafeTensors.looksLike(bytes) { return try SafeTensors.read(file) }
            if TorchCheckpoint.looksLikeLegacy(bytes) {
                throw WeightsError.legacyPyTorch
            }
            if let (sha256, size) = lfsPointer(bytes) { throw WeightsError.lfsPointer(sha256: sha256, size: size) }
        }
        throw WeightsError.unknownFormat
    }

    /// The object a Git LFS pointer names: `version https://git-lfs.github.com/spec/v1`, then
    /// `oid sha256:<64 hex>` and `size <bytes>` lines (git-lfs's spec; pointers are under 1 KiB).
    static func lfsPointer(_ bytes: UnsafeRawBufferPointer) -> (sha256: String, size: Int)? {
        guard bytes.count < 1024 else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix("version https://git-lfs.github.com/spec/") else { return nil }
        var sha256: String?, size: Int?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("oid sha256:") {
                let hex = line.dropFirst("oid sha256:".count)
                if hex.count == 64, hex.allSatisfy(\.isHexDigit) { sha256 = hex.lowercased() }
            } else if line.hasPrefix("size ") {
                size = Int(line.dropFirst(5)).flatMap { $0 >= 0 ? $0 : nil }
            }
        }
        guard let sha256, let size else { return nil }
        return (sha256, size)
    }

    /// True when the tensor reads the checkpoint's mapped bytes in place.
    package func isMapped(_ array: FloatArray) -> Bool { array.isView(of: storage) }
}

/// A checkpoint error that names the file.
public struct CheckpointError: Error, CustomStringConvertible {
    /// The checkpoint file, as given.
    public let path: String
    /// What was wrong with it.
    public let underlying: WeightsError
    public var description: String { "\(PathName.display(path)): \(underlying)" }
}

extension CheckpointError: ClassifiedError { public var kind: FailureKind { underlying.kind } }
