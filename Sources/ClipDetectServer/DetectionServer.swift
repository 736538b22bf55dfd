import ClipDetect
import Crypto
import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The detector as an HTTP service: `POST /v1/detect`, `GET /v1/models`, `/healthz`, `/readyz`,
/// `/metrics`, `/openapi.json` and the web page at `/`. Images from concurrent requests share
/// forward passes (`BatchScheduler`); every limit is in `ServerConfiguration`.
public struct DetectionServer: Sendable {
    public let detector: Detector
    /// What each of `detector.encoders` was loaded from (a named model or a file name), shown by /v1/models.
    public let models: [String]
    /// The models, joined by " + " when there are several.
    public var modelName: String { models.joined(separator: " + ") }
    public let configuration: ServerConfiguration
    let logger: Logger
    let metrics = ServerMetrics()

    /// `models` names each of `detector.encoders`.
    public init(detector: Detector, models: [String], configuration: ServerConfiguration, logger: Logger) {
        precondition(models.count == detector.encoders.count, "one model name per encoder")
        // The service's limits, orientation and batch size, on the detector it was given.
        self.detector = detector.with(limits: configuration.limits, applyOrientation: configuration.applyOrientation, batchSize: configuration.maxBatch)
        self.models = models
        self.configuration = configuration
        self.logger = logger
    }

    /// Serves until the task is cancelled or one of `signals` arrives; then stops accepting,
    /// finishes what is in flight and returns. `onRunning` gets the bound port.
    public func run(signals: [UnixSignal] = [.sigterm, .sigint], onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let scheduler = BatchScheduler(detector: detector, maxBatch: configuration.maxBatch, maxWait: configuration.maxWait,
                                       maxQueued: configuration.maxQueuedImages, deadline: configuration.deadline, metrics: metrics)
        let router = Router(context: ConnectionContext.self, options: .autoGenerateHeadEndpoints)
        let book = ConnectionBook(metrics: metrics), limits = configuration.connections
        metrics.limits(configuration)
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
        router.add(middleware: DrainMiddleware(book: book))
        router.add(middleware: RefusalMiddleware())
        if !configuration.corsOrigins.isEmpty { router.add(middleware: CORSOriginsMiddleware(origins: Set(configuration.corsOrigins))) }
        router.add(middleware: KnownRoutesMiddleware())
        if !configuration.apiKeys.isEmpty { router.add(middleware: APIKeyMiddleware(keys: configuration.apiKeys)) }
        routes(router, scheduler: scheduler)
        let logger = self.logger, host = configuration.host
        let app = Application(router: router,
                              server: HTTPServerBuilder { responder in GuardedHTTP1Channel(inner: HTTP1Channel(responder: responder), limits: limits, book: book) },
                              configuration: .init(address: .hostname(host, port: configuration.port), serverName: "clipdetect",
                                                   availableConnectionsDelegate: ConnectionCap(book: book, limit: limits.maxConnections)),
                              onServerRunning: { channel in
                                  let port = channel.localAddress?.port ?? 0
                                  logger.info("listening", metadata: ["host": "\(host)", "port": "\(port)"])
                                  await onRunning(port)
                              },
                              logger: logger)
        // Shut down in reverse order: the HTTP server stops accepting and drains first, then the
        // scheduler finishes what is queued.
        let cut = Flag()
        var lifecycle = ServiceGroupConfiguration(services: [.init(service: scheduler), .init(service: DrainWatch(app: app, cut: cut))],
                                                  gracefulShutdownSignals: signals, logger: logger)
        // The drain is bounded: past it, what is still open is cancelled (a queued image is answered
        // 503 shutting_down), so no client can hold the process past a supervisor's grace period.
        lifecycle.maximumGracefulShutdownDuration = configuration.drainTimeout
        let group = ServiceGroup(configuration: lifecycle)
        do { try await group.run() } catch let error as IOError where error.errnoCode == EADDRINUSE || error.errnoCode == EADDRNOTAVAIL || error.errnoCode == EACCES {
            throw ListenError.cannotBind(host: host, port: configuration.port, errno: error.errnoCode)
        } catch is SocketAddressError {
            throw ListenError.unknownHost(host)
        } catch is SocketAddressError.UnknownHost {
            throw ListenError.unknownHost(host)
        }
        // (A cancelled run without SIGTERM, as in tests, drained nothing and was not cut short.)
        if cut.isSet, book.isDraining {
            logger.warning("the drain was cut short at --drain-timeout (\(configuration.drainTimeout)): the requests still open were closed unanswered")
        }
    }

