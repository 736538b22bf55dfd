/// The entries of a zip archive read from its central directory (zip64 included).
/// PyTorch stores checkpoint entries uncompressed, so only stored entries can be opened.
struct ZipArchive {
    struct Entry {
        let name: String
        let method: UInt16
        let size: Int
        let dataOffset: Int
    }

    let bytes: UnsafeRawBufferPointer
    let entries: [String: Entry]

    static func looksLike(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes.loadUnaligned(as: UInt32.self).littleEndian == 0x0403_4b50
    }

    init(_ bytes: UnsafeRawBufferPointer) throws {
        self.bytes = bytes
        let reader = ByteReader(bytes)
        // End of central directory: 22 bytes plus a comment of up to 65535.
        guard bytes.count >= 22 else { throw WeightsError.malformed("zip archive too short") }
        var eocd = -1
        var at = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 0xFFFF)
        while at >= lowest {
            if try reader.u32(at) == 0x0605_4b50 { eocd = at; break }
            at -= 1
        }
        guard eocd >= 0 else { throw WeightsError.malformed("zip end-of-central-directory record not found") }
        var count = Int(try reader.u16(eocd + 10))
        var directorySize = Int(try reader.u32(eocd + 12))
        var directoryOffset = Int(try reader.u32(eocd + 16))
        if eocd >= 20, try reader.u32(eocd - 20) == 0x0706_4b50 {
            let zip64 = try reader.int64(eocd - 20 + 8)
            guard try reader.u32(zip64) == 0x0606_4b50 else { throw WeightsError.malformed("zip64 end-of-central-directory record not found") }
            count = try reader.int64(zip64 + 32)
            directorySize = try reader.int64(zip64 + 40)
            directoryOffset = try reader.int64(zip64 + 48)
        }
        guard directoryOffset <= bytes.count, directorySize <= bytes.count - directoryOffset else {
            throw WeightsError.malformed("zip central directory outside the file")
        }
        var entries: [String: Entry] = [:]
        var cursor = directoryOffset
        for _ in 0..<count {
            guard try reader.u32(cursor) == 0x0201_4b50 else { throw WeightsError.malformed("zip central directory entry damaged") }
            let method = try reader.u16(cursor + 10)
            var compressed = Int(try reader.u32(cursor + 20))
            var size = Int(try reader.u32(cursor + 24))
            let nameLength = Int(try reader.u16(cursor + 28))
            let extraLength = Int(try reader.u16(cursor + 30))
            let commentLength = Int(try reader.u16(cursor + 32))
            var localOffset = Int(try reader.u32(cursor + 42))
            let name = String(decoding: try reader.slice(cursor + 46, nameLength), as: UTF8.self)
            // zip64 extended information replaces the fields that read 0xFFFFFFFF, in this order.
            var extra = cursor + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = try reader.u16(extra)
                let length = Int(try reader.u16(extra + 2))
                if id == 0x0001 {
                    var field = extra + 4
                    if size == 0xFFFF_FFFF { size = try reader.int64(field); field += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = try reader.int64(field); field += 8 }
                    if localOffset == 0xFFFF_FFFF { localOffset = try reader.int64(field) }
                }
                extra += 4 + length
            }
            guard try reader.u32(localOffset) == 0x0403_4b50 else { throw WeightsError.malformed("zip local header of \(name) damaged") }
            let dataOffset = localOffset + 30 + Int(try reader.u16(localOffset + 26)) + Int(try reader.u16(localOffset + 28))
            guard dataOffset <= bytes.count, compressed <= bytes.count - dataOffset else {
                throw WeightsError.malformed("zip entry \(name) extends past the end of the file")
            }
            if method == 0, compressed != size { throw WeightsError.malformed("zip entry \(name): stored sizes disagree") }
            entries[name] = Entry(name: name, method: method, size: size, dataOffset: dataOffset)
            cursor += 46 + nameLength + extraLength + commentLength
        }
        self.entries = entries
    }

    /// The bytes of a stored (uncompressed) entry, in place.
    func data(_ entry: Entry) throws -> UnsafeRawBufferPointer {
        guard entry.method == 0 else {
            throw WeightsError.malformed("zip entry \(entry.name) is compressed (method \(entry.method)); PyTorch writes stored entries")
        }
        return UnsafeRawBufferPointer(rebasing: bytes[entry.dataOffset..<(entry.dataOffset + entry.size)])
    }
}
