import Foundation

/// One parameter: a value, or a range `low..high` drawn per image.
public struct Parameter: Sendable, Equatable, CustomStringConvertible {
    public var low: Double
    public var high: Double

    public init(_ low: Double, _ high: Double? = nil) {
        self.low = low
        self.high = high ?? low
    }

    init(parsing text: String) throws {
        let parts = text.components(separatedBy: "..")
        guard (1...2).contains(parts.count), let low = Double(parts[0]), let high = Double(parts.last!), low <= high else {
            throw ImpairmentError.invalid("\(text) is neither a number nor a range low..high")
        }
        self.init(low, high)
    }

    func draw(_ generator: inout SeededGenerator) -> Double {
        low == high ? low : Double.random(in: low...high, using: &generator)
    }

    func drawInteger(_ generator: inout SeededGenerator) -> Int {
        low == high ? Int(low) : Int.random(in: Int(low.rounded())...Int(high.rounded()), using: &generator)
    }

    public var description: String { low == high ? "\(low)" : "\(low)..\(high)" }
}

/// An operation images undergo after they are made: compression, resizing, cropping, blur, noise.
public enum Impairment: Sendable, Equatable {
    case jpeg(quality: Parameter, subsampling: JPEGSubsampling)
    case webp(quality: Parameter)
    /// By `factor`, so the longer side becomes `side`, down (never up) to a longer side of `maxSide`,
    /// or to a `square` of that many pixels; `filter` nil picks lanczos when shrinking, bicubic otherwise.
    case resize(factor: Parameter?, side: Parameter?, maxSide: Parameter?, square: Parameter?, filter: PillowResample.Filter?)
    /// A `fraction` of each side, a square `size` in pixels, or a square of `side` × the short side
    /// (clamped to `min`…`max` pixels); centred, at a random place, or at `x`, `y`.
    case crop(fraction: Parameter?, size: Parameter?, side: Parameter?, limits: ClosedRange<Int>, random: Bool, x: Parameter?, y: Parameter?)
    case blur(sigma: Parameter)
    case noise(sigma: Parameter)