    func routes(_ router: Router<ConnectionContext>, scheduler: BatchScheduler) {
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
        }
        router.get("/healthz") { _, _ in Self.json(["status": "ok"]) }
        router.get("/readyz") { _, _ in Self.json(["status": "ready"]) }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: self.metrics.text)))
        }
        let contract = OpenAPIDocument.json(configuration)
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: contract)))
        }
        router.get("/v1/models") { _, _ in Self.encoded(ModelsResponse(self)) }
        router.post("/v1/detect") { request, context in
            do { return try await self.detect(request, channel: context.channel, scheduler: scheduler) } catch let refusal as APIError { return refusal.response }
        }
    }

    /// Images from the body, their verdicts from the scheduler, one JSON object back; a refusal
    /// on the way is thrown as an `APIError`.
    func detect(_ request: Request, channel: any Channel, scheduler: BatchScheduler) async throws -> Response {
        try checkLength(request.headers)
        try Self.checkEncoding(request.headers)
        try await admit(1, scheduler)
        let images = try images(in: try await body(of: request, channel: channel), contentType: request.headers[.contentType] ?? "")
        let check = try stabilityCheck(request, images: images.count)
        // The deadline counts from here: preparing stability draws spends it.
        let started = ContinuousClock.now
        var (plan, sources) = try await prepare(images.map { ImageSource.bytes($0.data) }, check: check, scheduler: scheduler, channel: channel)
        let scored = try await score(sources, within: configuration.deadline - (ContinuousClock.now - started), scheduler: scheduler, channel: channel)
        sources = []  // (the draws, decoded, are let go before the answer is built)
        var outcomes = scored.map { ($0, StabilityCheck.Result?.none) }
        if plan != nil {
            plan!.record(scored)
            outcomes = plan!.finished().map(\.outcome)
        }
        let verdicts = zip(images, outcomes).enumerated().map { index, pair in
            ImageVerdict(index: index, name: pair.0.name, result: pair.1.0, detector: detector, stability: pair.1.1)
        }
        return Self.encoded(DetectResponse(model: modelName, images: verdicts))
    }

    /// A declared length above the limit is refused before the body is read (digits past Int's
    /// range are a length above any limit too).
    func checkLength(_ headers: HTTPFields) throws(APIError) {
        if let length = headers[.contentLength], !length.isEmpty, length.allSatisfy({ $0.isASCII && $0.isNumber }),
           Int(length).map({ $0 > configuration.maxBodyBytes }) ?? true {
            throw APIError(.contentTooLarge, .tooLarge, "body of \(length) bytes is above the limit of \(configuration.maxBodyBytes)", closes: true)
        }
    }

    /// A body in a content coding (415, RFC 9110 §8.4.1): read as it is, it would be scored as an
    /// image or refused as a wrong one, never decoded. (Transfer codings: `Refusal`.)
    static func checkEncoding(_ headers: HTTPFields) throws(APIError) {
        let content = headers[values: .contentEncoding].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty && $0 != "identity" }
        guard content.isEmpty else {
            throw APIError(.unsupportedMediaType, .unsupportedEncoding,
                           "Content-Encoding: \(content.joined(separator: ", ")) is not decoded here: send the image's own bytes")
        }
    }

    /// Refused (429) when `images` more would overfill the queue or miss the deadline.
    func admit(_ images: Int, _ scheduler: BatchScheduler) async throws(APIError) {
        if let full = await scheduler.refusal(adding: images) { throw queueFull(full) }
    }

    /// The whole body, or the refusal that says why not.
    func body(of request: Request, channel: any Channel) async throws(APIError) -> Data {
        switch await Self.collect(request, upTo: configuration.maxBodyBytes, within: configuration.bodyTimeout, channel: channel) {
        case .success(let collected): return Data(buffer: collected)
        case .failure(.tooLarge):
            // The rest of the body is not read: the connection cannot carry another request.
            throw APIError(.contentTooLarge, .tooLarge, "body is above the limit of \(configuration.maxBodyBytes) bytes", closes: true)
        case .failure(.tooSlow):
            throw APIError(.requestTimeout, .bodyTimeout, "the body did not arrive within \(configuration.bodyTimeout)", closes: true)
        case .failure(.broken):
            throw APIError(.badRequest, .invalidInput, "the connection broke before the body was whole")
        case .failure(.malformed(let why)):
            throw APIError(.badRequest, .malformedRequest, "malformed request body (\(why)): the connection is closed", closes: true)
        }
    }

    /// The images of a form's `media` fields (with their file names), or the one raw image.
    func images(in data: Data, contentType: String) throws(APIError) -> [(name: String?, data: Data)] {
        let images: [(name: String?, data: Data)]
        if let boundary = Multipart.boundary(contentType: contentType) {
            do {
                let parts = try Multipart.parse(data, boundary: boundary, maxParts: configuration.maxImagesPerRequest * 2 + 8)
                images = parts.filter { $0.name == "media" }.map { ($0.filename, $0.body) }
            } catch let tooMany as Multipart.TooManyParts {
                throw APIError(.badRequest, .tooLarge, "more than \(tooMany.limit) form fields in one request (at most \(configuration.maxImagesPerRequest) images)")
            } catch {
                throw APIError(.badRequest, .invalidInput, "\(error)")
            }
            guard !images.isEmpty else { throw APIError(.badRequest, .invalidInput, "no `media` field in the form") }
        } else if contentType.lowercased().hasPrefix("multipart/form-data") {
            throw APIError(.badRequest, .invalidInput, "multipart/form-data needs a boundary parameter of 1 to 70 characters")
        } else if Self.isRawImage(contentType) {
            guard !data.isEmpty else { throw APIError(.badRequest, .invalidInput, "empty body: send an image") }
            images = [(nil, data)]
        } else {
            throw APIError(.unsupportedMediaType, .invalidInput,
                           "content type \(contentType.isEmpty ? "(none)" : contentType): send multipart/form-data with `media` fields, or one image as image/* or application/octet-stream")
        }
        guard images.count <= configuration.maxImagesPerRequest else {
            throw APIError(.badRequest, .tooLarge, "\(images.count) images in one request; the limit is \(configuration.maxImagesPerRequest)")
        }
        return images
    }

    /// With ?stability, each image is decoded here (off the server's threads, one request at a
    /// time, so only one full-size image is held outside the queue) and sent with its draws: one
    /// request, one batch. Without, the images go as they came.
    func prepare(_ sources: [ImageSource], check: StabilityCheck?, scheduler: BatchScheduler,
                 channel: any Channel) async throws(APIError) -> (StabilityPlan?, [ImageSource]) {
        guard let check else { return (nil, sources) }
        try await admit(sources.count * (check.draws + 1), scheduler)
        let settings = detector.settings, deadline = ContinuousClock.now + configuration.deadline
        return await withCheckedContinuation { continuation in
            Self.preparing.async {
                var plan = StabilityPlan(sources, check: check, settings: settings, holdDecoded: false)
                let all = plan.next(upTo: .max) { ContinuousClock.now < deadline && channel.isActive }
                continuation.resume(returning: (plan, all))
            }
        }
    }

    /// Scores from the scheduler within what is left of the deadline; a client that has gone needs
    /// no verdicts, so its images still queued or in a pass are dropped.
    func score(_ sources: [ImageSource], within deadline: Duration, scheduler: BatchScheduler,
               channel: any Channel) async throws(APIError) -> [Result<Detection, Error>] {
        let late = APIError(.serviceUnavailable, .deadlineExceeded, "the verdicts were not ready within \(configuration.deadline)")
        guard deadline > .zero else { throw late }
        guard !sources.isEmpty else { return [] }
        let ticket = await scheduler.ticket()
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(deadline)) { Task { await scheduler.expire(ticket) } }
        let watch = channel.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { task in
            guard !channel.isActive else { return }
            task.cancel()
            Task { await scheduler.expire(ticket) }
        }
        defer { timer.cancel(); watch.cancel() }
        let scored: [Result<Detection, Error>]
        do {
            scored = try await scheduler.detect(sources, ticket: ticket)
        } catch let full as Full {
            throw queueFull(full)
        } catch {
            // (The scheduler's only other refusal.)
            throw APIError(.serviceUnavailable, .shuttingDown, "the service is shutting down")
        }
        if scored.contains(where: { if case .failure(let error) = $0 { error is BatchScheduler.DeadlineExceeded } else { false } }) { throw late }
        return scored
    }

    enum BodyFailure: Error { case tooLarge, tooSlow, broken, malformed(String) }

    /// The whole body, or why not. A body still arriving after `timeout` has its connection's input
    /// closed: the stream ends, the 408 goes out with `Connection: close`, and the connection closes,
    /// so a client that stalls mid-upload holds neither memory nor a graceful shutdown for longer.
    static func collect(_ request: Request, upTo limit: Int, within timeout: Duration, channel: any Channel) async -> Result<ByteBuffer, BodyFailure> {
        let late = Flag()
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            late.set()
            channel.close(mode: .input, promise: nil)
        }
        defer { timer.cancel() }
        var request = request
        do {
            let body = try await request.collectBody(upTo: limit)
            return late.isSet ? .failure(.tooSlow) : .success(body)
        } catch is NIOTooManyBytesError {
            return .failure(.tooLarge)
        } catch where late.isSet {
            // The timeout closed the input: what the parser says of the cut stream is its doing.
            return .failure(.tooSlow)
        } catch let error as HTTPParserError {
            // Nothing after a framing error can be read as a request: the input ends here.
            channel.close(mode: .input, promise: nil)
            return .failure(.malformed(describe(error)))
        } catch {
            return .failure(late.isSet ? .tooSlow : .broken)
        }
    }

    /// Stability requests are prepared one at a time, off the server's threads: each image is
    /// decoded there for its draws, and its clean pass goes as bytes, decoded again in the pass.
    static let preparing = DispatchQueue(label: "clipdetect.stability-draws", qos: .userInitiated)

    /// 429 with Retry-After: the queue is full now, or what it holds would not be done within the
    /// deadline; Retry-After is when enough of it should be.
    func queueFull(_ refusal: Full) -> APIError {
        let why = switch refusal.reason {
        case .queueLimit(let adding):
            "the queue is full: \(refusal.queued) images are waiting and \(adding) more would pass its limit of \(configuration.maxQueuedImages)"
        case .deadline:
            "at the pace of recent passes the images ahead (\(refusal.queued) waiting, more being encoded) leave no time for these within the deadline of \(configuration.deadline)"
        }
        return APIError(.tooManyRequests, .overloaded, "\(why): try again shortly", retryAfter: refusal.retryAfter)
    }

    /// `?stability=N[&chain=reshare|social|paper]`: named chains only, so a client cannot ask for
    /// an operation of its own; N draws per image must fit in the queue.
    func stabilityCheck(_ request: Request, images: Int) throws(APIError) -> StabilityCheck? {
        let query = request.uri.queryParameters
        // Only what the contract names, each once: a misspelt or repeated parameter is not guessed at.
        if let unknown = query.first(where: { $0.key != "stability" && $0.key != "chain" }) {
            throw APIError(.badRequest, .invalidInput, "unknown query parameter \(unknown.key): /v1/detect takes stability and chain")
        }
        for name in ["stability", "chain"] where query[values: name[...]].count > 1 {
            throw APIError(.badRequest, .invalidInput, "\(name) is given more than once")
        }
        guard let text = query["stability"].map(String.init) else {
            if query["chain"] != nil { throw APIError(.badRequest, .invalidInput, "chain= needs stability=N") }
            return nil
        }
        guard let draws = Int(text), draws >= 1, draws <= configuration.maxStabilityDraws else {
            throw APIError(.badRequest, .invalidInput,
                configuration.maxStabilityDraws == 0 ? "this server does not run stability checks"
                    : "stability takes 1…\(configuration.maxStabilityDraws) draws, not \(text)")
        }
        let name = query["chain"].map(String.init) ?? "reshare"
        guard ImpairmentChain.named[name] != nil, let chain = try? ImpairmentChain(condition: name) else {
            throw APIError(.badRequest, .invalidInput,
                "chain takes \(ImpairmentChain.named.keys.sorted().joined(separator: ", "))")
        }
        guard images * (draws + 1) <= configuration.maxQueuedImages else {
            throw APIError(.badRequest, .tooLarge,
                "\(images) images × \(draws + 1) passes is more than the queue holds (\(configuration.maxQueuedImages)): send fewer images or draws")
        }
        return try? StabilityCheck(draws: draws, chain: chain)
    }

    static func isRawImage(_ contentType: String) -> Bool {
        let type = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return type.hasPrefix("image/") || type == "application/octet-stream"
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static func encoded(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":{"kind":"invalid_input","message":"response could not be encoded"}}"#.utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: data)))
    }

    static func json(_ object: [String: String]) -> Response { encoded(object) }

    static func error(_ status: HTTPResponse.Status, _ kind: ErrorKind, _ message: String) -> Response {
        encoded(ErrorResponse(error: .init(kind: kind.rawValue, message: message)), status: status)
    }

    static func error(_ status: HTTPResponse.Status, _ kind: FailureKind, _ message: String) -> Response {
        error(status, .failure(kind), message)
    }
}

