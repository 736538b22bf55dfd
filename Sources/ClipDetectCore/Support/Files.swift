import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// File names as Linux stores them: bytes, not always UTF-8. A name that is not valid UTF-8 keeps
/// each stray byte as a private-use scalar (U+10FD00 + byte), so it survives as a `String` and
/// opens again as the same bytes.
public enum PathName {
    static let escapeBase: UInt32 = 0x10_FD00

    public static func decode<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var scalars = String.UnicodeScalarView()
        var rest = Array(bytes)[...]
        while !rest.isEmpty {
            // The longest valid UTF-8 prefix (a scalar is at most 4 bytes), else one escaped byte.
            var taken = false
            for length in (1...min(4, rest.count)).reversed() {
                if let text = String(validating: rest.prefix(length), as: UTF8.self), text.unicodeScalars.count == 1 {
                    scalars.append(contentsOf: text.unicodeScalars)
                    rest = rest.dropFirst(length)
                    taken = true
                    break
                }
            }
            if !taken {
                scalars.append(Unicode.Scalar(escapeBase + UInt32(rest.first!))!)
                rest = rest.dropFirst()
            }
        }
        return String(scalars)
    }

    /// The bytes a decoded name stands for.
    public static func bytes(_ name: String) -> [UInt8] {
        var out: [UInt8] = []
        for scalar in name.unicodeScalars {
            if (escapeBase...(escapeBase + 0xFF)).contains(scalar.value) {
                out.append(UInt8(scalar.value - escapeBase))
            } else {
                out += Array(String(scalar).utf8)
            }
        }
        return out
    }

    /// Stray bytes shown as `\xNN`, for messages and tables.
    public static func display(_ name: String) -> String {
        String(name.unicodeScalars.map { scalar -> String in
            (escapeBase...(escapeBase + 0xFF)).contains(scalar.value) ? String(format: "\\x%02X", scalar.value - escapeBase) : String(scalar)
        }.joined())
    }

    /// The path with every link and `.`/`..` resolved (`realpath`); nil when it does not exist.
    public static func resolved(_ name: String) -> String? {
        guard let resolved = withCString(name, { realpath($0, nil) }) else { return nil }
        defer { free(resolved) }
        return decode(UnsafeBufferPointer(start: UnsafeRawPointer(resolved).assumingMemoryBound(to: UInt8.self), count: strlen(resolved)))
    }

    /// Calls `body` with the name as a C string of its bytes.
    public static func withCString<R>(_ name: String, _ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        try (bytes(name) + [0]).withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }

    /// The command line with each argument decoded from its bytes (Swift's own decoding would replace stray bytes).
    public static var arguments: [String] {
        (0..<Int(CommandLine.argc)).map { index in
            guard let argument = CommandLine.unsafeArgv[index] else { return "" }
            return decode(UnsafeBufferPointer(start: UnsafeRawPointer(argument).assumingMemoryBound(to: UInt8.self), count: strlen(argument)))
        }
    }
}

/// What kind of thing a path names, following symbolic links.
public enum FileKind: Sendable, Equatable {
    case missing, regular, directory, other

    /// Whether `path` itself is a symbolic link (not followed).
    public static func isLink(_ path: String) -> Bool {
        var info = stat()
        return PathName.withCString(path, { lstat($0, &info) }) == 0 && info.st_mode & S_IFMT == S_IFLNK
    }

    public init(_ path: String) {
        var info = stat()
        guard PathName.withCString(path, { stat($0, &info) }) == 0 else { self = .missing; return }
        switch info.st_mode & S_IFMT {
        case S_IFREG: self = .regular
        case S_IFDIR: self = .directory
        default: self = .other
        }
    }
}

public enum Files {
    /// A regular file's bytes, refused above `limit` before reading. A FIFO, socket or device is
    /// refused, never opened for a blocking read.
    public static func read(_ path: String, limit: Int) throws -> Data {
        let fd = PathName.withCString(path) { open($0, O_RDONLY | O_NONBLOCK | O_CLOEXEC) }
        guard fd >= 0 else {
            throw ImageError.unreadable(errno == ENOENT ? "no such file" : String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ImageError.unreadable(String(cString: strerror(errno))) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw ImageError.unreadable("is a directory")
        default: throw ImageError.unreadable("not a regular file")
        }
        let size = Int(info.st_size)
        guard size <= limit else { throw ImageError.tooLarge("\(size) bytes > \(limit)") }
        var data = Data(count: size)
        var done = 0
        try data.withUnsafeMutableBytes { (buffer: UnsafeMutableRawBufferPointer) in
            while done < size {
                let got = Glibc.read(fd, buffer.baseAddress! + done, size - done)
                if got < 0, errno == EINTR { continue }
                guard got > 0 else { throw ImageError.unreadable(got == 0 ? "file shrank while read" : String(cString: strerror(errno))) }
                done += got
            }
        }
        return data
    }

    /// Standard input to its end, refused above `limit` bytes.
    public static func readStandardInput(limit: Int) throws -> Data {
        var data = Data(), buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let got = Glibc.read(0, &buffer, buffer.count)
            if got < 0, errno == EINTR { continue }
            guard got >= 0 else { throw FileError("cannot read standard input: \(String(cString: strerror(errno)))") }
            if got == 0 { return data }
            data.append(contentsOf: buffer[0..<got])
            guard data.count <= limit else { throw FileError("standard input is above \(limit) bytes: give the list as a file") }
        }
    }

