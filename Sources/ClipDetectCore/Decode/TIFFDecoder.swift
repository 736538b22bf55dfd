import CTIFF

/// TIFF through libtiff, for the layouts whose RGB can be shown equal to Pillow's: 8-bit gray
/// (black or white is zero), gray + alpha, RGB, RGBA, palette, CMYK, 1-bit and 16-bit gray,
/// stored contiguously, any compression libtiff decodes. Others are refused clearly.
enum TIFFDecoder {
    static func decode(_ bytes: UnsafeRawBufferPointer, limits: DecodeLimits) throws -> RGBImage {
        let source = UnsafeMutablePointer<cd_tiff_source>.allocate(capacity: 1)
        source.initialize(to: cd_tiff_source(data: bytes.bindMemory(to: UInt8.self).baseAddress, size: UInt64(bytes.count), offset: 0))
        defer { source.deallocate() }
        guard let tiff = cd_tiff_open(source, 1 << 30) else { throw ImageError.corrupt("invalid TIFF header") }
        defer { TIFFClose(tiff) }
        let width = Int(cd_tiff_get_u32(tiff, UInt32(TIFFTAG_IMAGEWIDTH))), height = Int(cd_tiff_get_u32(tiff, UInt32(TIFFTAG_IMAGELENGTH)))
        try ImageDecoder.checkPixels(width: width, height: height, limits: limits)
        let bits = Int(cd_tiff_get_u16(tiff, UInt32(TIFFTAG_BITSPERSAMPLE), 1))
        let samples = Int(cd_tiff_get_u16(tiff, UInt32(TIFFTAG_SAMPLESPERPIXEL), 1))
        let photometric = Int32(cd_tiff_get_u16(tiff, UInt32(TIFFTAG_PHOTOMETRIC), 0xFFFF))
        let planar = Int32(cd_tiff_get_u16(tiff, UInt32(TIFFTAG_PLANARCONFIG), UInt16(PLANARCONFIG_CONTIG)))
        let format = Int32(cd_tiff_get_u16(tiff, UInt32(TIFFTAG_SAMPLEFORMAT), UInt16(SAMPLEFORMAT_UINT)))
        guard planar == PLANARCONFIG_CONTIG, format == SAMPLEFORMAT_UINT, TIFFIsTiled(tiff) == 0 else {
            throw ImageError.unsupported("TIFF layout (planar \(planar), sample format \(format), tiled \(TIFFIsTiled(tiff) != 0))")
        }
        let gray = photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE
        let supported = (gray && (bits == 8 && (1...2).contains(samples) || (bits == 1 || bits == 16) && samples == 1))
            || (photometric == PHOTOMETRIC_RGB && bits == 8 && (3...4).contains(samples))
            || (photometric == PHOTOMETRIC_PALETTE && bits == 8 && samples == 1)
            || (photometric == PHOTOMETRIC_SEPARATED && bits == 8 && samples == 4)
        guard supported else {
            throw ImageError.unsupported("TIFF with photometric \(photometric), \(samples) × \(bits)-bit samples")
        }
        let rowBytes = Int(TIFFScanlineSize(tiff))
        guard rowBytes >= (width * samples * bits + 7) / 8 else { throw ImageError.corrupt("TIFF scanline size \(rowBytes)") }
        var palette: [UInt8] = []
        if photometric == PHOTOMETRIC_PALETTE {
            var red: UnsafeMutablePointer<UInt16>?, green: UnsafeMutablePointer<UInt16>?, blue: UnsafeMutablePointer<UInt16>?
            guard cd_tiff_colormap(tiff, &red, &green, &blue) != 0, let red, let green, let blue else {
                throw ImageError.corrupt("palette TIFF without a colour map")
            }
            // 16-bit map entries keep their high byte, as Pillow reads them.
            palette = (0..<256).flatMap { [UInt8(red[$0] >> 8), UInt8(green[$0] >> 8), UInt8(blue[$0] >> 8)] }
        }
        var row = [UInt8](repeating: 0, count: rowBytes)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let status = row.withUnsafeMutableBytes { TIFFReadScanline(tiff, $0.baseAddress, UInt32(y), 0) }
            guard status >= 0 else { throw ImageError.corrupt("TIFF row \(y) could not be decoded (truncated or corrupt)") }
            for x in 0..<width {
                let to = (y * width + x) * 3
                var rgb: (UInt8, UInt8, UInt8)
                switch (photometric, bits) {
                case (PHOTOMETRIC_RGB, _):
                    let at = x * samples
                    rgb = (row[at], row[at + 1], row[at + 2])
                case (PHOTOMETRIC_PALETTE, _):
                    let index = Int(row[x])
                    rgb = (palette[index * 3], palette[index * 3 + 1], palette[index * 3 + 2])
                case (PHOTOMETRIC_SEPARATED, _):
                    rgb = RGBImage.rgb(cyan: row[x * 4], magenta: row[x * 4 + 1], yellow: row[x * 4 + 2], black: row[x * 4 + 3])
                case (_, 1):
                    let bit = (row[x / 8] >> (7 - UInt8(x % 8))) & 1
                    let value: UInt8 = (bit == 1) != (photometric == PHOTOMETRIC_MINISWHITE) ? 255 : 0
                    rgb = (value, value, value)
                case (_, 16):
                    // Pillow opens 16-bit gray as I;16, whose RGB conversion saturates at 255.
                    let native = UInt16(row[2 * x]) | UInt16(row[2 * x + 1]) << 8
                    let value = UInt8(min(native, 255))
                    rgb = (value, value, value)
                default:
                    var value = row[x * samples]
                    if photometric == PHOTOMETRIC_MINISWHITE { value = 255 - value }
                    rgb = (value, value, value)
                }
                (pixels[to], pixels[to + 1], pixels[to + 2]) = rgb
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
