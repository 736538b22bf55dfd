import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// Heads imported from reference checkpoints score as open_clip + the head; detect and eval as a user runs them.
@Suite struct DetectTests {

    struct ExpectedScores: Decodable { let images: [String]; let scores: [Double] }
    static let expected = try! JSONDecoder().decode(
        ExpectedScores.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("heads", "expected_scores.json"))))

    /// A head given twice is refused whatever its names (it would count twice in the fusion), and
    /// two heads of one name too (one column each); the same weights on another view are another head.
    @Test func aHeadGivenTwiceIsRefused() throws {
        let (head, encoder) = try Fixtures.importedHead()
        var renamed = head
        renamed.metadata.name = "tiny2"
        renamed.metadata.threshold = 0.5
        // A copy that no longer records its backbone is still the same head on this encoder.
        renamed.metadata.feature.fingerprint = nil
        renamed.metadata.feature.backbonePath = nil
        #expect(throws: HeadError.givenTwice("tiny", alias: "tiny2")) {
            try Detector(encoder: encoder, heads: [head, renamed])
        }
        #expect(throws: HeadError.givenTwice("tiny", alias: nil)) {
            try Detector(encoder: encoder, heads: [head, head])
        }
        var other = head
        other.bias += 1
        #expect(throws: HeadError.sameName("tiny")) {
            try Detector(encoder: encoder, heads: [head, other])
        }
        other.metadata.name = "tiny3"
        renamed.metadata.feature.view = .crop
        #expect(try Detector(encoder: encoder, heads: [head, other, renamed]).heads.count == 3)
    }

    /// A head may not take the name of a column the output gives (a fused score, --stability's,
    /// the verdict's): `eval` would skip it, or the table would have two such columns.
    @Test func headsMayNotTakeAnOutputColumnsName() throws {
        var (head, _) = try Fixtures.importedHead()
        for name in ["filename", "fusion", "probability", "label", "verdict", "error", "typ",
                     "agreement", "score_min", "score_median", "score_max", "stability", " stability "] {
            head.metadata.name = name
            #expect(throws: HeadError.self, "\(name)") { try head.validate() }
        }
        head.metadata.name = "stability2"
        try head.validate()
        // Refused when written too, not only when used (head import --name, train --name).
        head.metadata.name = "agreement"
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("agreement.safetensors").path
        #expect(throws: HeadError.self) { try head.write(to: path) }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func importedHeadScoresAsOpenCLIPPlusTheHead() throws {
        let (head, encoder) = try Fixtures.importedHead()
        // Every file format and naming of the same backbone: the same fingerprint, the same scores.
        for file in ["openclip.safetensors", "openclip.pth", "hf.safetensors", "hf.bin", "openclip_zip64.pth"] {
            let other = try ImageEncoder(path: Fixtures.path("encoder", "a_gelu_proj32", file))
            #expect(other.fingerprint == encoder.fingerprint, "\(file)")
        }
        let detector = try Detector(encoder: encoder, heads: [head])
        var scores: [Double] = []
        try detector.run(paths: Self.expected.images.map { Fixtures.path("images", $0) }) { _, result in
            scores.append(try result.get().score)
        }
        #expect(scores.count == Self.expected.scores.count && !scores.isEmpty)
        for (ours, theirs) in zip(scores, Self.expected.scores) { #expect(abs(ours - theirs) <= 1e-5) }
    }

    @Test func headsRoundTripAndRefuseOtherBackbones() throws {
        let (head, _) = try Fixtures.importedHead()
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("head.safetensors").path
        try head.write(to: path)
        #expect(try Head.read(path) == head)

        let other = try ImageEncoder(path: Fixtures.path("encoder", "b_quickgelu_proj48", "openclip.safetensors"))
        #expect(throws: HeadError.self) { try Detector(encoder: other, heads: [head]) }

        // Same architecture, other weights: refused by fingerprint.
        var altered = head
        altered.metadata.feature.fingerprint = String(repeating: "0", count: 64)
        #expect(throws: HeadError.self) { try Detector(encoder: try ImageEncoder(path: Fixtures.backbone), heads: [altered]) }

        // The reference's config names a ViT-L/14 backbone: a 32-d head does not fit it.
        #expect(throws: HeadError.self) {
            try Head.importReference(checkpoint: Fixtures.referenceHead, config: Fixtures.path("heads", "config.yaml"), name: "x", backbone: nil)
        }
        // ... nor does the 32-wide tower given beside it: the config names another backbone.
        #expect {
            try Head.importReference(checkpoint: Fixtures.referenceHead, config: Fixtures.path("heads", "config.yaml"), name: "x",
                                     backbone: try ImageEncoder(path: Fixtures.backbone))
        } throws: { "\($0)".contains("clip-vit-l14-commonpool") && "\($0)".contains("openclip.safetensors") }
        // A checkpoint without fc.* is no head.
        #expect(throws: HeadError.self) {
            try Head.importReference(checkpoint: Fixtures.backbone, config: nil, name: "x", backbone: try ImageEncoder(path: Fixtures.backbone))
        }
        // A malicious checkpoint is refused before anything runs.
        #expect(throws: CheckpointError.self) {
            try Head.importReference(checkpoint: Fixtures.path("malicious", "os_system.pth"), config: nil, name: "x", backbone: nil)
        }
    }

    @Test func inputsComeFromFilesFoldersCSVsAndStandardInput() throws {
        let folder = try Fixtures.temporaryDirectory()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("sub"), withIntermediateDirectories: true)
        for (source, target) in [("jpeg_420.jpg", "a.jpg"), ("png_rgb.png", "sub/b.dat"), ("bad_text.png", "notes.png")] {
            try FileManager.default.copyItem(atPath: Fixtures.path("images", source), toPath: folder.appendingPathComponent(target).path)
        }
        try "filename,typ\na.jpg,real\n sub/b.dat ,gan\n".write(to: folder.appendingPathComponent("list.csv"), atomically: true, encoding: .utf8)
        // By content: b.dat is a PNG, notes.png is text.
        #expect(try Inputs.collect([folder.path]).map(\.path) == [folder.appendingPathComponent("a.jpg").path, folder.appendingPathComponent("sub/b.dat").path])
        let listed = try Inputs.collect([], csv: folder.appendingPathComponent("list.csv").path)
        #expect(listed.map(\.name) == ["a.jpg", "sub/b.dat"])
        #expect(listed[1].path == folder.appendingPathComponent("sub/b.dat").path)
        #expect(try Inputs.collect(["-"], standardInput: { Data("x.jpg\n\n y.png \r\n".utf8) }).map(\.name) == ["x.jpg", "y.png"])
        // NUL-separated (find -print0): every name, exactly; a newline or space in one is kept.
        #expect(try Inputs.collect(["-"], standardInput: { Data("a b.jpg\0c\nd.png\0".utf8) }).map(\.name) == ["a b.jpg", "c\nd.png"])
        // Names that are not UTF-8 keep their bytes.
        let stray = try Inputs.collect(["-"], standardInput: { Data([0x61, 0xFF, 0x2E, 0x6A, 0x0A]) })
        #expect(stray.count == 1 && PathName.bytes(stray[0].path) == [0x61, 0xFF, 0x2E, 0x6A])
        #expect(throws: ReportError.self) { try Inputs.collect(["-"], standardInput: { Data(repeating: 0x61, count: 5000) }) }
    }
}


