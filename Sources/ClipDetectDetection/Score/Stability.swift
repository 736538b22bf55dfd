import ClipDetectCore
import ClipDetectEncoder
import Foundation

/// Does a verdict survive re-sharing? The image is scored again under `draws` seeded draws of an
/// impairment chain (by default `reshare`: resized and re-encoded as platforms do), and the share
/// of draws whose verdict agrees with the clean one is reported. Costs `draws` extra forward passes
/// per image, batched together.
public struct StabilityCheck: Sendable, Equatable {
    /// Impaired copies scored per image, 1…`maxDraws`.
    public var draws: Int
    /// The impairments drawn for each copy, seeded by the chain's seed and the draw's number.
    public var chain: ImpairmentChain
    /// A verdict is stable when at least this share of the draws agrees with it (1: every draw).
    public var minimumAgreement: Double

    /// The most draws a check may ask for.
    public static let maxDraws = 256
    /// The columns a stability check adds to a detection table, after the verdict.
    public static let columns = Head.stabilityColumns

    /// A check of `draws` copies; refuses a number of draws or an agreement outside its bounds.
    public init(draws: Int, chain: ImpairmentChain, minimumAgreement: Double = 1) throws(CalibrationError) {
        guard (1...Self.maxDraws).contains(draws) else { throw .invalid("stability draws must be 1…\(Self.maxDraws), not \(draws)") }
        guard minimumAgreement > 0, minimumAgreement <= 1 else { throw .invalid("stability agreement must be in (0, 1]") }
        self.draws = draws
        self.chain = chain
        self.minimumAgreement = minimumAgreement
    }

    /// What the draws said of one image: the stability columns of a detection table.
    public struct Result: Sendable, Equatable, Codable {
        /// Share of the draws that could be scored whose verdict equals the clean one; nil when none could.
        public var agreement: Double?
        /// The lowest score of the draws scored (the fused one, or the only head's).
        public var minScore: Double?
        /// The median score of the draws scored.
        public var medianScore: Double?
        /// The highest score of the draws scored.
        public var maxScore: Double?
        /// nil when no draw could be scored: the verdict was not tested.
        public var isStable: Bool?
        /// Draws that could not be made or scored (e.g. an image too small for a crop), and why the first failed.
        public var failedDraws: Int
        /// The first failed draw's error, as text; nil when none failed.
        public var failure: String?
    }

    /// The clean verdict and its stability, for an image already decoded or a source (decoded once
    /// with the detector's settings). Draw j uses the chain's seed and j, so an image gets the same
    /// draws wherever it is in a list. A batch at a time: at most a batch of copies is in memory.
    public func check(_ source: ImageSource, with detector: Detector) throws -> (Detection, Result) {
        var plan = StabilityPlan([source], check: self, settings: detector.settings)
        while true {
            let batch = plan.next(upTo: detector.settings.batchSize)
            if batch.isEmpty { break }
            plan.record(detector.detect(batch))
        }
        let (detection, stability) = plan.finished()[0].outcome
        return (try detection.get(), stability!)
    }

    /// The clean verdict and its stability for an image already decoded.
    public func check(_ image: RGBImage, with detector: Detector) throws -> (Detection, Result) {
        try check(.decoded(image), with: detector)
    }

    /// Agreement and score spread of the draws' verdicts against the clean one.
    func summary(clean: Detection, draws results: [Swift.Result<Detection, Error>], failures: [String]) -> Result {
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
}

/// Images with their stability draws, laid out for scoring in passes of any size, and their
/// verdicts read back as each image's last pass comes in. One plan serves a command line that
/// scores a batch at a time (memory: one decoded image and a batch of copies) and a service that
/// sends a request's images and draws to its queue at once.
public struct StabilityPlan: Sendable {
    /// The check whose draws the plan lays out.
    public let check: StabilityCheck
    private let settings: ExtractionSettings
    private let holdDecoded: Bool
    private var items: [Item]
    /// The image the next source comes from, and what the last `next` handed out (image, clean?).
    private var cursor = 0
    private var handedOut: [(item: Int, clean: Bool)] = []
    private var reported = 0

