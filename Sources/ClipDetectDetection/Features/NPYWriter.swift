import ClipDetectCore
import ClipDetectEncoder
import Foundation

/// NumPy .npy (format 1.0) of float32 rows: what `np.load` reads as an N×D array.
package enum NPYWriter {
    package static func data(rows: [[Float]], width: Int) -> Data {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows.count), \(width)), }"
        // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        for row in rows {
            precondition(row.count == width, "row width \(row.count) != \(width)")
            for value in row { withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        }
        return out
    }
}
