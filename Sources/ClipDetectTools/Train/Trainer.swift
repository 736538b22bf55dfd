import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// How `train` fits a head.
public struct TrainingOptions: Sendable {
    /// The linear model fitted: a hinge-loss SVM (the paper's) or logistic regression.
    public var classifier: LinearClassifier = .svm
    /// nil: chosen by stratified k-fold cross-validation over `grid`.
    public var C: Double?
    /// The C values cross-validation tries when `C` is nil, each within `allowedC`.
    public var grid: [Double] = [0.001, 0.01, 0.1, 1, 10, 100, 1000]
    /// Folds of the stratified cross-validation (at least 2).
    public var folds = 5
    /// Weight each class by n / (2 · n_class), as scikit-learn's class_weight='balanced'.
    public var balanced = false
    /// Fit Platt scaling on the cross-validated scores and store it in the head.
    public var calibrate = false
    /// Store the threshold that gives this false-positive rate on the cross-validated real images.
    public var targetFPR: Double?

    /// The defaults: an SVM, C chosen over the grid by 5-fold cross-validation, no calibration or threshold.
    public init() {}

    /// C values a fit can use: below 1e-6 the head is all zeros, above 1e6 the solver does not converge in time.
    public static let allowedC: ClosedRange<Double> = 1e-6...1e6

    /// Refuses settings that would train a meaningless head.
    public func validate() throws {
        for value in (C.map { [$0] } ?? grid) where !(value.isFinite && Self.allowedC.contains(value)) {
            throw TrainingError.invalidOption(String(format: "C = %g is outside %g…%g", value, Self.allowedC.lowerBound, Self.allowedC.upperBound))
        }
        if C == nil && grid.isEmpty { throw TrainingError.invalidOption("no C to search") }
        guard folds >= 2 else { throw TrainingError.invalidOption("cross-validation needs at least 2 folds, not \(folds)") }
        if let targetFPR, !(targetFPR >= 0 && targetFPR < 1) {
            throw TrainingError.invalidOption("target false-positive rate \(targetFPR) is not in [0, 1)")
        }
    }

    /// True when a step needs out-of-fold scores.
    var crossValidates: Bool { C == nil || calibrate || targetFPR != nil }
}

/// Why a head cannot be trained on what was given.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case invalidOption(String)
    /// Cross-validation needs at least one image of each class in every fold.
    case tooFewImages(real: Int, fake: Int, needed: Int, step: String)
    /// The out-of-fold scores do not rank fakes above reals, so a calibration would invert them.
    case calibrationInverted(slope: Double)
    /// Images whose bytes are listed both as real and as fake (names of the later rows).
    case conflictingLabels([String])

    public var description: String {
        switch self {
        case .invalidOption(let why): "invalid training option: \(why)"
        case .tooFewImages(let real, let fake, let needed, let step) where needed <= 1:
            "\(step) needs at least one real and one fake image (have \(real) and \(fake))"
        case .tooFewImages(let real, let fake, let needed, let step):
            "\(step) uses \(needed)-fold cross-validation and needs at least \(needed) real and \(needed) fake images (have \(real) and \(fake))"
        case .calibrationInverted(let slope):
            String(format: "calibration refused: on cross-validated scores the probability would fall as the score rises (slope %.4g); the head does not separate these images: add images or leave calibration out", slope)
        case .conflictingLabels(let names):
            "\(names.count) image(s) have the same bytes as an image of the other label (e.g. \(names[0])): fix the lists"
        }
    }
}

/// What training chose and measured beside the head.
public struct TrainingReport: Sendable {
    /// The C of the final fit: the one given, or the best by cross-validated AUC.
    public var C: Double
    /// Cross-validated AUC for each C tried (empty when C was given).
    public var search: [(C: Double, auc: Double)] = []
    /// Cross-validated AUC at the chosen C.
    public var crossValidatedAUC: Double?
    /// Platt scaling fitted on the cross-validated scores, when asked.
    public var calibration: Head.Calibration?
    /// The threshold for the target false-positive rate, when asked.
    public var threshold: Double?
    /// TPR of the cross-validated fakes at `threshold`, and the FPR actually reached.
    public var thresholdTPR: Double?
    /// The false-positive rate reached at `threshold` on the cross-validated real images.
    public var thresholdFPR: Double?
    /// What the user should know about the result (e.g. a cross-validated AUC at chance).
    public var warnings: [String] = []
}

