extension Impairment {
    /// Parses `name:key=value,key=value`, e.g. `jpeg:q=65..100`, `resize:factor=0.5,filter=lanczos`;
    /// an unknown or repeated key, or a value out of bounds, is refused here, before any image is read.
    public init(parsing spec: String) throws {
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let name = parts[0]
        var values: [String: String] = [:]
        for pair in (parts.count > 1 ? parts[1] : "").split(separator: ",") where !pair.isEmpty {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw ImpairmentError.notKeyValue(String(pair), spec: spec) }
            guard values.updateValue(kv[1], forKey: kv[0]) == nil else { throw ImpairmentError.givenTwice(key: kv[0], spec: spec) }
        }
        func take(_ keys: String...) throws -> String? {
            let present = keys.filter { values[$0] != nil }
            guard present.count <= 1 else { throw ImpairmentError.synonyms(present, spec: spec) }
            return present.first.flatMap { values.removeValue(forKey: $0) }
        }
        func parameter(_ keys: String...) throws -> Parameter? {
            let present = keys.filter { values[$0] != nil }
            guard present.count <= 1 else { throw ImpairmentError.synonyms(present, spec: spec) }
            return try present.first.map { try Parameter(parsing: values.removeValue(forKey: $0)!, key: $0) }
        }
        func exactlyOne<T>(_ options: [(String, T?)], _ what: String) throws -> T {
            let given = options.compactMap { $0.1 }
            guard given.count == 1 else { throw ImpairmentError.oneOf(operation: what, keys: options.map(\.0)) }
            return given[0]
        }
        switch name {
        case "jpeg":
            let sub = try take("sub") ?? "420"
            guard let subsampling = JPEGSubsampling(rawValue: sub) else { throw ImpairmentError.choice(key: "sub", value: sub, options: JPEGSubsampling.allCases.map(\.rawValue)) }
            self = .jpeg(quality: try parameter("q", "quality") ?? Parameter(75), subsampling: subsampling)
        case "webp":
            self = .webp(quality: try parameter("q", "quality") ?? Parameter(80))
        case "resize":
            let filterName = try take("filter") ?? "bicubic"
            let filter = PillowResample.Filter(rawValue: filterName)
            guard filter != nil || filterName == "auto" else {
                throw ImpairmentError.choice(key: "filter", value: filterName, options: ["bilinear", "bicubic", "lanczos", "auto"])
            }
            let target = try exactlyOne([("factor", try parameter("factor", "scale").map(ResizeTarget.factor)),
                                         ("side", try parameter("side").map(ResizeTarget.longerSide)),
                                         ("max", try parameter("max").map(ResizeTarget.maxSide)),
                                         ("to", try parameter("to").map(ResizeTarget.square))], "resize")
            self = .resize(target, filter: filter)
        case "crop":
            let mode = try take("mode") ?? "center"
            guard mode == "center" || mode == "random" else { throw ImpairmentError.choice(key: "mode", value: mode, options: ["center", "random"]) }
            let low = try parameter("min"), high = try parameter("max")
            for bound in [low, high].compactMap({ $0 }) { try bound.check("min/max", in: 1...Double(Self.maxSide), integer: true) }
            let limits = Int(low?.low ?? 1), upper = Int(high?.low ?? Double(Self.maxSide))
            guard limits <= upper else { throw ImpairmentError.cropMinAboveMax }
            let size = try exactlyOne([("fraction", try parameter("fraction").map(CropSize.fraction)),
                                       ("size", try parameter("size").map { CropSize.pixels($0, limits: limits...upper) }),
                                       ("side", try parameter("side").map { CropSize.share($0, limits: limits...upper) })], "crop")
            let x = try parameter("x"), y = try parameter("y")
            let placement: CropPlacement
            switch (x, y) {
            case (nil, nil): placement = mode == "random" ? .random : .center
            case (let x?, let y?):
                guard mode == "center" else { throw ImpairmentError.placedAndRandom }
                placement = .at(x: x, y: y)
            default: throw ImpairmentError.halfPlacement
            }
            self = .crop(size, placement: placement)
        case "blur":
            guard let sigma = try parameter("sigma") else { throw ImpairmentError.missing(operation: "blur", key: "sigma") }
            self = .blur(sigma: sigma)
        case "noise":
            guard let sigma = try parameter("sigma") else { throw ImpairmentError.missing(operation: "noise", key: "sigma") }
            self = .noise(sigma: sigma)
        default:
            throw ImpairmentError.unknownOperation(name)
        }
        if let extra = values.keys.sorted().first { throw ImpairmentError.unknownParameter(operation: name, key: extra) }
        try validate()
    }
}
