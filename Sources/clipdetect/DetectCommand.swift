import ArgumentParser
import ClipDetect
import Foundation

extension Fusion: ExpressibleByArgument {}

struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect", abstract: "Score images: > 0 means synthetic (a log-likelihood ratio).")

    enum Format: String, ExpressibleByArgument, CaseIterable { case csv, jsonl, table }
    enum Columns: String, ExpressibleByArgument, CaseIterable { case full, reference }

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var cacheOptions: CacheOptions
    @OptionGroup var verdictOptions: VerdictOptions
    @OptionGroup var progressOptions: ProgressOptions
    @OptionGroup var headOptions: HeadOptions
    @Option(help: "A CSV with a filename column (paths relative to its folder, as the reference).") var csv: String?
    @Option(help: "csv (the reference's columns plus probability, label, verdict, error), jsonl or table.") var format: Format = .csv
    @Option(help: "full, or reference: the reference's file exactly (filename, one score per head, fusion when fused; a failed image is an empty line, which its compute_metrics.py skips). CSV only.")
    var columns: Columns = .full
    @Option(help: ArgumentHelp("Re-score each image under N seeded draws of --chain and report how often the verdict holds. Costs N extra forward passes per image.",
                               valueName: "N"))
    var stability: Int?
    @Option(help: "The chain --stability draws: a named chain (reshare, social, paper) or operations joined by + (default: reshare).") var chain: String?
    @Option(help: "Seed of the --stability draws (default: 0).") var seed: UInt64?
    @Option(name: [.customShort("o"), .long], help: "Output file (default: standard output).") var output: String?
    @Flag(help: "Skip files already in the output file and append the rest.") var resume = false
    @Flag(help: "Apply EXIF orientation first (the reference does not).") var exifOrientation = false
    @Option(help: "Images per forward pass (1…256).") var batch = 8
    @Argument(help: "Image files, directories (searched recursively), or - for paths on standard input.") var inputs: [String] = []

    func validate() throws {
        if inputs.isEmpty && csv == nil { throw ValidationError("nothing to score: give images, a directory, --csv or -") }
        if resume && output == nil { throw ValidationError("--resume needs -o FILE") }
        if resume && format == .table { throw ValidationError("--resume works with csv or jsonl output") }
        if columns == .reference && format != .csv { throw ValidationError("--columns reference is the reference's CSV: drop --format \(format.rawValue)") }
        if columns == .reference && stability != nil { throw ValidationError("--columns reference has no stability columns: drop --stability, or --columns") }
        if !(1...256).contains(batch) { throw ValidationError("--batch takes 1…256") }
        if stability == nil && (chain != nil || seed != nil) { throw ValidationError("--chain and --seed are the draws of --stability: give --stability N") }
        if let stability, !(1...StabilityCheck.maxDraws).contains(stability) {
            throw ValidationError("--stability takes 1…\(StabilityCheck.maxDraws) draws")
        }
    }

    func run() throws {
        if let output { try checkWritable(output) }
        let check = try stability.map { try StabilityCheck(draws: $0, chain: ImpairmentChain(condition: chain ?? "reshare", seed: seed ?? 0)) }
        let detector = try modelOptions.loadDetector(headOptions, configuration: Detector.Configuration(
            batchSize: batch, applyOrientation: exifOrientation, cache: cacheOptions.open(), band: verdictOptions.parsedBand())).detector
        var items = try Inputs.collect(inputs, csv: csv)
        let inputs = items.map(\.path) + (csv.map { [$0] } ?? []) + headOptions.heads + modelOptions.files + cacheOptions.files
        try refuseOverwritingInputs(output, inputs)
        if let output, let record = DetectionWriter.identityPath(output) {
            // The record is written too: never through a link, never over an input or another output's record.
            try refuseOverwritingInputs(record, inputs, option: "the record of -o")
            if FileKind.isLink(record) { throw CommandError("\(PathName.display(record)), where the record of -o goes, is a link: remove it, or write to another file") }
            if output.hasSuffix(".detector") { throw CommandError("-o \(output) names a detector record: write the scores to another file") }
        }
        let writer = try DetectionWriter(path: output, format: format, heads: detector.heads.map(\.metadata.name), append: resume,
                                         stability: check != nil, reference: columns == .reference, identity: detector.identity(stability: check))
        let skipped = items.count
        items.removeAll { writer.done.contains($0.name) }
        if resume { printError("resuming: \(skipped - items.count) file(s) already in \(output!)") }
        let progress = Progress(total: items.count, label: "detect", quiet: progressOptions.quiet)
        var failures = 0
        let record = { (index: Int, result: Result<Detection, Error>, stable: StabilityCheck.Result?) throws in
            if case .failure(let error) = result {
                failures += 1
                if !progress.visible { printError("\(error)") }
            }
            try writer.write(name: items[index].name, result, stability: stable)
            progress.advance(failed: (try? result.get()) == nil)
        }
        if let check {
            // A batch at a time: images' clean passes and draws share forward passes; a row is
            // written once all of its image's passes are in.
            var plan = StabilityPlan(items.map { .file($0.path) }, check: check, settings: detector.settings)
            while true {
                let batch = plan.next(upTo: detector.settings.batchSize)
                if !batch.isEmpty { plan.record(detector.detect(batch)) }
                for (index, (result, stable)) in plan.finished() {
                    if let stable, stable.failedDraws > 0, let why = stable.failure {
                        printError("\(PathName.display(items[index].path)): \(stable.failedDraws) of \(check.draws) stability draws failed (\(why))")
                    }
                    try record(index, result, stable)
                }
                if batch.isEmpty { break }
            }
        } else {
            try detector.run(paths: items.map(\.path)) { index, result in try record(index, result, nil) }
        }
        progress.finish()
        if failures > 0 {
            printError("\(failures) of \(items.count) file(s) failed; their errors are in the output")
            throw partialFailure
        }
    }
}

