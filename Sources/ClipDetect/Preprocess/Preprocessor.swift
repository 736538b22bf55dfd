/// How an image becomes the encoder's input.
public enum InputView: String, Sendable, CaseIterable, Codable {
    /// Short side resized to the input size (bicubic), then the centre crop: the paper's detector.
    case resizeCrop = "resize-crop"
    /// The centre crop at the input size without resizing, a smaller image padded with zeros as
    /// torchvision pads it: UnivFD's and RINE's test-time view.
    case crop
}

/// torchvision's `Resize(size, BICUBIC)`, `CenterCrop(size)`, `ToTensor()`, `Normalize(mean, std)`
/// on a PIL image, exactly; sizes, mean and std come from the model description.
public struct Preprocessor: Sendable {
    public let size: Int
    public let mean: [Float]
    public let std: [Float]

    /// The largest model input side accepted (CLIP towers use 224 to 448).
    public static let maxSize = 4096

    public init(size: Int, mean: [Float] = ModelDescription.clipMean, std: [Float] = ModelDescription.clipStd) {
        precondition((1...Self.maxSize).contains(size), "model input size \(size) outside 1…\(Self.maxSize)")
        self.size = size
        self.mean = mean
        self.std = std
    }

    public init(_ description: ModelDescription) {
        self.init(size: description.imageSize, mean: description.mean, std: description.std)
    }

    /// Short side to `size`, the long side `int(size * long / short)` (truncated, as torchvision).
    public func resizedSize(of image: RGBImage) -> (width: Int, height: Int) {
        let short = min(image.width, image.height), long = max(image.width, image.height)
        let newLong = Int(Double(size * long) / Double(short))
        return image.width <= image.height ? (size, newLong) : (newLong, size)
    }

    /// The whole resized image, as torchvision's Resize returns it. Extreme aspect ratios make it
    /// huge (1×5000 → 224×1,120,000), so it is refused above `limits.maxPixels`.
    public func resized(_ image: RGBImage, limits: DecodeLimits = DecodeLimits()) throws -> RGBImage {
        let (width, height) = resizedSize(of: image)
        guard width * height <= limits.maxPixels else {
            throw ImageError.tooLarge("resized to \(width)×\(height) pixels > \(limits.maxPixels)")
        }
        return PillowResample.resize(image, width: width, height: height)
    }

    /// Top and left offsets of the centre crop, rounded half to even as Python's round. A side
    /// shorter than the crop is padded first, torchvision's way: (size - extent) // 2 before it.
    func cropOrigin(width: Int, height: Int) -> (top: Int, left: Int) {
        func offset(_ extent: Int) -> Int {
            extent < size ? -((size - extent) / 2) : Int((Double(extent - size) / 2).rounded(.toNearestOrEven))
        }
        return (offset(height), offset(width))
    }

    /// The centre `size`×`size`; zero padding where the image is smaller, as torchvision pads.
    public func cropped(_ image: RGBImage) -> RGBImage {
        let (top, left) = cropOrigin(width: image.width, height: image.height)
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size where (0..<image.height).contains(top + y) {
            for x in 0..<size where (0..<image.width).contains(left + x) {
                let from = ((top + y) * image.width + left + x) * 3, to = (y * size + x) * 3
                pixels[to] = image.pixels[from]
                pixels[to + 1] = image.pixels[from + 1]
                pixels[to + 2] = image.pixels[from + 2]
            }
        }
        return RGBImage(width: size, height: size, pixels: pixels)
    }

    /// Resize then centre crop, computing only the cropped pixels (the same values, bounded cost).
    public func resizedAndCropped(_ image: RGBImage) -> RGBImage {
        let (width, height) = resizedSize(of: image)
        let (top, left) = cropOrigin(width: width, height: height)
        guard top >= 0, left >= 0, top + size <= height, left + size <= width else {
            return cropped(PillowResample.resize(image, width: width, height: height))
        }
        return PillowResample.resize(image, width: width, height: height,
                                     columns: left..<(left + size), rows: top..<(top + size))
    }

    /// Channel-first floats: (v / 255 - mean) / std.
    public func normalized(_ image: RGBImage) -> [Float] {
        let plane = image.width * image.height
        var out = [Float](repeating: 0, count: 3 * plane)
        for c in 0..<3 {
            let m = mean[c], s = std[c]
            for i in 0..<plane { out[c * plane + i] = (Float(image.pixels[i * 3 + c]) / 255 - m) / s }
        }
        return out
    }

    /// The encoder's input for one decoded image.
    public func callAsFunction(_ image: RGBImage, view: InputView = .resizeCrop) -> [Float] {
        switch view {
        case .resizeCrop: normalized(resizedAndCropped(image))
        case .crop: normalized(cropped(image))
        }
    }
}