/// UnivFD's layer imported from a file saved as UnivFD saves it, scoring as UnivFD's own model and
/// test transform do (tools/fixtures/make_univfd_fixtures.py).
@Suite struct UnivFDTests {
    struct Expected: Decodable { let images: [String]; let scores: [Double] }

    @Test func importedLayerScoresAsUnivFD() throws {
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("heads", "univfd_expected.json"))))
        let encoder = try ImageEncoder(path: Fixtures.backbone)
        let head = try Head.importUnivFD(checkpoint: Fixtures.univfdHead, name: "univfd", backbone: encoder)
        #expect(head.metadata.feature.kind == .projected && !head.metadata.feature.normalized && head.metadata.feature.inputView == .crop)
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("univfd.safetensors").path
        try head.write(to: path)
        #expect(try Head.read(path) == head)
        let detector = try Detector(encoder: encoder, heads: [try Head.read(path)])
        #expect(detector.extractor.settings.view == .crop)
        var scores: [Double] = []
        try detector.run(paths: expected.images.map { Fixtures.path("images", $0) }) { _, result in scores.append(try result.get().score) }
        #expect(scores.count == expected.scores.count && expected.scores.count == 6)
        for (ours, theirs) in zip(scores, expected.scores) { #expect(abs(ours - theirs) <= 1e-5, "\(scores) vs \(expected.scores)") }
    }

    @Test func wrongFilesAndBackbonesAreRefused() throws {
        let encoder = try ImageEncoder(path: Fixtures.backbone)
        // The paper's weights.pth is not UnivFD's layer.
        #expect(throws: HeadError.self) { try Head.importUnivFD(checkpoint: Fixtures.referenceHead, name: "u", backbone: encoder) }
        // A tower whose projection is not the layer's width (or that has none).
        let other = try ImageEncoder(path: Fixtures.path("encoder", "b_quickgelu_proj48", "openclip.safetensors"))
        #expect(throws: HeadError.self) { try Head.importUnivFD(checkpoint: Fixtures.univfdHead, name: "u", backbone: other) }
    }


    /// Heads of other features, views and backbones in one detector: each scores exactly as it does
    /// alone, the features of one encoder and view come from one pass, and a fused column is added.
    @Test func headsOfOtherFeaturesViewsAndBackbonesShareOneRun() throws {
        let encoder = try ImageEncoder(path: Fixtures.backbone)
        let other = try ImageEncoder(path: Fixtures.path("encoder", "b_quickgelu_proj48", "openclip.safetensors"))
        let univfd = try Head.importUnivFD(checkpoint: Fixtures.univfdHead, name: "univfd", backbone: encoder)
        let rine = try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "tiny_trainable.pth"), name: "rine", backbone: encoder)
        let (paper, _) = try Fixtures.importedHead()
        var cropped = paper
        cropped.metadata.name = "cropped"
        cropped.metadata.feature.view = .crop
        let width = other.featureWidth(.pooled)
        let elsewhere = Head(weights: (0..<width).map { Float(sin(Double($0))) }, bias: 0.25,
                             metadata: Head.Metadata(name: "elsewhere", feature: Head.Feature(encoder: other)))
        // The same weights loaded twice run once.
        let again = try ImageEncoder(path: Fixtures.backbone)
        let assigned: [(head: Head, encoder: ImageEncoder)] = [(paper, encoder), (univfd, again), (elsewhere, other), (rine, encoder), (cropped, encoder)]
        let detector = try Detector(heads: assigned, configuration: Detector.Configuration(batchSize: 3))
        #expect(detector.encoders.count == 2 && detector.encoders[0] === encoder && detector.encoder(ofHead: 1) === encoder)
        #expect(detector.extractor.requests.count == 5 && detector.inputs == [0, 1, 2, 3, 4])
        let passes = Set(detector.extractor.requests.map { "\(ObjectIdentifier($0.encoder)) \($0.view)" })
        #expect(passes.count == 3)
        let images = ["jpeg_420.jpg", "png_rgba.png", "size_33x17.png", "size_700x3.png", "webp_lossy.webp"].map { Fixtures.path("images", $0) }
        var together: [Detection] = []
        try detector.run(paths: images) { _, result in together.append(try result.get()) }
        #expect(together.count == images.count)
        for (index, (head, encoder)) in assigned.enumerated() {
            var alone: [Double] = []
            try Detector(encoder: encoder, heads: [head]).run(paths: images) { _, result in alone.append(try result.get().score) }
            #expect(together.map { $0.scores[index] } == alone, "\(head.metadata.name)")
        }
        for detection in together { #expect(detection.fused == detector.fuse(detection.scores)) }
        // Every feature is cached under its own key; a second run reads them all and decodes nothing.
        let cache = try FeatureCache(path: Fixtures.temporaryDirectory().appendingPathComponent("features.sqlite").path)
        let cached = try Detector(heads: assigned, configuration: Detector.Configuration(batchSize: 3, cache: cache))
        for round in 0..<2 {
            var scores: [Detection] = []
            try cached.run(paths: images) { _, result in scores.append(try result.get()) }
            #expect(scores.map(\.scores) == together.map(\.scores))
            #expect(scores.allSatisfy { ($0.imageWidth == nil) == (round == 1) })
        }
        // A head still refuses a backbone it was not made for.
        #expect(throws: HeadError.self) { try Detector(heads: [(paper, other)]) }
    }
}

