/// What kind of failure an error is, for a caller that branches on it (the service maps it to an
/// HTTP status, a pipeline decides whether to retry). Every error the library throws has one.
public enum FailureKind: String, Sendable, Codable, CaseIterable {
    /// A file, folder or model that is not there.
    case notFound = "not_found"
    /// There, but it cannot be read (permissions, I/O).
    case unreadable
    /// Malformed: a damaged image, checkpoint or list, an option out of bounds.
    case invalidInput = "invalid_input"
    /// Well-formed but not something this version handles (a TIFF layout, an activation).
    case unsupported
    /// Above a limit (pixels, bytes, a resize).
    case tooLarge = "too_large"
    /// Below what an operation needs (an image smaller than a crop, too few training images).
    case tooSmall = "too_small"
    /// A head that does not fit the backbone or feature.
    case mismatch
    /// A checkpoint that asks to run code; nothing was run.
    case refused
    /// A download that failed or was not allowed.
    case network
}

/// An error that says what kind of failure it is.
public protocol ClassifiedError: Error {
    var kind: FailureKind { get }
}

extension FailureKind {
    /// The kind of any error: the library's say; anything else is taken as unreadable.
    public init(of error: Error) {
        self = (error as? ClassifiedError)?.kind ?? .unreadable
    }
}
