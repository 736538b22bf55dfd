import ClipDetectCore
import ClipDetectEncoder
import Foundation

/// RINE's network between the per-block class tokens and its last layer (Koutlis & Papadopoulos,
/// ECCV 2024): each block's token through proj1 (n × Linear + ReLU), a softmax(α)-weighted sum
/// over the blocks, proj2 (n × Linear + ReLU), then the first two Linear + ReLU of its head. The
/// head's last Linear is the `Head`'s own weights and bias. Dropout is inactive at inference.
public struct RINETrunk: Sendable, Equatable {
    struct Layer: Sendable, Equatable {
        let weight: [Float], bias: [Float], inputs: Int, outputs: Int

        func callAsFunction(_ x: [Double]) -> [Double] {
            (0..<outputs).map { o in
                var sum = Double(bias[o])
                for i in 0..<inputs { sum += Double(weight[o * inputs + i]) * x[i] }
                return max(sum, 0)  // every Linear of the trunk is followed by a ReLU
            }
        }
    }

    /// [blocks, dim], as RINE's α [1, blocks, dim].
    let alpha: [Float]
    /// Backbone blocks read, the trunk's width (proj1's output and the last layer's input), and the backbone's token width.
    public let blocks: Int, dim: Int, tokenWidth: Int
    let proj1: [Layer], proj2: [Layer], hidden: [Layer]
    /// softmax(α) over the blocks, for each of the dim components: computed once, not per image.
    private let importance: [Double]

    init(alpha: [Float], blocks: Int, dim: Int, tokenWidth: Int, proj1: [Layer], proj2: [Layer], hidden: [Layer]) {
        (self.alpha, self.blocks, self.dim, self.tokenWidth) = (alpha, blocks, dim, tokenWidth)
        (self.proj1, self.proj2, self.hidden) = (proj1, proj2, hidden)
        var importance = [Double](repeating: 0, count: blocks * dim)
        for j in 0..<dim {
            let column = (0..<blocks).map { Double(alpha[$0 * dim + j]) }
            let peak = column.max()!
            let exps = column.map { Foundation.exp($0 - peak) }
            let total = exps.reduce(0, +)
            for b in 0..<blocks { importance[b * dim + j] = exps[b] / total }
        }
        self.importance = importance
    }

    /// The feature it takes: `blocks` class tokens of `tokenWidth` (`FeatureKind.blocks`, raw).
    public var inputWidth: Int { blocks * tokenWidth }

    /// Bounds a file must stay within (RINE's released networks: 24 blocks, dim 128 or 1024, 1–4 projections).
    static let maxBlocks = 256, maxDim = 4096, maxProjections = 8, maxValues = 1 << 26

    /// z after the trunk, the input of the head's last layer.
    func callAsFunction(_ feature: [Float]) -> [Double] {
        precondition(feature.count == inputWidth, "RINE takes \(inputWidth) values, not \(feature.count)")
        var z = [Double](repeating: 0, count: dim)
        for b in 0..<blocks {
            var g = feature[(b * tokenWidth)..<((b + 1) * tokenWidth)].map(Double.init)
            for layer in proj1 { g = layer(g) }
            for j in 0..<dim { z[j] += importance[b * dim + j] * g[j] }
        }
        for layer in proj2 + hidden { z = layer(z) }
        return z
    }

    /// RINE's Sequential index of a chain's `index`th Linear: each follows a Dropout and is followed by
    /// ReLU and Dropout (proj1.1, proj1.4, proj1.7, …).
    private static func layerName(_ chain: String, _ index: Int) -> String { "\(chain).\(1 + 3 * index)" }

