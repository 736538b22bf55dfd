import ClipDetectCore
import ClipDetectEncoder
import Foundation

/// Several heads, the rule that fuses their scores, and how the fused score reads (its calibration,
/// threshold and band): what `calibrate` writes for a fused detector. One safetensors file:
/// `heads.<i>.weight`, `heads.<i>.bias`, and the JSON under `clipdetect.set`.
public struct HeadSet: Sendable, Equatable {
    /// The heads, in the order their scores are fused; two to `maxHeads`.
    public var heads: [Head]
    /// The rule that combines the heads' scores into one.
    public var fusion: Fusion
    /// How the fused score reads.
    public var decision: DecisionRule
    /// What the fused rule was fitted on.
    public var calibrationSet: CalibrationSet?

    /// A set from its heads, fusion and fused rule.
    public init(heads: [Head], fusion: Fusion, decision: DecisionRule, calibrationSet: CalibrationSet? = nil) {
        self.heads = heads
        self.fusion = fusion
        self.decision = decision
        self.calibrationSet = calibrationSet
    }

    static let metadataKey = "clipdetect.set"
    /// A set is a handful of detectors; more is not a file we wrote.
    static let maxHeads = 64

    struct Stored: Codable {
        var heads: [Head.Metadata]
        var fusion: Fusion
        var decision: DecisionRule
        var calibrationSet: CalibrationSet?
    }

    /// Writes the set as one safetensors file, after validating each head.
    public func write(to path: String) throws {
        var tensors: [String: SafeTensorsWriter.Entry] = [:]
        for (index, head) in heads.enumerated() {
            try head.validate("\(PathName.display(path)) head \(index)")
            for (name, entry) in head.entries(prefix: "heads.\(index).") { tensors[name] = entry }
        }
        let json = try JSONEncoder().encode(Stored(heads: heads.map(\.metadata), fusion: fusion, decision: decision, calibrationSet: calibrationSet))
        try SafeTensorsWriter.write(tensors, metadata: [Self.metadataKey: String(decoding: json, as: UTF8.self)], to: path)
    }

    static func read(_ file: Checkpoint, text: String) throws -> HeadSet {
        let path = file.path
        let stored: Stored
        do { stored = try JSONDecoder().decode(Stored.self, from: Data(text.utf8)) } catch {
            throw HeadError.badMetadata(path: path, reason: describeDecoding(error))
        }
        guard (2...maxHeads).contains(stored.heads.count) else { throw HeadError.setSize(path: path, count: stored.heads.count) }
        var heads: [Head] = [], named = 0
        for (index, metadata) in stored.heads.enumerated() {
            let (head, count) = try Head.read(file.tensors, prefix: "heads.\(index).", metadata: metadata, source: "\(PathName.display(path)) head \(index)")
            heads.append(head)
            named += count
        }
        guard file.tensors.count == named else { throw HeadError.unnamedTensors(path: path) }
        do { try stored.decision.validate() } catch { throw HeadError.badDecision(source: PathName.display(path), error) }
        return HeadSet(heads: heads, fusion: stored.fusion, decision: stored.decision, calibrationSet: stored.calibrationSet)
    }
}

/// The heads named on a command line (or a request): head files, or one head-set file alone.
public struct HeadSelection: Sendable, Equatable {
    /// The heads to score with, in the order named (a set's own, for a set).
    public var heads: [Head]
    /// From a head-set file: its fusion and fused rule, which apply only to that fusion of those heads.
    public var set: HeadSet?

    /// A selection from its heads and, when they came from one, their set.
    public init(heads: [Head], set: HeadSet? = nil) {
        self.heads = heads
        self.set = set
    }

    /// Reads head files, or one head-set file alone (with anything else it is refused).
    public static func read(_ paths: [String]) throws -> HeadSelection {
        var heads: [Head] = [], sets: [HeadSet] = []
        for path in paths {
            let file = try Checkpoint.open(path)
            if let text = file.metadata[HeadSet.metadataKey] {
                sets.append(try HeadSet.read(file, text: text))
            } else {
                heads.append(try Head.read(file))
            }
        }
        guard let set = sets.first else { return HeadSelection(heads: heads) }
        guard sets.count == 1, heads.isEmpty else {
            throw HeadError.setNotAlone
        }
        return HeadSelection(heads: set.heads, set: set)
    }
}
