import Foundation

/// Operations applied in order; each image draws its parameters from a generator seeded by the
/// chain's seed and the image's index, so a run is the same on every machine.
public struct ImpairmentChain: Sendable, Equatable {
    /// The operations, applied first to last.
    public var operations: [Impairment]
    /// Seeds each image's generator, with the image's index.
    public var seed: UInt64

    /// A chain from its operations and seed.
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
        // Re-sharing, drawn: the longer side brought to 720…1440 pixels (down only), then JPEG at
        // quality 70…95, 4:2:0, the spread of platforms' settings; `detect --stability` draws it.
        "reshare": ["resize:max=720..1440,filter=bicubic", "jpeg:q=70..95,sub=420"],
        // The test-set post-processing of the paper's group (GRIP's random_operations.py, applied from a
        // CSV by grip-unina/DMimageDetection's csv_operations.py): a random square crop of 5/8…1 of
        // min(short side, 2048), at least 160, resized to 200×200 (Lanczos when shrinking, else
        // bicubic), JPEG at quality 65…100. Sources in docs/impairments.md.
        "paper": ["crop:side=0.625..1,min=160,max=2048,mode=random", "resize:to=200,filter=auto", "jpeg:q=65..100"],
    ]

    /// A condition of `eval --impair`: a named chain, or operations joined by `+`.
    public init(condition: String, seed: UInt64 = 0) throws {
        try self.init(parsing: condition.split(separator: "+", omittingEmptySubsequences: false).map(String.init), seed: seed)
        guard !operations.isEmpty else { throw ImpairmentError.emptyCondition }
    }

    /// The impaired image, and the encoded bytes when the last operation is a lossy encoder.
    public func apply(_ image: RGBImage, index: Int = 0, maxPixels: Int = DecodeLimits.pillowPixelLimit) throws -> (RGBImage, encoded: Data?) {
        var generator = SeededGenerator(seed: seed &* 0x9E37_79B9 &+ UInt64(index))
        var current = image, encoded: Data? = nil
        for operation in operations { (current, encoded) = try operation.apply(current, &generator, maxPixels: maxPixels) }
        return (current, encoded)
    }
}
