/// Uncompressed BMP read natively, as Pillow reads it: 1/4/8-bit palettes, 24-bit BGR, 32-bit BGRX
/// and 32-bit bit fields with byte-aligned masks; rows bottom-up unless the height is negative.
/// RLE and 16-bit files are refused with a clear error.
enum BMPDecoder {
    static func decode(_ bytes: UnsafeRawBufferPointer, limits: DecodeLimits) throws -> RGBImage {
        let reader = ByteReader(bytes)
        func u16(_ at: Int) throws -> Int { Int(try reader.u16(at)) }
        func u32(_ at: Int) throws -> Int { Int(try reader.u32(at)) }
        func i32(_ at: Int) throws -> Int { Int(Int32(bitPattern: try reader.u32(at))) }
        do {
            var offset = try u32(10)
            let headerSize = try u32(14)
            let width: Int, height: Int, bits: Int, compression: Int, paletteEntry: Int
            var colors = 0
            if headerSize == 12 {
                (width, height, bits, compression, paletteEntry) = (try u16(18), Int(Int16(bitPattern: UInt16(try u16(20)))), try u16(24), 0, 3)
            } else if headerSize >= 40 {
                (width, height, bits, compression, paletteEntry) = (try i32(18), try i32(22), try u16(28), try u32(30), 4)
                colors = try u32(46)
            } else {
                throw ImageError.unsupported("BMP header of \(headerSize) bytes")
            }
            let rows = abs(height), topDown = height < 0
            guard width > 0 else { throw ImageError.corrupt("BMP width \(width)") }
            try ImageDecoder.checkPixels(width: width, height: rows, limits: limits)
            if colors == 0 { colors = bits <= 8 ? 1 << bits : 0 }
            if offset == 14 + headerSize, bits <= 8 { offset += paletteEntry * colors }

            // Channel byte positions within a 32-bit pixel (B, G, R order for BI_RGB).
            var shifts = [16, 8, 0]
            switch (compression, bits) {
            case (0, 1), (0, 4), (0, 8), (0, 24), (0, 32): break
            case (3, 32), (6, 32):
                // R, G, B masks follow the 40-byte fields: after the header (v3) or inside it (v4, v5).
                let masks = try (0..<3).map { try u32(54 + $0 * 4) }
                shifts = try masks.map { mask -> Int in
                    guard let shift = [0, 8, 16, 24].first(where: { mask == 0xFF << $0 }) else {
                        throw ImageError.unsupported("BMP bit-field mask \(String(mask, radix: 16))")
                    }
                    return shift
                }
            case (1, _), (2, _): throw ImageError.unsupported("RLE-compressed BMP")
            default: throw ImageError.unsupported("BMP with \(bits) bits per pixel, compression \(compression)")
            }

            var palette = [UInt8](repeating: 0, count: 256 * 3)
            if bits <= 8 {
                let count = min(colors, 256)
                let table = try reader.slice(14 + headerSize, count * paletteEntry)
                for i in 0..<count {
                    palette[i * 3] = table[i * paletteEntry + 2]
                    palette[i * 3 + 1] = table[i * paletteEntry + 1]
                    palette[i * 3 + 2] = table[i * paletteEntry]
                }
            }
            let stride = (width * bits + 31) / 32 * 4
            _ = try reader.slice(offset, stride * rows)
            var pixels = [UInt8](repeating: 0, count: width * rows * 3)
            for y in 0..<rows {
                let row = offset + (topDown ? y : rows - 1 - y) * stride
                for x in 0..<width {
                    let to = (y * width + x) * 3
                    switch bits {
                    case 24:
                        let at = row + x * 3
                        (pixels[to], pixels[to + 1], pixels[to + 2]) = (bytes[at + 2], bytes[at + 1], bytes[at])
                    case 32:
                        let value = Int(try reader.u32(row + x * 4))
                        for c in 0..<3 { pixels[to + c] = UInt8((value >> shifts[c]) & 0xFF) }
                    default:
                        let perByte = 8 / bits, byte = Int(bytes[row + x / perByte])
                        let index = (byte >> (8 - bits * (x % perByte + 1))) & ((1 << bits) - 1)
                        pixels[to] = palette[index * 3]
                        pixels[to + 1] = palette[index * 3 + 1]
                        pixels[to + 2] = palette[index * 3 + 2]
                    }
                }
            }
            return RGBImage(width: width, height: rows, pixels: pixels)
        } catch is ByteReader.Overrun {
            throw ImageError.corrupt("BMP file is truncated")
        }
    }
}
