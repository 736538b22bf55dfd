import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a whole file; checkpoints are read in place from it. Bytes held in
/// memory are copied into an aligned block of its own instead.
public final class MappedFile: ByteOwner, @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    /// False for bytes copied from memory: they have no file to find again.
    let mapped: Bool

    init(copying data: Data, name: String) {
        path = name
        mapped = false
        let block = UnsafeMutableRawPointer.allocate(byteCount: max(data.count, 1), alignment: 64)
        data.withUnsafeBytes { if let base = $0.baseAddress { block.copyMemory(from: base, byteCount: data.count) } }
        bytes = UnsafeRawBufferPointer(start: block, count: data.count)
    }

    public init(path: String) throws {
        self.path = path
        mapped = true
        let fd = PathName.withCString(path) { open($0, O_RDONLY | O_NONBLOCK | O_CLOEXEC) }
        guard fd >= 0 else { throw WeightsError.unreadable(String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw WeightsError.unreadable(String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw WeightsError.unreadable("not a regular file") }
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw WeightsError.unreadable("mmap failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: map, count: size)
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if mapped { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) } else { base.deallocate() }
    }
}