/// Rows written as they are computed, one write per row, so a run killed half-way keeps what it did.
final class DetectionWriter {
    private let out: OutputStream
    private let format: DetectCommand.Format
    private let table: DetectionTable
    /// Names already in the file this run appends to (--resume).
    let done: Set<String>

    /// `identity`: the detector's (`Detector.identity`), kept beside a file output as
    /// `<output>.detector` so that --resume appends only rows of the same detector.
    /// `reference`: only the reference's columns (CSV), and an empty line for a failed image.
    init(path: String?, format: DetectCommand.Format, heads: [String], append: Bool, stability: Bool = false, reference: Bool = false,
         identity: String) throws {
        self.format = format
        let table = DetectionTable(heads: heads, stability: stability, reference: reference)
        self.table = table
        // A file to resume that cannot be read is refused: taken as absent, it would be overwritten.
        let previous: Data?
        do { previous = append ? try path.flatMap { FileKind($0) == .regular ? try Files.read($0, limit: CSVTable.maxBytes) : nil } : nil } catch {
            throw CommandError("cannot resume \(path.map(PathName.display) ?? ""): \(error)")
        }
        // An empty file (a run killed before its header) starts afresh.
        let resuming = previous.map { !$0.isEmpty } ?? false
        let columns = table.columns
        if resuming, let path, let previous {
            // A row cut short by a crash or a full disk is not done. What is there is checked first:
            // a file that is refused is left exactly as it was.
            let resumed: DetectionTable.Resumed
            do { resumed = try table.resume(previous, path: path, jsonLines: format == .jsonl) } catch {
                throw CommandError(Self.resumeMessage(error))
            }
            (done, emptyLinesThere) = (resumed.names, resumed.emptyLines)
            let complete = resumed.complete
            if try !Self.checkIdentity(identity, of: path), let record = Self.identityPath(path) {
                // From now on the rows appended are this detector's: later resumes are checked.
                try Files.write(Data(identity.utf8), to: record)
            }
            if complete < previous.count {
                let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
                try handle.truncate(atOffset: UInt64(complete))
                try handle.close()
                printError("\(path): dropped an incomplete last row")
            }
        } else {
            done = []
        }
        out = try OutputStream(path: path, append: resuming)
        // After the output is opened (and emptied): a record is never left beside rows it did not write.
        if !resuming, let path, let record = Self.identityPath(path) { try Files.write(Data(identity.utf8), to: record) }
        if format == .csv && !resuming { try out.write(CSVTable.line(columns)) }
        if format == .table { try out.write(zip(columns, Self.widths(columns)).map { Self.pad($0, $1) }.joined() + "\n") }
    }