/// The HTTP server as a service, noting when its drain was cut short (the group cancels it at the
/// drain timeout).
struct DrainWatch<App: Service>: Service {
    let app: App
    let cut: Flag

    func run() async throws {
        defer { if Task.isCancelled { cut.set() } }
        try await app.run()
    }
}

/// Set once, from an event loop, read from a task. (Per-request timeouts are event-loop timers, not
/// `Task.sleep`: a cancelled sleep keeps its timer, and its task's memory, until the time it named.)
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Hummingbird's basic context and the request's connection, which a stalled upload has closed.
struct ConnectionContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Every route and the methods it answers: `routes(_:scheduler:)` registers these, and the
/// middlewares below read them for 404/405 answers and metric labels.
/// Every GET answers HEAD too (the router makes it: the same status and headers, no body).
let routeMethods: [String: [HTTPRequest.Method]] = [
    "/": [.get, .head], "/healthz": [.get, .head], "/readyz": [.get, .head], "/metrics": [.get, .head], "/openapi.json": [.get, .head],
    "/v1/models": [.get, .head], "/v1/detect": [.post],
]

/// While the service drains, a request that arrives (on a kept-alive connection) gets 503
/// `shutting_down` and the close, instead of a connection reset.
struct DrainMiddleware<Context: RequestContext>: RouterMiddleware {
    let book: ConnectionBook
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard book.isDraining else { return try await next(request, context) }
        var response = DetectionServer.error(.serviceUnavailable, .shuttingDown, "the service is shutting down")
        response.headers[.connection] = "close"
        return response
    }
}

