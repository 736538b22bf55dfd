import CGIF

/// GIF through giflib: the first frame as Pillow opens it (palette mode), then palette → RGB.
enum GIFDecoder {
    /// giflib pulls bytes through a callback; this is what it reads from.
    private final class Source {
        let bytes: UnsafeRawBufferPointer
        var offset = 0
        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, limits: DecodeLimits) throws -> RGBImage {
        // The logical screen size sits at bytes 6–9: check it before giflib allocates anything.
        guard bytes.count >= 13 else { throw ImageError.corrupt("GIF header truncated") }
        let width = Int(bytes[6]) | Int(bytes[7]) << 8, height = Int(bytes[8]) | Int(bytes[9]) << 8
        try ImageDecoder.checkPixels(width: width, height: height, limits: limits)
        let source = Source(bytes)
        var error: Int32 = 0
        let opened = withExtendedLifetime(source) {
            DGifOpen(Unmanaged.passUnretained(source).toOpaque(), { file, out, count in
                guard let file, let out, let user = file.pointee.UserData else { return 0 }
                let source = Unmanaged<Source>.fromOpaque(user).takeUnretainedValue()
                let n = max(0, min(Int(count), source.bytes.count - source.offset))
                if n > 0 { UnsafeMutableRawPointer(out).copyMemory(from: source.bytes.baseAddress! + source.offset, byteCount: n) }
                source.offset += n
                return Int32(n)
            }, &error)
        }
        guard let gif = opened else { throw ImageError.corrupt("GIF: \(GIFDecoder.message(error))") }
        defer { var closeError: Int32 = 0; DGifCloseFile(gif, &closeError) }
        let status = withExtendedLifetime(source) { DGifSlurp(gif) }
        // Pillow decodes only the first frame: damage after it does not matter, damage in it does.
        guard status == GIF_OK || gif.pointee.ImageCount > 1,
              let frame = gif.pointee.SavedImages?.pointee, let raster = frame.RasterBits
        else { throw ImageError.corrupt("GIF: \(GIFDecoder.message(gif.pointee.Error))") }
        guard let map = frame.ImageDesc.ColorMap ?? gif.pointee.SColorMap else { throw ImageError.corrupt("GIF without a palette") }
        let colors = Int(map.pointee.ColorCount)
        var palette = [UInt8](repeating: 0, count: 256 * 3)
        for i in 0..<min(colors, 256) {
            let c = map.pointee.Colors[i]
            palette[i * 3] = c.Red
            palette[i * 3 + 1] = c.Green
            palette[i * 3 + 2] = c.Blue
        }
        let desc = frame.ImageDesc
        let left = Int(desc.Left), top = Int(desc.Top), w = Int(desc.Width), h = Int(desc.Height)
        // Pillow starts frame 0 from index 0, or from the transparent index when the frame has one.
        var control = GraphicsControlBlock()
        let transparent = DGifSavedExtensionToGCB(gif, 0, &control) == GIF_OK ? Int(control.TransparentColor) : -1
        let background = transparent >= 0 ? transparent : 0
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            pixels[i * 3] = palette[background * 3]
            pixels[i * 3 + 1] = palette[background * 3 + 1]
            pixels[i * 3 + 2] = palette[background * 3 + 2]
        }
        // DGifSlurp has already put interlaced rows in order.
        for y in 0..<h where top + y < height {
            for x in 0..<w where left + x < width {
                let index = Int(raster[y * w + x]), to = ((top + y) * width + left + x) * 3
                pixels[to] = palette[index * 3]
                pixels[to + 1] = palette[index * 3 + 1]
                pixels[to + 2] = palette[index * 3 + 2]
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    /// giflib's text for an error code; it has none for some codes (nil), so say the code.
    static func message(_ code: Int32) -> String {
        GifErrorString(code).map { String(cString: $0) } ?? "error \(code)"
    }
}
