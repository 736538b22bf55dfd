import ClipDetectCore
import ClipDetectEncoder
import Foundation

/// Does a verdict survive re-sharing? The image is scored again under `draws` seeded draws of an
/// impairment chain (by default `reshare`: resized and re-encoded as platforms do), and the share
/// of draws whose verdict agrees with the clean one is reported. Costs `draws` extra forward passes
/// per image, batched together.
public struct StabilityCheck: Sendable, Equatable {
    public var draws: Int
    public var chain: ImpairmentChain
    /// A verdict is stable when at least this share of the draws agrees with it (1: every draw).
    public var minimumAgreement: Double

    public static let maxDraws = 256
    /// The columns a stability check adds to a detection table, after the verdict.
    public static let columns = Head.stabilityColumns

    public init(draws: Int, chain: ImpairmentChain, minimumAgreement: Double = 1) throws(CalibrationError) {
        guard (1...Self.maxDraws).contains(draws) else { throw .invalid("stability draws must be 1…\(Self.maxDraws), not \(draws)") }
        guard minimumAgreement > 0, minimumAgreement <= 1 else { throw .invalid("stability agreement must be in (0, 1]") }
        self.draws = draws
        self.chain = chain
        self.minimumAgreement = minimumAgreement
    }

    public struct Result: Sendable, Equatable, Codable {
        /// Share of the draws that could be scored whose verdict equals the clean one; nil when none could.
        public var agreement: Double?
        public var minScore: Double?
        public var medianScore: Double?
        public var maxScore: Double?
        /// nil when no draw could be scored: the verdict was not tested.
        public var isStable: Bool?
        /// Draws that could not be made or scored (e.g. an image too small for a crop), and why the first failed.
        public var failedDraws: Int
        public var failure: String?
    }

    /// The clean verdict and its stability, for an image already decoded. Draw j uses the chain's
    /// seed and j, so an image gets the same draws wherever it is in a list. The clean pass and the
    /// draws share forward passes a batch at a time, so at most a batch of copies is in memory.
    public func check(_ image: RGBImage, with detector: Detector) throws -> (Detection, Result) {
        let batch = detector.settings.batchSize, maxPixels = detector.settings.limits.maxPixels
        var clean: Detection?, scored: [Swift.Result<Detection, Error>] = [], failures: [String] = []
        var next = 0
        repeat {
            let first = clean == nil ? 1 : 0
            let made = try self.draws(of: image, indices: next..<min(draws, next + batch - first), maxPixels: maxPixels)
            next = min(draws, next + batch - first)
            failures += made.failures
            let results = detector.detect((first == 1 ? [.decoded(image)] : []) + made.sources)
            if clean == nil { clean = try results[0].get() }
            scored += results.dropFirst(first)
        } while next < draws
        return (clean!, summary(clean: clean!, draws: scored, failures: failures))
    }

    /// The impaired copies to score (a front end may batch them with others), and why the others could not be made.
    /// `wanted`: asked before each draw; once false, no more are made (and `CancellationError` is thrown).
    public func draws(of image: RGBImage, maxPixels: Int, wanted: () -> Bool = { true }) throws -> (sources: [ImageSource], failures: [String]) {
        try draws(of: image, indices: 0..<draws, maxPixels: maxPixels, wanted: wanted)
    }

    func draws(of image: RGBImage, indices: Range<Int>, maxPixels: Int, wanted: () -> Bool = { true }) throws -> (sources: [ImageSource], failures: [String]) {
        var sources: [ImageSource] = [], failures: [String] = []
        for j in indices {
            guard wanted() else { throw CancellationError() }
            do { sources.append(.decoded(try chain.apply(image, index: j, maxPixels: maxPixels).0)) } catch { failures.append("\(error)") }
        }
        return (sources, failures)
    }

    /// Agreement and score spread of the draws' verdicts against the clean one.
    public func summary(clean: Detection, draws results: [Swift.Result<Detection, Error>], failures: [String]) -> Result {
        var failures = failures
        var drawn: [Detection] = []
        for result in results {
            switch result {
            case .success(let detection): drawn.append(detection)
            case .failure(let error): failures.append("\(error)")
            }
        }
        guard !drawn.isEmpty else {
            return Result(agreement: nil, minScore: nil, medianScore: nil, maxScore: nil, isStable: nil, failedDraws: failures.count,
                          failure: failures.first)
        }
        let scores = drawn.map(\.score).sorted()
        let n = scores.count
        let median = n % 2 == 1 ? scores[n / 2] : (scores[n / 2 - 1] + scores[n / 2]) / 2
        let agreement = Double(drawn.filter { $0.verdict == clean.verdict }.count) / Double(n)
        return Result(agreement: agreement, minScore: scores[0], medianScore: median, maxScore: scores[n - 1],
                      isStable: agreement >= minimumAgreement, failedDraws: failures.count, failure: failures.first)
    }

    /// The same for sources (files, bytes): decoded once with the detector's settings.
    public func check(_ source: ImageSource, with detector: Detector) throws -> (Detection, Result) {
        let settings = detector.settings
        let image: RGBImage
        switch source {
        case .decoded(let decoded): image = decoded
        case .file(let path):
            let data = try ImageDecoder.read(path: path, limits: settings.limits)
            image = try ImageDecoder.decode(data, path: path, limits: settings.limits, applyOrientation: settings.applyOrientation)
        case .bytes(let data):
            image = try ImageDecoder.decode(data, limits: settings.limits, applyOrientation: settings.applyOrientation)
        }
        // A file's image errors (too small for a crop) name it.
        let scored = { try self.check(image, with: detector) }
        var (detection, result) = if case .file(let path) = source { try ImageFileError.naming(path, scored) } else { try scored() }
        (detection.imageWidth, detection.imageHeight) = (image.width, image.height)
        return (detection, result)
    }
}
