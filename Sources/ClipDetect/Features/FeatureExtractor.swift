import Foundation

/// image → decode → preprocess → encoder → feature, in batches. A file that fails to decode
/// fails alone; its neighbours in the batch are still encoded.
public struct FeatureExtractor: Sendable {
    public let encoder: ImageEncoder
    public let preprocessor: Preprocessor
    public var kind: FeatureKind
    public var normalize: Bool
    public var limits: DecodeLimits
    public var batchSize: Int
    /// Turn images upright by their EXIF orientation first (the reference does not).
    public var applyOrientation = false
    /// Features computed before are read from here instead of computed again.
    public var cache: FeatureCache?
    /// Applied in memory after decoding, with each image's index in the run (features are then not cached).
    public var impairment: ImpairmentChain?

    public init(encoder: ImageEncoder, kind: FeatureKind = .pooled, normalize: Bool = true,
                limits: DecodeLimits = DecodeLimits(), batchSize: Int = 8) {
        self.encoder = encoder
        self.preprocessor = Preprocessor(encoder.description)
        self.kind = kind
        self.normalize = normalize
        self.limits = limits
        self.batchSize = max(1, batchSize)
    }

    public var width: Int { encoder.featureWidth(kind) }

    /// One input after decoding: its cache key, and either its feature (from the cache) or the encoder's input.
    private enum Prepared {
        case cached([Float])
        case pixels([Float], key: String?)
    }

    /// Calls `emit` once per path, in input order, as soon as its batch is done.
    public func run(paths: [String], emit: (Int, Result<[Float], Error>) throws -> Void) throws {
        var start = 0
        while start < paths.count {
            let batch = Array(paths[start..<min(start + batchSize, paths.count)])
            let inputs = prepare(batch, first: start)
            let pending = inputs.enumerated().compactMap { index, input -> (Int, [Float], String?)? in
                if case .success(.pixels(let pixels, let key)) = input { return (index, pixels, key) }
                return nil
            }
            var features: [Int: Result<[Float], Error>] = [:]
            if !pending.isEmpty {
                do {
                    let encoded = try encoder.encode(pending.flatMap { $0.1 }, count: pending.count, kind: kind, normalize: normalize)
                    for ((index, _, _), feature) in zip(pending, encoded) { features[index] = .success(feature) }
                    // A cache that cannot be written costs speed, not results.
                    try? cache?.store(zip(pending, encoded).compactMap { item, feature in item.2.map { ($0, feature) } })
                } catch {
                    for (index, _, _) in pending { features[index] = .failure(error) }
                }
            }
            for index in batch.indices {
                switch inputs[index] {
                case .failure(let error): try emit(start + index, .failure(error))
                case .success(.cached(let feature)): try emit(start + index, .success(feature))
                case .success(.pixels): try emit(start + index, features[index]!)
                }
            }
            start += batch.count
        }
    }

    /// Reads, looks up, decodes and preprocesses a batch on all cores.
    private func prepare(_ paths: [String], first: Int) -> [Result<Prepared, Error>] {
        let results = UnsafeMutableBufferPointer<Result<Prepared, Error>>.allocate(capacity: paths.count)
        results.initialize(repeating: .success(.cached([])))
        defer { results.deallocate() }
        let shared = UncheckedSendable(results)
        let preprocessor = self.preprocessor, limits = self.limits, orient = applyOrientation, impairment = self.impairment
        let cache = impairment == nil ? self.cache : nil
        let (fingerprint, kind, normalize, width) = (encoder.fingerprint, self.kind, self.normalize, self.width)
        DispatchQueue.concurrentPerform(iterations: paths.count) { index in
            shared.value[index] = Result {
                let data = try ImageDecoder.read(path: paths[index], limits: limits)
                let key = cache.map { _ in
                    FeatureCache.key(fileDigest: FeatureCache.digest(data), fingerprint: fingerprint, kind: kind,
                                     normalized: normalize, oriented: orient)
                }
                if let cache, let key, let feature = try? cache.feature(key, width: width) { return .cached(feature) }
                var image = try ImageDecoder.decode(data, path: paths[index], limits: limits, applyOrientation: orient)
                if let impairment {
                    image = try ImageFileError.naming(paths[index]) { try impairment.apply(image, index: first + index).0 }
                }
                return .pixels(preprocessor(image), key: key)
            }
        }
        return Array(results)
    }
}
