import Crypto
import Foundation

extension Digest {
    /// Lower-case hexadecimal, as `sha256sum` prints it: the one spelling of every digest we store or show.
    package var hex: String { map { String(format: "%02x", $0) }.joined() }
}

extension Data {
    /// The SHA-256 of a file's bytes: what the feature cache keys by and what tells duplicates apart.
    package var sha256: String { SHA256.hash(data: self).hex }
}
