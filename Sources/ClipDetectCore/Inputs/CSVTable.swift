import Foundation

/// A CSV file (RFC 4180: quoted fields, doubled quotes, CRLF or LF) with a header row.
package struct CSVTable: Sendable {
    package var header: [String]
    package var rows: [[String]]

    package init(header: [String], rows: [[String]]) {
        self.header = header
        self.rows = rows
    }

    /// Lists larger than this are refused (a million rows of paths is about 100 MB).
    package static let maxBytes = 1 << 30

    package init(path: String) throws {
        let data: Data
        switch FileKind(path) {
        case .regular:
            guard let read = try? Files.read(path, limit: Self.maxBytes) else { throw ReportError.unreadable(path) }
            data = read
        case .other:
            // A pipe named on purpose (`--csv <(…)`, /dev/stdin): read to its end, bounded.
            guard let handle = FileHandle(forReadingAtPath: path), let read = try? handle.read(upToCount: Self.maxBytes + 1), read.count <= Self.maxBytes
            else { throw ReportError.unreadable(path) }
            data = read
        case .missing: throw ReportError.invalid("cannot read \(PathName.display(path)): no such file")
        case .directory:
            throw ReportError.invalid("\(PathName.display(path)) is a folder, not a CSV list (a folder of images is given as an argument)")
        }
        // An image or other binary file given where the list goes: said so, not read as its columns.
        if let format = data.prefix(16).withUnsafeBytes({ ImageFormat.sniff($0) }) {
            throw ReportError.invalid("\(PathName.display(path)) is a \(format.rawValue.uppercased()) image, not a CSV list: give images as arguments")
        }
        if data.prefix(4096).contains(0) { throw ReportError.invalid("\(PathName.display(path)) is not text: a list is a CSV file with a filename column") }
        // Names that are not UTF-8 keep their bytes (PathName), so they open as listed.
        try self.init(text: PathName.decode(data), name: path)
    }

    /// A table from text; `name` is used in errors.
    package init(text: String, name: String = "<text>") throws {
        // A UTF-8 byte-order mark (spreadsheets write one) is not part of the first column's name.
        let (records, unclosed) = Self.parse(text.unicodeScalars.first == "\u{FEFF}" ? String(text.unicodeScalars.dropFirst()) : text)
        if let row = unclosed { throw ReportError.invalid("\(PathName.display(name)) record \(row + 1): a quoted field is not closed") }
        guard let first = records.first else { throw ReportError.invalid("\(PathName.display(name)) is empty") }
        header = first.map { $0.trimmingCharacters(in: .whitespaces) }
        rows = records.dropFirst().filter { $0 != [""] }
        // More fields than the header is a comma in a name that was not quoted: every column after
        // it would be read from the wrong field (a path read as the label).
        if let row = records.indices.dropFirst().first(where: { records[$0].count > header.count }) {
            throw ReportError.invalid("\(PathName.display(name)) row \(row) has \(records[row].count) fields, the header \(header.count): "
                                      + "quote a name that holds a comma")
        }
    }

    package func column(_ name: String) -> Int? { header.firstIndex(of: name) }

    package func values(_ name: String) throws -> [String] {
        guard let index = column(name) else { throw ReportError.invalid("no \(name) column (columns: \(header.joined(separator: ", ")))") }
        guard header.lastIndex(of: name) == index else { throw ReportError.invalid("two \(name) columns") }
        return rows.map { index < $0.count ? $0[index] : "" }
    }

    /// The records, and the index of a record whose quoted field never closes.
    static func parse(_ text: String) -> ([[String]], unclosed: Int?) {
        var records: [[String]] = [], record: [String] = [], field = ""
        var quoted = false, iterator = Array(text.unicodeScalars).makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let p = pending { pending = nil; return p }
            return iterator.next()
        }
        while let c = next() {
            if quoted {
                if c == "\"" {
                    if let after = next() {
                        if after == "\"" { field.unicodeScalars.append("\"") } else { quoted = false; pending = after }
                    } else { quoted = false }
                } else { field.unicodeScalars.append(c) }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == "," {
                record.append(field); field = ""
            } else if c == "\n" || c == "\r" {
                if c == "\r", let after = next(), after != "\n" { pending = after }
                record.append(field); records.append(record); record = []; field = ""
            } else {
                field.unicodeScalars.append(c)
            }
        }
        let unclosed = quoted ? records.count : nil
        if !field.isEmpty || !record.isEmpty { record.append(field); records.append(record) }
        return (records, unclosed)
    }

    /// One CSV field, quoted when it has to be.
    /// Scalars, not characters: a quote or comma followed by a combining mark is one Character but
    /// still a quote or comma to the reader.
    package static func field(_ text: String) -> String {
        let special: Set<Unicode.Scalar> = [",", "\"", "\n", "\r"]
        guard text.unicodeScalars.contains(where: special.contains) else { return text }
        var out = String.UnicodeScalarView()
        out.append("\"")
        for scalar in text.unicodeScalars {
            out.append(scalar)
            if scalar == "\"" { out.append("\"") }
        }
        out.append("\"")
        return String(out)
    }

    package static func line(_ fields: [String]) -> String { fields.map(field).joined(separator: ",") + "\n" }
}

package enum ReportError: Error, CustomStringConvertible {
    case unreadable(String)
    case invalid(String)

    package var description: String {
        switch self {
        case .unreadable(let path): "cannot read \(PathName.display(path))"
        case .invalid(let why): why
        }
    }
}

extension ReportError: ClassifiedError {
    package var kind: FailureKind {
        switch self {
        case .unreadable: .unreadable
        case .invalid: .invalidInput
        }
    }
}
