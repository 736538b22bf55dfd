import ArgumentParser
import ClipDetect
import Foundation

extension Fusion: ExpressibleByArgument {}

struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect", abstract: "Score images: > 0 means synthetic (a log-likelihood ratio).")

    enum Format: String, ExpressibleByArgument, CaseIterable { case csv, jsonl, table }

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var cacheOptions: CacheOptions
    @Option(name: .customLong("head"), help: "Head file (repeat for several detectors; their scores are fused). Default: the named model's head.")
    var heads: [String] = []
    @Option(help: "How several heads' scores are combined.") var fusion: Fusion = .softOrProb
    @Option(help: "A CSV with a filename column (paths relative to its folder, as the reference).") var csv: String?
    @Option(help: "csv (the reference's columns plus probability, label, error), jsonl or table.") var format: Format = .csv
    @Option(name: [.customShort("o"), .long], help: "Output file (default: standard output).") var output: String?
    @Flag(help: "Skip files already in the output file and append the rest.") var resume = false
    @Flag(help: "Apply EXIF orientation first (the reference does not).") var exifOrientation = false
    @Option(help: "Images per forward pass.") var batch = 8
    @Argument(help: "Image files, directories (searched recursively), or - for paths on standard input.") var inputs: [String] = []

    func validate() throws {
        if inputs.isEmpty && csv == nil { throw ValidationError("nothing to score: give images, a directory, --csv or -") }
        if resume && output == nil { throw ValidationError("--resume needs -o FILE") }
        if resume && format == .table { throw ValidationError("--resume works with csv or jsonl output") }
    }

    func run() throws {
        let loaded = try modelOptions.load(heads: heads)
        var detector = try Detector(encoder: loaded.encoder, heads: loaded.heads(),
                                    fusion: fusion, batchSize: batch)
        detector.extractor.cache = cacheOptions.open()
        var items = try Inputs.collect(inputs, csv: csv)
        let done = resume ? try DetectionWriter.namesIn(output!, format: format) : []
        let skipped = items.count
        items.removeAll { done.contains($0.name) }
        if resume { printError("resuming: \(skipped - items.count) file(s) already in \(output!)") }
        let writer = try DetectionWriter(path: output, format: format, heads: detector.heads.map(\.metadata.name), append: resume)
        let progress = Progress(total: items.count)
        var failures = 0
        try detector.run(paths: items.map(\.path), applyOrientation: exifOrientation) { index, result in
            if case .failure(let error) = result {
                failures += 1
                if !progress.visible { printError("\(error)") }
            }
            writer.write(name: items[index].name, result)
            progress.advance()
        }
        progress.finish()
        if failures > 0 {
            printError("\(failures) of \(items.count) file(s) failed; their errors are in the output")
            throw partialFailure
        }
    }
}

/// Rows written as they are computed, so a run killed half-way keeps what it did.
final class DetectionWriter {
    private let out: OutputStream
    private let format: DetectCommand.Format
    private let heads: [String]

    init(path: String?, format: DetectCommand.Format, heads: [String], append: Bool) throws {
        self.format = format
        self.heads = heads
        let exists = path.map { FileManager.default.fileExists(atPath: $0) } ?? false
        out = try OutputStream(path: path, append: append && exists)
        if format == .csv && !(append && exists) { out.write(CSVTable.line(columns)) }
        if format == .table { out.write(columns.map { $0.padding(toLength: $0 == "filename" ? 40 : 14, withPad: " ", startingAt: 0) }.joined() + "\n") }
    }

    /// The reference's contract: filename, one column per detector, fusion when several; then ours.
    var columns: [String] { ["filename"] + heads + (heads.count > 1 ? ["fusion"] : []) + ["probability", "label", "error"] }

    func write(name: String, _ result: Result<Detection, Error>) {
        var values: [String]
        switch result {
        case .success(let d):
            values = [name] + d.scores.map { String($0) } + (d.fused.map { [String($0)] } ?? [])
                + [String(d.probability), d.isSynthetic ? "synthetic" : "real", ""]
        case .failure(let error):
            values = [name] + Array(repeating: "", count: heads.count + (heads.count > 1 ? 1 : 0)) + ["", "", "\(error)"]
        }
        switch format {
        case .csv: out.write(CSVTable.line(values))
        case .jsonl:
            var object: [String: Any] = [:]
            for (column, value) in zip(columns, values) where !value.isEmpty {
                object[column] = Double(value).map { $0 as Any } ?? value
            }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            out.write(String(decoding: data, as: UTF8.self) + "\n")
        case .table:
            let cells = values.enumerated().map { index, value -> String in
                let text = Double(value).map { String(format: "%.4f", $0) } ?? value
                return index == 0 ? text.padding(toLength: 40, withPad: " ", startingAt: 0) : text.padding(toLength: 14, withPad: " ", startingAt: 0)
            }
            out.write(cells.joined().trimmingCharacters(in: .whitespaces) + "\n")
        }
    }

    /// Names already written to an earlier output, for --resume.
    static func namesIn(_ path: String, format: DetectCommand.Format) throws -> Set<String> {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        switch format {
        case .csv, .table: return Set(try CSVTable(path: path).values("filename"))
        case .jsonl:
            let text = try String(contentsOfFile: path, encoding: .utf8)
            return Set(text.split(separator: "\n").compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["filename"] as? String
            })
        }
    }
}

/// A one-line progress bar on standard error, only when it is a terminal.
final class Progress {
    let total: Int
    private(set) var done = 0
    let visible = isatty(STDERR_FILENO) != 0
    private let start = Date()

    init(total: Int) { self.total = total }

    func advance() {
        done += 1
        guard visible else { return }
        let width = 30, filled = total > 0 ? width * done / total : width
        let rate = Double(done) / max(Date().timeIntervalSince(start), 1e-9)
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        FileHandle.standardError.write(Data(String(format: "\r%@ %d/%d  %.2f images/s", bar, done, total, rate).utf8))
    }

    func finish() {
        if visible { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
