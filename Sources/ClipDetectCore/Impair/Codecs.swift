import CTurboJPEG
import CWebP
import Foundation

/// Lossy re-encoding with the codecs users' images go through.
public enum LossyEncoder {
    /// JPEG as Pillow's `save(format='JPEG', quality=q)` writes it: libjpeg's scaled standard tables
    /// (jpeg_set_quality, baseline), accurate integer DCT, 4:2:0 unless told otherwise.
    public static func jpeg(_ image: RGBImage, quality: Int, subsampling: JPEGSubsampling = .s420) throws -> Data {
        guard let handle = tjInitCompress() else { throw ImageError.corrupt("cannot start the JPEG encoder") }
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            tjCompress2(handle, pixels.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(TJPF_RGB.rawValue),
                        &buffer, &size, subsampling.turbo, Int32(min(max(quality, 1), 100)), TJFLAG_ACCURATEDCT)
        }
        defer { tjFree(buffer) }
        guard status == 0, let buffer else { throw ImageError.corrupt("JPEG encoding failed: \(String(cString: tjGetErrorStr2(handle)))") }
        return Data(bytes: buffer, count: Int(size))
    }

    /// Lossy WebP at a quality factor (libwebp's default preset, method 4).
    public static func webp(_ image: RGBImage, quality: Int) throws -> Data {
        var output: UnsafeMutablePointer<UInt8>? = nil
        let size = image.pixels.withUnsafeBufferPointer { pixels in
            WebPEncodeRGB(pixels.baseAddress, Int32(image.width), Int32(image.height), Int32(image.width * 3),
                          Float(min(max(quality, 0), 100)), &output)
        }
        defer { WebPFree(output) }
        guard size > 0, let output else { throw ImageError.corrupt("WebP encoding failed") }
        return Data(bytes: output, count: size)
    }
}

/// JPEG chroma subsampling, named as Pillow's `subsampling` is written: 4:4:4 (none), 4:2:2, 4:2:0.
public enum JPEGSubsampling: String, Sendable, CaseIterable {
    case s444 = "444", s422 = "422", s420 = "420"

    var turbo: Int32 {
        switch self {
        case .s444: Int32(TJSAMP_444.rawValue)
        case .s422: Int32(TJSAMP_422.rawValue)
        case .s420: Int32(TJSAMP_420.rawValue)
        }
    }
}
