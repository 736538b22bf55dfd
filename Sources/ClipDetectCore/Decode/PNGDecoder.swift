import CPNG

/// PNG through libpng, reproducing Pillow's modes: 16-bit samples keep their high byte,
/// low bit depths expand to 0…255, palettes expand, alpha and tRNS are dropped.
enum PNGDecoder {
    static func decode(_ bytes: UnsafeRawBufferPointer, limits: DecodeLimits) throws -> RGBImage {
        // libpng keeps the source pointer between calls, so it lives on the heap.
        let source = UnsafeMutablePointer<cd_png_source>.allocate(capacity: 1)
        source.initialize(to: cd_png_source())
        source.pointee.data = bytes.bindMemory(to: UInt8.self).baseAddress
        source.pointee.size = bytes.count
        defer { source.deallocate() }
        guard let png = cd_png_create(source) else { throw ImageError.corrupt("cannot start the PNG decoder") }
        var owned: png_structp? = png
        var info = png_create_info_struct(png)
        defer { png_destroy_read_struct(&owned, &info, nil) }
        func failure() -> ImageError {
            let text = withUnsafeBytes(of: &source.pointee.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            return .corrupt(text.isEmpty ? "PNG decoding failed" : text)
        }
        guard cd_png_read_info(png, info, source) == 0 else { throw failure() }
        let width = Int(png_get_image_width(png, info)), height = Int(png_get_image_height(png, info))
        try ImageDecoder.checkPixels(width: width, height: height, limits: limits)
        let colorType = Int32(png_get_color_type(png, info))
        let depth = Int32(png_get_bit_depth(png, info))
        // Pillow opens 16-bit gray as "I;16", whose RGB conversion saturates at 255 instead of
        // keeping the high byte; every other 16-bit mode keeps the high byte.
        let saturatingGray = colorType == PNG_COLOR_TYPE_GRAY && depth == 16
        if depth == 16, !saturatingGray { png_set_strip_16(png) }
        if colorType == PNG_COLOR_TYPE_PALETTE { png_set_palette_to_rgb(png) }
        if colorType == PNG_COLOR_TYPE_GRAY || colorType == PNG_COLOR_TYPE_GRAY_ALPHA {
            png_set_expand_gray_1_2_4_to_8(png)
            if !saturatingGray { png_set_gray_to_rgb(png) }
        }
        // Expanding a palette also turns tRNS into alpha: drop it with the real alpha channels.
        if colorType & PNG_COLOR_MASK_ALPHA != 0 || png_get_valid(png, info, PNG_INFO_tRNS) != 0 { png_set_strip_alpha(png) }
        _ = png_set_interlace_handling(png)
        let rowBytes = saturatingGray ? width * 2 : width * 3
        var raw = [UInt8](repeating: 0, count: height * rowBytes)
        let status = raw.withUnsafeMutableBufferPointer { out -> Int32 in
            var rows = (0..<height).map { Optional(out.baseAddress! + $0 * rowBytes) }
            return rows.withUnsafeMutableBufferPointer { cd_png_read_image(png, info, $0.baseAddress) }
        }
        guard status == 0 else { throw failure() }
        guard saturatingGray else { return RGBImage(width: width, height: height, pixels: raw) }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            let value = raw[2 * i] == 0 ? raw[2 * i + 1] : 255
            pixels[3 * i] = value
            pixels[3 * i + 1] = value
            pixels[3 * i + 2] = value
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
