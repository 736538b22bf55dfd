import ClipDetectCore
import ClipDetectEncoder
import Crypto
import Foundation

/// What a head's calibration, threshold and band were fitted on, so that a later reader knows
/// what its probability means.
public struct CalibrationSet: Sendable, Equatable, Codable {
    /// Real images in the set.
    public var reals: Int
    /// Synthetic images in the set.
    public var fakes: Int
    /// SHA-256 over the sorted lines "<SHA-256 of the image's bytes> <real|fake>": the same images
    /// with the same labels give the same hash, whatever their names or order.
    public var hash: String
    /// When it was fitted (ISO 8601, UTC).
    public var date: String
    /// platt, isotonic, or nil when only the threshold or band was set.
    public var method: String?
    /// The false-positive rate the threshold was chosen for; nil when it was not chosen so.
    public var targetFPR: Double?

    /// A record from its parts.
    public init(reals: Int, fakes: Int, hash: String, date: String, method: String? = nil, targetFPR: Double? = nil) {
        self.reals = reals
        self.fakes = fakes
        self.hash = hash
        self.date = date
        self.method = method
        self.targetFPR = targetFPR
    }

    /// The hash of a labelled set from each image's content digest.
    public static func hash(digests: [(digest: String, isSynthetic: Bool)]) -> String {
        let lines = digests.map { "\($0.digest) \($0.isSynthetic ? "fake" : "real")\n" }.sorted().joined()
        return SHA256.hash(data: Data(lines.utf8)).hex
    }
}