/// Fitting a linear head on features, the paper's recipe: C by cross-validation, then one fit on all images.
public enum Trainer {
    /// Fits a head on features; cross-validation picks C, calibrates and sets the threshold when asked.
    public static func train(_ data: TrainingSet, options: TrainingOptions, name: String, feature: Head.Feature,
                             provenance: String?) throws -> (Head, TrainingReport) {
        try options.validate()
        guard data.positives > 0, data.negatives > 0 else {
            throw TrainingError.tooFewImages(real: data.negatives, fake: data.positives, needed: 1, step: "training")
        }
        if options.crossValidates, min(data.positives, data.negatives) < options.folds {
            let step = options.C == nil ? "choosing C" : options.calibrate ? "calibration" : "the target false-positive rate"
            throw TrainingError.tooFewImages(real: data.negatives, fake: data.positives, needed: options.folds, step: step)
        }
        let folds = CrossValidation.stratifiedFolds(labels: data.labels, folds: options.folds)
        // Cross-validation ranks settings: scikit-learn's defaults (stopping gap 1e-4, at most 1000
        // passes) are plenty there; only the final fit runs to the tight gap.
        let (classifier, balanced) = (options.classifier, options.balanced)
        let fit: @Sendable (Double, TrainingSet) -> LinearClassifier.Model = { C, subset in
            classifier.fit(subset, C: C, balanced: balanced, tolerance: 1e-4, passes: 1000)
        }
        var report = TrainingReport(C: options.C ?? 1)
        var outOfFold: [Double]? = nil
        if options.C == nil {
            let searched = CrossValidation.predictions(data, folds: folds, settings: options.grid, fit: fit)
            for (C, predictions) in zip(options.grid, searched) {
                let auc = Metrics.auc(labels: data.labels, scores: predictions)
                report.search.append((C, auc))
                if auc > (report.crossValidatedAUC ?? -1) {
                    report.C = C
                    report.crossValidatedAUC = auc
                    outOfFold = predictions
                }
            }
        }
        if (options.calibrate || options.targetFPR != nil) && outOfFold == nil {
            outOfFold = CrossValidation.predictions(data, folds: folds, settings: [report.C], fit: fit)[0]
            report.crossValidatedAUC = Metrics.auc(labels: data.labels, scores: outOfFold!)
        }
        if let auc = report.crossValidatedAUC, auc <= 0.5 {
            report.warnings.append(String(format: "cross-validated AUC %.4f is at or below chance: the features do not separate these classes", auc))
        }
        let model = classifier.fit(data, C: report.C, balanced: balanced, tolerance: 1e-8)
        if options.calibrate, let outOfFold {
            let (a, b) = PlattScaling.fit(scores: outOfFold, labels: data.labels)
            guard a > 0 else { throw TrainingError.calibrationInverted(slope: a) }
            report.calibration = .platt(a: a, b: b)
        }
        if let target = options.targetFPR, let outOfFold {
            let reals = data.labels.indices.filter { !data.labels[$0] }.map { outOfFold[$0] }
            let point = try OperatingPoint.choose(realScores: reals, targetFPR: target)
            let fakes = data.labels.indices.filter { data.labels[$0] }.map { outOfFold[$0] }
            report.threshold = point.threshold
            report.thresholdFPR = point.achievedFPR
            report.thresholdTPR = Double(fakes.filter { $0 > point.threshold }.count) / Double(max(fakes.count, 1))
        }
        let head = Head(weights: model.weights.map { Float($0) }, bias: Float(model.bias),
                        metadata: Head.Metadata(name: name, feature: feature, calibration: report.calibration,
                                                threshold: report.threshold, provenance: provenance))
        return (head, report)
    }

