import Foundation

/// Writes f32 tensors as a safetensors file (heads, exported features, test checkpoints).
package enum SafeTensorsWriter {
    package struct Entry: Sendable {
        package let shape: [Int]
        package let values: [Float]
        package init(shape: [Int], values: [Float]) {
            self.shape = shape
            self.values = values
        }
    }

    package static func data(_ tensors: [String: Entry], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let entry = tensors[name]!
            guard entry.shape.reduce(1, *) == entry.values.count else {
                throw WeightsError.malformed("tensor \(name): \(entry.values.count) values for shape \(entry.shape)")
            }
            let bytes = entry.values.count * 4
            header[name] = ["dtype": "F32", "shape": entry.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header so the data that follows is 8-byte aligned, as the format recommends.
        while (8 + json.count) % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            tensors[name]!.values.withUnsafeBytes { raw in
                for value in raw.bindMemory(to: Float.self) {
                    withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) }
                }
            }
        }
        return out
    }

    /// Writes atomically: a reader never sees half a file.
    package static func write(_ tensors: [String: Entry], metadata: [String: String] = [:], to path: String) throws {
        try Files.write(data(tensors, metadata: metadata), to: path)
    }
}
