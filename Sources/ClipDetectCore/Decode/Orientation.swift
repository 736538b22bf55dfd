/// EXIF orientation, applied only on request: the reference ignores it, so the default does too.
/// Transforms are Pillow's `ImageOps.exif_transpose`.
enum Orientation {
    /// The orientation tag (1…8) from a JPEG APP1, PNG eXIf or WebP EXIF block; nil when absent.
    static func read(_ bytes: UnsafeRawBufferPointer, format: ImageFormat) -> Int? {
        guard let tiff = exifBlock(bytes, format: format) else { return nil }
        return orientation(inTIFF: tiff)
    }

    private static func exifBlock(_ bytes: UnsafeRawBufferPointer, format: ImageFormat) -> UnsafeRawBufferPointer? {
        func slice(_ start: Int, _ count: Int) -> UnsafeRawBufferPointer? {
            guard start >= 0, count >= 0, start <= bytes.count, count <= bytes.count - start else { return nil }
            return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + count)])
        }
        func matches(_ at: Int, _ text: String) -> Bool {
            guard let part = slice(at, text.utf8.count) else { return false }
            return Array(part) == Array(text.utf8)
        }
        switch format {
        case .jpeg:
            return JPEGDecoder.segment(0xE1, startingWith: "Exif\0\0", in: bytes)
        case .png:
            var at = 8
            while let header = slice(at, 8) {
                let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
                if matches(at + 4, "eXIf") { return slice(at + 8, length) }
                if matches(at + 4, "IDAT") || matches(at + 4, "IEND") { return nil }
                at += 12 + length
            }
        case .webp:
            var at = 12
            while let header = slice(at, 8) {
                let length = Int(header[4]) | Int(header[5]) << 8 | Int(header[6]) << 16 | Int(header[7]) << 24
                if matches(at, "EXIF") {
                    // Some writers keep the JPEG-style "Exif\0\0" prefix.
                    return matches(at + 8, "Exif\0\0") ? slice(at + 14, length - 6) : slice(at + 8, length)
                }
                at += 8 + length + (length & 1)
            }
        default: break
        }
        return nil
    }

    private static func orientation(inTIFF tiff: UnsafeRawBufferPointer) -> Int? {
        guard tiff.count >= 8 else { return nil }
        let little = tiff[0] == 0x49 && tiff[1] == 0x49
        guard little || (tiff[0] == 0x4D && tiff[1] == 0x4D) else { return nil }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= tiff.count else { return nil }
            return little ? Int(tiff[at]) | Int(tiff[at + 1]) << 8 : Int(tiff[at]) << 8 | Int(tiff[at + 1])
        }
        func u32(_ at: Int) -> Int? {
            guard let high = u16(little ? at + 2 : at), let low = u16(little ? at : at + 2) else { return nil }
            return high << 16 | low
        }
        guard let ifd = u32(4), let count = u16(ifd) else { return nil }
        for entry in 0..<count {
            let at = ifd + 2 + entry * 12
            guard let tag = u16(at) else { return nil }
            if tag == 0x0112, let value = u16(at + 8), (1...8).contains(value) { return value }
        }
        return nil
    }

    /// Pillow's exif_transpose: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 270 (clockwise 90),
    /// 7 transverse, 8 rotate 90 (counter-clockwise).
    static func apply(_ orientation: Int, to image: RGBImage) -> RGBImage {
        let w = image.width, h = image.height
        let swaps = orientation >= 5
        let (outW, outH) = swaps ? (h, w) : (w, h)
        // For each output pixel, the source pixel it takes.
        let source: (Int, Int) -> (Int, Int)
        switch orientation {
        case 2: source = { x, y in (w - 1 - x, y) }
        case 3: source = { x, y in (w - 1 - x, h - 1 - y) }
        case 4: source = { x, y in (x, h - 1 - y) }
        case 5: source = { x, y in (y, x) }
        case 6: source = { x, y in (y, h - 1 - x) }
        case 7: source = { x, y in (w - 1 - y, h - 1 - x) }
        case 8: source = { x, y in (w - 1 - y, x) }
        default: return image
        }
        var pixels = [UInt8](repeating: 0, count: outW * outH * 3)
        for y in 0..<outH {
            for x in 0..<outW {
                let (sx, sy) = source(x, y)
                let from = (sy * w + sx) * 3, to = (y * outW + x) * 3
                pixels[to] = image.pixels[from]
                pixels[to + 1] = image.pixels[from + 1]
                pixels[to + 2] = image.pixels[from + 2]
            }
        }
        return RGBImage(width: outW, height: outH, pixels: pixels)
    }
}
