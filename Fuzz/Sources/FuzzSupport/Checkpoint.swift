import ClipDetect
import Foundation

public enum FuzzCheckpoint {
    /// Opens or throws; what opens is read within its bounds and described as a tower (or refused).
    public static func run(_ bytes: Data) {
        guard let checkpoint = try? Checkpoint.read(bytes) else { return }
        for tensor in checkpoint.tensors.values where tensor.elementCount < 1 << 16 {
            if let values = try? tensor.floats() { _ = values.values }
        }
        _ = try? ModelDescription.infer(from: checkpoint, hints: ModelHints(activation: .gelu))
    }
}
