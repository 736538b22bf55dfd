import ArgumentParser
import ClipDetect
import Foundation

struct HeadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "head", abstract: "Import and inspect detector heads.",
                                                    subcommands: [Import.self, Info.self])

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert the reference's weights.pth (+ config.yaml) into a clipdetect head.")

        @Argument(help: "The reference's weights.pth (read with the safe unpickler).") var weights: String
        @Argument(help: "Its config.yaml (names the backbone architecture).") var config: String?
        @Option(help: "Backbone checkpoint the head belongs to: records its fingerprint so no other backbone can use it.")
        var backbone: String?
        @Option(help: "Activation of --backbone, when nothing in its files states it.") var activation: ModelDescription.Activation?
        @Option(help: "Name of the head (the score column in detect's output).") var name: String?
        @Option(name: [.customShort("o"), .long], help: "Output head file (.safetensors).") var output: String
        @Option(help: "cozzolino (the paper's weights.pth, the default), univfd (UnivFD's fc_weights.pth) or rine (RINE's model_*_trainable.pth); the last two are for OpenAI's ViT-L/14, --backbone binds them to a checkpoint.")
        var format: Format = .cozzolino

        @Option(help: "The view a RINE network was evaluated with: crop (the default), or ten-crop (its LDM checkpoint).")
        var view: InputView?

        enum Format: String, ExpressibleByArgument, CaseIterable { case cozzolino, univfd, rine }

        func validate() throws {
            if let view, format != .rine || view == .resizeCrop {
                throw ValidationError("--view is for --format rine: crop or ten-crop")
            }
        }

        func run() throws {
            try checkWritable(output)
            try refuseStandardOutput(output, holding: "head")
            try refuseOverwritingInputs(output, [weights] + (config.map { [$0] } ?? []) + (backbone.map { [$0] } ?? []) + storeFiles)
            let encoder = try namingFlags { try backbone.map { try ImageEncoder(inspecting: ModelResolution.checkpoint(at: $0), hints: ModelHints(activation: activation)) } }
            let defaultName = URL(fileURLWithPath: weights).deletingLastPathComponent().lastPathComponent
            let chosenName = name ?? (format != .cozzolino ? format.rawValue : defaultName.isEmpty ? "head" : defaultName)
            let head: Head
            switch format {
            case .cozzolino:
                head = try Head.importReference(checkpoint: weights, config: config, name: chosenName, backbone: encoder)
            case .univfd:
                guard config == nil else { throw CommandError("UnivFD has no config file: give only fc_weights.pth") }
                head = try Head.importUnivFD(checkpoint: weights, name: chosenName, backbone: encoder)
            case .rine:
                guard config == nil else { throw CommandError("RINE has no config file: give only its .pth") }
                head = try Head.importRINE(checkpoint: weights, name: chosenName, backbone: encoder, view: view ?? .crop)
            }
            try head.write(to: output)
            let f = head.metadata.feature
            print("wrote \(output): \(head.metadata.name), \(f.width)-d \(f.normalized ? "" : "raw ")\(f.kind.rawValue) features of \(f.architecture), \(f.inputView.rawValue) view"
                  + (f.fingerprint.map { ", backbone \($0.prefix(12))…" } ?? (f.backbone.map { ", backbone \($0)" } ?? "")))
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a head's metadata as JSON (a head set's: its heads, fusion and fused rule).")
        @Argument(help: "Head file, or a head set that calibrate wrote.") var head: String

        func run() throws {
            struct SetInfo: Encodable { let heads: [Head.Metadata], fusion: Fusion, decision: DecisionRule, calibrationSet: CalibrationSet? }
            let selection = try HeadSelection.read([head])
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let json = try selection.set.map { try encoder.encode(SetInfo(heads: $0.heads.map(\.metadata), fusion: $0.fusion, decision: $0.decision,
                                                                          calibrationSet: $0.calibrationSet)) }
                ?? encoder.encode(selection.heads[0].metadata)
            print(String(decoding: json, as: UTF8.self))
        }
    }
}
