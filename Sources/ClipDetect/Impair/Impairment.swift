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
    /// A `fraction` of each side, a square `size` in pixels (clamped to `min`…`max`), or a square of
    /// `side` × the largest allowed square (the short side, at most `max`; at least `min`, or the image
    /// is refused); centred, at a random place, or at `x`, `y`.
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
            } else if let size {
                let s = min(max(size.drawInteger(&generator), limits.lowerBound), limits.upperBound)
                (w, h) = (min(s, image.width), min(s, image.height))
            } else {
                // As GRIP's random_operations.py: the largest allowed square m, then an integer side
                // drawn uniformly from max(⌊low·m⌋, min) to ⌊high·m⌋.
                let largest = min(image.width, image.height, limits.upperBound)
                guard largest >= limits.lowerBound else {
                    throw ImageError.tooSmall("the short side of \(image.width)×\(image.height) is under the crop's min=\(limits.lowerBound)")
                }
                let low = max(Int((side!.low * Double(largest)).rounded(.down)), limits.lowerBound)
                let high = max(min(Int((side!.high * Double(largest)).rounded(.down)), largest), low)
                let s = low == high ? low : Int.random(in: low...high, using: &generator)
                (w, h) = (s, s)
            }
            let left = x.map { min(max($0.drawInteger(&generator), 0), image.width - w) }
                ?? (random ? Int.random(in: 0...(image.width - w), using: &generator) : (image.width - w) / 2)
            let top = y.map { min(max($0.drawInteger(&generator), 0), image.height - h) }
                ?? (random ? Int.random(in: 0...(image.height - h), using: &generator) : (image.height - h) / 2)
            return (PillowResample.window(image, columns: left..<(left + w), rows: top..<(top + h)), nil)
        case .blur(let sigma):
            return (Self.gaussianBlur(image, sigma: sigma.draw(&generator)), nil)
        case .noise(let sigma):
            return (Self.gaussianNoise(image, sigma: sigma.draw(&generator), seed: generator.next()), nil)
        }
    }

    /// Additive Gaussian noise on every channel value, rounded and clipped. Values come in fixed blocks,
    /// each from its own generator, so the cores share the work and every machine draws the same noise.
    static func gaussianNoise(_ image: RGBImage, sigma: Double, seed: UInt64) -> RGBImage {
        let block = 1 << 16
        var out = image
        out.pixels.withUnsafeMutableBufferPointer { pixels in
            let target = UncheckedSendable(pixels), count = pixels.count
            Kernels.parallelChunks((count + block - 1) / block) { _, blocks in
                for index in blocks {
                    var generator = SeededGenerator(seed: seed ^ (UInt64(index) &* 0xD1B5_4A32_D192_ED03))
                    let end = min((index + 1) * block, count)
                    var i = index * block
                    while i < end {
                        // Box–Muller: two normal draws from each pair of uniforms.
                        let u = Double((generator.next() >> 11) + 1) * 0x1p-53, v = Double(generator.next() >> 11) * 0x1p-53
                        let r = (-2 * log(u)).squareRoot() * sigma
                        target.value[i] = UInt8(min(max((Double(target.value[i]) + r * cos(2 * .pi * v)).rounded(), 0), 255))
                        if i + 1 < end {
                            target.value[i + 1] = UInt8(min(max((Double(target.value[i + 1]) + r * sin(2 * .pi * v)).rounded(), 0), 255))
                        }
                        i += 2
                    }
                }
            }
        }
        return out
    }

    /// `scipy.ndimage.gaussian_filter(channel, sigma, output=channel)` on each 8-bit channel, as the
    /// reference's augmentation calls it: radius ⌊4σ + 0.5⌋, mirrored edges, rows (axis 0) then
    /// columns, each pass summed in double as scipy's symmetric-kernel loop (centre, then the outermost
    /// pair inwards) and truncated to 8 bits, the intermediate included.
    static func gaussianBlur(_ image: RGBImage, sigma: Double) -> RGBImage {
        guard sigma > 1e-15 else { return image }
        let radius = Int(4 * sigma + 0.5)
        let weights = (-radius...radius).map { exp(-0.5 / (sigma * sigma) * Double($0 * $0)) }
        let total = numpyPairwiseSum(weights[...])
        let kernel = weights[radius...].map { $0 / total }
        func reflect(_ i: Int, _ n: Int) -> Int {
            let period = 2 * n, i = ((i % period) + period) % period
            return i < n ? i : period - 1 - i
        }
        let w = image.width, h = image.height, rowLength = w * 3
        var vertical = image, out = image
        // Down the columns: each output row is a weighted sum of whole source rows.
        image.pixels.withUnsafeBufferPointer { source in
            vertical.pixels.withUnsafeMutableBufferPointer { target in
                let input = UncheckedSendable(source.baseAddress!), output = UncheckedSendable(target.baseAddress!)
                Kernels.parallelChunks(h) { _, rows in
                    var sum = [Double](repeating: 0, count: rowLength)
                    for y in rows {
                        filterLine(centre: input.value + y * rowLength, kernel: kernel, sum: &sum, into: output.value + y * rowLength) { j in
                            (input.value + reflect(y - j, h) * rowLength, input.value + reflect(y + j, h) * rowLength)
                        }
                    }
                }
            }
        }
        // Along the rows, from a mirrored copy of each row.
        vertical.pixels.withUnsafeBufferPointer { source in
            out.pixels.withUnsafeMutableBufferPointer { target in
                let input = UncheckedSendable(source.baseAddress!), output = UncheckedSendable(target.baseAddress!)
                Kernels.parallelChunks(h) { _, rows in
                    var padded = [UInt8](repeating: 0, count: (w + 2 * radius) * 3)
                    var sum = [Double](repeating: 0, count: rowLength)
                    for y in rows {
                        for p in 0..<(w + 2 * radius) {
                            let x = reflect(p - radius, w)
                            for c in 0..<3 { padded[p * 3 + c] = input.value[y * rowLength + x * 3 + c] }
                        }
                        padded.withUnsafeBufferPointer { row in
                            let row = row.baseAddress!
                            filterLine(centre: row + 3 * radius, kernel: kernel, sum: &sum, into: output.value + y * rowLength) { j in
                                (row + 3 * (radius - j), row + 3 * (radius + j))
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// One line of scipy's symmetric correlation: centre·k₀ + Σ over j = r…1 of (before + after)·kⱼ,
    /// in double, truncated to 8 bits; `pair(j)` gives the lines j before and j after the centre.
    private static func filterLine(centre: UnsafePointer<UInt8>, kernel: [Double], sum: inout [Double], into output: UnsafeMutablePointer<UInt8>,
                                   pair: (Int) -> (UnsafePointer<UInt8>, UnsafePointer<UInt8>)) {
        sum.withUnsafeMutableBufferPointer { sum in
            let count = sum.count
            let k0 = kernel[0]
            for i in 0..<count { sum[i] = Double(centre[i]) * k0 }
            for j in stride(from: kernel.count - 1, through: 1, by: -1) {
                let (before, after) = pair(j), k = kernel[j]
                for i in 0..<count { sum[i] += (Double(before[i]) + Double(after[i])) * k }
            }
            for i in 0..<count { output[i] = UInt8(min(max(sum[i], 0), 255)) }
        }
    }

    /// numpy's `sum` of a float64 array (pairwise, eight accumulators per block of up to 128), so the
    /// kernel is normalised to the same last bit as scipy's.
    static func numpyPairwiseSum(_ a: ArraySlice<Double>) -> Double {
        let n = a.count, base = a.startIndex
        if n < 8 { return a.reduce(-0.0, +) }
        if n > 128 {
            let half = (n / 2) - (n / 2) % 8
            return numpyPairwiseSum(a[base..<(base + half)]) + numpyPairwiseSum(a[(base + half)...])
        }
        var r = Array(a[base..<(base + 8)])
        var i = 8
        while i < n - n % 8 {
            for k in 0..<8 { r[k] += a[base + i + k] }
            i += 8
        }
        var result = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n { result += a[base + i]; i += 1 }
        return result
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

    /// Operations in order; a named chain stands for its operations.
    public init(parsing specs: [String], seed: UInt64 = 0) throws {
        self.init(operations: try specs.flatMap { Self.named[$0] ?? [$0] }.map(Impairment.init(parsing:)), seed: seed)
    }

    /// Named chains, documented in docs/impairments.md.
    public static let named: [String: [String]] = [
        // Posting to a social network: the longer side brought down to 1080 pixels (Instagram's and
        // Facebook's usual display size) with bicubic resampling, then JPEG at quality 85, 4:2:0.
        "social": ["resize:max=1080,filter=bicubic", "jpeg:q=85,sub=420"],
        // The test-set post-processing of the paper's group (GRIP's random_operations.py, applied from a
        // CSV by grip-unina/DMimageDetection's csv_operations.py): a random square crop of 5/8…1 of
        // min(short side, 2048), at least 160, resized to 200×200 (Lanczos when shrinking, else
        // bicubic), JPEG at quality 65…100. Sources in docs/impairments.md.
        "paper": ["crop:side=0.625..1,min=160,max=2048,mode=random", "resize:to=200,filter=auto", "jpeg:q=65..100"],
    ]

    /// A condition of `eval --impair`: a named chain, or operations joined by `+`.
    public init(condition: String, seed: UInt64 = 0) throws {
        try self.init(parsing: condition.split(separator: "+").map(String.init), seed: seed)
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
