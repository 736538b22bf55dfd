import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// File names as Linux stores them: bytes, not always UTF-8. A name that is not valid UTF-8 keeps
/// each stray byte as a private-use scalar (U+10FD00 + byte), so it survives as a `String` and
/// opens again as the same bytes.
package enum PathName {
    static let escapeBase: UInt32 = 0x10_FD00

    package static func decode<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
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
    package static func bytes(_ name: String) -> [UInt8] {
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
    package static func display(_ name: String) -> String {
        String(name.unicodeScalars.map { scalar -> String in
            (escapeBase...(escapeBase + 0xFF)).contains(scalar.value) ? String(format: "\\x%02X", scalar.value - escapeBase) : String(scalar)
        }.joined())
    }

    /// The path with every link and `.`/`..` resolved (`realpath`); nil when it does not exist.
    package static func resolved(_ name: String) -> String? {
        guard let resolved = withCString(name, { realpath($0, nil) }) else { return nil }
        defer { free(resolved) }
        return decode(UnsafeBufferPointer(start: UnsafeRawPointer(resolved).assumingMemoryBound(to: UInt8.self), count: strlen(resolved)))
    }

    /// Calls `body` with the name as a C string of its bytes.
    package static func withCString<R>(_ name: String, _ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
        try (bytes(name) + [0]).withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }

    /// The command line with each argument decoded from its bytes (Swift's own decoding would replace stray bytes).
    package static var arguments: [String] {
        (0..<Int(CommandLine.argc)).map { index in
            guard let argument = CommandLine.unsafeArgv[index] else { return "" }
            return decode(UnsafeBufferPointer(start: UnsafeRawPointer(argument).assumingMemoryBound(to: UInt8.self), count: strlen(argument)))
        }
    }
}

/// What kind of thing a path names, following symbolic links.
package enum FileKind: Sendable, Equatable {
    case missing, regular, directory, other

    /// Whether `path` itself is a symbolic link (not followed).
    package static func isLink(_ path: String) -> Bool {
        var info = stat()
        return PathName.withCString(path, { lstat($0, &info) }) == 0 && info.st_mode & S_IFMT == S_IFLNK
    }

    package init(_ path: String) {
        var info = stat()
        guard PathName.withCString(path, { stat($0, &info) }) == 0 else { self = .missing; return }
        switch info.st_mode & S_IFMT {
        case S_IFREG: self = .regular
        case S_IFDIR: self = .directory
        default: self = .other
        }
    }
}

package enum Files {
    /// A regular file's bytes, refused above `limit` before reading. A FIFO, socket or device is
    /// refused, never opened for a blocking read.
    package static func read(_ path: String, limit: Int) throws(FileError) -> Data {
        let (fd, size) = try openRegular(path)
        defer { close(fd) }
        guard size <= limit else { throw FileError(.read, path, .tooLarge(size: size, limit: limit)) }
        var data = Data(count: size)
        var done = 0
        let failure: FileError.Reason? = data.withUnsafeMutableBytes { (buffer: UnsafeMutableRawBufferPointer) in
            while done < size {
                let got = Glibc.read(fd, buffer.baseAddress! + done, size - done)
                if got < 0, errno == EINTR { continue }
                guard got > 0 else { return got == 0 ? .shrank : .system(errno) }
                done += got
            }
            return nil
        }
        if let failure { throw FileError(.read, path, failure) }
        return data
    }

    /// An open descriptor of the regular file `path` and its size; anything else is refused
    /// without a blocking open. The caller closes it.
    package static func openRegular(_ path: String) throws(FileError) -> (fd: Int32, size: Int) {
        let fd = PathName.withCString(path) { open($0, O_RDONLY | O_NONBLOCK | O_CLOEXEC) }
        guard fd >= 0 else { throw FileError(.read, path, errno == ENOENT ? .missing : .system(errno)) }
        var info = stat()
        let reason: FileError.Reason? = if fstat(fd, &info) != 0 { .system(errno) } else {
            switch info.st_mode & S_IFMT {
            case S_IFREG: nil
            case S_IFDIR: .folder
            default: .notRegular
            }
        }
        if let reason {
            close(fd)
            throw FileError(.read, path, reason)
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, Int(info.st_size))
    }

    /// Standard input to its end, refused above `limit` bytes.
    package static func readStandardInput(limit: Int) throws(FileError) -> Data {
        try readAll(0, limit: limit, wait: nil, naming: FileError.standardInput)
    }

    /// Everything `fd` gives until its end, refused above `limit` bytes; with `wait`, a read that
    /// waits longer than that (a pipe whose writer says nothing) is refused instead of waited on.
    package static func readAll(_ fd: Int32, limit: Int, wait: Duration?, naming path: String) throws(FileError) -> Data {
        var data = Data(), buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            if let wait {
                var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let milliseconds = wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000
                let polled = poll(&ready, 1, Int32(clamping: milliseconds))
                if polled < 0, errno == EINTR { continue }
                guard polled > 0 else { throw FileError(.read, path, .silent(wait)) }
            }
            let got = Glibc.read(fd, &buffer, buffer.count)
            if got < 0, errno == EINTR || errno == EAGAIN { continue }
            guard got >= 0 else { throw FileError(.read, path, .system(errno)) }
            if got == 0 { return data }
            data.append(contentsOf: buffer[0..<got])
            guard data.count <= limit else { throw FileError(.read, path, .tooLarge(size: nil, limit: limit)) }
        }
    }

    /// The first `count` bytes of a regular file (fewer when it is shorter).
    package static func prefix(_ path: String, count: Int) throws(FileError) -> Data {
        let (fd, _) = try openRegular(path)
        defer { close(fd) }
        var data = Data(count: count)
        let got = data.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, count) }
        return data.prefix(max(got, 0))
    }

    /// open(2) for writing, without waiting: a FIFO nobody reads is refused (`noReader`) instead of
    /// blocking for ever; the descriptor then blocks as usual.
    package static func openForWriting(_ path: String, flags: Int32, mode: mode_t = 0o644) throws(FileError) -> Int32 {
        let fd = PathName.withCString(path) { open($0, flags | O_NONBLOCK, mode) }
        guard fd >= 0 else { throw FileError(.write, path, errno == ENXIO ? .noReader : .system(errno)) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    /// Creates a folder (and its parents) the library needs, or says in one line why it cannot.
    package static func makeDirectory(_ path: String, for purpose: String) throws(FileError) {
        switch FileKind(path) {
        case .directory: return
        case .regular, .other: throw FileError(.create, path, .notAFolder, purpose: purpose)
        case .missing: break
        }
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            let code = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError).map { Int32($0.code) } ?? EIO
            throw FileError(.create, path, .system(code), purpose: purpose)
        }
    }

    /// Where `write` puts the bytes of `path`: a link's target (a link to a file still to be made
    /// is written where it points, as a shell would), or the path itself when it opens but names
    /// no file (/dev/stdout on a pipe). A folder, a link into no folder, a missing folder and a
    /// folder that takes no file are refused here, before any work.
    package static func writeTarget(_ path: String) throws(FileError) -> String {
        func failure(_ reason: FileError.Reason) -> FileError { FileError(.write, path, reason) }
        var target = path
        if FileKind.isLink(path) {
            if let resolved = PathName.resolved(path) {
                target = resolved
            } else if FileKind(path) == .missing {
                let pointee = linkTarget(path)
                let absolute = pointee.hasPrefix("/") ? pointee : folder(of: path) + "/" + pointee
                guard FileKind(folder(of: absolute)) == .directory else {
                    throw failure(.linkIntoNothing(pointee))
                }
                target = absolute
            }
        }
        switch FileKind(target) {
        case .directory: throw failure(.folder)
        case .other: guard PathName.withCString(target, { access($0, W_OK) }) == 0 else { throw failure(.system(errno)) }
        case .regular, .missing:
            // The file is made beside its place: what stops that is the folder, not the file.
            let place = folder(of: target)
            guard FileKind(place) == .directory else { throw failure(.noFolder(place)) }
            guard PathName.withCString(place, { access($0, W_OK) }) == 0 else { throw failure(.cannotMakeIn(place, errno)) }
        }
        return target
    }

    /// Writes a whole file so a reader never sees half of it (a temporary file beside it, renamed
    /// into place). A symbolic link is followed; a device or FIFO is written into, never replaced;
    /// a folder is refused.
    package static func write(_ data: Data, to path: String) throws(FileError) {
        let target = try writeTarget(path)
        func failure(_ reason: FileError.Reason) -> FileError { FileError(.write, path, reason) }
        func writeAll(_ fd: Int32) throws(FileError) {
            let code: Int32? = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                var done = 0
                while done < raw.count {
                    let wrote = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                    if wrote < 0, errno == EINTR { continue }
                    guard wrote > 0 else { return errno }
                    done += wrote
                }
                return nil
            }
            if let code { throw failure(.system(code)) }
        }
        switch FileKind(target) {
        case .directory: throw failure(.folder)
        case .other:
            let fd: Int32
            do { fd = try openForWriting(target, flags: O_WRONLY | O_CLOEXEC) } catch { throw failure(error.reason) }
            defer { close(fd) }
            try writeAll(fd)
        case .regular, .missing:
            let temporary = target + ".part-\(getpid())"
            let fd = PathName.withCString(temporary) { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
            guard fd >= 0 else { throw failure(.cannotMakeIn(folder(of: target), errno)) }
            do throws(FileError) {
                defer { close(fd) }
                try writeAll(fd)
                guard fsync(fd) == 0 || errno == EINVAL else { throw failure(.system(errno)) }
                let renamed = PathName.withCString(temporary) { from in PathName.withCString(target) { to in rename(from, to) } }
                guard renamed == 0 else { throw failure(.system(errno)) }
            } catch {
                _ = PathName.withCString(temporary) { unlink($0) }
                throw error
            }
        }
    }

    /// The folder part of a path ("." for a bare name).
    /// (By hand: Foundation's `deletingLastPathComponent` traps on some one-character names.)
    package static func folder(of path: String) -> String {
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

/// A file-system problem: what was being done, to which path, and why.
public struct FileError: Error, Equatable, Sendable {
    /// What was being done to the path.
    public enum Action: Sendable, Equatable { case read, write, create }
    /// Why it failed.
    public enum Reason: Sendable, Equatable {
        case missing
        /// What the system said (an `errno`).
        case system(Int32)
        /// A folder where a file was wanted.
        case folder
        /// A FIFO, socket or device where a regular file was wanted.
        case notRegular
        /// Something other than a folder where a folder was wanted.
        case notAFolder
        /// The folder a new file would go in does not exist.
        case noFolder(String)
        /// A link whose target would go in a folder that does not exist.
        case linkIntoNothing(String)
        /// The folder takes no new file (an `errno`).
        case cannotMakeIn(String, Int32)
        /// A FIFO without a reader.
        case noReader
        /// Above `limit` bytes (`size` when known before reading).
        case tooLarge(size: Int?, limit: Int)
        case shrank
        /// A pipe whose writer said nothing for that long.
        case silent(Duration)
    }

    /// How standard input is named as a path.
    package static let standardInput = "-"

    /// What was being done.
    public let action: Action
    /// The path, as given (`-` for standard input).
    public let path: String
    /// Why it failed.
    public let reason: Reason
    /// What the file is to the library ("feature cache"), when that helps a reader.
    public let purpose: String?

    /// An error from what was done, to which path, why, and optionally what the file is to the library.
    public init(_ action: Action, _ path: String, _ reason: Reason, purpose: String? = nil) {
        (self.action, self.path, self.reason, self.purpose) = (action, path, reason, purpose)
    }

    /// The same failure, saying what the file is to the library.
    public func naming(purpose: String) -> FileError { FileError(action, path, reason, purpose: purpose) }
}

extension FileError: CustomStringConvertible {
    public var description: String {
        let name = path == Self.standardInput ? "standard input" : PathName.display(path)
        let verb = switch action { case .read: "cannot read"; case .write: "cannot write"; case .create: "cannot create" }
        return (purpose.map { "\($0): " } ?? "") + "\(verb) \(name): \(reason)"
    }
}

extension FileError.Reason: CustomStringConvertible {
    public var description: String {
        switch self {
        case .missing: "no such file"
        case .system(let code): String(cString: strerror(code))
        case .folder: "it is a folder"
        case .notRegular: "not a regular file"
        case .notAFolder: "it exists and is not a folder"
        case .noFolder(let folder): "the folder \(PathName.display(folder)) does not exist"
        case .linkIntoNothing(let target): "it is a link to \(PathName.display(target)), whose folder does not exist"
        case .cannotMakeIn(let folder, let code): "no file can be made in \(PathName.display(folder)) (\(String(cString: strerror(code))))"
        case .noReader: "nothing reads it (a FIFO without a reader)"
        case .tooLarge(let size?, let limit): "\(size) bytes, above the limit of \(limit)"
        case .tooLarge(nil, let limit): "above \(limit) bytes"
        case .shrank: "the file shrank while it was read"
        case .silent(let wait): "nothing came within \(wait) (a pipe with no writer?)"
        }
    }
}

extension FileError: ClassifiedError {
    public var kind: FailureKind {
        switch reason {
        case .missing, .noFolder, .linkIntoNothing: .notFound
        case .tooLarge: .tooLarge
        default: .unreadable
        }
    }
}
