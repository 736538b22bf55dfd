import CPNG
import Foundation

/// Lossless 8-bit RGB PNG through libpng's simplified API (so a user can look at what the encoder sees).
public enum PNGEncoder {
    public static func write(_ image: RGBImage, to path: String) throws {
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = UInt32(PNG_FORMAT_RGB)
        let ok = image.pixels.withUnsafeBufferPointer { pixels in
            png_image_write_to_file(&png, path, 0, pixels.baseAddress, Int32(image.width * 3), nil)
        }
        defer { png_image_free(&png) }
        guard ok != 0 else {
            let message = withUnsafeBytes(of: &png.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw ImageFileError(path: path, underlying: .unreadable("cannot write PNG: \(message)"))
        }
    }
}
