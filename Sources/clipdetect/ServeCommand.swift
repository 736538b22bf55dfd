import ArgumentParser
import ClipDetect
import ClipDetectServer
import Foundation
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the detector as an HTTP service with a web page (loopback unless told otherwise).",
        discussion: """
            POST /v1/detect takes images as multipart/form-data (field media, repeatable) or one image as the body;
            GET /v1/models, /healthz, /readyz, /metrics, /openapi.json; the page is at /. SIGTERM or SIGINT stops
            accepting, finishes what is in flight and exits 0.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var verdictOptions: VerdictOptions
    @OptionGroup var headOptions: HeadOptions
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port, printed at start).") var port = 8080
    @Option(help: "Largest request body, in bytes.") var maxBodyBytes = 64 << 20
    @Option(help: "Most images in one request.") var maxImages = 16
    @Option(help: "Most pixels in one image (the decompression-bomb limit).") var maxPixels = DecodeLimits.pillowPixelLimit
    @Option(help: "Most images waiting for the encoder, at least --max-images; beyond it requests get 429 at once.") var maxQueue = 64
    @Option(help: "Images per forward pass.") var maxBatch = 8
    @Option(help: "Milliseconds the first waiting image waits for others to share its pass.") var maxWaitMs = 20
    @Option(help: "Seconds a request may wait for its verdicts before it gets 503.") var deadline = 120.0
    @Option(help: "Seconds a request's body may take to arrive; then 408 and the connection is closed.") var bodyTimeout = 60.0
    @Option(help: "Seconds a request's head may take from its first byte (or from the connection's opening), however slowly it trickles in; then 408 and the close.")
    var headerTimeout = 30.0
    @Option(help: "Seconds a kept-alive connection may wait for its next request before it is closed.") var idleTimeout = 30.0
    @Option(help: "Most connections open at once; more wait to be accepted. (default: 512, or the descriptor limit less 64 where that is lower)")
    var maxConnections: Int?
    @Option(help: "Seconds the drain after SIGTERM may take (finishing what is in flight) before the rest is cancelled; keep it below the supervisor's grace period.")
    var drainTimeout = 25.0
    @Option(help: "File of API keys (one per line); requests to /v1/* and /metrics then need Authorization: Bearer KEY.") var apiKeys: String?
    @Option(help: "Environment variable holding one API key (added to --api-keys).") var apiKeyEnv: String?
    @Option(help: "An origin allowed by CORS, as scheme://host[:port] (repeatable; no wildcard); none by default.") var corsOrigin: [String] = []
    @Flag(help: "Apply EXIF orientation first (the reference does not).") var exifOrientation = false
    @Option(help: "Most draws a request may ask for with ?stability=N (0: none).") var maxStability = 16

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port takes 0…65535") }
        for (name, value) in [("--max-body-bytes", maxBodyBytes), ("--max-images", maxImages), ("--max-pixels", maxPixels),
                              ("--max-queue", maxQueue), ("--max-batch", maxBatch)] where value < 1 {
            throw ValidationError("\(name) must be at least 1")
        }
        // Bounds far above any real use, so that no product of them can overflow.
        guard maxImages <= 10_000, maxQueue <= 1_000_000, maxBatch <= 1_024 else {
            throw ValidationError("--max-images takes at most 10000, --max-queue 1000000, --max-batch 1024")
        }
        guard (0...StabilityCheck.maxDraws).contains(maxStability) else { throw ValidationError("--max-stability takes 0…\(StabilityCheck.maxDraws)") }
        guard maxWaitMs >= 0, maxWaitMs <= 10_000 else { throw ValidationError("--max-wait-ms takes 0…10000") }
        guard deadline.isFinite, deadline >= 0.001, deadline <= 86_400 else { throw ValidationError("--deadline takes seconds in [0.001, 86400]") }
        guard bodyTimeout.isFinite, bodyTimeout >= 0.001, bodyTimeout <= 86_400 else { throw ValidationError("--body-timeout takes seconds in [0.001, 86400]") }
        for (name, value) in [("--header-timeout", headerTimeout), ("--idle-timeout", idleTimeout)] where !(value.isFinite && value >= 0.001 && value <= 86_400) {
            throw ValidationError("\(name) takes seconds in [0.001, 86400]")
        }
        guard drainTimeout.isFinite, drainTimeout >= 0.001, drainTimeout <= 86_400 else { throw ValidationError("--drain-timeout takes seconds in [0.001, 86400]") }
        if let maxConnections, !(1...1_000_000).contains(maxConnections) { throw ValidationError("--max-connections takes 1…1000000") }
        guard maxQueue >= maxImages else { throw ValidationError("--max-queue must hold at least one request (--max-images)") }
        for origin in corsOrigin {
            // An origin is matched exactly, so a pattern would match nothing: say so instead.
            guard let url = URL(string: origin), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil,
                  url.path.isEmpty, url.query == nil, !origin.hasSuffix("/") else {
                throw ValidationError("--cors-origin \(origin): give an exact origin such as https://example.org or http://localhost:3000 (no wildcard, no path)")
            }
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "clipdetect")
        var keys = try apiKeys.map { try ServerConfiguration.apiKeys(file: $0) } ?? []
        if let apiKeyEnv {
            // Trimmed as the key file's lines are: a trailing newline must not make the key unmatchable.
            let key = ProcessInfo.processInfo.environment[apiKeyEnv]?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            guard !key.isEmpty else { throw CommandError("--api-key-env \(apiKeyEnv): the variable is not set or holds only blanks") }
            keys.append(key)
        }
        let (detector, models) = try modelOptions.loadDetector(headOptions,
                                                               configuration: Detector.Configuration(band: verdictOptions.parsedBand()))
        var configuration = ServerConfiguration(
            host: host, port: port, maxBodyBytes: maxBodyBytes, maxImagesPerRequest: maxImages,
            limits: DecodeLimits(maxPixels: maxPixels, maxBytes: maxBodyBytes), maxQueuedImages: maxQueue, maxBatch: maxBatch,
            maxWait: .milliseconds(maxWaitMs), deadline: .milliseconds(Int(deadline * 1000)),
            bodyTimeout: .milliseconds(Int(bodyTimeout * 1000)), apiKeys: keys,
            corsOrigins: corsOrigin, applyOrientation: exifOrientation, maxStabilityDraws: maxStability,
            connections: ConnectionLimits(headerTimeout: .milliseconds(Int(headerTimeout * 1000)), idleTimeout: .milliseconds(Int(idleTimeout * 1000)),
                                          maxConnections: maxConnections ?? ConnectionLimits.defaultMaxConnections))
        configuration.drainTimeout = .milliseconds(Int(drainTimeout * 1000))
        // Clients see the named model, or the checkpoint's file name: never the server's folders.
        let shown = models.map { ModelResolution.isPath($0) ? URL(fileURLWithPath: $0).lastPathComponent : $0 }
        let server = DetectionServer(detector: detector, models: shown, configuration: configuration, logger: logger)
        try await server.run { port in
            // One line a supervisor (or a test) can read the port from; unbuffered, since stdout may be a pipe.
            try? FileHandle.standardOutput.write(contentsOf: Data("clipdetect serving on http://\(host.contains(":") ? "[\(host)]" : host):\(port)\n".utf8))
        }
    }
}