    /// The first `count` bytes of a regular file (fewer when it is shorter).
    package static func prefix(_ path: String, count: Int) throws -> Data {
        let fd = PathName.withCString(path) { open($0, O_RDONLY | O_NONBLOCK | O_CLOEXEC) }
        guard fd >= 0 else { throw ImageError.unreadable(String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw ImageError.unreadable("not a regular file") }
        var data = Data(count: count)
        let got = data.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, count) }
        return data.prefix(max(got, 0))
    }

    /// Creates a folder (and its parents) the library needs, or says in one line why it cannot.
    public static func makeDirectory(_ path: String, for purpose: String) throws {
        switch FileKind(path) {
        case .directory: return
        case .regular, .other: throw FileError("\(purpose): \(PathName.display(path)) exists and is not a folder")
        case .missing: break
        }
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            let reason = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError).map { String(cString: strerror(Int32($0.code))) }
            throw FileError("\(purpose): cannot create \(PathName.display(path))" + (reason.map { " (\($0))" } ?? ""))
        }
    }

    /// Where `write` puts the bytes of `path`: a link's target (a link to a file still to be made
    /// is written where it points, as a shell would), or the path itself when it opens but names
    /// no file (/dev/stdout on a pipe). A folder, a link into no folder, a missing folder and a
    /// folder that takes no file are refused here, before any work.
    public static func writeTarget(_ path: String) throws -> String {
        func failure(_ what: String) -> FileError { FileError("cannot write \(PathName.display(path)): \(what)") }
        var target = path
        if FileKind.isLink(path) {
            if let resolved = PathName.resolved(path) {
                target = resolved
            } else if FileKind(path) == .missing {
                let pointee = linkTarget(path)
                let absolute = pointee.hasPrefix("/") ? pointee : folder(of: path) + "/" + pointee
                guard FileKind(folder(of: absolute)) == .directory else {
                    throw failure("it is a link to \(PathName.display(pointee)), whose folder does not exist")
                }
                target = absolute
            }
        }
        switch FileKind(target) {
        case .directory: throw failure("it is a folder")
        case .other: guard PathName.withCString(target, { access($0, W_OK) }) == 0 else { throw failure(String(cString: strerror(errno))) }
        case .regular, .missing:
            // The file is made beside its place: what stops that is the folder, not the file.
            let place = folder(of: target)
            guard FileKind(place) == .directory else { throw failure("the folder \(PathName.display(place)) does not exist") }
            guard PathName.withCString(place, { access($0, W_OK) }) == 0 else {
                throw failure("no file can be made in \(PathName.display(place)) (\(String(cString: strerror(errno))))")
            }
        }
        return target
    }

    /// Writes a whole file so a reader never sees half of it (a temporary file beside it, renamed
    /// into place). A symbolic link is followed; a device or FIFO is written into, never replaced;
    /// a folder is refused.
    public static func write(_ data: Data, to path: String) throws {
        let target = try writeTarget(path)
        func failure(_ what: String) -> FileError { FileError("cannot write \(PathName.display(path)): \(what)") }
        func writeAll(_ fd: Int32) throws {
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                var done = 0
                while done < raw.count {
                    let wrote = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                    if wrote < 0, errno == EINTR { continue }
                    guard wrote > 0 else { throw failure(String(cString: strerror(errno))) }
                    done += wrote
                }
            }
        }
        switch FileKind(target) {
        case .directory: throw failure("it is a folder")
        case .other:
            // Non-blocking open: a FIFO nobody reads is refused instead of waited on for ever.
            let fd = PathName.withCString(target) { open($0, O_WRONLY | O_NONBLOCK | O_CLOEXEC) }
            guard fd >= 0 else { throw failure(errno == ENXIO ? "nothing reads it (a FIFO without a reader)" : String(cString: strerror(errno))) }
            defer { close(fd) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            try writeAll(fd)
        case .regular, .missing:
            let temporary = target + ".part-\(getpid())"
            let fd = PathName.withCString(temporary) { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
            guard fd >= 0 else { throw failure("no file can be made in \(PathName.display(folder(of: target))) (\(String(cString: strerror(errno))))") }
            do {
                try writeAll(fd)
                guard fsync(fd) == 0 || errno == EINVAL else { throw failure(String(cString: strerror(errno))) }
                close(fd)
                let renamed = PathName.withCString(temporary) { from in PathName.withCString(target) { to in rename(from, to) } }
                guard renamed == 0 else { throw failure(String(cString: strerror(errno))) }
            } catch {
                close(fd)
                _ = PathName.withCString(temporary) { unlink($0) }
                throw error
            }
        }
    }

    /// The folder part of a path ("." for a bare name).
    /// (By hand: Foundation's `deletingLastPathComponent` traps on some one-character names.)
    public static func folder(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        var parent = trimmed[..<slash]
        while parent.count > 1, parent.hasSuffix("/") { parent = parent.dropLast() }
        return parent.isEmpty ? "/" : String(parent)
    }

    /// What a symbolic link says, unresolved.
    static func linkTarget(_ path: String) -> String {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = PathName.withCString(path) { name in buffer.withUnsafeMutableBufferPointer { readlink(name, $0.baseAddress!, $0.count - 1) } }
        return count > 0 ? PathName.decode(buffer[0..<count]) : ""
    }

    /// The names in a folder (not `.` and `..`), as decoded bytes, sorted.
    static func entries(_ directory: String) -> [String] {
        guard let handle = PathName.withCString(directory, { opendir($0) }) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                PathName.decode(raw.prefix { $0 != 0 })
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}

/// A file-system problem, in one line.
public struct FileError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension FileError: ClassifiedError { public var kind: FailureKind { .unreadable } }
