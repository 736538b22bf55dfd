/// How an image becomes the encoder's input.
public enum InputView: String, Sendable, CaseIterable, Codable {
    /// Short side resized to the input size (bicubic), then the centre crop: the paper's detector.
    case resizeCrop = "resize-crop"
    /// The centre crop at the input size without resizing, a smaller image padded with zeros as
    /// torchvision pads it: UnivFD's and RINE's test-time view.
    case crop
    /// torchvision's TenCrop: the four corners and the centre at the input size, then the same of
    /// the image flipped left to right, each scored and the scores averaged (RINE's LDM checkpoint).
    /// An image smaller than the crop is refused, as torchvision refuses it.
    case tenCrop = "ten-crop"

    /// Encoder inputs per image.
    public var crops: Int { self == .tenCrop ? 10 : 1 }
}

/// torchvision's `Resize(size, BICUBIC)`, `CenterCrop(size)`, `ToTensor()`, `Normalize(mean, std)`
/// on a PIL image, exactly; sizes, mean and std come from the model description.
public struct Preprocessor: Sendable {
    /// The model's input side, in pixels: the resize's short side and the crop's side.
    public let size: Int
    /// Per-channel (R, G, B) mean `Normalize` subtracts, on pixels in 0…1.
    public let mean: [Float]
    /// Per-channel (R, G, B) standard deviation `Normalize` divides by.
    public let std: [Float]

    /// The largest model input side accepted (`ModelDescription.maxImageSize`).
    public static let maxSize = ModelDescription.maxImageSize

    /// A preprocessor for an input side in 1…`maxSize` (traps outside it), with CLIP's mean and std by default.
    public init(size: Int, mean: [Float] = ModelDescription.clipMean, std: [Float] = ModelDescription.clipStd) {
        precondition((1...Self.maxSize).contains(size), "model input size \(size) outside 1…\(Self.maxSize)")
        self.size = size
        self.mean = mean
        self.std = std
    }

    /// The preprocessor a tower expects: its input size, mean and std.
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
        return crop(image, top: top, left: left)
    }

    /// The `size`×`size` square at (top, left); zero where it leaves the image.
    func crop(_ image: RGBImage, top: Int, left: Int) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size where (0..<image.height).contains(top + y) {
            let columns = max(0, -left)..<min(size, image.width - left)
            guard !columns.isEmpty else { continue }
            let from = ((top + y) * image.width + left + columns.lowerBound) * 3, to = (y * size + columns.lowerBound) * 3
            pixels.withUnsafeMutableBufferPointer { out in
                image.pixels.withUnsafeBufferPointer { source in
                    (out.baseAddress! + to).update(from: source.baseAddress! + from, count: columns.count * 3)
                }
            }
        }
        return RGBImage(width: size, height: size, pixels: pixels)
    }

    /// torchvision's TenCrop(size): top-left, top-right, bottom-left, bottom-right and centre, then
    /// the same five of the image flipped left to right.
    public func tenCropped(_ image: RGBImage) throws -> [RGBImage] {
        guard image.width >= size, image.height >= size else {
            throw ImageError.tooSmall("\(image.width)×\(image.height) is smaller than the \(size)×\(size) crops of the ten-crop view")
        }
        func five(_ image: RGBImage) -> [RGBImage] {
            let right = image.width - size, bottom = image.height - size
            return [crop(image, top: 0, left: 0), crop(image, top: 0, left: right), crop(image, top: bottom, left: 0),
                    crop(image, top: bottom, left: right), cropped(image)]
        }
        return five(image) + five(Orientation.apply(2, to: image))
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

    /// The encoder's input for one decoded image: `view.crops` inputs, one after another.
    public func callAsFunction(_ image: RGBImage, view: InputView = .resizeCrop) throws -> [Float] {
        switch view {
        case .resizeCrop: normalized(resizedAndCropped(image))
        case .crop: normalized(cropped(image))
        case .tenCrop: try tenCropped(image).flatMap(normalized)
        }
    }
}
