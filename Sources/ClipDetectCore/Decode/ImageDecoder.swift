import Foundation

/// Decodes image bytes to RGB as `PIL.Image.open(f).convert('RGB')` does: the format is told
/// from the bytes, never the name; alpha is dropped, not composited; no EXIF orientation.
public enum ImageDecoder {
    /// `applyOrientation` turns the image upright by its EXIF orientation (off by default, as the reference).
    public static func decode(path: String, limits: DecodeLimits = DecodeLimits(), applyOrientation: Bool = false) throws -> RGBImage {
        try decode(read(path: path, limits: limits), path: path, limits: limits, applyOrientation: applyOrientation)
    }

    /// The file's bytes, refused above `limits.maxBytes` before reading.
    public static func read(path: String, limits: DecodeLimits = DecodeLimits()) throws -> Data {
        try ImageFileError.naming(path) { try Files.read(path, limit: limits.maxBytes) }
    }

    /// Decodes bytes read from `path`, naming the file in any error.
    public static func decode(_ data: Data, path: String, limits: DecodeLimits = DecodeLimits(), applyOrientation: Bool = false) throws -> RGBImage {
        try ImageFileError.naming(path) { try decode(data, limits: limits, applyOrientation: applyOrientation) }
    }

    /// Decodes in-memory bytes; `limits` are checked before any pixel is allocated.
    public static func decode(_ data: Data, limits: DecodeLimits = DecodeLimits(), applyOrientation: Bool = false) throws -> RGBImage {
        guard !data.isEmpty else { throw ImageError.empty }
        guard data.count <= limits.maxBytes else { throw ImageError.tooLarge("\(data.count) bytes > \(limits.maxBytes)") }
        return try data.withUnsafeBytes { bytes in
            guard let format = ImageFormat.sniff(bytes) else { throw ImageError.notAnImage }
            let image = try decode(bytes, format: format, limits: limits)
            guard applyOrientation, let orientation = Orientation.read(bytes, format: format) else { return image }
            return Orientation.apply(orientation, to: image)
        }
    }

    private static func decode(_ bytes: UnsafeRawBufferPointer, format: ImageFormat, limits: DecodeLimits) throws -> RGBImage {
        switch format {
        case .jpeg: return try JPEGDecoder.decode(bytes, limits: limits)
        case .png: return try PNGDecoder.decode(bytes, limits: limits)
        case .webp: return try WebPDecoder.decode(bytes, limits: limits)
        case .gif: return try GIFDecoder.decode(bytes, limits: limits)
        case .bmp: return try BMPDecoder.decode(bytes, limits: limits)
        case .tiff: return try TIFFDecoder.decode(bytes, limits: limits)
        }
    }

    static func checkPixels(width: Int, height: Int, limits: DecodeLimits) throws {
        guard width > 0, height > 0 else { throw ImageError.corrupt("image has size \(width)×\(height)") }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= limits.maxPixels else {
            throw ImageError.tooLarge("\(width)×\(height) pixels > \(limits.maxPixels) (a possible decompression bomb)")
        }
    }
}
