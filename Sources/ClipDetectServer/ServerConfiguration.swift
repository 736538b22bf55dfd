import ClipDetect
import Foundation

/// Everything the service is told at start, with the limits explicit.
public struct ServerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port (tests); the bound one is reported by `DetectionServer.onRunning`.
    public var port: Int
    /// A request body above this is refused with 413 before it is read whole.
    public var maxBodyBytes: Int
    public var maxImagesPerRequest: Int
    /// Pixels and bytes one image may have (the decompression-bomb limit).
    public var limits: DecodeLimits
    /// Images waiting for the encoder, over all requests; a request that would pass it gets 429.
    public var maxQueuedImages: Int
    /// Images per forward pass, and how long the first waiting image waits for others to join it.
    public var maxBatch: Int
    public var maxWait: Duration
    /// A request still waiting for its verdicts after this gets 503.
    public var deadline: Duration
    /// A body still arriving after this gets 408 and its connection closed.
    public var bodyTimeout: Duration
    /// Bearer keys; empty: no authentication.
    public var apiKeys: [String]
    /// Origins allowed by CORS; empty: CORS headers are not sent.
    public var corsOrigins: [String]
    /// Turn images upright by their EXIF orientation first (the reference does not).
    public var applyOrientation: Bool
    /// Most draws `?stability=N` may ask for (each is one more forward pass per image); 0: refused.
    public var maxStabilityDraws: Int
    /// Header and idle timeouts and the cap on open connections.
    public var connections: ConnectionLimits
    /// Longest drain after SIGTERM before what is still open is cancelled.
    public var drainTimeout: Duration = .seconds(25)

    public init(host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 64 << 20, maxImagesPerRequest: Int = 16,
                limits: DecodeLimits = DecodeLimits(), maxQueuedImages: Int = 64, maxBatch: Int = 8,
                maxWait: Duration = .milliseconds(20), deadline: Duration = .seconds(120), bodyTimeout: Duration = .seconds(60), apiKeys: [String] = [],
                corsOrigins: [String] = [], applyOrientation: Bool = false, maxStabilityDraws: Int = 16,
                connections: ConnectionLimits = ConnectionLimits()) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.maxImagesPerRequest = maxImagesPerRequest
        self.limits = limits
        self.maxQueuedImages = maxQueuedImages
        self.maxBatch = max(1, maxBatch)
        self.maxWait = maxWait
        self.deadline = deadline
        self.bodyTimeout = bodyTimeout
        self.apiKeys = apiKeys
        self.corsOrigins = corsOrigins
        self.applyOrientation = applyOrientation
        self.maxStabilityDraws = max(0, maxStabilityDraws)
        self.connections = connections
    }

    /// Keys from a file (one per line; blank lines and `#` comments skipped).
    /// A file, a device such as /dev/null (empty) or a pipe (`--api-keys <(vault read …)`); a pipe
    /// whose writer says nothing within `wait` is refused, so the start cannot hang on it.
    public static func apiKeys(file path: String, wait: Duration = .seconds(10)) throws -> [String] {
        let data: Data
        do throws(FileError) {
            let fd = PathName.withCString(path) { open($0, O_RDONLY | O_NONBLOCK | O_CLOEXEC) }
            guard fd >= 0 else { throw FileError(.read, path, errno == ENOENT ? .missing : .system(errno)) }
            defer { close(fd) }
            data = try Files.readAll(fd, limit: 1 << 20, wait: wait, naming: path)
        } catch { throw error.naming(purpose: "API key file") }
        guard let text = String(data: data, encoding: .utf8) else { throw ConfigurationError.keysNotText(path) }
        let keys = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !keys.isEmpty else { throw ConfigurationError.noKeys(path) }
        return keys
    }
}

/// A service setting that cannot be taken as given.
public enum ConfigurationError: Error, Equatable, CustomStringConvertible, ClassifiedError {
    case keysNotText(String)
    case noKeys(String)

    public var description: String {
        switch self {
        case .keysNotText(let path): "the API key file \(PathName.display(path)) is not UTF-8 text"
        case .noKeys(let path): "the API key file \(PathName.display(path)) holds no key"
        }
    }
    public var kind: FailureKind { .invalidInput }
}

/// Why the service could not start listening.
public enum ListenError: Error, Equatable, CustomStringConvertible, ClassifiedError {
    /// The address is taken, not this machine's, or not allowed (the system's errno).
    case cannotBind(host: String, port: Int, errno: Int32)
    /// The host is neither an address nor a name that resolves.
    case unknownHost(String)

    public var description: String {
        switch self {
        case .cannotBind(let host, let port, let errno): "cannot listen on \(host):\(port): \(String(cString: strerror(errno)))"
        case .unknownHost(let host): "cannot listen on \(host): not an address of this machine or a name that resolves"
        }
    }
    public var kind: FailureKind { .invalidInput }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