    // Errors are kept as the values they are; a plan is used by one thread at a time.
    private struct Item: @unchecked Sendable {
        var source: ImageSource
        var image: RGBImage?
        var nextDraw = 0
        var failures: [String] = []
        var error: Error?
        var clean: Swift.Result<Detection, Error>?
        var drawn: [Swift.Result<Detection, Error>] = []
        var expected = 0
        var sent = false
    }

    /// `holdDecoded`: the clean pass goes as the image decoded for the draws (decoded once); false,
    /// as given (a file or bytes, decoded again in the pass, so that the full-size image is not
    /// held while it waits in a queue).
    public init(_ sources: [ImageSource], check: StabilityCheck, settings: ExtractionSettings, holdDecoded: Bool = true) {
        self.check = check
        self.settings = settings
        self.holdDecoded = holdDecoded
        items = sources.map { Item(source: $0) }
    }

    /// The next at most `count` sources to score, in order (an image's clean pass, then its draws);
    /// empty when every image is out. An image is decoded when its turn comes and let go once its
    /// draws are made. `wanted` is asked before each image and draw: once false, no more are made
    /// and the images not finished fail with `CancellationError`.
    public mutating func next(upTo count: Int, wanted: () -> Bool = { true }) -> [ImageSource] {
        precondition(handedOut.isEmpty, "record the last sources' results first")
        var sources: [ImageSource] = []
        while sources.count < count, cursor < items.count {
            guard wanted() else {
                for index in cursor..<items.count { (items[index].error, items[index].image) = (CancellationError(), nil) }
                cursor = items.count
                break
            }
            var item = items[cursor]
            if item.image == nil && !item.sent {
                do { item.image = try item.source.decoded(with: settings) } catch {
                    item.error = error
                    items[cursor] = item
                    cursor += 1
                    continue
                }
            }
            if !item.sent {
                item.sent = true
                sources.append(holdDecoded ? .decoded(item.image!) : item.source)
                handedOut.append((cursor, true))
            } else if item.nextDraw < check.draws {
                let j = item.nextDraw
                item.nextDraw += 1
                do {
                    sources.append(.decoded(try check.chain.apply(item.image!, index: j, maxPixels: settings.limits.maxPixels).0))
                    handedOut.append((cursor, false))
                    item.expected += 1
                } catch { item.failures.append("\(error)") }
            }
            if item.nextDraw == check.draws {
                item.image = nil
                items[cursor] = item
                cursor += 1
            } else {
                items[cursor] = item
            }
        }
        return sources
    }

    /// The results of the sources the last `next` gave, in their order.
    public mutating func record(_ scored: [Swift.Result<Detection, Error>]) {
        precondition(scored.count == handedOut.count, "one result per source given out")
        for ((item, clean), result) in zip(handedOut, scored) {
            if clean { items[item].clean = result } else { items[item].drawn.append(result) }
        }
        handedOut = []
    }

    /// The images done since the last call, in order: every pass of theirs recorded (or their
    /// decoding failed), each with its clean result and stability (nil when the clean pass failed).
    public mutating func finished() -> [(index: Int, outcome: (Swift.Result<Detection, Error>, StabilityCheck.Result?))] {
        var done: [(index: Int, outcome: (Swift.Result<Detection, Error>, StabilityCheck.Result?))] = []
        while reported < items.count {
            let item = items[reported]
            if let error = item.error {
                done.append((reported, (.failure(error), nil)))
            } else if reported < cursor, let clean = item.clean, item.drawn.count == item.expected {
                done.append((reported, (clean, try? check.summary(clean: clean.get(), draws: item.drawn, failures: item.failures))))
            } else {
                break
            }
            items[reported].drawn = []
            reported += 1
        }
        return done
    }
}

extension ImageSource {
    /// The image, decoded with `settings` (a file's errors name it).
    func decoded(with settings: ExtractionSettings) throws -> RGBImage {
        switch self {
        case .decoded(let image): image
        case .file(let path): try ImageDecoder.decode(ImageDecoder.read(path: path, limits: settings.limits), path: path,
                                                       limits: settings.limits, applyOrientation: settings.applyOrientation)
        case .bytes(let data): try ImageDecoder.decode(data, limits: settings.limits, applyOrientation: settings.applyOrientation)
        }
    }
}
