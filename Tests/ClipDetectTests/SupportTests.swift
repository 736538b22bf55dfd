import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// CSV tables and file paths: the parts every input list and output stands on.
@Suite struct SupportTests {
    @Test func csvQuotedFieldsCommasQuotesAndNewlines() throws {
        let text = "filename,typ,note\n\"a,b.jpg\",real,\"he said \"\"hi\"\"\"\n\"two\nlines.png\",gan,\"\"\n"
        let table = try CSVTable(text: text)
        #expect(table.header == ["filename", "typ", "note"])
        #expect(table.rows == [["a,b.jpg", "real", "he said \"hi\""], ["two\nlines.png", "gan", ""]])
        #expect(try table.values("filename") == ["a,b.jpg", "two\nlines.png"])
        // A quote that does not open a field is a character of it; text after a closing quote joins the field (as Python's csv).
        #expect(try CSVTable(text: "h,i\nab\"c,\"x\"y\n").rows == [["ab\"c", "xy"]])
        // More fields than the header: a comma in a name not quoted, refused (each column after it would be off by one).
        #expect(throws: ReportError.self) { try CSVTable(text: "filename,typ\na,b.jpg,real\n") }
        #expect(try CSVTable(text: "filename,typ\na.jpg\n").rows == [["a.jpg"]], "fewer fields read as empty")
        // A doubled quote alone is one quote; a quoted CR LF stays in the field.
        #expect(try CSVTable(text: "h\n\"\"\"\"\n\"a\r\nb\"\n").rows == [["\""], ["a\r\nb"]])
        // What line() writes, parse() reads back.
        let fields = ["a,b", "q\"q", "new\nline", "cr\r", " spaced ", ""]
        #expect(try CSVTable(text: CSVTable.line(["h1", "h2", "h3", "h4", "h5", "h6"]) + CSVTable.line(fields)).rows == [fields])
    }

    @Test func csvLineEndsAndByteOrderMark() throws {
        let lf = try CSVTable(text: "filename,typ\na.jpg,real\nb.jpg,gan\n")
        for text in ["filename,typ\r\na.jpg,real\r\nb.jpg,gan\r\n", "filename,typ\ra.jpg,real\rb.jpg,gan\r", "filename,typ\r\na.jpg,real\nb.jpg,gan",
                     "\u{FEFF}filename,typ\r\na.jpg,real\r\nb.jpg,gan\r\n", "filename,typ\n\na.jpg,real\r\n\r\nb.jpg,gan\n\n"] {
            let table = try CSVTable(text: text)
            #expect(table.header == lf.header && table.rows == lf.rows, "\(text.debugDescription)")
        }
        #expect(lf.rows == [["a.jpg", "real"], ["b.jpg", "gan"]])
        // From a file: the BOM as bytes, CRLF, a quoted header.
        let path = try Fixtures.temporaryDirectory().appendingPathComponent("bom.csv").path
        try Data([0xEF, 0xBB, 0xBF] + Array("\"filename\",typ\r\nx.png,real\r\n".utf8)).write(to: URL(fileURLWithPath: path))
        let file = try CSVTable(path: path)
        #expect(file.header == ["filename", "typ"] && file.rows == [["x.png", "real"]])
        // Only the header is trimmed; a BOM later in the text is data.
        #expect(try CSVTable(text: " filename , typ \n a.jpg ,\u{FEFF}gan\n").rows == [[" a.jpg ", "\u{FEFF}gan"]])
        #expect(try CSVTable(text: " filename , typ \n").header == ["filename", "typ"])
    }

    @Test func csvUnclosedQuoteIsRefusedWithItsRecord() throws {
        for (text, record) in [("filename,det\nr1,\"1\nr2,2\n", 2), ("\"filename,det\n", 1), ("h\na\nb\n\"c\n\nd", 4)] {
            let error = #expect(throws: ReportError.self) { try CSVTable(text: text, name: "list.csv") }
            #expect("\(error!)" == "list.csv record \(record): a quoted field is not closed", "\(text.debugDescription)")
            #expect(CSVTable.parse(text).unclosed == record - 1)
        }
        #expect(CSVTable.parse("h\n\"closed\"\n").unclosed == nil)
        #expect(throws: ReportError.self) { try CSVTable(text: "") }
        #expect(throws: ReportError.self) { try CSVTable(text: "\u{FEFF}") }
    }

    @Test func csvEmptyTrailingFieldsAreKept() throws {
        let table = try CSVTable(text: "filename,typ,extra\na.jpg,,\nb.jpg,gan,\n,,\nc.jpg\n")
        #expect(table.rows == [["a.jpg", "", ""], ["b.jpg", "gan", ""], ["", "", ""], ["c.jpg"]])
        // A short row reads as empty cells, not as the next row's.
        #expect(try table.values("extra") == ["", "", "", ""] && table.values("typ") == ["", "gan", "", ""])
        #expect(CSVTable.parse("a,b,\n").0 == [["a", "b", ""]] && CSVTable.parse("a,b,").0 == [["a", "b", ""]])
        #expect(CSVTable.parse(",").0 == [["", ""]] && CSVTable.parse("").0 == [])
        // The empty quoted field at the end of the text is a field.
        #expect(CSVTable.parse("a,\"\"").0 == [["a", ""]])
    }

    /// The folder a file is written beside, for every spelling (Foundation's own traps on some
    /// one-character names); a one-character output path is writable like any other.
    @Test func foldersOfPaths() throws {
        #expect(Files.folder(of: "a") == "." && Files.folder(of: "-") == "." && Files.folder(of: "/a") == "/")
        #expect(Files.folder(of: "a/b") == "a" && Files.folder(of: "a//b") == "a" && Files.folder(of: "a/b/") == "a" && Files.folder(of: "/") == "/")
        #expect(try Files.writeTarget("b") == "b")
        // A FIFO nobody reads is refused at once, not waited on.
        let fifo = try Fixtures.temporaryDirectory().appendingPathComponent("out").path
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: FileError(.write, fifo, .noReader)) { try Files.write(Data("x".utf8), to: fifo) }
    }
}
