import CPNG
import Foundation

/// Lossless 8-bit RGB PNG through libpng's simplified API (so a user can look at what the encoder sees).
package enum PNGEncoder {
    package static func data(_ image: RGBImage) throws -> Data {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = UInt32(PNG_FORMAT_RGB)
        defer { png_image_free(&png) }
        var size = 0
        var out = Data()
        let ok = image.pixels.withUnsafeBufferPointer { pixels -> Int32 in
            // First the size, then the bytes.
            guard png_image_write_to_memory(&png, nil, &size, 0, pixels.baseAddress, Int32(image.width * 3), nil) != 0 else { return 0 }
            out = Data(count: size)
            return out.withUnsafeMutableBytes { png_image_write_to_memory(&png, $0.baseAddress, &size, 0, pixels.baseAddress, Int32(image.width * 3), nil) }
        }
        guard ok != 0 else {
            let message = withUnsafeBytes(of: &png.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw ImageError.corrupt("cannot encode PNG: \(message)")
        }
        return out.prefix(size)
    }

    package static func write(_ image: RGBImage, to path: String) throws {
        try Files.write(data(image), to: path)
    }
}
