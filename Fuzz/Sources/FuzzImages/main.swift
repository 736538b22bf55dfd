import ClipDetect
import FuzzSupport

/// Every image decoder through ImageDecoder, then the encoder's preprocessing at a small size in
/// every view (ten-crop may refuse a small image; it must not trap); EXIF orientation on every other
/// input. Limits are small so a bomb fails fast.
runFuzzer { bytes in
    let limits = DecodeLimits(maxPixels: 1 << 22, maxBytes: 1 << 22)
    guard let image = try? ImageDecoder.decode(bytes, limits: limits, applyOrientation: bytes.count % 2 == 0) else { return }
    let preprocess = Preprocessor(size: 16)
    for view in InputView.allCases { _ = try? preprocess(image, view: view) }
}
