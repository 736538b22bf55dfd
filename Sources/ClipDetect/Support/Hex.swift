import Crypto
import Foundation

extension Digest {
    /// Lower-case hexadecimal, as `sha256sum` prints it: the one spelling of every digest we store or show.
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}