/// Requests refused before any route: HTTP/1.1 without Host (RFC 9112 §3.2, told by `RequestWatch`),
/// an expectation other than 100-continue (417, RFC 9110 §10.1.1).
struct RefusalMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let name = HTTPFields.Element.Name(Refusal.header), let refusal = request.headers[name].flatMap(Refusal.init(header:)) {
            var response = switch refusal {
            case .host: DetectionServer.error(.badRequest, .malformedRequest, "an HTTP/1.1 request needs one Host header, a host and optional port")
            case .unframed: DetectionServer.error(.badRequest, .malformedRequest, "Transfer-Encoding must end with chunked, or the body's length cannot be known")
            case .coded(let codings):
                DetectionServer.error(.notImplemented, .unsupportedEncoding,
                                      "Transfer-Encoding: \(codings) is not decoded here: send the body as it is, or chunked only")
            }
            response.headers[.connection] = "close"
            return response
        }
        if let expect = request.headers[.expect], expect.lowercased() != "100-continue" {
            return DetectionServer.error(.expectationFailed, .malformedRequest, "Expect: \(expect) is not met here (only 100-continue)")
        }
        return try await next(request, context)
    }
}

/// A JSON 404 for an unknown path; for a known one, 405 with `Allow` to another method and 204 with
/// `Allow` to OPTIONS (a CORS preflight from a configured origin is answered before this).
struct KnownRoutesMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // OPTIONS * asks about the server as a whole (RFC 9110 §9.3.7).
        if request.method == .options, request.uri.path == "*" {
            var response = Response(status: .noContent)
            response.headers[.allow] = "GET, HEAD, POST, OPTIONS"
            return response
        }
        guard let methods = routeMethods[request.uri.path] else {
            return DetectionServer.error(.notFound, .notFound, "no such path: the API is /v1/detect and /v1/models (see /openapi.json)")
        }
        if methods.contains(request.method) { return try await next(request, context) }
        let allowed = (methods + [.options]).map(\.rawValue).joined(separator: ", ")
        var response = request.method == .options
            ? Response(status: .noContent)
            : DetectionServer.error(.methodNotAllowed, .methodNotAllowed, "\(request.uri.path) answers \(allowed) only")
        response.headers[.allow] = allowed
        return response
    }
}

