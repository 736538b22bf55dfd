import ClipDetectCore
import ClipDetectEncoder
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
    /// Which vector the encoder returns.
    public var kind: FeatureKind
    /// L2-normalise the feature (each crop's, for ten-crop) to length 1, as the detector's heads expect.
    public var normalize: Bool
    /// Bounds on each image's file size and pixels.
    public var limits: DecodeLimits
    /// Images per forward pass.
    public var batchSize: Int
    /// Turn images upright by their EXIF orientation first (the reference does not).
    public var applyOrientation: Bool
    /// How each image becomes the encoder's input.
    public var view: InputView

    /// Settings from their parts; the defaults are the paper's detector's, eight images a pass (at least one).
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

/// One image's features (one per request of the run, the first first), and the size it decoded to
/// (nil when they came from the cache).
public struct ExtractedFeature: Sendable, Equatable {
    /// One feature per request, in the run's order (`FeatureExtractor.requests`).
    public var outputs: [[Float]]
    /// The decoded image's width in pixels, before any impairment; nil from the cache.
    public var width: Int?
    /// The decoded image's height in pixels, before any impairment; nil from the cache.
    public var height: Int?

    /// The first request's feature: the only one in most runs.
    public var values: [Float] { outputs[0] }
}

/// One feature a run computes: which encoder, how each image enters it, and what leaves it.
public struct FeatureRequest: Sendable {
    /// The loaded tower that computes the feature.
    public let encoder: ImageEncoder
    /// How each image becomes the tower's input.
    public var view: InputView
    /// Which vector leaves the tower, normalised or not.
    public var output: FeatureOutput

    /// A request from its encoder, view and output.
    public init(encoder: ImageEncoder, view: InputView, output: FeatureOutput) {
        self.encoder = encoder
        self.view = view
        self.output = output
    }

    /// True when both are the same feature of the same loaded encoder.
    func same(as other: FeatureRequest) -> Bool {
        encoder === other.encoder && view == other.view && output == other.output
    }
}

/// image → decode → preprocess → encoder → feature, in batches. An image that fails to decode
/// fails alone; its neighbours in the batch are still encoded. Each image is decoded once for all
/// the requested features; the features of one encoder and view come from one forward pass.
public struct FeatureExtractor: Sendable {
    /// The tower of the settings' own feature.
    public let encoder: ImageEncoder
    /// The first request's feature, the decode limits, the batch size and the orientation rule.
    public var settings: ExtractionSettings
    /// Features computed before are read from here instead of computed again.
    public var cache: FeatureCache?
    /// Features computed beside the settings' own, from the same decoded images: other kinds, views
    /// or encoders (`ExtractedFeature.outputs[1...]`, in this order).
    public var alongside: [FeatureRequest] = []

    /// An extractor on one encoder, reading and filling `cache` when there is one.
    public init(encoder: ImageEncoder, settings: ExtractionSettings = ExtractionSettings(), cache: FeatureCache? = nil) {
        self.encoder = encoder
        self.settings = settings
        self.cache = cache
    }

    /// Width of the first request's feature (each crop's, one after another, for ten-crop).
    public var width: Int { encoder.featureWidth(settings.kind) * settings.view.crops }

    /// Every feature the run computes, the settings' own first.
    public var requests: [FeatureRequest] {
        [FeatureRequest(encoder: encoder, view: settings.view, output: FeatureOutput(kind: settings.kind, normalize: settings.normalize))]
            + alongside
    }

    /// The requests that share a forward pass: one encoder, one view.
    private struct Pass {
        let encoder: ImageEncoder
        let view: InputView
        let preprocessor: Preprocessor
        /// Indices into `requests`.
        let members: [Int]
    }

    private static func passes(_ requests: [FeatureRequest]) -> [Pass] {
        var passes: [Pass] = []
        for (index, request) in requests.enumerated() {
            if let at = passes.firstIndex(where: { $0.encoder === request.encoder && $0.view == request.view }) {
                passes[at] = Pass(encoder: request.encoder, view: request.view, preprocessor: passes[at].preprocessor,
                                  members: passes[at].members + [index])
            } else {
                passes.append(Pass(encoder: request.encoder, view: request.view, preprocessor: Preprocessor(request.encoder.description),
                                   members: [index]))
            }
        }
        return passes
    }

