/// 8-bit RGB pixels, row-major and interleaved: what `Image.convert('RGB')` gives in Pillow.
public struct RGBImage: Sendable, Equatable {
    /// Columns, in pixels.
    public let width: Int
    /// Rows, in pixels.
    public let height: Int
    /// `width × height × 3` bytes: R, G, B for each pixel, top row first.
    public var pixels: [UInt8]

    /// An image from its size and pixels; traps unless `pixels` holds exactly `width × height × 3` bytes.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGB buffer size mismatch")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Pillow's conversions to RGB that more than one decoder needs.
extension RGBImage {
    /// "L" → RGB: the gray value in every channel.
    init(width: Int, height: Int, gray: [UInt8]) {
        var pixels = [UInt8](repeating: 0, count: gray.count * 3)
        for (i, value) in gray.enumerated() { (pixels[3 * i], pixels[3 * i + 1], pixels[3 * i + 2]) = (value, value, value) }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// "CMYK" (or Adobe's inverted "CMYK;I") → RGB.
    init(width: Int, height: Int, cmyk: [UInt8], inverted: Bool) {
        var pixels = [UInt8](repeating: 0, count: cmyk.count / 4 * 3)
        for i in 0..<(cmyk.count / 4) {
            let v = (cmyk[4 * i], cmyk[4 * i + 1], cmyk[4 * i + 2], cmyk[4 * i + 3])
            (pixels[3 * i], pixels[3 * i + 1], pixels[3 * i + 2]) =
                inverted ? Self.rgb(cyan: 255 - v.0, magenta: 255 - v.1, yellow: 255 - v.2, black: 255 - v.3)
                         : Self.rgb(cyan: v.0, magenta: v.1, yellow: v.2, black: v.3)
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// Pillow's rule: each channel is (255 − ink) scaled by (255 − K), rounded as its MULDIV255.
    @inline(__always)
    static func rgb(cyan: UInt8, magenta: UInt8, yellow: UInt8, black: UInt8) -> (UInt8, UInt8, UInt8) {
        func channel(_ ink: UInt8) -> UInt8 {
            let t = (255 - Int(ink)) * (255 - Int(black)) + 128
            return UInt8(((t >> 8) + t) >> 8)
        }
        return (channel(cyan), channel(magenta), channel(yellow))
    }
}

/// The formats the decoder knows, told from a file's first bytes.
public enum ImageFormat: String, Sendable {
    case jpeg, png, webp, gif, bmp, tiff

    /// The format the bytes start with, or nil when no known signature matches.
    public static func sniff(_ bytes: UnsafeRawBufferPointer) -> ImageFormat? {
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + prefix.count && zip(bytes[offset...], prefix).allSatisfy { $0 == $1 }
        }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts(Array("RIFF".utf8)), starts(Array("WEBP".utf8), at: 8) { return .webp }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return .gif }
        if starts(Array("BM".utf8)) { return .bmp }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        return nil
    }
}

/// Explicit bounds on what one image may cost.
public struct DecodeLimits: Sendable, Equatable {
    /// Pillow raises DecompressionBombError above twice `Image.MAX_IMAGE_PIXELS` (89,478,485).
    public static let pillowPixelLimit = 2 * 89_478_485

    /// The most pixels (width × height) an image may have.
    public var maxPixels: Int
    /// The most bytes an image file may have.
    public var maxBytes: Int

    /// Limits from their parts: by default Pillow's bomb limit and 256 MiB.
    public init(maxPixels: Int = DecodeLimits.pillowPixelLimit, maxBytes: Int = 256 << 20) {
        self.maxPixels = maxPixels
        self.maxBytes = maxBytes
    }
}

/// Why image bytes could not be decoded; each case but the first two says what was found.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    case empty
    case notAnImage
    case unsupported(String)
    case tooLarge(String)
    case tooSmall(String)
    case corrupt(String)

    public var description: String {
        switch self {
        case .empty: "file is empty"
        case .notAnImage: "not an image (unknown signature)"
        case .unsupported(let what): "unsupported image: \(what)"
        case .tooLarge(let why): "image exceeds limits: \(why)"
        case .tooSmall(let why): "image too small: \(why)"
        case .corrupt(let why): "corrupt image: \(why)"
        }
    }
}

/// An image error that names the file.
public struct ImageFileError: Error, CustomStringConvertible {
    /// The file, as given.
    public let path: String
    /// What went wrong with it.
    public let underlying: ImageError
    /// An error from the file and what went wrong.
    public init(path: String, underlying: ImageError) {
        self.path = path
        self.underlying = underlying
    }
    public var description: String { "\(PathName.display(path)): \(underlying)" }

    /// Runs `body`, naming `path` in any image error it throws.
    package static func naming<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as ImageError { throw ImageFileError(path: path, underlying: error) }
    }
}

extension ImageError: ClassifiedError {
    public var kind: FailureKind {
        switch self {
        case .empty, .notAnImage, .corrupt: .invalidInput
        case .unsupported: .unsupported
        case .tooLarge: .tooLarge
        case .tooSmall: .tooSmall
        }
    }
}

extension ImageFileError: ClassifiedError { public var kind: FailureKind { underlying.kind } }
