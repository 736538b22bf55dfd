import ClipDetect
import FuzzSupport

let small = RGBImage(width: 24, height: 17, pixels: (0..<(24 * 17 * 3)).map { UInt8(truncatingIfNeeded: $0 &* 37) })

/// The impairment-operation parser; what parses is applied to a small image.
runFuzzer { bytes in
    guard let chain = try? ImpairmentChain(condition: String(decoding: bytes, as: UTF8.self), seed: UInt64(bytes.count)) else { return }
    // Images are bounded to a quarter megapixel: larger ones are legal, only slow under the
    // sanitizer (a blur of sigma 100 costs 801 taps a pixel, twice, on each channel).
    _ = try? chain.apply(small, index: bytes.count, maxPixels: 1 << 18)
}