    /// One input after decoding: either its features (all from the cache) or each pass's input.
    private enum Prepared {
        case cached([[Float]])
        case pixels([[Float]], keys: [String?], width: Int, height: Int)
    }

    /// Calls `emit` once per path, in input order, as soon as its batch is done.
    public func run(paths: [String], emit: (Int, Result<[Float], Error>) throws -> Void) throws {
        try run(paths.map(ImageSource.file)) { index, result in try emit(index, result.map(\.values)) }
    }

    /// Calls `emit` once per source, in input order, as soon as its batch is done.
    /// `impairment`: applied in memory after decoding, with each image's index in the run (its
    /// features are then not cached). `wanted`: whether the image at an index is still wanted; one
    /// that is not when its turn comes is neither decoded nor encoded (its result is a `CancellationError`).
    public func run(_ sources: [ImageSource], impairment: ImpairmentChain? = nil, wanted: (@Sendable (Int) -> Bool)? = nil,
                    emit: (Int, Result<ExtractedFeature, Error>) throws -> Void) throws {
        let requests = self.requests, passes = Self.passes(requests)
        var start = 0
        while start < sources.count {
            let batch = Array(sources[start..<min(start + settings.batchSize, sources.count)])
            for (offset, result) in extract(batch, first: start, requests: requests, passes: passes, impairment: impairment, wanted: wanted).enumerated() {
                try emit(start + offset, result)
            }
            start += batch.count
        }
    }

    /// Features of a few images at once (one forward pass per `batchSize`), in order.
    public func features(_ sources: [ImageSource], wanted: (@Sendable (Int) -> Bool)? = nil) -> [Result<ExtractedFeature, Error>] {
        var results: [Result<ExtractedFeature, Error>] = []
        // `extract` throws nothing of its own: every failure is in its image's result.
        try? run(sources, wanted: wanted) { _, result in results.append(result) }
        return results
    }

    private func extract(_ batch: [ImageSource], first: Int, requests: [FeatureRequest], passes: [Pass], impairment: ImpairmentChain?,
                         wanted: (@Sendable (Int) -> Bool)?) -> [Result<ExtractedFeature, Error>] {
        let inputs = prepare(batch, first: first, requests: requests, passes: passes, impairment: impairment, wanted: wanted)
        let pending = inputs.enumerated().compactMap { index, input -> (index: Int, pixels: [[Float]], keys: [String?])? in
            if case .success(.pixels(let pixels, let keys, _, _)) = input { return (index, pixels, keys) }
            return nil
        }
        // [request][pending image]
        var computed = [[[Float]]](repeating: [], count: requests.count)
        var failure: Error?
        if !pending.isEmpty {
            do {
                for (number, pass) in passes.enumerated() {
                    let crops = pass.view.crops
                    // At most a batch of encoder inputs per call: ten crops must not make a pass ten times the memory.
                    var features = pass.members.map { _ in [[Float]]() }
                    for chunk in stride(from: 0, to: pending.count, by: max(1, settings.batchSize / crops)) {
                        let images = pending[chunk..<min(pending.count, chunk + max(1, settings.batchSize / crops))]
                        let part = try pass.encoder.encode(images.flatMap { $0.pixels[number] }, count: images.count * crops,
                                                           outputs: pass.members.map { requests[$0].output })
                        for index in features.indices { features[index] += part[index] }
                    }
                    // An image's crops, one after another, make its feature.
                    for (member, values) in zip(pass.members, features) {
                        computed[member] = crops == 1 ? values : (0..<pending.count).map { Array(values[($0 * crops)..<(($0 + 1) * crops)].joined()) }
                    }
                }
                // A cache that cannot be written costs speed, not results.
                try? cache?.store(pending.enumerated().flatMap { image, item in
                    item.keys.enumerated().compactMap { request, key in key.map { ($0, computed[request][image]) } }
                })
            } catch { failure = error }
        }
        var next = 0
        return inputs.map { input in
            switch input {
            case .failure(let error): return .failure(error)
            case .success(.cached(let features)): return .success(ExtractedFeature(outputs: features, width: nil, height: nil))
            case .success(.pixels(_, _, let width, let height)):
                defer { next += 1 }
                if let failure { return .failure(failure) }
                return .success(ExtractedFeature(outputs: computed.map { $0[next] }, width: width, height: height))
            }
        }
    }

