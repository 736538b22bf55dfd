import ArgumentParser
import ClipDetect
import Foundation

extension Calibrator.Method: ExpressibleByArgument {}

struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate", abstract: "Fit a head's threshold, probability and uncertain band to your own images.",
        discussion: """
            With real images only: the threshold at --target-fpr (default 0.01) on them, with a 95% interval for the
            rate achieved. With real and synthetic images: also a probability map (--method, default platt), with
            reliability before and after, and optionally a band where the verdict is `uncertain`. The weights are
            not changed; the new head records how many images it was calibrated on and a hash of them. Several --head
            files (or a head set) calibrate their fused score: the output is then a head set, which detect, eval and serve
            read as one detector with that fusion.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var progressOptions: ProgressOptions
    @OptionGroup var headOptions: HeadOptions
    @Option(help: "Real images from your own source: a folder, a CSV with a filename column, or a text list (repeatable).") var real: [String] = []
    @Option(help: "Synthetic images: a folder, a CSV or a text list (repeatable).") var fake: [String] = []
    @Option(help: "Set the threshold so that at most this share of the real images is called synthetic.") var targetFpr: Double?
    @Option(help: "platt or isotonic (needs --fake).") var method: Calibrator.Method?
    @Option(help: ArgumentHelp("Uncertain where P(synthetic) is strictly between LOW and HIGH.", valueName: "low,high")) var band: String?
    @Option(help: "Uncertain where either verdict would be wrong more often than this by the calibrated probability: P in (X, 1 − X) (needs --method or a calibrated head).")
    var bandError: Double?
    @Option(help: "Confidence of the false-positive rate's interval.") var confidence = 0.95
    @Option(help: "Images per forward pass (1…256).") var batch = 8
    @Option(name: [.customShort("o"), .long], help: "Output head (.safetensors).") var output: String

    func validate() throws {
        if headOptions.heads.isEmpty { throw ValidationError("give --head: the head (or heads) to calibrate") }
        if !(1...256).contains(batch) { throw ValidationError("--batch takes 1…256") }
        if real.isEmpty { throw ValidationError("give --real: images from your own source") }
        if let targetFpr, !(targetFpr >= 0 && targetFpr < 1) { throw ValidationError("--target-fpr takes a rate in [0, 1)") }
        if band != nil && bandError != nil { throw ValidationError("give --band or --band-error, not both") }
        if fake.isEmpty && method != nil { throw ValidationError("--method needs --fake images") }
        if let bandError, !(bandError > 0 && bandError < 0.5) { throw ValidationError("--band-error takes a rate in (0, 0.5)") }
        if !(confidence > 0 && confidence < 1) { throw ValidationError("--confidence takes a level in (0, 1)") }
        _ = try VerdictOptions.parse(band)
        try checkWritable(output)
        try refuseStandardOutput(output, holding: "head")
    }

    var options: Calibrator.Options {
        get throws {
            var options = Calibrator.Options(method: method, targetFPR: targetFpr, confidence: confidence)
            if let band = try VerdictOptions.parse(band) { options.band = .probabilities(low: band.low, high: band.high) }
            if let bandError { options.band = .errorRate(bandError) }
            // With synthetic images a probability is always fitted (Platt unless told); from real
            // images alone, a threshold at 1% unless something else was asked.
            if !fake.isEmpty && options.method == nil { options.method = .platt }
            if fake.isEmpty && options.targetFPR == nil && options.band == nil { options.targetFPR = 0.01 }
            return options
        }
    }

    func run() throws {
        let options = try self.options
        let detector = try modelOptions.loadDetector(headOptions, configuration: Detector.Configuration(batchSize: batch)).detector
        let fused = detector.heads.count > 1
        // Checked before any image is scored: without synthetic images no probability is fitted.
        if bandError != nil, fake.isEmpty, detector.decision.calibration == nil {
            throw CommandError("--band-error reads the calibrated probability: give --fake images (a method is fitted), or a head already calibrated, or --band")
        }
        let images = try Inputs.labeled(csv: nil, real: real, fake: fake)
        try refuseOverwritingInputs(output, headOptions.heads + real + fake + images.map(\.item.path) + modelOptions.files)
        let progress = Progress(total: images.count, label: "calibrate", quiet: progressOptions.quiet)
        let data = CalibrationData.score(images, with: detector) { done, failed in
            while progress.done < done { progress.advance(failed: progress.failed < failed) }
        }
        progress.finish()
        for failure in data.failures { printError("skipped \(failure.name): \(failure.error)") }
        if !data.duplicates.isEmpty {
            printError("counted once: \(data.duplicates.count) image(s) with the same bytes as another of the same label (e.g. \(data.duplicates[0]))")
        }
        guard data.conflicts.isEmpty else {
            throw CommandError("\(data.conflicts.count) image(s) are listed as both real and synthetic (e.g. \(data.conflicts[0])): fix the lists")
        }
        let detectorName = fused ? "\(detector.fusion.rawValue) of \(detector.heads.map(\.metadata.name).joined(separator: ", "))" : detector.heads[0].metadata.name
        print("scored \(data.realScores.count) real and \(data.fakeScores.count) synthetic images with \(detectorName)")
        let write: () throws -> Void, rule: DecisionRule, report: Calibrator.Report
        if fused {
            (rule, report) = try Calibrator.calibrate(rule: detector.decision, realScores: data.realScores, fakeScores: data.fakeScores, options: options)
            let set = HeadSet(heads: detector.heads, fusion: detector.fusion, decision: rule,
                              calibrationSet: Calibrator.record(data.record(), options))
            write = { try set.write(to: output) }
        } else {
            let calibrated: Head
            (calibrated, report) = try Calibrator.calibrate(detector.heads[0], realScores: data.realScores, fakeScores: data.fakeScores,
                                                            options: options, set: data.record())
            rule = calibrated.decision
            write = { try calibrated.write(to: output) }
        }
        if let point = report.operatingPoint { print(point.summary) }
        if let calibration = rule.calibration { print("probability: \(calibration.summary)") }
        for (title, reliability) in [("before", report.before), ("after (on these images)", report.after),
                                     ("after (5-fold cross-validated: expect this on new images)", report.crossValidated)] {
            guard let reliability else { continue }
            print(String(format: "reliability %@: ECE %.4f, NLL %.4f, Brier %.4f", title, reliability.ece, reliability.nll, reliability.brier))
        }
        if let after = report.after {
            print("  P(synthetic)    images  mean predicted  share synthetic")
            for bin in after.bins where bin.count > 0 {
                print(String(format: "  %.1f–%.1f  %11d  %14.3f  %15.3f", bin.low, bin.high, bin.count, bin.predicted, bin.observed))
            }
        }
        if let band = report.band {
            print(String(format: "uncertain band: %@ in (%.6g, %.6g)", band.scale == .probability ? "P(synthetic)" : "score", band.low, band.high))
        }
        if let coverage = report.coverage {
            print(String(format: "coverage %.1f%% of these images decided", 100 * coverage)
                  + (report.coveredAccuracy.map { String(format: ", balanced accuracy %.3f on those", $0) } ?? ""))
        }
        for note in report.notes {
            let hint = switch note {
            case .thresholdDropped: " (give --target-fpr to set one)"
            case .bandDropped: ": give --band or --band-error for a new one"
            case .bandWidened: ""
            }
            printError("note: \(note)\(hint)")
        }
        try write()
        print("wrote \(output)" + (fused ? " (a head set: give it alone as --head)" : ""))
    }
}
