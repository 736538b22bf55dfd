import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a whole file; checkpoints are read in place from it. Bytes held in
/// memory are copied into an aligned block of its own instead.
package final class MappedFile: ByteOwner, @unchecked Sendable {
    package let path: String
    package let bytes: UnsafeRawBufferPointer
    /// False for bytes copied from memory: they have no file to find again.
    package let mapped: Bool

    init(copying data: Data, name: String) {
        path = name
        mapped = false
        let block = UnsafeMutableRawPointer.allocate(byteCount: max(data.count, 1), alignment: 64)
        data.withUnsafeBytes { if let base = $0.baseAddress { block.copyMemory(from: base, byteCount: data.count) } }
        bytes = UnsafeRawBufferPointer(start: block, count: data.count)
    }

    package init(path: String) throws {
        self.path = path
        mapped = true
        let (fd, size) = try Files.openRegular(path)
        defer { close(fd) }
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw FileError(.read, path, .system(errno))
        }
        bytes = UnsafeRawBufferPointer(start: map, count: size)
    }

    /// Drops the whole pages inside `range` from this process's resident memory (they are read
    /// from the file again if touched): for weights that were copied into a packed layout.
    package func release(_ start: UnsafeRawPointer, byteCount: Int) {
        guard mapped, let base = bytes.baseAddress, start >= base, start + byteCount <= base + bytes.count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (Int(bitPattern: start) + page - 1) / page * page, end = (Int(bitPattern: start) + byteCount) / page * page
        guard end > first else { return }
        madvise(UnsafeMutableRawPointer(bitPattern: first), end - first, Int32(MADV_DONTNEED))
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if mapped { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) } else { base.deallocate() }
    }
}
