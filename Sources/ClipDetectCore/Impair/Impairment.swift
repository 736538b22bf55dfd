import Foundation

/// An operation images undergo after they are made: compression, resizing, cropping, blur, noise.
/// `validate()` bounds every parameter; the parser and `apply` both call it, so no value traps.
public enum Impairment: Sendable, Equatable {
    case jpeg(quality: Parameter, subsampling: JPEGSubsampling)
    case webp(quality: Parameter)
    /// `filter` nil picks lanczos when shrinking, bicubic otherwise.
    case resize(ResizeTarget, filter: PillowResample.Filter?)
    case crop(CropSize, placement: CropPlacement)
    case blur(sigma: Parameter)
    case noise(sigma: Parameter)

    /// The size a resize makes.
    public enum ResizeTarget: Sendable, Equatable {
        /// Both sides times a factor.
        case factor(Parameter)
        /// The longer side becomes this many pixels.
        case longerSide(Parameter)
        /// Down (never up) to a longer side of this many pixels.
        case maxSide(Parameter)
        /// A square of this many pixels a side.
        case square(Parameter)
    }

    /// The size of a crop's window.
    public enum CropSize: Sendable, Equatable {
        /// This fraction of each side.
        case fraction(Parameter)
        /// A square of this many pixels, clamped to `limits` and to the image.
        case pixels(Parameter, limits: ClosedRange<Int>)
        /// A square of this share of the largest allowed one (the short side, at most `limits`' upper
        /// bound; an image whose short side is under the lower bound is refused).
        case share(Parameter, limits: ClosedRange<Int>)
    }

    /// Where a crop's window lies: centred, drawn uniformly, or at a top-left corner in pixels.
    public enum CropPlacement: Sendable, Equatable {
        case center, random
        case at(x: Parameter, y: Parameter)
    }

    /// The largest side an impairment may ask for.
    public static let maxSide = 65_535

    /// Throws `ImpairmentError` for a parameter outside its operation's bounds.
    public func validate() throws {
        let sides = 1...Double(Self.maxSide)
        func checkLimits(_ limits: ClosedRange<Int>) throws {
            guard limits.lowerBound >= 1, limits.upperBound <= Self.maxSide else {
                throw ImpairmentError.cropLimits(limits)
            }
        }
        switch self {
        case .jpeg(let quality, _): try quality.check("q", in: 1...100, integer: true)
        case .webp(let quality): try quality.check("q", in: 0...100, integer: true)
        case .resize(let target, _):
            switch target {
            case .factor(let factor): try factor.check("factor", in: 0...100, open: true)
            case .longerSide(let side): try side.check("side", in: sides, integer: true)
            case .maxSide(let side): try side.check("max", in: sides, integer: true)
            case .square(let side): try side.check("to", in: sides, integer: true)
            }
        case .crop(let size, let placement):
            switch size {
            case .fraction(let fraction): try fraction.check("fraction", in: 0...1, open: true)
            case .pixels(let pixels, let limits): try pixels.check("size", in: sides, integer: true); try checkLimits(limits)
            case .share(let share, let limits): try share.check("side", in: 0...1, open: true); try checkLimits(limits)
            }
            if case .at(let x, let y) = placement {
                try x.check("x", in: 0...Double(Self.maxSide), integer: true)
                try y.check("y", in: 0...Double(Self.maxSide), integer: true)
            }
        case .blur(let sigma): try sigma.check("sigma", in: 0...100)
        case .noise(let sigma): try sigma.check("sigma", in: 0...255)
        }
    }

    /// Applies the operation; a lossy encoder also returns its bytes, so a chain ending in one can be saved as is.
    /// `maxPixels` bounds what a resize may make.
    public func apply(_ image: RGBImage, _ generator: inout SeededGenerator,
                      maxPixels: Int = DecodeLimits.pillowPixelLimit) throws -> (RGBImage, encoded: Data?) {
        try validate()
        switch self {
        case .jpeg(let quality, let subsampling):
            let data = try LossyEncoder.jpeg(image, quality: quality.drawInteger(&generator), subsampling: subsampling)
            return (try ImageDecoder.decode(data), data)
        case .webp(let quality):
            let data = try LossyEncoder.webp(image, quality: quality.drawInteger(&generator))
            return (try ImageDecoder.decode(data), data)
        case .resize(let target, let filter):
            let (width, height) = try Self.resizedSize(image, target, &generator, maxPixels: maxPixels)
            let filter = filter ?? (width * height < image.width * image.height ? .lanczos : .bicubic)
            return (PillowResample.resize(image, width: width, height: height, filter: filter), nil)
        case .crop(let size, let placement):
            let (columns, rows) = try Self.cropWindow(image, size, placement, &generator)
            return (PillowResample.window(image, columns: columns, rows: rows), nil)
        case .blur(let sigma):
            return (Filters.gaussianBlur(image, sigma: sigma.draw(&generator)), nil)
        case .noise(let sigma):
            return (Filters.gaussianNoise(image, sigma: sigma.draw(&generator), seed: generator.next()), nil)
        }
    }

    /// The target size, refused above the decompression-bomb limit before anything is allocated.
    static func resizedSize(_ image: RGBImage, _ target: ResizeTarget, _ generator: inout SeededGenerator,
                            maxPixels: Int) throws -> (Int, Int) {
        let longer = Double(max(image.width, image.height))
        let width: Double, height: Double
        switch target {
        case .square(let side):
            width = Double(side.drawInteger(&generator))
            height = width
        case .factor, .longerSide, .maxSide:
            let scale: Double
            switch target {
            case .factor(let factor): scale = factor.draw(&generator)
            case .longerSide(let side): scale = side.draw(&generator) / longer
            case .maxSide(let side): scale = min(1, side.draw(&generator) / longer)
            case .square: scale = 1
            }
            width = max(1, (Double(image.width) * scale).rounded(.toNearestOrEven))
            height = max(1, (Double(image.height) * scale).rounded(.toNearestOrEven))
        }
        guard width * height <= Double(maxPixels) else {
            throw ImageError.tooLarge("resize to \(Parameter.format(width))×\(Parameter.format(height)) pixels > \(maxPixels)")
        }
        return (Int(width), Int(height))
    }