    var columns: [String] { table.columns }
    /// Empty lines a resumed reference-layout file already has: the failed images of the earlier run,
    /// which this run takes up again (one more is written only for an image that fails beyond them).
    private var emptyLinesThere = 0

    func write(name: String, _ result: Result<Detection, Error>, stability: StabilityCheck.Result? = nil) throws {
        // The reference's layout: a failed image is an empty line.
        guard let values = table.cells(name: name, result, stability: stability) else {
            guard emptyLinesThere == 0 else { emptyLinesThere -= 1; return }
            return try out.write("\n")
        }
        switch format {
        case .csv: try out.write(Data(PathName.bytes(CSVTable.line(values))))  // names as their own bytes
        case .jsonl:
            var object: [String: Any] = [:]
            for (index, (column, value)) in zip(columns, values).enumerated() where !value.isEmpty {
                object[column] = table.isNumeric(index) ? Double(value).flatMap { $0.isFinite ? $0 : nil } ?? value as Any : value
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            try out.write(String(decoding: data, as: UTF8.self) + "\n")
        case .table:
            // Columns as wide as their titles (at least 14), never cut: the error, last, is whole.
            let cells = zip(values, Self.widths(columns)).enumerated().map { index, pair -> String in
                let (value, width) = pair
                let text = index == 0 ? Self.cell(value, width: 38) : Double(value).map { String(format: "%.4f", $0) } ?? Self.escaped(value)
                return Self.pad(text, width)
            }
            try out.write(cells.joined().trimmingCharacters(in: .whitespaces) + "\n")
        }
    }

    static func widths(_ columns: [String]) -> [Int] { columns.map { $0 == "filename" ? 40 : max(14, $0.count + 2) } }

    /// Text padded to `width`, or followed by one space when it is longer: never cut.
    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text.padding(toLength: width, withPad: " ", startingAt: 0)
    }

    static func escaped(_ text: String) -> String {
        text.unicodeScalars.map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined()
    }

    /// A name as one table cell: control characters escaped, a long name shortened from the left
    /// (the file name is at the end), so the score columns stay where they are.
    static func cell(_ name: String, width: Int) -> String {
        let text = escaped(PathName.display(name))
        return text.count <= width ? text : "…" + text.suffix(width - 1)
    }

    /// Where the record of the detector that writes `output` lives: beside the file the output
    /// really is (links followed, so two names of one file share it); nil for a device or a pipe,
    /// which cannot be resumed.
    static func identityPath(_ output: String) -> String? {
        guard let path = PathName.resolved(output) else { return FileKind(output) == .missing ? output + ".detector" : nil }
        return FileKind(path) == .regular ? path + ".detector" : nil
    }

