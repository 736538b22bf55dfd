import Foundation

/// One image to score: the name written in the output and the path it is read from.
public struct InputItem: Sendable, Equatable {
    /// The name written in the output rows: as the user or the list gave it.
    public var name: String
    /// The path the bytes are read from.
    public var path: String

    /// An item from its output name and the path to read.
    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }
}

/// A listed image and what it is: `real`, or the name of the generator that made it.
public struct LabeledImage: Sendable, Equatable {
    /// The image's name and path.
    public var item: InputItem
    /// `real`, or the generator's name (`fake` for the training lists), trimmed; any case of `real` reads `real`.
    public var type: String
    /// The `typ` cell exactly as the list has it (the reference's table reads it so: only `real`
    /// is real there, and `Real` or `real ` are generators).
    public var listedType: String

    /// A labelled image; `listedType` defaults to `type` when the list's cell is the same.
    public init(item: InputItem, type: String, listedType: String? = nil) {
        self.item = item
        self.type = type
        self.listedType = listedType ?? type
    }

    /// True for every type but `real`: the positive class of the metrics.
    public var isSynthetic: Bool { type != "real" }
}

/// Expands what a user names into images: files as given, directories searched recursively for
/// files whose first bytes are an image, a CSV's `filename` column (relative to the CSV's folder,
/// as the reference reads it), and `-` for paths on standard input.
public enum Inputs {
    /// `standardInput`: its bytes, read when `-` is named (nil: the process's, bounded as a list is).
    public static func collect(_ arguments: [String], csv: String? = nil, standardInput: (() throws -> Data)? = nil) throws -> [InputItem] {
        let standardInput = standardInput ?? { try Files.readStandardInput(limit: CSVTable.maxBytes) }
        var items: [InputItem] = []
        if let csv {
            let table = try CSVTable(path: csv)
            let folder = URL(fileURLWithPath: csv).deletingLastPathComponent()
            // Trimmed as the labelled list trims them, so detect's rows and eval's labels meet.
            for name in try table.values("filename").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
                let path = name.hasPrefix("/") ? name : folder.appendingPathComponent(name).path
                items.append(InputItem(name: name, path: path))
            }
        }
        for argument in arguments {
            if argument == "-" {
                items += try paths(standardInput()).map { InputItem(name: $0, path: $0) }
                continue
            }
            if FileKind(argument) == .directory {
                items += imagesIn(directory: argument)
            } else {
                // A missing file is kept: it fails alone, with its error in its row.
                items.append(InputItem(name: argument, path: argument))
            }
        }
        return items
    }

    /// Paths one per line, or separated by NUL bytes when there is one (`find -print0`, as `xargs -0`
    /// reads them: names kept exactly); lines are trimmed of spaces, empty ones skipped. A line longer
    /// than a path can be is refused: it is not a list of paths.
    static func paths(_ data: Data) throws -> [String] {
        let separator: UInt8 = data.contains(0) ? 0 : 10
        var paths: [String] = []
        for (number, line) in data.split(separator: separator, omittingEmptySubsequences: false).enumerated() {
            // PATH_MAX counts the NUL that ends a path.
            guard line.count < Int(PATH_MAX) else {
                throw ReportError.invalid("standard input \(separator == 0 ? "entry" : "line") \(number + 1) is \(line.count) bytes long: not a path (at most \(PATH_MAX - 1))")
            }
            let name = PathName.decode(line)
            let path = separator == 0 ? name : name.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if !path.isEmpty { paths.append(path) }
        }
        return paths
    }

    /// The reference's list: a CSV with `filename` and `typ` (real, or the generator's name), paths
    /// relative to the CSV's folder. A row without either is refused, naming the row: skipping it
    /// would shift every label after it.
    public static func labeled(csv: String) throws -> [LabeledImage] {
        let table = try CSVTable(path: csv)
        let folder = URL(fileURLWithPath: csv).deletingLastPathComponent()
        let names = try table.values("filename"), types = try table.values("typ")
        var rows: [String: Int] = [:]
        return try zip(names, types).enumerated().map { row, pair in
            let name = pair.0.trimmingCharacters(in: .whitespaces), type = pair.1.trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { throw ReportError.invalid("\(csv) row \(row + 1): empty filename") }
            guard !type.isEmpty else { throw ReportError.invalid("\(csv) row \(row + 1) (\(name)): empty typ; use real or the generator's name") }
            let path = name.hasPrefix("/") ? name : folder.appendingPathComponent(name).path
            // Counted twice (or under two labels), an image would move every metric silently.
            if let earlier = rows.updateValue(row, forKey: URL(fileURLWithPath: path).standardizedFileURL.path) {
                throw ReportError.invalid("\(csv) rows \(earlier + 1) and \(row + 1) both list \(name)")
            }
            // `Real` and `REAL` mean real: a generator with that name would be a silent mislabel.
            return LabeledImage(item: InputItem(name: name, path: path), type: type.lowercased() == "real" ? "real" : type, listedType: pair.1)
        }
    }

    /// A training set's images: the rows of a labelled CSV, then each real and each fake list
    /// (folders, CSVs with a filename column, or text lists; see `list`).
    public static func labeled(csv: String?, real: [String], fake: [String]) throws -> [LabeledImage] {
        var images = try csv.map(labeled(csv:)) ?? []
        for source in real { images += try list(source).map { LabeledImage(item: $0, type: "real") } }
        for source in fake { images += try list(source).map { LabeledImage(item: $0, type: "fake") } }
        return images
    }

    /// A folder of images, a CSV with a filename column, or a text file with one path per line
    /// (relative paths are relative to the list's folder).
    public static func list(_ path: String) throws -> [InputItem] {
        switch FileKind(path) {
        case .directory: return imagesIn(directory: path)
        case .regular: break
        case .missing, .other: throw ReportError.unreadable(path)
        }
        if path.lowercased().hasSuffix(".csv") { return try collect([], csv: path) }
        // One image given where a list may be: that image, not its bytes read as names.
        if let head = try? Files.prefix(path, count: 16), head.withUnsafeBytes({ ImageFormat.sniff($0) }) != nil {
            return [InputItem(name: path, path: path)]
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        guard let data = try? Files.read(path, limit: CSVTable.maxBytes) else { throw ReportError.unreadable(path) }
        guard String(data: data, encoding: .utf8) != nil || !data.contains(0) else {
            throw ReportError.invalid("\(PathName.display(path)) is neither a folder, a CSV, a text list nor an image clipdetect reads")
        }
        let text = PathName.decode(data)
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map {
            InputItem(name: $0, path: $0.hasPrefix("/") ? $0 : folder.appendingPathComponent($0).path)
        }
    }

    /// Image files below `directory`, in sorted order, told by content. Only regular files are
    /// opened (a FIFO would block); symbolic links to files are followed, links to folders are not
    /// (they can loop).
    static func imagesIn(directory: String) -> [InputItem] {
        var found: [String] = []
        func walk(_ folder: String) {
            for name in Files.entries(folder) {
                let path = (folder as NSString).appendingPathComponent(name)
                var info = stat()
                guard PathName.withCString(path, { lstat($0, &info) }) == 0 else { continue }
                if info.st_mode & S_IFMT == S_IFDIR { walk(path); continue }
                guard FileKind(path) == .regular, let head = try? Files.prefix(path, count: 16) else { continue }
                if head.withUnsafeBytes({ ImageFormat.sniff($0) }) != nil { found.append(path) }
            }
        }
        walk(directory)
        return found.sorted().map { InputItem(name: $0, path: $0) }
    }
}
