import CTurboJPEG

/// JPEG through libjpeg-turbo with Pillow's settings: accurate integer IDCT, fancy upsampling.
enum JPEGDecoder {
    static func decode(_ bytes: UnsafeRawBufferPointer, limits: DecodeLimits) throws -> RGBImage {
        guard let handle = tjInitDecompress() else { throw ImageError.corrupt("cannot start the JPEG decoder") }
        defer { tjDestroy(handle) }
        let source = bytes.bindMemory(to: UInt8.self).baseAddress!
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, source, UInt(bytes.count), &width, &height, &subsampling, &colorspace) == 0 else {
            throw ImageError.corrupt(message(handle))
        }
        try ImageDecoder.checkPixels(width: Int(width), height: Int(height), limits: limits)
        let w = Int(width), h = Int(height)
        let cmyk = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
        let gray = colorspace == Int32(TJCS_GRAY.rawValue)
        let format = cmyk ? TJPF_CMYK : gray ? TJPF_GRAY : TJPF_RGB
        let channels = cmyk ? 4 : gray ? 1 : 3
        var raw = [UInt8](repeating: 0, count: w * h * channels)
        let status = raw.withUnsafeMutableBufferPointer { out in
            tjDecompress2(handle, source, UInt(bytes.count), out.baseAddress, width, 0, height,
                          Int32(format.rawValue), TJFLAG_ACCURATEDCT)
        }
        if status != 0 {
            // A warning leaves a whole image, except when data ran out (Pillow: "image file is truncated").
            let text = message(handle)
            if tjGetErrorCode(handle) != Int32(TJERR_WARNING.rawValue) || text.contains("Premature end") {
                throw ImageError.corrupt(text)
            }
        }
        if gray { return RGBImage(width: w, height: h, gray: raw) }
        if cmyk { return RGBImage(width: w, height: h, cmyk: raw, inverted: hasAdobeMarker(bytes)) }
        return RGBImage(width: w, height: h, pixels: raw)
    }

    private static func message(_ handle: tjhandle) -> String {
        String(cString: tjGetErrorStr2(handle))
    }

    /// Photoshop writes CMYK inverted and marks it with an APP14 "Adobe" segment (Pillow reads it as "CMYK;I").
    static func hasAdobeMarker(_ bytes: UnsafeRawBufferPointer) -> Bool {
        segment(0xEE, startingWith: "Adobe", in: bytes) != nil
    }

    /// The payload after `prefix` of the first segment with this marker before the image data.
    static func segment(_ marker: UInt8, startingWith prefix: String, in bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let tag = Array(prefix.utf8)
        var at = 2
        while at + 4 <= bytes.count, bytes[at] == 0xFF {
            let found = bytes[at + 1]
            if found == 0xDA || found == 0xD9 { return nil }
            let length = Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
            let start = at + 4, end = min(at + 2 + length, bytes.count)
            if found == marker, end - start >= tag.count, Array(bytes[start..<(start + tag.count)]) == tag {
                return UnsafeRawBufferPointer(rebasing: bytes[(start + tag.count)..<end])
            }
            at += 2 + length
        }
        return nil
    }
}