    /// Refuses to resume a file another detector wrote (other heads under the same names, another
    /// backbone, precision, fusion, orientation or stability draws), naming what differs; a file
    /// without a record (an older version's, or moved without it) is resumed on its columns, and
    /// says so; a record that cannot be read is refused. False when there was no record.
    static func checkIdentity(_ identity: String, of output: String) throws -> Bool {
        guard let record = identityPath(output) else { return true }
        if FileKind(record) == .missing {
            printError("note: \(PathName.display(record)) is missing, so the heads that wrote \(output) cannot be checked: resuming on its column names alone")
            return false
        }
        let data: Data
        do { data = try Files.read(record, limit: 1 << 20) } catch {
            throw CommandError("\(PathName.display(record)), the record of the detector that wrote \(output), cannot be read (\(error)): remove it to resume on the columns alone")
        }
        let differing: [DetectionTable.IdentityField]
        do { differing = try DetectionTable.differences(record: data, identity: identity, recordPath: record) } catch {
            throw CommandError("\(error): remove it to resume on the columns alone")
        }
        if differing.isEmpty { return true }
        let names: [DetectionTable.IdentityField: String] = [
            .heads: "heads", .encoders: "backbone or precision", .fusion: "fusion", .decision: "calibration, threshold or band",
            .exifOrientation: "--exif-orientation", .stability: "--stability draws, chain or seed"]
        throw CommandError("\(output) was written by another detector (other \(differing.map { names[$0]! }.joined(separator: ", "))): "
                           + "resume with the same, or write to another file")
    }

    /// A resume refused, with the options that would make it work.
    static func resumeMessage(_ error: DetectionTable.ResumeError) -> String {
        switch error {
        case .stability(let path, let had):
            "\(path) was written \(had ? "with" : "without") --stability, this run is \(had ? "without" : "with"): resume with the same --stability, or write to another file"
        case .noCompleteRow, .scores: "\(error): resume with the same heads, or write to another file"
        case .jsonLines: "\(error): resume with --format jsonl, or write to another file"
        case .columns: "\(error): resume with the same heads and options, or write to another file"
        default: "\(error): write to another file"
        }
    }
}

/// A one-line progress bar on standard error, only when it is a terminal.
/// How a long run reports itself on standard error: a bar on a terminal; elsewhere (a log, a pipe)
/// one plain line every few seconds and a summary at the end; nothing with --quiet.
final class Progress {
    enum Mode { case bar, lines, quiet }
    let total: Int
    let label: String
    let mode: Mode
    private(set) var done = 0
    private(set) var failed = 0
    private let start = Date()
    private var lastLine = Date()
    /// Seconds between lines off a terminal (CLIPDETECT_PROGRESS_SECONDS sets it, for tests).
    private let interval: TimeInterval

    init(total: Int, label: String, quiet: Bool = false) {
        self.total = total
        self.label = label
        mode = quiet ? .quiet : isatty(STDERR_FILENO) != 0 ? .bar : .lines
        interval = ProcessInfo.processInfo.environment["CLIPDETECT_PROGRESS_SECONDS"].flatMap(Numbers.decimal)
            .flatMap { $0.isFinite && $0 >= 0 ? $0 : nil } ?? 5
    }

    /// True when a bar is drawn: other messages should wait for its line to end.
    var visible: Bool { mode == .bar }

    func advance(failed: Bool = false) {
        done += 1
        if failed { self.failed += 1 }
        let elapsed = max(Date().timeIntervalSince(start), 1e-9), rate = Double(done) / elapsed
        switch mode {
        case .quiet: return
        case .bar:
            let width = 30, filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            write(String(format: "\r%@ %d/%d  %.2f images/s", bar, done, total, rate))
        case .lines:
            guard Date().timeIntervalSince(lastLine) >= interval, done < total else { return }
            lastLine = Date()
            let left = rate > 0 ? Double(total - done) / rate : 0
            write(String(format: "%@: %d/%d done (%d failed), %.2f images/s, about %@ left\n", label, done, total, self.failed, rate,
                         Self.duration(left)))
        }
    }

    func finish() {
        switch mode {
        case .quiet: return
        case .bar: write("\n")
        case .lines:
            let elapsed = Date().timeIntervalSince(start)
            write(String(format: "%@: %d/%d done (%d failed) in %@, %.2f images/s\n", label, done, total, failed, Self.duration(elapsed),
                         Double(done) / max(elapsed, 1e-9)))
        }
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }

    private func write(_ text: String) { try? FileHandle.standardError.write(contentsOf: Data(text.utf8)) }
}

/// --quiet for the commands that report progress.
struct ProgressOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "No progress bar, progress lines or summary on standard error.") var quiet = false
}