/// The real UnivFD layer (WisconsinAIVision/UniversalFakeDetect, MIT; committed with its licence):
/// its names and shapes through the restricted unpickler, its output on a fixed input against
/// PyTorch's nn.Linear loaded from the same file, and the registry's pinned file.
@Suite struct UnivFDReleaseTests {
    static let file = Fixtures.path("heads", "univfd", "fc_weights.pth")
    struct Expected: Decodable { let score: Double; let bias: Double }

    @Test func theReleasedLayerImportsAndScoresAsPyTorch() throws {
        let checkpoint = try Checkpoint.open(Self.file)
        #expect(checkpoint.tensors.mapValues(\.shape) == ["weight": [1, 768], "bias": [1]])
        let head = try Head.importUnivFD(checkpoint: Self.file, name: "univfd", backbone: nil)
        let openAI = try #require(NamedModel.named("openai-vit-l14"))
        #expect(head.metadata.feature == Head.Feature(architecture: openAI.architecture, fingerprint: nil, backbone: openAI.backbone.repository,
                                                      kind: .projected, normalized: false, width: 768, view: .crop))
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("heads", "univfd", "expected.json"))))
        let input = (0..<768).map { Float(sin(Double($0)) * 0.1) }
        #expect(abs(head.score(input) - expected.score) <= 1e-6)
        #expect(Double(head.bias) == expected.bias)
    }

    @Test func theRegistryPinsTheReleasedFile() throws {
        let named = try #require(NamedModel.named("univfd"))
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.file))
        #expect(named.head?.sha256 == sha256Hex(data) && named.head?.size == data.count)
        #expect(named.head?.format == .univfd && named.head?.license?.hasPrefix("MIT") == true)
        #expect(named.head.map { $0.source + "/" + $0.path }
                == "https://raw.githubusercontent.com/WisconsinAIVision/UniversalFakeDetect/main/pretrained_weights/fc_weights.pth")
    }

    /// Fetched over loopback as the registry fetches them (UnivFD's and RINE's released files):
    /// the pinned bytes give the head, other bytes are refused and not kept; a cached file changed
    /// later is refused on use.
    @Test(arguments: [("univfd", Fixtures.path("heads", "univfd", "fc_weights.pth")),
                      ("rine-2class", Fixtures.path("heads", "rine", "model_2class_trainable.pth"))])
    func theStoreFetchesAndVerifiesTheHead(model: String, file: String) throws {
        let named = try #require(NamedModel.named(model))
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        #expect(named.head?.sha256 == sha256Hex(data) && named.head?.size == data.count)
        let local = named.head?.format == .univfd ? try Head.importUnivFD(checkpoint: file, name: model, backbone: nil)
            : try Head.importRINE(checkpoint: file, name: model, backbone: nil)
        var altered = data
        altered[100] ^= 0xFF
        for (bytes, accepted) in [(data, true), (altered, false)] {
            let path = "/" + named.head!.path
            let server = try LoopbackServer(handler: { request in
                request.path == path ? LoopbackServer.ranged(Data(bytes), request: request) : .init(status: 404)
            })
            defer { server.stop() }
            let home = try Fixtures.temporaryDirectory()
            let store = ModelStore(environment: ["CLIPDETECT_HOME": home.path, "CLIPDETECT_HEADS_ENDPOINT": server.base.absoluteString])
            if accepted {
                #expect(try store.head(named, backbone: nil) == local)
                let cached = try #require(store.cachedHead(named))
                // Changed in the cache afterwards (or put there by hand): refused on use, offline too.
                try altered.write(to: URL(fileURLWithPath: cached))
                let offline = ModelStore(environment: ["CLIPDETECT_HOME": home.path], offline: true)
                #expect { try offline.head(named, backbone: nil) } throws: { error in
                    guard case DownloadError.altered(let path, _, _) = error else { return false }
                    return path == cached
                }
                // Not a file at all: one line, not a trap.
                try FileManager.default.removeItem(atPath: cached)
                try FileManager.default.createDirectory(atPath: cached, withIntermediateDirectories: false)
                #expect { try offline.head(named, backbone: nil) } throws: { error in (error as? FileError)?.reason == .folder }
            } else {
                #expect(throws: (any Error).self) { try store.head(named, backbone: nil) }
                #expect(store.cachedHead(named) == nil)
            }
        }
    }

    /// `--head NAME` takes a named model's own head, fetched as the model's; with head files beside
    /// it, in the order given; never with a head set, which is calibrated as a whole.
    @Test func namedModelsGiveTheirHeads() throws {
        let files = ["/" + NamedModel.named("univfd")!.head!.path: Fixtures.path("heads", "univfd", "fc_weights.pth"),
                     "/" + NamedModel.named("rine-2class")!.head!.path: Fixtures.path("heads", "rine", "model_2class_trainable.pth")]
        let server = try LoopbackServer(handler: { request in
            guard let file = files[request.path], let data = try? Data(contentsOf: URL(fileURLWithPath: file)) else { return .init(status: 404) }
            return LoopbackServer.ranged(data, request: request)
        })
        defer { server.stop() }
        let home = try Fixtures.temporaryDirectory()
        let store = ModelStore(environment: ["CLIPDETECT_HOME": home.path, "CLIPDETECT_HEADS_ENDPOINT": server.base.absoluteString])
        let (head, _) = try Fixtures.importedHead()
        let file = home.appendingPathComponent("tiny.safetensors").path
        try head.write(to: file)
        let (selection, models) = try ModelResolution.heads(["rine-2class", file, "univfd"], store: store)
        #expect(selection.heads.map(\.metadata.name) == ["rine-2class", "tiny", "univfd"] && selection.set == nil)
        #expect(models == ["rine-2class", nil, "univfd"])
        #expect(selection.heads[0].trunk != nil && selection.heads[2].metadata.feature.kind == .projected)
        // A backbone without a head, and a head set beside a named head, are refused.
        #expect(throws: ResolutionError.noHead("openai-vit-l14")) { try ModelResolution.heads(["openai-vit-l14"], store: store) }
        var second = head
        second.metadata.name = "tiny2"
        let set = home.appendingPathComponent("set.safetensors").path
        try HeadSet(heads: [head, second], fusion: .meanLogit, decision: .plain).write(to: set)
        #expect(throws: HeadError.self) { try ModelResolution.heads([set, "univfd"], store: store) }
        #expect(try ModelResolution.heads([set], store: store).selection.heads.count == 2)
    }
}

