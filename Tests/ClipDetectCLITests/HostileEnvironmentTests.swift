import Foundation
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools
import ClipDetectTestSupport

/// Crashes and hangs a user met: bad settings, full disks, FIFOs, names that are not UTF-8.
@Suite struct HostileEnvironmentTests {
    let cli = CLI()
    static let image = Fixtures.path("images", "jpeg_420.jpg")

    func detect(_ extra: [String], environment: [String: String?] = [:], output: FileHandle? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let folder = try Fixtures.temporaryDirectory()
        let head = try DetectCommandTests().headFile(in: folder)
        return try cli.run(["detect", "--model", Fixtures.backbone, "--head", head] + extra, environment: environment, output: output)
    }

    @Test func badEndpointsAndHomesFailOnlyWhatNeedsThem() throws {
        for (key, value) in [("CLIPDETECT_HF_ENDPOINT", "not a url ::"), ("HF_ENDPOINT", ""), ("CLIPDETECT_HEADS_ENDPOINT", "")] {
            let local = try detect([Self.image], environment: [key: value])
            #expect(local.status == 0, "\(key): \(local.stderr)")
            let listed = try cli.run(["model", "list"], environment: [key: value])
            #expect(listed.status == 0, "\(key): \(listed.stderr)")
        }
        let fetch = try cli.run(["model", "fetch", "openai-vit-b32"], environment: ["CLIPDETECT_HF_ENDPOINT": "not a url ::"])
        #expect(fetch.status != 0 && fetch.stderr.contains("is not an http(s) URL") && fetch.stderr.split(separator: "\n").count == 1, "\(fetch.stderr)")

        let home = try Fixtures.temporaryDirectory()
        let empty = try detect([Self.image], environment: ["CLIPDETECT_HOME": "", "HOME": home.path, "XDG_CACHE_HOME": nil])
        #expect(empty.status == 0, "\(empty.stderr)")
        #expect(FileManager.default.fileExists(atPath: home.appendingPathComponent(".cache/clipdetect/features.sqlite").path))

        let file = home.appendingPathComponent("a-file").path
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        let blocked = try detect([Self.image], environment: ["CLIPDETECT_HOME": file])
        #expect(blocked.status == 0 && blocked.stderr.contains("exists and is not a folder"), "\(blocked.stderr)")
        #expect(!blocked.stderr.contains("NSCocoaErrorDomain"))
    }

    @Test func aFullDiskIsOneLineAndNoCrash() throws {
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let result = try detect([Self.image], output: full)
        #expect(result.status == 1 && result.stderr.contains("cannot write standard output: No space left on device"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func aFIFOIsSkippedInFoldersAndRefusedWhenNamed() throws {
        let folder = try Fixtures.temporaryDirectory()
        try FileManager.default.copyItem(atPath: Self.image, toPath: folder.appendingPathComponent("a.jpg").path)
        let fifo = folder.appendingPathComponent("pipe.jpg").path
        #expect(mkfifo(fifo, 0o644) == 0)
        #expect(try Inputs.collect([folder.path]).map(\.name) == [folder.appendingPathComponent("a.jpg").path])
        let named = try detect([fifo, Self.image])
        #expect(named.status == 2 && named.stdout.contains("not a regular file"), "\(named.stdout)")
        let scanned = try detect([folder.path])
        #expect(scanned.status == 0, "\(scanned.stderr)")
    }

    /// A file whose name is Latin-1 bytes is found in a folder, opens when named, and keeps its
    /// bytes in the CSV output.
    @Test func namesThatAreNotUTF8KeepTheirBytes() throws {
        let folder = try Fixtures.temporaryDirectory()
        let raw = Array(folder.path.utf8) + Array("/caf".utf8) + [0xE9] + Array(".jpg".utf8)
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.image))
        let fd = (raw + [0]).withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) } }
        #expect(fd >= 0)
        _ = data.withUnsafeBytes { write(fd, $0.baseAddress!, data.count) }
        close(fd)
        let name = PathName.decode(raw)
        #expect(PathName.bytes(name) == raw && PathName.display(name).hasSuffix("caf\\xE9.jpg"))
        #expect(try Inputs.collect([folder.path]).map(\.path) == [name])
        #expect(try ImageDecoder.decode(path: name).width > 0)

        let output = folder.appendingPathComponent("out.csv").path
        let scanned = try detect(["-o", output, folder.path])
        #expect(scanned.status == 0, "\(scanned.stderr)")
        let written = try [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))
        #expect(written.firstRange(of: raw) != nil, "the name's own bytes are in the CSV")
        #expect(try CSVTable(path: output).values("filename") == [name])
    }

    @Test func tableCellsKeepTheirColumns() throws {
        let folder = try Fixtures.temporaryDirectory()
        let long = folder.appendingPathComponent(String(repeating: "n", count: 60) + "\nline.jpg").path
        try FileManager.default.copyItem(atPath: Self.image, toPath: long)
        let result = try detect(["--format", "table", long])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 2, "\(result.stdout)")
        #expect(lines[1].hasPrefix("…") && lines[1].contains("\\nline.jpg") && lines[1].dropFirst(40).hasPrefix(" ") == false)
        #expect(String(lines[1]).split(separator: " ", omittingEmptySubsequences: true).count >= 3)
    }
}