    /// Parses `name:key=value,key=value`, e.g. `jpeg:q=65..100`, `resize:factor=0.5,filter=lanczos`.
    public init(parsing spec: String) throws {
        let (name, rest) = spec.split(separator: ":", maxSplits: 1).map(String.init).splitFirst()
        var values: [String: String] = [:]
        for pair in (rest ?? "").split(separator: ",") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw ImpairmentError.invalid("\(pair) in \(spec) is not key=value") }
            values[kv[0]] = kv[1]
        }
        func parameter(_ keys: String...) throws -> Parameter? {
            guard let key = keys.first(where: { values[$0] != nil }) else { return nil }
            return try Parameter(parsing: values.removeValue(forKey: key)!)
        }
        switch name {
        case "jpeg":
            let sub = values.removeValue(forKey: "sub") ?? "420"
            guard let subsampling = JPEGSubsampling(rawValue: sub) else { throw ImpairmentError.invalid("sub=\(sub): use 444, 422 or 420") }
            self = .jpeg(quality: try parameter("q", "quality") ?? Parameter(75), subsampling: subsampling)
        case "webp":
            self = .webp(quality: try parameter("q", "quality") ?? Parameter(80))
        case "resize":
            let filterName = values.removeValue(forKey: "filter") ?? "bicubic"
            let filter = PillowResample.Filter(rawValue: filterName)
            guard filter != nil || filterName == "auto" else {
                throw ImpairmentError.invalid("filter=\(filterName): use bilinear, bicubic, lanczos or auto")
            }
            let factor = try parameter("factor", "scale"), side = try parameter("side"), maxSide = try parameter("max"),
                square = try parameter("to")
            guard [factor, side, maxSide, square].compactMap({ $0 }).count == 1 else {
                throw ImpairmentError.invalid("resize takes one of factor=, side=, max= or to=")
            }
            self = .resize(factor: factor, side: side, maxSide: maxSide, square: square, filter: filter)
        case "crop":
            let mode = values.removeValue(forKey: "mode") ?? "center"
            guard mode == "center" || mode == "random" else { throw ImpairmentError.invalid("mode=\(mode): use center or random") }
            let fraction = try parameter("fraction"), size = try parameter("size"), side = try parameter("side")
            guard [fraction, size, side].compactMap({ $0 }).count == 1 else {
                throw ImpairmentError.invalid("crop takes one of fraction=, size= or side=")
            }
            let low = Int(try parameter("min")?.low ?? 1), high = Int(try parameter("max")?.low ?? Double(Int.max / 2))
            guard low <= high else { throw ImpairmentError.invalid("crop min= is above max=") }
            self = .crop(fraction: fraction, size: size, side: side, limits: low...high, random: mode == "random",
                         x: try parameter("x"), y: try parameter("y"))
        case "blur":
            guard let sigma = try parameter("sigma") else { throw ImpairmentError.invalid("blur takes sigma=") }
            self = .blur(sigma: sigma)
        case "noise":
            guard let sigma = try parameter("sigma") else { throw ImpairmentError.invalid("noise takes sigma=") }
            self = .noise(sigma: sigma)
        default:
            throw ImpairmentError.invalid("unknown operation \(name) (jpeg, webp, resize, crop, blur, noise)")
        }
        if let extra = values.keys.sorted().first { throw ImpairmentError.invalid("\(name) has no parameter \(extra)") }
    }

    /// Applies the operation; a lossy encoder also returns its bytes, so a chain ending in one can be saved as is.
    public func apply(_ image: RGBImage, _ generator: inout SeededGenerator) throws -> (RGBImage, encoded: Data?) {
        switch self {
        case .jpeg(let quality, let subsampling):
            let data = try LossyEncoder.jpeg(image, quality: quality.drawInteger(&generator), subsampling: subsampling)
            return (try ImageDecoder.decode(data), data)
        case .webp(let quality):
            let data = try LossyEncoder.webp(image, quality: quality.drawInteger(&generator))
            return (try ImageDecoder.decode(data), data)
        case .resize(let factor, let side, let maxSide, let square, let filter):
            let longer = Double(max(image.width, image.height))
            var width: Int, height: Int
            if let square {
                width = max(1, square.drawInteger(&generator))
                height = width
            } else {
                let scale = factor.map { $0.draw(&generator) } ?? side.map { $0.draw(&generator) / longer }
                    ?? min(1, maxSide!.draw(&generator) / longer)
                width = max(1, Int((Double(image.width) * scale).rounded(.toNearestOrEven)))
                height = max(1, Int((Double(image.height) * scale).rounded(.toNearestOrEven)))
            }
            let filter = filter ?? (width * height < image.width * image.height ? .lanczos : .bicubic)
            guard width * height <= DecodeLimits.pillowPixelLimit else {
                throw ImageError.tooLarge("resize to \(width)×\(height)")
            }
            return (PillowResample.resize(image, width: width, height: height, filter: filter), nil)
        case .crop(let fraction, let size, let side, let limits, let random, let x, let y):
            var (w, h): (Int, Int)
            if let fraction {
                let f = min(max(fraction.draw(&generator), 0), 1)
                (w, h) = (max(1, Int(Double(image.width) * f)), max(1, Int(Double(image.height) * f)))
            } else {
                let short = min(image.width, image.height)
                let s = size.map { $0.drawInteger(&generator) } ?? Int((side!.draw(&generator) * Double(short)).rounded())
                let clamped = min(max(s, limits.lowerBound), limits.upperBound)
                (w, h) = (min(clamped, image.width), min(clamped, image.height))
            }
            let left = x.map { min(max($0.drawInteger(&generator), 0), image.width - w) }
                ?? (random ? Int.random(in: 0...(image.width - w), using: &generator) : (image.width - w) / 2)
            let top = y.map { min(max($0.drawInteger(&generator), 0), image.height - h) }
                ?? (random ? Int.random(in: 0...(image.height - h), using: &generator) : (image.height - h) / 2)
            return (PillowResample.window(image, columns: left..<(left + w), rows: top..<(top + h)), nil)
        case .blur(let sigma):
            return (Self.gaussianBlur(image, sigma: sigma.draw(&generator)), nil)
        case .noise(let sigma):
            let s = sigma.draw(&generator)
            var out = image
            var i = 0
            while i < out.pixels.count {
                // Box–Muller: two normal draws per pair of uniforms.
                let u = max(Double.random(in: 0..<1, using: &generator), 1e-300), v = Double.random(in: 0..<1, using: &generator)
                let r = (-2 * log(u)).squareRoot() * s
                for (k, z) in [r * cos(2 * .pi * v), r * sin(2 * .pi * v)].enumerated() where i + k < out.pixels.count {
                    out.pixels[i + k] = UInt8(min(max((Double(out.pixels[i + k]) + z).rounded(), 0), 255))
                }
                i += 2
            }
            return (out, nil)
        }
    }

    /// Separable Gaussian blur, kernel radius ⌊4σ + 0.5⌋ and mirrored edges (as scipy.ndimage's
    /// gaussian_filter, which the reference's augmentation uses), rounded to 8 bits.
    static func gaussianBlur(_ image: RGBImage, sigma: Double) -> RGBImage {
        guard sigma > 0 else { return image }
        let radius = Int(4 * sigma + 0.5)
        var kernel = (-radius...radius).map { exp(-0.5 * Double($0 * $0) / (sigma * sigma)) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        let weights = kernel.map { Float($0) }
        func reflect(_ i: Int, _ n: Int) -> Int {
            var i = i
            let period = 2 * n
            i = ((i % period) + period) % period
            return i < n ? i : period - 1 - i
        }
        let w = image.width, h = image.height
        // One float intermediate (4 bytes a sample), both passes split over the cores by rows.
        var horizontal = [Float](repeating: 0, count: w * h * 3)
        var out = image
        image.pixels.withUnsafeBufferPointer { source in
            horizontal.withUnsafeMutableBufferPointer { middle in
                let input = UncheckedSendable(source), target = UncheckedSendable(middle)
                Kernels.parallelRows(h) { y in
                    for x in 0..<w {
                        for c in 0..<3 {
                            var sum: Float = 0
                            for k in -radius...radius { sum += weights[k + radius] * Float(input.value[(y * w + reflect(x + k, w)) * 3 + c]) }
                            target.value[(y * w + x) * 3 + c] = sum
                        }
                    }
                }
            }
        }
        horizontal.withUnsafeBufferPointer { middle in
            out.pixels.withUnsafeMutableBufferPointer { pixels in
                let input = UncheckedSendable(middle), target = UncheckedSendable(pixels)
                Kernels.parallelRows(h) { y in
                    for x in 0..<w {
                        for c in 0..<3 {
                            var sum: Float = 0
                            for k in -radius...radius { sum += weights[k + radius] * input.value[(reflect(y + k, h) * w + x) * 3 + c] }
                            target.value[(y * w + x) * 3 + c] = UInt8(min(max(sum.rounded(), 0), 255))
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Operations applied in order; each image draws its parameters from a generator seeded by the
/// chain's seed and the image's index, so a run is the same on every machine.
public struct ImpairmentChain: Sendable, Equatable {
    public var operations: [Impairment]
    public var seed: UInt64

    public init(operations: [Impairment], seed: UInt64 = 0) {
        self.operations = operations
        self.seed = seed
    }

    public init(parsing specs: [String], seed: UInt64 = 0) throws {
        self.init(operations: try specs.map(Impairment.init(parsing:)), seed: seed)
    }

    /// Named chains, documented in docs/impairments.md.
    public static let named: [String: [String]] = [
        // Posting to a social network: the longer side brought down to 1080 pixels (Instagram's and
        // Facebook's usual display size) with bicubic resampling, then JPEG at quality 85, 4:2:0.
        "social": ["resize:max=1080,filter=bicubic", "jpeg:q=85,sub=420"],
        // The post-processing of Corvi et al. (ICASSP 2023), grip-unina/DMimageDetection csv_operations.py:
        // a square crop (160…2048 pixels, here 5/8…1 of the short side, our reading of its cropsize_ratio),
        // resized to 200×200 (Lanczos when shrinking, bicubic when enlarging), JPEG at quality 65…100.
        "paper": ["crop:side=0.625..1,min=160,max=2048,mode=random", "resize:to=200,filter=auto", "jpeg:q=65..100"],
    ]

    /// A condition of `eval --impair`: a named chain, or operations joined by `+`.
    public init(condition: String, seed: UInt64 = 0) throws {
        let specs = Self.named[condition] ?? condition.split(separator: "+").map(String.init)
        try self.init(parsing: specs, seed: seed)
    }

    /// The impaired image, and the encoded bytes when the last operation is a lossy encoder.
    public func apply(_ image: RGBImage, index: Int = 0) throws -> (RGBImage, encoded: Data?) {
        var generator = SeededGenerator(seed: seed &* 0x9E37_79B9 &+ UInt64(index))
        var current = image, encoded: Data? = nil
        for operation in operations { (current, encoded) = try operation.apply(current, &generator) }
        return (current, encoded)
    }
}

public enum ImpairmentError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    public var description: String {
        switch self { case .invalid(let why): "invalid impairment: \(why)" }
    }
}

private extension Array where Element == String {
    func splitFirst() -> (String, String?) { (self.first ?? "", self.count > 1 ? self[1] : nil) }
}