    /// Reads, looks up, decodes and preprocesses a batch on all cores.
    private func prepare(_ sources: [ImageSource], first: Int, requests: [FeatureRequest], passes: [Pass], impairment: ImpairmentChain?,
                         wanted: (@Sendable (Int) -> Bool)?) -> [Result<Prepared, Error>] {
        guard !sources.isEmpty else { return [] }
        let settings = self.settings
        let cache = impairment == nil ? self.cache : nil
        // Each slot is initialised exactly once, so the array owns (and frees) every image's pixels.
        return [Result<Prepared, Error>](unsafeUninitializedCapacity: sources.count) { buffer, initialized in
            let shared = UncheckedSendable(buffer.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: sources.count) { index in
                (shared.value + index).initialize(to: Result {
                    func stillWanted() throws { if let wanted, !wanted(first + index) { throw CancellationError() } }
                    try stillWanted()
                    let name: String?, image: RGBImage, keys: [String?]
                    switch sources[index] {
                    case .decoded(let decoded):
                        (name, image, keys) = (nil, decoded, requests.map { _ in nil })
                    case .file(let path):
                        let data = try ImageDecoder.read(path: path, limits: settings.limits)
                        keys = Self.keys(data, cache: cache, requests: requests, oriented: settings.applyOrientation)
                        if let features = Self.cached(keys, in: cache, requests: requests) { return .cached(features) }
                        (name, image) = (path, try ImageDecoder.decode(data, path: path, limits: settings.limits, applyOrientation: settings.applyOrientation))
                    case .bytes(let data):
                        keys = Self.keys(data, cache: cache, requests: requests, oriented: settings.applyOrientation)
                        if let features = Self.cached(keys, in: cache, requests: requests) { return .cached(features) }
                        (name, image) = (nil, try ImageDecoder.decode(data, limits: settings.limits, applyOrientation: settings.applyOrientation))
                    }
                    // A file's errors name it; an upload's or a decoded image's are named by the caller.
                    // A large image takes a while to decode: it may no longer be wanted after it.
                    try stillWanted()
                    func preprocessed() throws -> Prepared {
                        let impaired = try impairment.map { try $0.apply(image, index: first + index).0 } ?? image
                        return .pixels(try passes.map { try $0.preprocessor(impaired, view: $0.view) }, keys: keys, width: image.width, height: image.height)
                    }
                    return try name.map { try ImageFileError.naming($0, preprocessed) } ?? preprocessed()
                })
            }
            initialized = sources.count
        }
    }

    /// Each request's cache key for these bytes (none without a cache).
    private static func keys(_ data: Data, cache: FeatureCache?, requests: [FeatureRequest], oriented: Bool) -> [String?] {
        guard cache != nil else { return requests.map { _ in nil } }
        let digest = data.sha256
        return requests.map {
            FeatureCache.key(fileDigest: digest, fingerprint: $0.encoder.fingerprint, kind: $0.output.kind, normalized: $0.output.normalize,
                             oriented: oriented, precision: $0.encoder.backend.precision, view: $0.view, settings: $0.encoder.settingsTag)
        }
    }

    /// Every request's feature from the cache, or nil when one is not there.
    private static func cached(_ keys: [String?], in cache: FeatureCache?, requests: [FeatureRequest]) -> [[Float]]? {
        guard let cache else { return nil }
        var features: [[Float]] = []
        for (key, request) in zip(keys, requests) {
            let width = request.encoder.featureWidth(request.output.kind) * request.view.crops
            guard let key, let feature = try? cache.feature(key, width: width, unitCrops: request.output.normalize ? request.view.crops : nil)
            else { return nil }
            features.append(feature)
        }
        return features
    }
}