/// RINE's released 2-class checkpoint (mever-team/rine, Apache-2.0; committed with its licence)
/// reads through the restricted unpickler with the names and shapes RINE's Model gives them:
/// the importance α over 24 blocks, proj1/proj2 of four Linear(·, 128) each, a three-layer head.
@Suite struct RINECheckpointTests {
    @Test func theReleasedCheckpointReadsSafely() throws {
        let path = Fixtures.path("heads", "rine", "model_2class_trainable.pth")
        #expect(sha256Hex(try Data(contentsOf: URL(fileURLWithPath: path))) == "680d301b6d191da85b9dabcebf42cd3df20c5c669fa8320c498f835d02bf5ccb")
        let checkpoint = try Checkpoint.open(path)
        var expected: [String: [Int]] = ["alpha": [1, 24, 128], "head.0.weight": [128, 128], "head.0.bias": [128],
                                         "head.3.weight": [128, 128], "head.3.bias": [128], "head.6.weight": [1, 128], "head.6.bias": [1]]
        for block in ["proj1", "proj2"] {
            for (index, layer) in [1, 4, 7, 10].enumerated() {
                expected["\(block).\(layer).weight"] = [128, block == "proj1" && index == 0 ? 1024 : 128]
                expected["\(block).\(layer).bias"] = [128]
            }
        }
        #expect(checkpoint.tensors.mapValues(\.shape) == expected)
        #expect(try checkpoint.tensors.values.allSatisfy { try $0.floats().values.allSatisfy(\.isFinite) })
    }
}

