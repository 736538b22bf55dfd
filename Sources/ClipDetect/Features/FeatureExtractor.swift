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

    /// Calls `emit` once per path, in input order, as soon as its batch is done.
    public func run(paths: [String], emit: (Int, Result<[Float], Error>) throws -> Void) throws {
        var start = 0
        while start < paths.count {
            let batch = Array(paths[start..<min(start + batchSize, paths.count)])
            let inputs = prepare(batch)
            let ready = inputs.enumerated().compactMap { index, input in (try? input.get()).map { (index, $0) } }
            var features: [Int: Result<[Float], Error>] = [:]
            if !ready.isEmpty {
                do {
                    let encoded = try encoder.encode(ready.flatMap { $0.1 }, count: ready.count, kind: kind, normalize: normalize)
                    for ((index, _), feature) in zip(ready, encoded) { features[index] = .success(feature) }
                } catch {
                    for (index, _) in ready { features[index] = .failure(error) }
                }
            }
            for index in batch.indices {
                if case .failure(let error) = inputs[index] {
                    try emit(start + index, .failure(error))
                } else {
                    try emit(start + index, features[index]!)
                }
            }
            start += batch.count
        }
    }

    /// Decodes and preprocesses a batch on all cores.
    private func prepare(_ paths: [String]) -> [Result<[Float], Error>] {
        let results = UnsafeMutableBufferPointer<Result<[Float], Error>>.allocate(capacity: paths.count)
        results.initialize(repeating: .success([]))
        defer { results.deallocate() }
        let shared = UncheckedSendable(results)
        let preprocessor = self.preprocessor, limits = self.limits, orient = applyOrientation
        DispatchQueue.concurrentPerform(iterations: paths.count) { index in
            shared.value[index] = Result {
                preprocessor(try ImageDecoder.decode(path: paths[index], limits: limits, applyOrientation: orient))
            }
        }
        return Array(results)
    }
}