/// Counts and times every request by its route (the path, or "other" for unknown ones).
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let route = routeMethods[request.uri.path] != nil ? request.uri.path : "other"
        do {
            let response = try await next(request, context)
            metrics.request(route: route, status: response.status.code, duration: ContinuousClock.now - start)
            return response
        } catch let error as HTTPResponseError {
            metrics.request(route: route, status: error.status.code, duration: ContinuousClock.now - start)
            throw error
        }
    }
}

/// `Authorization: Bearer KEY` on /v1/* and /metrics, compared in constant time.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let digests: [[UInt8]]

    init(keys: [String]) { digests = keys.map { Array(SHA256.hash(data: Data($0.utf8))) } }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/v1/") || path == "/metrics" else { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        // The scheme's name is case-insensitive (RFC 9110 §11.1).
        let given = header.prefix(7).lowercased() == "bearer " ? String(header.dropFirst(7)) : ""
        // Digests have one length, so comparing them takes the same time whatever the key.
        let digest = Array(SHA256.hash(data: Data(given.utf8)))
        var matched = false
        for known in digests { matched = Self.equal(known, digest) || matched }
        guard matched, !given.isEmpty else {
            var response = DetectionServer.error(.unauthorized, .unauthorized, "missing or wrong API key (Authorization: Bearer KEY)")
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        return try await next(request, context)
    }

    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// CORS for the configured origins only: the request's Origin echoed when it is one of them.
struct CORSOriginsMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // A preflight for a path that does not exist is that path's 404.
        guard let origin = request.headers[.origin], origins.contains(origin), routeMethods[request.uri.path] != nil else {
            // The answer depends on Origin either way: a shared cache must not give this one to an allowed origin.
            var response = try await next(request, context)
            response.headers[.vary] = "Origin"
            return response
        }
        var response: Response
        if request.method == .options {
            response = Response(status: .noContent)
            if let methods = routeMethods[request.uri.path] { response.headers[.allow] = (methods + [.options]).map(\.rawValue).joined(separator: ", ") }
            response.headers[.accessControlAllowMethods] = "GET, POST, OPTIONS"
            response.headers[.accessControlAllowHeaders] = "Authorization, Content-Type"
            response.headers[.accessControlMaxAge] = "600"
        } else {
            response = try await next(request, context)
        }
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.vary] = "Origin"
        return response
    }
}
