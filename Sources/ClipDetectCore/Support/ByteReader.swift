/// Bounds-checked little-endian reads. A read past the end throws `Overrun`, which each format
/// turns into its own error.
struct ByteReader {
    struct Overrun: Error, CustomStringConvertible {
        let description: String
    }

    let bytes: UnsafeRawBufferPointer
    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func slice(_ at: Int, _ count: Int) throws -> UnsafeRawBufferPointer {
        guard at >= 0, count >= 0, at <= bytes.count, count <= bytes.count - at else {
            throw Overrun(description: "read of \(count) bytes at \(at) past the end (\(bytes.count) bytes)")
        }
        return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + count)])
    }
    func u16(_ at: Int) throws -> UInt16 { try slice(at, 2).loadUnaligned(as: UInt16.self).littleEndian }
    func u32(_ at: Int) throws -> UInt32 { try slice(at, 4).loadUnaligned(as: UInt32.self).littleEndian }
    func int64(_ at: Int) throws -> Int {
        let value = try slice(at, 8).loadUnaligned(as: UInt64.self).littleEndian
        guard value <= UInt64(Int.max) else { throw Overrun(description: "64-bit field out of range at \(at)") }
        return Int(value)
    }
}