    /// The crop's columns and rows inside the image.
    static func cropWindow(_ image: RGBImage, _ size: CropSize, _ placement: CropPlacement,
                           _ generator: inout SeededGenerator) throws -> (Range<Int>, Range<Int>) {
        let w: Int, h: Int
        switch size {
        case .fraction(let fraction):
            let f = fraction.draw(&generator)
            (w, h) = (max(1, Int(Double(image.width) * f)), max(1, Int(Double(image.height) * f)))
        case .pixels(let pixels, let limits):
            let s = min(max(pixels.drawInteger(&generator), limits.lowerBound), limits.upperBound)
            (w, h) = (min(s, image.width), min(s, image.height))
        case .share(let share, let limits):
            // As GRIP's random_operations.py: the largest allowed square m, then an integer side
            // drawn uniformly from max(⌊low·m⌋, min) to ⌊high·m⌋.
            let largest = min(image.width, image.height, limits.upperBound)
            guard largest >= limits.lowerBound else {
                throw ImageError.tooSmall("the short side of \(image.width)×\(image.height) is under the crop's min=\(limits.lowerBound)")
            }
            let low = max(Int((share.low * Double(largest)).rounded(.down)), limits.lowerBound)
            let high = max(min(Int((share.high * Double(largest)).rounded(.down)), largest), low)
            let s = low == high ? low : Int.random(in: low...high, using: &generator)
            (w, h) = (s, s)
        }
        let left: Int, top: Int
        switch placement {
        case .center: (left, top) = ((image.width - w) / 2, (image.height - h) / 2)
        case .random: (left, top) = (Int.random(in: 0...(image.width - w), using: &generator), Int.random(in: 0...(image.height - h), using: &generator))
        case .at(let x, let y):
            (left, top) = (min(x.drawInteger(&generator), image.width - w), min(y.drawInteger(&generator), image.height - h))
        }
        return (left..<(left + w), top..<(top + h))
    }
}

/// Why an impairment, as written, cannot be run; each case carries what was given.
public enum ImpairmentError: Error, Equatable, Sendable {
    case notKeyValue(String, spec: String)
    case givenTwice(key: String, spec: String)
    /// Keys that mean the same (`q`, `quality`), both given.
    case synonyms([String], spec: String)
    /// An operation that takes exactly one of `keys`.
    case oneOf(operation: String, keys: [String])
    case choice(key: String, value: String, options: [String])
    case cropMinAboveMax
    case placedAndRandom
    case halfPlacement
    case missing(operation: String, key: String)
    case unknownOperation(String)
    case unknownParameter(operation: String, key: String)
    case notNumber(key: String, text: String)
    case notFinite(key: String?, text: String)
    case backwards(low: Double, high: Double)
    case outside(key: String, value: Parameter, bounds: ClosedRange<Double>, open: Bool)
    case notWhole(key: String, value: Parameter)
    case emptyCondition
    case cropLimits(ClosedRange<Int>)
}

extension ImpairmentError: CustomStringConvertible {
    public var description: String { "invalid impairment: \(problem)" }

    private var problem: String {
        switch self {
        case .notKeyValue(let pair, let spec): "\(pair) in \(spec) is not key=value"
        case .givenTwice(let key, let spec): "\(key) is given twice in \(spec)"
        case .synonyms(let keys, let spec): "\(keys.joined(separator: " and ")) mean the same in \(spec): give one"
        case .oneOf(let operation, let keys): "\(operation) takes one of \(keys.map { $0 + "=" }.joined(separator: ", "))"
        case .choice(let key, let value, let options):
            "\(key)=\(value): use \(options.dropLast().joined(separator: ", ")) or \(options.last ?? "")"
        case .cropMinAboveMax: "crop min= is above max="
        case .placedAndRandom: "x=, y= place the crop: drop mode=random"
        case .halfPlacement: "crop takes both x= and y=, or neither"
        case .missing(let operation, let key): "\(operation) takes \(key)="
        case .unknownOperation(let name) where name.isEmpty: "an operation is missing (a chain is operations joined by +: jpeg, webp, resize, crop, blur, noise)"
        case .unknownOperation(let name): "unknown operation \(name) (jpeg, webp, resize, crop, blur, noise)"
        case .unknownParameter(let operation, let key): "\(operation) has no parameter \(key)"
        case .notNumber(let key, let text): "\(key)=\(text) is neither a number nor a range low..high"
        case .notFinite(let key, let text): (key.map { "\($0)=" } ?? "") + "\(text) is not a finite number"
        case .backwards(let low, let high): "range \(low)..\(high) runs backwards"
        case .outside(let key, let value, let bounds, let open):
            "\(key)=\(value) is outside \(open ? "(" : "[")\(Parameter.format(bounds.lowerBound)), \(Parameter.format(bounds.upperBound))]"
        case .notWhole(let key, let value): "\(key)=\(value) must be a whole number"
        case .emptyCondition: "an empty condition"
        case .cropLimits(let limits): "crop min/max \(limits.lowerBound)…\(limits.upperBound) is outside 1…\(Impairment.maxSide)"
        }
    }
}

extension ImpairmentError: ClassifiedError { public var kind: FailureKind { .invalidInput } }