    /// Reads RINE's names under `prefix` (its checkpoint: "", a clipdetect head file: "trunk."):
    /// `alpha` [1, B, P], `proj1.{1,4,…}` (the first Linear(T, P), the rest P × P), `proj2.{1,4,…}`,
    /// `head.0`, `head.3`; with `lastLayer`, `head.6` (Linear(P, 1)) too, returned apart (a head file
    /// keeps it as its weight and bias). Any other name under the prefix, or shape, is refused.
    package static func read(_ tensors: [String: Tensor], prefix: String, lastLayer: Bool, source: String) throws
        -> (trunk: RINETrunk, last: (weight: [Float], bias: Float)?) {
        func fail(_ why: String) -> HeadError { .notRINE(source: source, reason: why) }
        // Every name is accounted for, and the sizes bounded, before any value is copied.
        let mine = tensors.keys.filter { $0.hasPrefix(prefix) }
        guard mine.count <= 2 * (2 * maxProjections + 3) + 1 else { throw fail("\(mine.count) tensors") }
        func values(_ name: String, _ shape: [Int]) throws -> [Float] {
            guard let tensor = tensors[prefix + name] else { throw fail("no \(prefix + name)") }
            guard tensor.shape == shape else { throw fail("\(prefix + name) has shape \(tensor.shape), expected \(shape)") }
            let values = try tensor.floats().values
            guard values.allSatisfy(\.isFinite) else { throw fail("\(prefix + name) holds values that are not finite") }
            return values
        }
        guard let shape = tensors[prefix + "alpha"]?.shape, shape.count == 3, shape[0] == 1, shape[1] > 0, shape[2] > 0 else {
            throw fail("no alpha [1, blocks, dim]")
        }
        let blocks = shape[1], dim = shape[2]
        guard blocks <= maxBlocks, dim <= maxDim else { throw fail("alpha \(shape) is beyond \(maxBlocks) blocks of \(maxDim)") }
        guard let first = tensors[prefix + "proj1.1.weight"]?.shape, first.count == 2, first[0] == dim, first[1] > 0 else {
            throw fail("no proj1.1.weight [\(dim), width]")
        }
        let tokenWidth = first[1]
        guard tokenWidth <= maxDim else { throw fail("tokens of \(tokenWidth) values") }
        var expected: Set<String> = [prefix + "alpha"]
        for layer in lastLayer ? ["head.0", "head.3", "head.6"] : ["head.0", "head.3"] {
            expected.formUnion([prefix + layer + ".weight", prefix + layer + ".bias"])
        }
        var depth: [String: Int] = [:]
        for name in ["proj1", "proj2"] {
            var index = 0
            while tensors[prefix + layerName(name, index) + ".weight"] != nil, index < maxProjections {
                expected.formUnion([prefix + layerName(name, index) + ".weight", prefix + layerName(name, index) + ".bias"])
                index += 1
            }
            depth[name] = index
        }
        let unexpected = Set(mine).subtracting(expected)
        guard unexpected.isEmpty else { throw fail("names it does not have: \(unexpected.sorted().prefix(4).joined(separator: ", "))") }
        let total = mine.reduce(0) { $0 + (tensors[$1]?.elementCount ?? 0) }
        guard total <= maxValues else { throw fail("\(total) values, beyond \(maxValues)") }
        func linear(_ name: String, inputs: Int, outputs: Int) throws -> Layer {
            Layer(weight: try values(name + ".weight", [outputs, inputs]), bias: try values(name + ".bias", [outputs]), inputs: inputs, outputs: outputs)
        }
        func chain(_ name: String) throws -> [Layer] {
            try (0..<depth[name]!).map { try linear(layerName(name, $0), inputs: name == "proj1" && $0 == 0 ? tokenWidth : dim, outputs: dim) }
        }
        let proj1 = try chain("proj1"), proj2 = try chain("proj2")
        guard !proj1.isEmpty, proj2.count == proj1.count else { throw fail("proj1 and proj2 of \(proj1.count) and \(proj2.count) layers") }
        let hidden = [try linear("head.0", inputs: dim, outputs: dim), try linear("head.3", inputs: dim, outputs: dim)]
        let last = lastLayer ? (try values("head.6.weight", [1, dim]), try values("head.6.bias", [1])[0]) : nil
        return (RINETrunk(alpha: try values("alpha", [1, blocks, dim]), blocks: blocks, dim: dim, tokenWidth: tokenWidth,
                          proj1: proj1, proj2: proj2, hidden: hidden), last.map { (weight: $0.0, bias: $0.1) })
    }

    /// The trunk under RINE's own names with `prefix` (its last layer is the head's weight and bias).
    func entries(prefix: String) -> [String: SafeTensorsWriter.Entry] {
        var out: [String: SafeTensorsWriter.Entry] = [prefix + "alpha": .init(shape: [1, blocks, dim], values: alpha)]
        for (name, layers) in [("proj1", proj1), ("proj2", proj2)] {
            for (index, layer) in layers.enumerated() {
                out[prefix + Self.layerName(name, index) + ".weight"] = .init(shape: [layer.outputs, layer.inputs], values: layer.weight)
                out[prefix + Self.layerName(name, index) + ".bias"] = .init(shape: [layer.outputs], values: layer.bias)
            }
        }
        for (index, layer) in zip([0, 3], hidden) {
            out[prefix + "head.\(index).weight"] = .init(shape: [layer.outputs, layer.inputs], values: layer.weight)
            out[prefix + "head.\(index).bias"] = .init(shape: [layer.outputs], values: layer.bias)
        }
        return out
    }
}
