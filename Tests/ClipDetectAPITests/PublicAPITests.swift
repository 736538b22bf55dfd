import ClipDetect
import ClipDetectTestSupport
import Foundation
import Testing

/// The library as a second front end uses it: public API only (no @testable), so a missing
/// initialiser or a CLI-only helper shows up here as a build failure.
@Suite struct PublicAPITests {
    static let backbone = Fixtures.path("encoder", "a_gelu_proj32", "openclip.safetensors")
    static let images = ["jpeg_420.jpg", "png_rgba.png", "photo_rocket.jpg", "webp_lossy.webp"].map { Fixtures.path("images", $0) }

    static func detector(calibration: Head.Calibration? = nil) throws -> Detector {
        let model = try ModelResolution.load(backbone, hints: ModelHints(), store: ModelStore(environment: [:], offline: true))
        var head = try Head.importReference(checkpoint: Fixtures.path("heads", "weights.pth"), config: nil, name: "tiny", backbone: model.encoder)
        head.metadata.calibration = calibration
        return try Detector(encoder: model.encoder, heads: [head], configuration: Detector.Configuration(batchSize: 3))
    }

    /// The example of the DocC catalog (ScoringOneImage.md), line for line.
    @Test func theDocumentationExampleScoresOneImageInMemory() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("clipdetect-api-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let backbonePath = Self.backbone, headPath = folder.appendingPathComponent("head.safetensors").path
        try Head.importReference(checkpoint: Fixtures.path("heads", "weights.pth"), config: nil, name: "tiny",
                                 backbone: try ImageEncoder(path: backbonePath)).write(to: headPath)
        let imageData = try Data(contentsOf: URL(fileURLWithPath: Self.images[0]))

        let encoder = try ImageEncoder(path: backbonePath)
        let detector = try Detector(encoder: encoder, heads: [try Head.read(headPath)])

        let detection = try detector.detect(.bytes(imageData))
        print(detection.probability, detection.verdict)  // P(synthetic); synthetic, real or uncertain

        #expect(detection == (try Self.detector().detect(.file(Self.images[0]))))
    }

