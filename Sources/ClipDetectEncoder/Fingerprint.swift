import ClipDetectCore
import Crypto

extension VisionWeights {
    /// Identifies a backbone by its weights, whatever file format or naming holds them: SHA-256 over
    /// the architecture and, per tensor in role order, its shape and a sample of its f32 values
    /// (the first and last 256 values and 256 evenly spaced ones). Costs milliseconds, not a full read.
    func fingerprint(architecture: String) -> String {
        var hash = SHA256()
        hash.update(data: Array(architecture.utf8))
        for array in all {
            withUnsafeBytes(of: UInt64(array.count).littleEndian) { hash.update(bufferPointer: $0) }
            let count = array.count, step = max(1, count / 256)
            var sample: [Float] = []
            array.withUnsafeBufferPointer { values in
                sample += values.prefix(256)
                sample += stride(from: 0, to: count, by: step).map { values[$0] }
                sample += values[(count - min(256, count))...]  // Collection slicing: Sequence.suffix would read every value
            }
            sample.withUnsafeBytes { hash.update(bufferPointer: $0) }
        }
        return hash.finalize().hex
    }
}

extension ModelDescription {
    /// A short human-readable architecture string, e.g. "vit-224/14-w1024-l24-h16-m4096-gelu-p768".
    public var architecture: String {
        "vit-\(imageSize)/\(patchSize)-w\(width)-l\(layers)-h\(heads)-m\(mlpWidth)-\(activation.rawValue)"
            + (projectionDim.map { "-p\($0)" } ?? "")
    }
}
