import ClipDetect
import FuzzSupport

/// The CSV reader (quotes, CRLF, BOM, bytes that are not UTF-8); a header the writer quotes reads back the same.
runFuzzer { bytes in
    guard let table = try? CSVTable(text: PathName.decode(bytes)) else { return }
    _ = try? table.values("filename")
    _ = try? table.values("typ")
    // Fields the writer cannot give back as they are: empty, padded (headers are trimmed), a leading BOM.
    let plain = table.header.allSatisfy { !$0.isEmpty && !$0.contains("\r") && !$0.contains("\n") && !$0.hasPrefix(" ") && !$0.hasSuffix(" ") }
        && table.header.first?.unicodeScalars.first != "\u{FEFF}"
    guard plain, let again = try? CSVTable(text: CSVTable.line(table.header)) else { return }
    if again.header != table.header { fatalError("CSV round trip changed \(table.header) into \(again.header)") }
}