/// RINE's network imported and scoring as RINE's model does (tools/fixtures/make_rine_fixtures.py):
/// a random network for the tiny tower end to end (blocks feature, crop view), and the released
/// checkpoint on a fixed input against PyTorch.
@Suite struct RINETests {
    struct Expected: Decodable { let images: [String]?; let scores: [Double]?; let score: Double? }
    static func expected(_ file: String) throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("heads", "rine", file))))
    }

    @Test func aTinyNetworkScoresAsRINE() throws {
        let encoder = try ImageEncoder(path: Fixtures.backbone)
        let head = try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "tiny_trainable.pth"), name: "rine", backbone: encoder)
        #expect(head.metadata.feature.kind == .blocks && !head.metadata.feature.normalized && head.metadata.feature.inputView == .crop)
        #expect(head.trunk?.blocks == 2 && head.trunk?.dim == 8 && head.trunk?.tokenWidth == 32)
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("rine.safetensors").path
        try head.write(to: path)
        #expect(try Head.read(path) == head)
        let expected = try Self.expected("tiny_expected.json")
        var scores: [Double] = []
        try Detector(encoder: encoder, heads: [try Head.read(path)]).run(paths: expected.images!.map { Fixtures.path("images", $0) }) {
            _, result in scores.append(try result.get().score)
        }
        #expect(scores.count == 5 && expected.scores!.count == 5)
        for (ours, theirs) in zip(scores, expected.scores!) { #expect(abs(ours - theirs) <= 1e-5, "\(scores) vs \(expected.scores!)") }
    }

    /// The same network evaluated as RINE evaluates its LDM checkpoint: ten crops, their outputs
    /// averaged; an image smaller than the crop fails alone, naming itself.
    @Test func tenCropScoresAsRINEsLDMEvaluation() throws {
        let encoder = try ImageEncoder(path: Fixtures.backbone)
        let head = try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "tiny_trainable.pth"), name: "rine", backbone: encoder, view: .tenCrop)
        #expect(head.metadata.feature.inputView == .tenCrop && head.metadata.feature.width == 2 * 32)
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("rine-ldm.safetensors").path
        try head.write(to: path)
        #expect(try Head.read(path) == head)
        let expected = try Self.expected("tiny_tencrop_expected.json")
        let detector = try Detector(encoder: encoder, heads: [try Head.read(path)], configuration: Detector.Configuration(batchSize: 4))
        #expect(detector.extractor.width == 10 * 2 * 32)
        let small = Fixtures.path("images", "size_33x17.png")
        var results: [Result<Detection, Error>] = []
        try detector.run(paths: expected.images!.map { Fixtures.path("images", $0) } + [small]) { results.append($1) }
        let scores = try results.dropLast().map { try $0.get().score }
        #expect(scores.count == 6 && expected.scores!.count == 6)
        for (ours, theirs) in zip(scores, expected.scores!) { #expect(abs(ours - theirs) <= 1e-5, "\(scores) vs \(expected.scores!)") }
        #expect(throws: (any Error).self) { try results.last!.get() }
        if case .failure(let error) = results.last! {
            #expect("\(error)".hasSuffix("size_33x17.png: image too small: 33×17 is smaller than the 32×32 crops of the ten-crop view"), "\(error)")
        }
        // Beside the crop-view network on the same tower: two passes (one per view), each as alone.
        let crop = try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "tiny_trainable.pth"), name: "rine-crop", backbone: encoder)
        let both = try Detector(heads: [(head, encoder), (crop, encoder)])
        let image = Fixtures.path("images", "photo_rocket.jpg")
        #expect(try both.detect(.file(image)).scores == [try detector.detect(.file(image)).score, try Detector(encoder: encoder, heads: [crop]).detect(.file(image)).score])
    }

    @Test func theReleasedNetworkScoresAsPyTorch() throws {
        let head = try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "model_2class_trainable.pth"), name: "rine-2class", backbone: nil)
        #expect(head.metadata.feature.width == 24 * 1024 && head.trunk?.dim == 128 && head.trunk?.proj1.count == 4)
        let input = (0..<(24 * 1024)).map { Float(sin(0.37 * Double($0)) * 2) }
        let want = try #require(try Self.expected("released_expected.json").score)
        #expect(abs(head.score(input) - want) <= 1e-4 * max(1, abs(want)), "\(head.score(input)) vs \(want)")
        // Round trip through a head file, and a set of heads.
        let folder = try Fixtures.temporaryDirectory()
        try head.write(to: folder.appendingPathComponent("rine.safetensors").path)
        #expect(try Head.read(folder.appendingPathComponent("rine.safetensors").path) == head)
        var other = head
        other.metadata.name = "rine-b"
        let set = HeadSet(heads: [head, other], fusion: .meanLogit, decision: .plain, calibrationSet: nil)
        try set.write(to: folder.appendingPathComponent("set.safetensors").path)
        #expect(try HeadSelection.read([folder.appendingPathComponent("set.safetensors").path]).heads == [head, other])
    }

    @Test func otherFilesAndBackbonesAreRefused() throws {
        let encoder = try ImageEncoder(path: Fixtures.backbone)
        #expect(throws: HeadError.self) { try Head.importRINE(checkpoint: UnivFDReleaseTests.file, name: "r", backbone: nil) }
        // The released network needs 24 blocks of 1024: the tiny tower has 2 of 32.
        #expect(throws: HeadError.self) {
            try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "model_2class_trainable.pth"), name: "r", backbone: encoder)
        }
        // A head file whose network does not match its metadata (width, normalisation, view) is refused.
        let head = try Head.importRINE(checkpoint: Fixtures.path("heads", "rine", "tiny_trainable.pth"), name: "rine", backbone: encoder)
        let folder = try Fixtures.temporaryDirectory()
        for index in 0..<4 {
            var altered = head
            switch index {
            case 0: altered.metadata.feature.width = 65
            case 1: altered.metadata.feature.normalized = true
            case 2: altered.metadata.feature.view = .resizeCrop
            default: altered.metadata.feature.view = nil
            }
            let path = folder.appendingPathComponent("bad\(index).safetensors").path
            try altered.write(to: path)
            #expect(throws: HeadError.self, "change \(index)") { try Head.read(path) }
        }
        // The same width split otherwise (4 blocks of 16 for a tower of 2 blocks of 32) does not fit the backbone.
        let trunk = try #require(head.trunk)
        var resplit = head
        resplit.trunk = RINETrunk(alpha: trunk.alpha + trunk.alpha, blocks: 4, dim: trunk.dim, tokenWidth: 16,
                                  proj1: [.init(weight: .init(repeating: 0.1, count: trunk.dim * 16), bias: .init(repeating: 0, count: trunk.dim),
                                                inputs: 16, outputs: trunk.dim)] + trunk.proj1.dropFirst(),
                                  proj2: trunk.proj2, hidden: trunk.hidden)
        #expect(throws: HeadError.mismatch(head: "rine", .trunk(blocks: 4, width: 16, backboneBlocks: 2, backboneWidth: 32))) {
            try Detector(encoder: encoder, heads: [resplit])
        }
        #expect("\(HeadError.mismatch(head: "rine", .trunk(blocks: 4, width: 16, backboneBlocks: 2, backboneWidth: 32)))"
                == "head does not fit: rine's network takes 4 blocks of 16, not the backbone's 2 of 32")
    }
}
