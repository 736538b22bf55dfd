import CWebP

/// WebP (lossy, lossless, alpha, animated) through libwebp's animation decoder, as Pillow opens
/// every WebP: the first frame composed on its canvas, RGBA, alpha then dropped.
enum WebPDecoder {
    static func decode(_ bytes: UnsafeRawBufferPointer, limits: DecodeLimits) throws -> RGBImage {
        let data = bytes.bindMemory(to: UInt8.self).baseAddress!
        var width: Int32 = 0, height: Int32 = 0
        // The canvas size is checked before the decoder allocates it.
        guard WebPGetInfo(data, bytes.count, &width, &height) != 0 else { throw ImageError.corrupt("invalid WebP header") }
        try ImageDecoder.checkPixels(width: Int(width), height: Int(height), limits: limits)
        var options = WebPAnimDecoderOptions()
        guard WebPAnimDecoderOptionsInit(&options) != 0 else { throw ImageError.corrupt("cannot start the WebP decoder") }
        options.color_mode = MODE_RGBA
        options.use_threads = 0
        var webpData = WebPData(bytes: data, size: bytes.count)
        guard let decoder = WebPAnimDecoderNew(&webpData, &options) else { throw ImageError.corrupt("invalid or truncated WebP data") }
        defer { WebPAnimDecoderDelete(decoder) }
        var info = WebPAnimInfo()
        guard WebPAnimDecoderGetInfo(decoder, &info) != 0 else { throw ImageError.corrupt("invalid WebP data") }
        try ImageDecoder.checkPixels(width: Int(info.canvas_width), height: Int(info.canvas_height), limits: limits)
        var frame: UnsafeMutablePointer<UInt8>?
        var timestamp: Int32 = 0
        guard WebPAnimDecoderGetNext(decoder, &frame, &timestamp) != 0, let rgba = frame else {
            throw ImageError.corrupt("WebP frame could not be decoded (truncated or corrupt)")
        }
        let w = Int(info.canvas_width), h = Int(info.canvas_height)
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) {
            pixels[3 * i] = rgba[4 * i]
            pixels[3 * i + 1] = rgba[4 * i + 1]
            pixels[3 * i + 2] = rgba[4 * i + 2]
        }
        return RGBImage(width: w, height: h, pixels: pixels)
    }
}
