import ArgumentParser
import ClipDetect
import Foundation

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "model", abstract: "Named models and backbone checkpoints.",
                                                    subcommands: [Info.self, List.self, Fetch.self, Accept.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Named models, and whether they are in the cache.")

        func run() {
            let store = ModelStore()
            for model in NamedModel.all {
                let head = store.cachedHead(model), backbone = store.cachedBackbone(model)
                let cached = backbone != nil && (model.head == nil || head != nil)
                // A head file is small: checked here as on every use, so the list does not call an altered one ready.
                let found = head.map { path in Result { try Downloader.sha256(ofFile: path) } }
                print(model.name.padding(toLength: 26, withPad: " ", startingAt: 0) + model.summary)
                print(String(repeating: " ", count: 26) + "backbone \(model.backbone.repository)" + (model.head.map { ", head \($0.path)" } ?? "")
                      + Self.state(cached: cached, head: head, found: found, pinned: model.head?.sha256.lowercased())
                      + (backbone.map { Self.state(ofBackbone: $0, store.state(ofBackbone: $0), model: model.name) } ?? ""))
                if let license = model.head?.license { print(String(repeating: " ", count: 26) + "head licence: \(license)") }
            }
            print("cache: \(store.home) (set CLIPDETECT_HOME to move it); Hugging Face cache used in place: \(store.huggingFaceCache)")
        }

        /// What is known of a backbone file without hashing it (that happens at its first use).
        private static func state(ofBackbone path: String, _ state: BackboneState, model: String) -> String {
            switch state {
            case .verified, .hubBlob: ""
            case .changed: "  [backbone file changed since it was verified: checked again at its next use: \(PathName.display(path))]"
            case .unverified: "  [backbone file unverified: \(PathName.display(path)); `clipdetect model accept \(model)` to use it]"
            }
        }

        private static func state(cached: Bool, head: String?, found: Result<String, Error>?, pinned: String?) -> String {
            switch found {
            case .success(let hash) where hash != pinned: "  [head file altered: \(PathName.display(head!))]"
            case .failure: "  [head file unreadable: \(PathName.display(head!))]"
            default: cached ? "  [cached]" : "  [not cached]"
            }
        }
    }

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Download a named model into the cache now.")
        @Argument(help: "Named model.") var name: String

        func run() throws {
            var store = ModelStore()
            store.downloader.progress = downloadProgress()
            guard !name.isEmpty else { throw ValidationError("give the name of a named model (see `clipdetect model list`)") }
            guard let named = NamedModel.named(name) else { throw ResolutionError.unknownModel(name, known: NamedModel.all.map(\.name)) }
            // Read to check it, not to run it: nothing is packed.
            let encoder = try ImageEncoder(inspecting: store.backbone(named), hints: named.hints)
            let head = try store.head(named, backbone: nil)
            print("ready: \(name) (\(encoder.description.architecture)\(head == nil ? "" : ", with head"))")
        }
    }

    struct Accept: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Use a named model's backbone file that clipdetect did not download (placed by hand, or by another tool).",
            discussion: "Its SHA-256 is recorded: from then on it is used as verified, and refused if it changes. A file in the Hugging Face cache is checked against its hash instead.")
        @Argument(help: "Named model.") var name: String

        func run() throws {
            guard !name.isEmpty else { throw ValidationError("give the name of a named model (see `clipdetect model list`)") }
            guard let named = NamedModel.named(name) else { throw ResolutionError.unknownModel(name, known: NamedModel.all.map(\.name)) }
            let store = ModelStore()
            // Read to check it is a backbone of the model's shape before it is accepted.
            if let path = store.cachedBackbone(named) {
                // Nothing can be stated here (the model's own hints are given): a file that needs
                // more is not that model's backbone.
                let found: String
                do {
                    found = try ImageEncoder(inspecting: path, hints: named.hints).description.architecture
                } catch ModelError.headsUnknown(let width) {
                    found = "tower of width \(width)"
                } catch {
                    throw CommandError("\(PathName.display(path)) does not read as \(name)'s backbone (\(error)): not accepted")
                }
                guard found == named.architecture else {
                    throw CommandError("\(PathName.display(path)) is a \(found), not \(name)'s \(named.architecture): not accepted")
                }
            }
            let (path, sha256) = try store.accept(named)
            let encoder = try ImageEncoder(inspecting: path, hints: named.hints)
            print("accepted \(PathName.display(path)) as \(name)'s backbone (\(encoder.description.architecture), sha256 \(sha256))")
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the description inferred from a checkpoint.")

        @Argument(help: "Checkpoint file, or a model folder (Hugging Face or open_clip layout).") var checkpoint: String
        @Option(help: "Activation, when nothing in the file states it.") var activation: ModelDescription.Activation?
        @Option(help: "Attention heads, when nothing in the file states it.") var attentionHeads: Int?
        @Option(help: "Load the encoder in this precision and report what runs and the memory it costs.") var precision: Precision?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let file = try Checkpoint.open(ModelResolution.checkpoint(at: checkpoint))
            let description = try namingFlags { try ModelDescription.infer(from: file, hints: ModelHints(activation: activation, heads: attentionHeads)) }
            // Loading packs the weights where the chosen kernels want them: measured, not estimated.
            let backend = try precision.map { try ImageEncoder(checkpoint: file, description: description, precision: $0).backend }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                guard let backend else {
                    print(String(decoding: try encoder.encode(description), as: UTF8.self))
                    return
                }
                // The description's own fields at the top, as without --precision; `compute` beside them.
                var object = try JSONSerialization.jsonObject(with: encoder.encode(description)) as? [String: Any] ?? [:]
                object["compute"] = ["precision": backend.precision.rawValue, "library": backend.library.rawValue,
                                     "packedBytes": backend.packedBytes, "note": backend.note as Any? ?? NSNull()]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            let d = description
            print("""
                file        \(checkpoint) (\(file.format.rawValue), \(file.tensors.count) tensors)
                naming      \(d.naming.name)
                image       \(d.imageSize)×\(d.imageSize), patch \(d.patchSize) (\(d.tokens) tokens)
                width       \(d.width), \(d.layers) layers, \(d.heads) heads of \(d.headWidth), MLP \(d.mlpWidth)
                activation  \(d.activation.rawValue)
                layer norm  eps \(d.layerNormEps)
                projection  \(d.projectionDim.map { "\(d.width) → \($0)" } ?? "none")
                mean / std  \(d.mean) / \(d.std)
                cost        \(String(format: "%.1f", d.flopsPerImage / 1e9)) GFLOP per image
                """)
            if let backend {
                print("compute     \(backend)" + (backend.note.map { "\n            (\($0))" } ?? ""))
            }
        }
    }
}
