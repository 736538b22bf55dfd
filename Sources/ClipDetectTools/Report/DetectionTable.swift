import ClipDetectCore
import ClipDetectDetection
import Foundation

/// The rows of a detection run: the reference's contract first (filename, one score per head,
/// `fusion` when there are several), then the verdict, the stability columns when asked, and the
/// error. Also what a resumed output must hold to take more rows of the same detector.
package struct DetectionTable: Sendable {
    package let heads: [String]
    package let columns: [String]
    /// Only the reference's columns; a failed image is an empty line (which its compute_metrics.py skips).
    package let reference: Bool

    /// Columns read as numbers (with the score columns).
    package static let numericColumns: Set<String> = ["probability", "agreement", "score_min", "score_median", "score_max"]

    package init(heads: [String], stability: Bool = false, reference: Bool = false) {
        self.heads = heads
        self.reference = reference
        columns = ["filename"] + heads + (heads.count > 1 ? ["fusion"] : [])
            + (reference ? [] : ["probability", "label", "verdict"] + (stability ? StabilityCheck.columns : []) + ["error"])
    }

    private var scoreCount: Int { heads.count + (heads.count > 1 ? 1 : 0) }

    /// One row's cells, one per column; nil in the reference's layout for a failed image (its row
    /// is an empty line).
    package func cells(name: String, _ result: Result<Detection, Error>, stability: StabilityCheck.Result? = nil) -> [String]? {
        let stabilityCells = columns.contains("stability")
            ? stability.map { [$0.agreement, $0.minScore, $0.medianScore, $0.maxScore].map { $0.map { String($0) } ?? "" }
                    + [$0.isStable.map { $0 ? "stable" : "unstable" } ?? "untested"] }
                ?? Array(repeating: "", count: StabilityCheck.columns.count)
            : []
        let values: [String]
        switch result {
        case .success(let d):
            values = [name] + d.scores.map { String($0) } + (d.fused.map { [String($0)] } ?? [])
                + [String(d.probability), d.label, d.verdict.rawValue] + stabilityCells + [""]
        case .failure(let error):
            guard !reference else { return nil }
            values = [name] + Array(repeating: "", count: scoreCount) + ["", "", ""] + stabilityCells + ["\(error)"]
        }
        return Array(values.prefix(columns.count))
    }

    /// Whether the column at `index` holds numbers.
    package func isNumeric(_ index: Int) -> Bool {
        index > 0 && index <= scoreCount || Self.numericColumns.contains(columns[index])
    }

    /// What an earlier run left in a file this run resumes.
    package struct Resumed: Sendable {
        /// The images that have a row.
        package var names: Set<String>
        /// Bytes of the complete rows: a last row cut short (a crash, a full disk) is not done.
        package var complete: Int
        /// Empty lines after the header: the reference layout's failed images.
        package var emptyLines: Int
    }

    /// The rows an earlier run wrote (CSV or JSON lines), checked against these columns: rows of
    /// other heads or options are refused, never mixed in.
    package func resume(_ file: Data, path: String, jsonLines: Bool) throws(ResumeError) -> Resumed {
        // Names may be any bytes, but a NUL or a run of bytes that is no UTF-8 at all is no file of ours.
        guard !file.contains(0), !jsonLines || String(data: file, encoding: .utf8) != nil else { throw .notText(path) }
        if !jsonLines, file.first == UInt8(ascii: "{") { throw .jsonLines(path) }
        // A row ends at a line break outside quotes (a quoted name may hold one; JSON escapes its
        // own). A quote opens a field only at its start (or doubles one in a quoted field): a stray
        // one is no file of ours, refused rather than taken to hide the rows after it.
        var complete = 0, rows = 0, emptyLines = 0, quoted = false, fieldStart = true, closed = false
        for (offset, byte) in file.enumerated() {
            if byte == UInt8(ascii: "\""), !jsonLines {
                if quoted { (quoted, closed) = (false, true); continue }
                guard fieldStart || closed else { throw .strayQuote(path, line: rows + 1) }
                (quoted, closed, fieldStart) = (true, false, false)
                continue
            }
            closed = false
            guard !quoted else { continue }
            if byte == UInt8(ascii: ",") { fieldStart = true; continue }
            fieldStart = byte == UInt8(ascii: "\n")
            guard fieldStart else { continue }
            let row = file[(file.startIndex + complete)..<(file.startIndex + offset)]
            if rows > 0, row.allSatisfy({ $0 == UInt8(ascii: "\r") }) { emptyLines += 1 }
            (rows, complete) = (rows + 1, offset + 1)
        }
        let data = file.prefix(complete)
        guard jsonLines else {
            guard !data.isEmpty else { throw .noCompleteRow(path) }
            let table: CSVTable
            do { table = try CSVTable(text: PathName.decode(data), name: path) } catch { throw .unreadable(path, "\(error)") }
            guard table.header == columns else {
                let stability = Set(StabilityCheck.columns)
                let had = !stability.isDisjoint(with: table.header), has = !stability.isDisjoint(with: columns)
                if table.header.first == "filename", had != has { throw .stability(path, had: had) }
                throw .columns(path, found: table.header, wanted: columns)
            }
            do { return Resumed(names: Set(try table.values("filename")), complete: complete, emptyLines: emptyLines) } catch {
                throw .unreadable(path, "\(error)")
            }
        }
        var names = Set<String>()
        let scoreColumns = Set(columns[1...scoreCount])
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                  let name = object["filename"] as? String else { throw .notARow(path, line: number + 1) }
            let scores = Set(object.keys).subtracting(Set(columns).subtracting(scoreColumns))
            if object["error"] == nil, scores != scoreColumns { throw .scores(path, found: scores.sorted(), wanted: scoreColumns.sorted()) }
            names.insert(name)
        }
        return Resumed(names: names, complete: complete, emptyLines: emptyLines)
    }

    /// What of a detector (`Detector.identity`) differs between the record an earlier run left and
    /// this run's; empty for the same detector (a record of an earlier version that agrees on every
    /// field it has is the same).
    package static func differences(record: Data, identity: String, recordPath: String) throws(ResumeError) -> [IdentityField] {
        guard record != Data(identity.utf8) else { return [] }
        guard let before = (try? JSONSerialization.jsonObject(with: record)) as? [String: Any], before["heads"] != nil else {
            throw .notARecord(recordPath)
        }
        let now = (try? JSONSerialization.jsonObject(with: Data(identity.utf8))) as? [String: Any] ?? [:]
        func canonical(_ value: Any?) -> Data? { value.flatMap { try? JSONSerialization.data(withJSONObject: [$0], options: .sortedKeys) } }
        return IdentityField.allCases.filter { canonical(before[$0.rawValue]) != canonical(now[$0.rawValue]) }
    }

    /// The parts of a detector's identity that a resumed output must share.
    package enum IdentityField: String, CaseIterable, Sendable {
        case decision, encoders, exifOrientation, fusion, heads, stability
    }

    package enum ResumeError: Error, Equatable, CustomStringConvertible, ClassifiedError {
        case notText(String)
        case noCompleteRow(String)
        case unreadable(String, String)
        case stability(String, had: Bool)
        case columns(String, found: [String], wanted: [String])
        case notARow(String, line: Int)
        case scores(String, found: [String], wanted: [String])
        case notARecord(String)
        /// A file of JSON lines resumed as CSV.
        case jsonLines(String)
        /// A quote inside a field that does not start with one.
        case strayQuote(String, line: Int)

        package var description: String {
            func shown(_ names: [String]) -> String {
                let text = names.map(PathName.display).joined(separator: ",")
                return text.count <= 160 ? text : String(text.prefix(160)) + "…"
            }
            return switch self {
            case .notText(let path): "\(PathName.display(path)) is not a file that detect wrote (it is not text)"
            case .noCompleteRow(let path): "\(PathName.display(path)) holds no complete row"
            case .unreadable(_, let why): "cannot resume \(why)"
            case .stability(let path, let had): "\(PathName.display(path)) was written \(had ? "with" : "without") stability draws, this run is \(had ? "without" : "with")"
            case .columns(let path, let found, let wanted): "\(PathName.display(path)) has columns \(shown(found)), this run writes \(shown(wanted))"
            case .notARow(let path, let line): "\(PathName.display(path)) line \(line) is not a detect row"
            case .scores(let path, let found, let wanted):
                "\(PathName.display(path)) holds scores of \(found.joined(separator: ",")), this run writes \(wanted.joined(separator: ","))"
            case .notARecord(let path): "\(PathName.display(path)) is not a record clipdetect wrote"
            case .jsonLines(let path): "\(PathName.display(path)) holds JSON lines, not CSV"
            case .strayQuote(let path, let line): "\(PathName.display(path)) line \(line) has a quote inside a field, which detect never writes"
            }
        }
        package var kind: FailureKind { .invalidInput }
    }
}
