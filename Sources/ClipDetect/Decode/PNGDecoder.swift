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
        if png_get_bit_depth(png, info) == 16 { png_set_strip_16(png) }
        if colorType == PNG_COLOR_TYPE_PALETTE { png_set_palette_to_rgb(png) }
        if colorType == PNG_COLOR_TYPE_GRAY || colorType == PNG_COLOR_TYPE_GRAY_ALPHA {
            png_set_expand_gray_1_2_4_to_8(png)
            png_set_gray_to_rgb(png)
        }
        if colorType & PNG_COLOR_MASK_ALPHA != 0 { png_set_strip_alpha(png) }
        _ = png_set_interlace_handling(png)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let status = pixels.withUnsafeMutableBufferPointer { out -> Int32 in
            var rows = (0..<height).map { Optional(out.baseAddress! + $0 * width * 3) }
            return rows.withUnsafeMutableBufferPointer { cd_png_read_image(png, info, $0.baseAddress) }
        }
        guard status == 0 else { throw failure() }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
