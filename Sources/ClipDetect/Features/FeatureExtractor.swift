import Foundation

/// Where one image comes from: a file, bytes in memory (an upload), or an image already decoded.
public enum ImageSource: Sendable, Equatable {
    case file(String)
    case bytes(Data)
    case decoded(RGBImage)
}

/// What a feature is computed with, in one value: the front ends (CLI, service) build one from
/// their options.
public struct ExtractionSettings: Sendable, Equatable {
    public var kind: FeatureKind
    public var normalize: Bool
    public var limits: DecodeLimits
    /// Images per forward pass.
    public var batchSize: Int
    /// Turn images upright by their EXIF orientation first (the reference does not).
    public var applyOrientation: Bool
    /// How each image becomes the encoder's input.
    public var view: InputView

    public init(kind: FeatureKind = .pooled, normalize: Bool = true, limits: DecodeLimits = DecodeLimits(),
                batchSize: Int = 8, applyOrientation: Bool = false, view: InputView = .resizeCrop) {
        self.view = view
        self.kind = kind
        self.normalize = normalize
        self.limits = limits
        self.batchSize = max(1, batchSize)
        self.applyOrientation = applyOrientation
    }
}

/// One image's feature, and the size it decoded to (nil when it came from the cache).
public struct ExtractedFeature: Sendable, Equatable {
    public var values: [Float]
    public var width: Int?
    public var height: Int?
}

/// image → decode → preprocess → encoder → feature, in batches. An image that fails to decode
/// fails alone; its neighbours in the batch are still encoded.
public struct FeatureExtractor: Sendable {
    public let encoder: ImageEncoder
    public let preprocessor: Preprocessor
    public var settings: ExtractionSettings
    /// Features computed before are read from here instead of computed again.
    public var cache: FeatureCache?
    /// Applied in memory after decoding, with each image's index in the run (features are then not cached).
    public var impairment: ImpairmentChain?

    public init(encoder: ImageEncoder, settings: ExtractionSettings = ExtractionSettings(), cache: FeatureCache? = nil) {
        self.encoder = encoder
        self.preprocessor = Preprocessor(encoder.description)
        self.settings = settings
        self.cache = cache
    }

    public var width: Int { encoder.featureWidth(settings.kind) }

    /// One input after decoding: either its feature (from the cache) or the encoder's input.
    private enum Prepared {
        case cached([Float])
        case pixels([Float], key: String?, width: Int, height: Int)
    }

    /// Calls `emit` once per path, in input order, as soon as its batch is done.
    public func run(paths: [String], emit: (Int, Result<[Float], Error>) throws -> Void) throws {
        try run(paths.map(ImageSource.file)) { index, result in try emit(index, result.map(\.values)) }
    }

    /// Calls `emit` once per source, in input order, as soon as its batch is done.
    public func run(_ sources: [ImageSource], emit: (Int, Result<ExtractedFeature, Error>) throws -> Void) throws {
        var start = 0
        while start < sources.count {
            let batch = Array(sources[start..<min(start + settings.batchSize, sources.count)])
            for (offset, result) in extract(batch, first: start).enumerated() { try emit(start + offset, result) }
            start += batch.count
        }
    }

    /// Features of a few images at once (one forward pass per `batchSize`), in order.
    public func features(_ sources: [ImageSource]) -> [Result<ExtractedFeature, Error>] {
        var results: [Result<ExtractedFeature, Error>] = []
        // `extract` throws nothing of its own: every failure is in its image's result.
        try? run(sources) { _, result in results.append(result) }
        return results
    }

    private func extract(_ batch: [ImageSource], first: Int) -> [Result<ExtractedFeature, Error>] {
        let inputs = prepare(batch, first: first)
        let pending = inputs.enumerated().compactMap { index, input -> (index: Int, pixels: [Float], key: String?)? in
            if case .success(.pixels(let pixels, let key, _, _)) = input { return (index, pixels, key) }
            return nil
        }
        var encoded: Result<[[Float]], Error> = .success([])
        if !pending.isEmpty {
            encoded = Result {
                try encoder.encode(pending.flatMap(\.pixels), count: pending.count, kind: settings.kind, normalize: settings.normalize)
            }
            if case .success(let features) = encoded, features.count == pending.count {
                // A cache that cannot be written costs speed, not results.
                try? cache?.store(zip(pending, features).compactMap { item, feature in item.key.map { ($0, feature) } })
            }
        }
        var next = 0
        return inputs.map { input in
            switch input {
            case .failure(let error): return .failure(error)
            case .success(.cached(let feature)): return .success(ExtractedFeature(values: feature, width: nil, height: nil))
            case .success(.pixels(_, _, let width, let height)):
                defer { next += 1 }
                return encoded.map { ExtractedFeature(values: $0[next], width: width, height: height) }
            }
        }
    }

    /// Reads, looks up, decodes and preprocesses a batch on all cores.
    private func prepare(_ sources: [ImageSource], first: Int) -> [Result<Prepared, Error>] {
        let results = UnsafeMutableBufferPointer<Result<Prepared, Error>>.allocate(capacity: sources.count)
        results.initialize(repeating: .success(.cached([])))
        defer { results.deallocate() }
        let shared = UncheckedSendable(results)
        let preprocessor = self.preprocessor, settings = self.settings, impairment = self.impairment
        let cache = impairment == nil ? self.cache : nil
        let fingerprint = encoder.fingerprint, precision = encoder.backend.precision, width = self.width
        DispatchQueue.concurrentPerform(iterations: sources.count) { index in
            shared.value[index] = Result {
                let name: String?, image: RGBImage, key: String?
                switch sources[index] {
                case .decoded(let decoded):
                    (name, image, key) = (nil, decoded, nil)
                case .file(let path):
                    let data = try ImageDecoder.read(path: path, limits: settings.limits)
                    key = cache.map { _ in Self.cacheKey(data, fingerprint: fingerprint, precision: precision, settings: settings) }
                    if let cache, let key, let feature = try? cache.feature(key, width: width) { return .cached(feature) }
                    (name, image) = (path, try ImageDecoder.decode(data, path: path, limits: settings.limits, applyOrientation: settings.applyOrientation))
                case .bytes(let data):
                    key = cache.map { _ in Self.cacheKey(data, fingerprint: fingerprint, precision: precision, settings: settings) }
                    if let cache, let key, let feature = try? cache.feature(key, width: width) { return .cached(feature) }
                    (name, image) = (nil, try ImageDecoder.decode(data, limits: settings.limits, applyOrientation: settings.applyOrientation))
                }
                var impaired = image
                if let impairment {
                    impaired = try ImageFileError.naming(name ?? "image \(first + index)") { try impairment.apply(image, index: first + index).0 }
                }
                return .pixels(preprocessor(impaired, view: settings.view), key: key, width: image.width, height: image.height)
            }
        }
        return Array(results)
    }

    static func cacheKey(_ data: Data, fingerprint: String, precision: Precision, settings: ExtractionSettings) -> String {
        FeatureCache.key(fileDigest: FeatureCache.digest(data), fingerprint: fingerprint, kind: settings.kind,
                         normalized: settings.normalize, oriented: settings.applyOrientation, precision: precision, view: settings.view)
    }
}