    /// Leave one generator out: train on the reals of the other folds and every other generator's
    /// fakes; test on the held-out reals and that generator's fakes. Returns (generator, AUC, balanced accuracy).
    public static func leaveOneGeneratorOut(_ data: TrainingSet, generators: [String], options: TrainingOptions) throws
        -> [(generator: String, auc: Double, balancedAccuracy: Double)] {
        precondition(generators.count == data.labels.count, "one generator name per sample")
        try options.validate()
        let names = Array(Set(zip(generators, data.labels).filter { $0.1 }.map { $0.0 })).sorted()
        let reals = data.labels.indices.filter { !data.labels[$0] }
        guard names.count >= 2 else {
            throw TrainingError.invalidOption("leaving one generator out needs fakes of at least two generators (have \(names.count))")
        }
        guard reals.count >= names.count else {
            throw TrainingError.tooFewImages(real: reals.count, fake: data.positives, needed: names.count, step: "leaving one generator out")
        }
        var generator = SeededGenerator(seed: 2)
        let shuffled = reals.shuffled(using: &generator)
        // One fit per generator, spread over the cores.
        var results = [(generator: String, auc: Double, balancedAccuracy: Double)](repeating: ("", 0, 0), count: names.count)
        results.withUnsafeMutableBufferPointer { buffer in
            let shared = UncheckedSendable(buffer)
            DispatchQueue.concurrentPerform(iterations: names.count) { j in
                let name = names[j]
                let heldReals = Set(shuffled.enumerated().filter { $0.offset % names.count == j }.map(\.element))
                let train = data.labels.indices.filter { data.labels[$0] ? generators[$0] != name : !heldReals.contains($0) }
                let test = data.labels.indices.filter { data.labels[$0] ? generators[$0] == name : heldReals.contains($0) }
                let model = options.classifier.fit(data.subset(train), C: options.C ?? 1, balanced: options.balanced)
                let scores = test.map { model.decision(data.features[$0]) }
                let labels = test.map { data.labels[$0] }
                shared.value[j] = (name, Metrics.auc(labels: labels, scores: scores),
                                   Metrics.balancedAccuracy(labels: labels, predictions: scores.map { $0 > 0 }))
            }
        }
        return results
    }
}

extension TrainingSet {
    /// The images with each file's bytes once: a copy under the same label is left out (it is no new
    /// evidence, and cross-validation would score it against itself) and named in `duplicates`; a
    /// copy under the other label is refused. A file that cannot be read is kept, to fail where it is
    /// encoded with its own error. Checked before the model loads; only files whose size another
    /// shares are read for it (a copy has the same size), so most are read once, when encoded.
    public static func distinct(_ images: [LabeledImage], limits: DecodeLimits) throws(TrainingError) -> (images: [LabeledImage], duplicates: [String]) {
        var seen: [String: (isSynthetic: Bool, name: String)] = [:], kept: [LabeledImage] = [], duplicates: [String] = [], conflicts: [String] = []
        let sizes = images.map { image -> Int? in
            var info = stat()
            return PathName.withCString(image.item.path) { stat($0, &info) } == 0 ? Int(info.st_size) : nil
        }
        var sharing: [Int: Int] = [:]
        for size in sizes.compactMap({ $0 }) { sharing[size, default: 0] += 1 }
        for (image, size) in zip(images, sizes) {
            guard let size, sharing[size]! > 1, let bytes = try? ImageDecoder.read(path: image.item.path, limits: limits) else { kept.append(image); continue }
            let digest = bytes.sha256
            if let earlier = seen[digest] {
                if earlier.isSynthetic == image.isSynthetic {
                    duplicates.append(image.item.name)
                } else {
                    conflicts.append("\(image.item.name) (\(image.isSynthetic ? "fake" : "real"); \(earlier.name) is \(earlier.isSynthetic ? "fake" : "real"))")
                }
                continue
            }
            seen[digest] = (image.isSynthetic, image.item.name)
            kept.append(image)
        }
        guard conflicts.isEmpty else { throw .conflictingLabels(conflicts) }
        return (kept, duplicates)
    }

    /// The features of labelled images, as `train` assembles them: an image that cannot be read
    /// is left out (its error passed to `progress`), the others keep their labels and generators.
    public static func assemble(_ images: [LabeledImage], with extractor: FeatureExtractor,
                                progress: (Int, Result<[Float], Error>) -> Void = { _, _ in }) throws -> (set: TrainingSet, generators: [String]) {
        var features: [[Float]] = [], labels: [Bool] = [], generators: [String] = []
        try extractor.run(paths: images.map(\.item.path)) { index, result in
            progress(index, result)
            guard case .success(let feature) = result else { return }
            features.append(feature)
            labels.append(images[index].isSynthetic)
            generators.append(images[index].type)
        }
        return (TrainingSet(features: features, labels: labels), generators)
    }
}

extension TrainingError: ClassifiedError {
    public var kind: FailureKind {
        switch self {
        case .invalidOption, .calibrationInverted, .conflictingLabels: .invalidInput
        case .tooFewImages: .tooSmall
        }
    }
}