    @Test func bytesFilesAndDecodedImagesGiveTheSameVerdicts() async throws {
        let detector = try Self.detector()
        var fromFiles: [Detection] = []
        try detector.run(paths: Self.images) { _, result in fromFiles.append(try result.get()) }
        let bytes = try Self.images.map { ImageSource.bytes(try Data(contentsOf: URL(fileURLWithPath: $0))) }
        let fromBytes = await detector.detect(bytes).map { try? $0.get() }
        let decoded = try Self.images.map { ImageSource.decoded(try ImageDecoder.decode(path: $0)) }
        let fromImages = await detector.detect(decoded).map { try? $0.get() }
        #expect(fromFiles.count == 4 && fromBytes == fromFiles && fromImages == fromFiles)
        #expect(fromFiles[0].imageWidth != nil && fromFiles[0].imageHeight != nil)
        let one = try await detector.detect(bytes[2])
        #expect(one == fromFiles[2])
        // A bad image fails alone, with a kind a caller can branch on.
        let mixed = await detector.detect([.bytes(Data("not an image".utf8)), bytes[0]])
        #expect(throws: (any Error).self) { try mixed[0].get() }
        if case .failure(let error) = mixed[0] { #expect(FailureKind(of: error) == .invalidInput) }
        // Another batch composition: the same score to the last bit.
        let alone = try mixed[1].get()
        #expect(alone.scores == fromFiles[0].scores && alone.probability == fromFiles[0].probability, "\(alone.score - fromFiles[0].score)")
    }

    @Test func calibrationAndThresholdsReadAsOneRule() throws {
        let rule = DecisionRule(calibration: Head.Calibration(a: 2, b: -1), threshold: nil)
        #expect(rule.isSynthetic(0.6) && !rule.isSynthetic(0.4))
        #expect(abs(rule.probability(0.5) - 0.5) < 1e-12)
        #expect(DecisionRule(threshold: 3).isSynthetic(2.9) == false)
        let detector = try Self.detector(calibration: Head.Calibration(a: 0.5, b: 0.25))
        for result in detector.detect(Self.images.map(ImageSource.file)) {
            let detection = try result.get()
            #expect(detection.isSynthetic == (detection.probability > 0.5))
        }
    }

    @Test func evaluationAndTrainingFromALabelledList() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("clipdetect-api-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let list = folder.appendingPathComponent("list.csv").path
        let text = "filename,typ\n" + Self.images.enumerated().map { "\($1),\($0 < 2 ? "real" : "gen")" }.joined(separator: "\n") + "\n"
        try text.write(toFile: list, atomically: true, encoding: .utf8)
        let labelled = try Inputs.labeled(csv: list)
        let detector = try Self.detector()
        let columns = try Evaluation.score(labelled, with: detector)
        let tables = Evaluation.tables(labelled, columns: columns)
        #expect(tables.count == 1 && tables[0].rows.map(\.generator) == ["gen", "AVG"] && tables[0].evaluated == 4)

        var features: [[Float]] = []
        let encoder = detector.encoders[0]
        try FeatureExtractor(encoder: encoder).run(paths: labelled.map(\.item.path)) { _, result in features.append(try result.get()) }
        var options = TrainingOptions()
        options.C = 1
        let (head, _) = try Trainer.train(TrainingSet(features: features, labels: labelled.map(\.isSynthetic)), options: options,
                                          name: "trained", feature: Head.Feature(encoder: encoder), provenance: nil)
        let path = folder.appendingPathComponent("trained.safetensors").path
        try head.write(to: path)
        #expect(try Head.read(path) == head)
        #expect(try Head.read(data: Data(contentsOf: URL(fileURLWithPath: path))) == head)
        options.C = .nan
        let refused = #expect(throws: TrainingError.self) { try options.validate() }
        #expect(refused.map { FailureKind(of: $0) } == .invalidInput)
    }

    @Test func valueTypesHavePublicInitialisers() throws {
        let feature = Head.Feature(architecture: "vit-32/8-w32-l2-h4-m128-gelu-p24", fingerprint: nil, backbone: nil, kind: .pooled, normalized: true, width: 2)
        #expect(feature.hints.activation == .gelu && feature.hints.heads == 4)
        let head = Head(weights: [1, -1], bias: 0.5, metadata: Head.Metadata(name: "h", feature: feature, calibration: Head.Calibration(a: 1, b: 0), threshold: 0.2))
        #expect(head.score([2, 1]) == 1.5 && head.isSynthetic(1.5))
        let detection = Detection(scores: [1.5], fused: nil, probability: 0.8, isSynthetic: true, imageWidth: 10, imageHeight: 20)
        #expect(detection.score == 1.5)
        let named = NamedModel(name: "mine", summary: "a local detector", backbone: NamedModel.HubFile(repository: "me/clip", files: ["model.safetensors"]),
                               hints: ModelHints(activation: .quickGELU), head: nil, architecture: "vit-224/14-w1024-l24-h16-m4096-quick_gelu-p768")
        #expect(named.referenceArch == nil)
        #expect(Impairment.jpeg(quality: try Parameter(75), subsampling: .s420) == (try Impairment(parsing: "jpeg:q=75")))
        #expect(FailureKind(of: ResolutionError.unknownModel("x", known: [])) == .notFound)
    }

    /// Train, calibrate, fuse and check stability from the library alone, as a second front end would.
    @Test func trainCalibrateAndCheckStabilityWithoutTheCLI() throws {
        let model = try ModelResolution.load(Self.backbone, hints: ModelHints(), store: ModelStore(environment: [:], offline: true))
        let names = ["gif_transparent.gif", "bmp_palette.bmp", "png_palette.png", "png_gray16.png", "jpeg_444.jpg", "jpeg_420.jpg",
                     "cjpeg_smooth.jpg", "size_700x3.png", "png_rgba.png", "bmp_gray.bmp", "photo_rocket.jpg", "tiff_rgba.tif"]
        let images = names.enumerated().map { index, name in
            LabeledImage(item: InputItem(name: name, path: Fixtures.path("images", name)), type: index < 6 ? "real" : "fake")
        }
        let (data, generators) = try TrainingSet.assemble(images, with: FeatureExtractor(encoder: model.encoder))
        #expect(data.labels.count == 12 && generators.count == 12 && data.positives == 6)
        var options = TrainingOptions()
        options.C = 1
        let (head, _) = try Trainer.train(data, options: options, name: "mine", feature: Head.Feature(encoder: model.encoder), provenance: nil)
        let detector = try Detector(encoder: model.encoder, heads: [head])
        let scored = CalibrationData.score(images, with: detector)
        #expect(scored.realScores.count == 6 && scored.fakeScores.count == 6 && scored.failures.isEmpty)
        let (calibrated, report) = try Calibrator.calibrate(head, realScores: scored.realScores, fakeScores: scored.fakeScores,
                                                            options: Calibrator.Options(method: .platt, band: .probabilities(low: 0.3, high: 0.7)),
                                                            set: scored.record())
        #expect(report.after != nil && calibrated.metadata.calibrationSet?.hash.count == 64)
        let checked = try Detector(encoder: model.encoder, heads: [calibrated])
        let check = try StabilityCheck(draws: 2, chain: ImpairmentChain(condition: "reshare"))
        let (detection, stability) = try check.check(.file(Self.images[0]), with: checked)
        // The verdict is the calibrated rule's, read from the clean score; the draws' agreement is a share of two.
        let rule = try #require(calibrated.metadata.calibration)
        let p = rule.probability(detection.score)
        #expect(abs(detection.probability - p) <= 1e-12)
        #expect(detection.verdict == (p > 0.3 && p < 0.7 ? .uncertain : p > 0.5 ? .synthetic : .real), "P \(p), \(detection.verdict)")
        #expect(stability.failedDraws == 0 && [0, 0.5, 1].contains(stability.agreement ?? -1), "\(stability)")
    }

    /// An evaluation and its report from the library alone: score a labelled list, make the tables,
    /// write the HTML. A second front end (a notebook's Swift kernel, a service) needs nothing else.
    @Test func anEvaluationAndItsReportFromTheLibrary() throws {
        let detector = try Self.detector(calibration: .platt(a: 1, b: 0))
        let list = Self.images.enumerated().map { index, path in
            LabeledImage(item: InputItem(name: URL(fileURLWithPath: path).lastPathComponent, path: path), type: index < 2 ? "real" : "gen")
        }
        let columns = try Evaluation.score(list, with: detector)
        let tables = Evaluation.tables(list, columns: columns)
        #expect(tables.count == 1 && tables[0].rows.map(\.generator) == ["gen", "AVG"])
        let provenance = EvaluationReport.Provenance(source: "computed here with the fixture tower", architecture: detector.encoders[0].description.architecture,
                                                     fingerprint: detector.encoders[0].fingerprint, list: "four fixtures")
        let html = EvaluationReport(list: list, runs: [.init(condition: "clean", columns: columns, tables: tables)], provenance: provenance,
                                    thumbnails: false).html()
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("id=\"reliability-0\"") && html.contains(detector.encoders[0].fingerprint))
        #expect(html.contains("data-value=\"\(String(tables[0].rows[0].auc))\""))
        #expect(!html.contains("<img"))
    }
}
