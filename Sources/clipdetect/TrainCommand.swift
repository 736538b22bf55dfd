import ArgumentParser
import ClipDetect
import Foundation

extension LinearClassifier: ExpressibleByArgument {}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Fit a head on real and fake images (few-shot, as the paper).")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var cacheOptions: CacheOptions
    @OptionGroup var progressOptions: ProgressOptions
    @Option(help: "Real images: a folder, a CSV with a filename column, or a text list (repeatable).") var real: [String] = []
    @Option(help: "Fake images: a folder, a CSV or a text list (repeatable).") var fake: [String] = []
    @Option(help: "A CSV with filename and typ (real, or the generator's name).") var csv: String?
    @Option(help: "svm (hinge loss, as the paper) or logreg.") var classifier: LinearClassifier = .svm
    @Option(name: .customLong("C"), help: "Regularisation: a number, or auto (stratified 5-fold CV over 1e-3 … 1e3).") var C = "auto"
    @Option(help: "balanced: weight each class by n / (2 · n_class).") var classWeight: String?
    @Flag(help: "Fit Platt scaling on cross-validated scores: detect then reports a calibrated probability.") var calibrate = false
    @Option(help: "Store the threshold giving this false-positive rate on the cross-validated real images.") var targetFpr: Double?
    @Option(help: "leave-one-generator-out: also report AUC and accuracy on each generator left out (needs --csv).") var cv: String?
    @Option(help: "Head name (its score column in detect's output).") var name: String?
    @Option(name: [.customShort("o"), .long], help: "Output head (.safetensors).") var output: String

    func validate() throws {
        if csv == nil && (real.isEmpty || fake.isEmpty) { throw ValidationError("give --real and --fake, or --csv") }
        if C != "auto" && Double(C) == nil { throw ValidationError("--C takes a number or auto") }
        if let classWeight, classWeight != "balanced" { throw ValidationError("--class-weight takes balanced") }
        if let cv, cv != "leave-one-generator-out" { throw ValidationError("--cv takes leave-one-generator-out") }
        if cv != nil && csv == nil { throw ValidationError("--cv leave-one-generator-out needs --csv with generator names in typ") }
        do { try options.validate() } catch { throw ValidationError("\(error)") }
        try checkWritable(output)
        try refuseStandardOutput(output, holding: "head")
    }

    var options: TrainingOptions {
        var options = TrainingOptions()
        options.classifier = classifier
        options.C = Double(C)
        options.balanced = classWeight == "balanced"
        options.calibrate = calibrate
        options.targetFPR = targetFpr
        return options
    }

    var headName: String { name ?? URL(fileURLWithPath: output).deletingPathExtension().lastPathComponent }

    func run() throws {
        // Before any work: the name is the score column of every later run.
        try Head.validate(name: headName, source: "--name")
        let listed = try Inputs.labeled(csv: csv, real: real, fake: fake)
        try refuseOverwritingInputs(output, (csv.map { [$0] } ?? []) + real + fake + listed.map(\.item.path) + modelOptions.files + cacheOptions.files)
        let (images, duplicates) = try TrainingSet.distinct(listed, limits: DecodeLimits())
        if !duplicates.isEmpty {
            printError("counted once: \(duplicates.count) image(s) with the same bytes as another of the same label (e.g. \(duplicates[0]))")
        }
        if cv != nil, Set(images.filter(\.isSynthetic).map(\.type)).count < 2 {
            throw CommandError("--cv leave-one-generator-out needs fakes of at least two generators in typ")
        }
        let loaded = try modelOptions.load()
        let extractor = FeatureExtractor(encoder: loaded.encoder, cache: cacheOptions.open())
        let progress = Progress(total: images.count, label: "train", quiet: progressOptions.quiet)
        let (data, generators) = try TrainingSet.assemble(images, with: extractor) { _, result in
            progress.advance(failed: (try? result.get()) == nil)
            if case .failure(let error) = result { printError("skipped: \(error)") }
        }
        progress.finish()
        printError("features: \(data.negatives) real, \(data.positives) fake")

        let options = self.options
        let feature = Head.Feature(encoder: loaded.encoder, backbone: loaded.backbone)
        let provenance = "trained by clipdetect: \(classifier.rawValue), \(data.negatives) real + \(data.positives) fake"
        let (head, report) = try Trainer.train(data, options: options, name: headName, feature: feature, provenance: provenance)
        for (c, auc) in report.search { print(String(format: "C = %-8g  CV AUC %.4f", c, auc)) }
        print("chosen C = \(report.C)" + (report.crossValidatedAUC.map { String(format: ", cross-validated AUC %.4f", $0) } ?? ""))
        for warning in report.warnings { printError("warning: \(warning)") }
        if let calibration = report.calibration { print("calibration: \(calibration.summary)") }
        if let threshold = report.threshold, let tpr = report.thresholdTPR, let fpr = report.thresholdFPR {
            print(String(format: "threshold %.4f: FPR %.4f on cross-validated reals, TPR %.4f", threshold, fpr, tpr))
        }
        if cv != nil {
            print("leave one generator out (C = \(report.C)):")
            var chosen = options
            chosen.C = report.C
            for row in try Trainer.leaveOneGeneratorOut(data, generators: generators, options: chosen) {
                print("  " + row.generator.padding(toLength: 24, withPad: " ", startingAt: 0) + String(format: "AUC %.4f  acc %.4f", row.auc, row.balancedAccuracy))
            }
        }
        try head.write(to: output)
        print("wrote \(output)")
    }
}
