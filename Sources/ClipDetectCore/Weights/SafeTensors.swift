import Foundation

/// Reads a safetensors file by mapping it; every header field is validated before use.
enum SafeTensors {
    /// Headers larger than this are refused (real ones are a few hundred KiB).
    static let maxHeaderBytes = 100 << 20

    static func looksLike(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= 10 else { return false }
        let length = bytes.loadUnaligned(as: UInt64.self).littleEndian
        return length < UInt64(bytes.count) && bytes[8] == UInt8(ascii: "{")
    }

    static func read(_ file: MappedFile) throws -> Checkpoint {
        let bytes = file.bytes
        guard bytes.count >= 8 else { throw WeightsError.malformed("safetensors file shorter than its 8-byte header length") }
        let declared = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard declared <= UInt64(min(maxHeaderBytes, bytes.count - 8)) else {
            throw WeightsError.malformed("safetensors header length \(declared) exceeds the file (\(bytes.count) bytes)")
        }
        let headerLength = Int(declared)
        let headerData = Data(bytes[8..<(8 + headerLength)])
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerData) } catch {
            throw WeightsError.malformed("safetensors header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw WeightsError.malformed("safetensors header is not a JSON object") }

        let dataStart = 8 + headerLength
        let dataSize = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var tensors: [String: Tensor] = [:]
        var ranges: [(begin: Int, end: Int, name: String)] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let entries = value as? [String: Any] else { throw WeightsError.malformed("__metadata__ is not an object") }
                for (key, entry) in entries {
                    guard let text = entry as? String else { throw WeightsError.malformed("__metadata__[\(key)] is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard let entry = value as? [String: Any] else { throw WeightsError.malformed("tensor \(name): entry is not an object") }
            guard let dtypeName = entry["dtype"] as? String else { throw WeightsError.malformed("tensor \(name): missing dtype") }
            guard let dtype = DType(rawValue: dtypeName) else { throw WeightsError.malformed("tensor \(name): unknown dtype \(dtypeName)") }
            let shape = try integers(entry["shape"], field: "shape", tensor: name)
            let offsets = try integers(entry["data_offsets"], field: "data_offsets", tensor: name)
            guard offsets.count == 2 else { throw WeightsError.malformed("tensor \(name): data_offsets must have two entries") }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin <= end, end <= dataSize else {
                throw WeightsError.malformed("tensor \(name): data_offsets [\(begin), \(end)] outside the data (\(dataSize) bytes)")
            }
            var expected = dtype.byteSize
            for dim in shape {
                let (product, overflow) = expected.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw WeightsError.malformed("tensor \(name): shape \(shape) overflows") }
                expected = product
            }
            guard expected == end - begin else {
                throw WeightsError.malformed("tensor \(name): \(end - begin) bytes for \(dtypeName) \(shape), expected \(expected)")
            }
            ranges.append((begin, end, name))
            let base = bytes.baseAddress.map { UnsafeRawPointer($0) + dataStart + begin } ?? UnsafeRawPointer(bitPattern: 64)!
            tensors[name] = Tensor(dtype: dtype, shape: shape, base: base, owner: file)
        }
        ranges.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for (previous, next) in zip(ranges, ranges.dropFirst()) where next.begin < previous.end {
            throw WeightsError.malformed("tensors \(previous.name) and \(next.name) overlap")
        }
        return Checkpoint(format: .safetensors, tensors: tensors, metadata: metadata, storage: file)
    }

    private static func integers(_ value: Any?, field: String, tensor: String) throws -> [Int] {
        guard let list = value as? [Any] else { throw WeightsError.malformed("tensor \(tensor): \(field) is not a list") }
        return try list.map { item in
            guard let number = item as? NSNumber else {
                throw WeightsError.malformed("tensor \(tensor): \(field) holds \(item), not an integer")
            }
            let value = number.doubleValue
            guard value >= 0, value < 0x1p62, value == value.rounded() else {
                throw WeightsError.malformed("tensor \(tensor): \(field) holds \(value), not a non-negative integer")
            }
            let exact = Int(number.int64Value)
            return exact
        }
    }
}
