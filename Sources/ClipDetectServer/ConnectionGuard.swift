import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Synchronization

/// What a connection may cost the service: each is bounded in time, and their number is capped, so
/// slow or idle clients cannot hold descriptors (the service's other callers wait in the backlog).
public struct ConnectionLimits: Sendable, Equatable {
    /// A request's head must be whole this long after its first byte (or after the connection
    /// opened), however slowly the bytes trickle in; then 408 `header_timeout` and the close.
    public var headerTimeout: Duration
    /// A kept-alive connection with no request for this long is closed.
    public var idleTimeout: Duration
    /// Most connections open at once; beyond it new ones wait to be accepted.
    public var maxConnections: Int

    /// 512, or fewer where the process's descriptor limit would be reached first (64 are kept for
    /// the model, the cache and the logs).
    public static var defaultMaxConnections: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 512 }
        return max(1, Int(clamping: min(UInt64(limit.rlim_cur), 576)) - 64)
    }

    public init(headerTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(30), maxConnections: Int = Self.defaultMaxConnections) {
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.maxConnections = max(1, maxConnections)
    }
}

/// The state all connections share: how many are open, how many requests are in progress, and
/// whether the service is draining (after SIGTERM: requests on kept-alive connections get 503
/// `shutting_down` with `Connection: close`; idle connections close when the last request is done).
final class ConnectionBook: Sendable {
    private struct State {
        var open = 0
        var inProgress = 0
        var draining = false
        var waiting: [ObjectIdentifier: any Channel] = [:]
    }
    private let state = Mutex(State())
    let metrics: ServerMetrics

    init(metrics: ServerMetrics) { self.metrics = metrics }

    var isDraining: Bool { state.withLock { $0.draining } }

    func opened() { metrics.openConnections.set(Double(state.withLock { $0.open += 1; return $0.open })) }
    func closed() { metrics.openConnections.set(Double(state.withLock { $0.open -= 1; return $0.open })) }
    var open: Int { state.withLock { $0.open } }

    func began() { state.withLock { $0.inProgress += 1 } }

    /// `count` requests ended (answered, or their connection closed).
    func ended(_ count: Int = 1) {
        let idle = state.withLock { state -> [any Channel] in
            state.inProgress -= count
            guard state.draining, state.inProgress == 0 else { return [] }
            defer { state.waiting = [:] }
            return Array(state.waiting.values)
        }
        for channel in idle { channel.close(promise: nil) }
    }

    /// Draining starts; an idle `channel` closes now if nothing is in progress, else when it is done.
    func drain(idle channel: (any Channel)?) {
        let closeNow = state.withLock { state -> Bool in
            state.draining = true
            guard let channel else { return false }
            if state.inProgress == 0 { return true }
            state.waiting[ObjectIdentifier(channel)] = channel
            return false
        }
        if closeNow { channel?.close(promise: nil) }
    }

    func forget(_ channel: any Channel) { _ = state.withLock { $0.waiting.removeValue(forKey: ObjectIdentifier(channel)) } }
}

/// Hummingbird's connection cap, counted in the book (and so in /metrics).
struct ConnectionCap: AvailableConnectionsDelegate {
    let book: ConnectionBook
    let limit: Int
    mutating func connectionOpened() { book.opened() }
    mutating func connectionClosed() { book.closed() }
    func isAcceptingNewConnections() -> Bool { book.open < limit }
}

/// Hummingbird's HTTP/1 channel with the connection's clock and the drain added in front of it.
struct GuardedHTTP1Channel: HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let limits: ConnectionLimits
    let book: ConnectionBook
    var responder: HTTPChannelHandler.Responder { inner.responder }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let limits = limits, book = book
        return inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let clock = ConnectionClock(limits: limits, book: book)
            let operations = channel.pipeline.syncOperations
            try operations.addHandler(ByteWatch(clock: clock), position: .first)
            let codec = try operations.handler(type: HTTP1ToHTTPServerCodec.self)
            try operations.addHandler(RequestWatch(clock: clock), position: .before(codec))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async { await inner.handle(value: value, logger: logger) }
}

/// One connection's timers and requests in progress, shared by its two watchers (same event loop).
final class ConnectionClock {
    enum Phase { case readingHead, inRequest, idle }
    let limits: ConnectionLimits
    let book: ConnectionBook
    var phase = Phase.readingHead
    var inProgress = 0
    var timer: Scheduled<Void>?
    /// Armed while the client does not read what it is sent (the channel is not writable).
    var stall: Scheduled<Void>?
    /// The request in progress is HTTP/1.0 asking for keep-alive.
    var sayKeepAlive = false
    /// Why the parser refused what came before any request: the 400 Hummingbird then sends says it.
    var parseError: HTTPParserError?
    /// The answer being written says `Connection: close`: the connection closes after it.
    var closesAfter = false

    init(limits: ConnectionLimits, book: ConnectionBook) {
        self.limits = limits
        self.book = book
    }

    func schedule(_ delay: Duration, on context: ChannelHandlerContext, _ fire: @escaping (ChannelHandlerContext) -> Void) {
        timer?.cancel()
        let loop = context.eventLoop.assumeIsolated()
        timer = loop.scheduleTask(in: TimeAmount(delay)) { fire(context) }
    }

    func cancel() {
        timer?.cancel()
        timer = nil
    }
}

/// Bytes as they arrive: the first byte of a head starts its deadline; a head late past it gets 408.
final class ByteWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let clock: ConnectionClock

    init(clock: ConnectionClock) { self.clock = clock }

    func handlerAdded(context: ChannelHandlerContext) { startHead(context) }

    /// A client that stops reading its answers holds the connection (and a drain) only for the idle
    /// timeout: then it is closed.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        clock.stall?.cancel()
        clock.stall = nil
        if !context.channel.isWritable {
            let loop = context.eventLoop.assumeIsolated()
            clock.stall = loop.scheduleTask(in: TimeAmount(clock.limits.idleTimeout)) { [clock] in
                clock.book.metrics.timedOut(phase: "write")
                context.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if clock.phase == .idle && clock.inProgress == 0 { startHead(context) }
        context.fireChannelRead(data)
    }

    private func startHead(_ context: ChannelHandlerContext) {
        clock.phase = .readingHead
        clock.schedule(clock.limits.headerTimeout, on: context) { [clock] context in
            guard clock.phase == .readingHead, clock.inProgress == 0 else { return }
            clock.book.metrics.timedOut(phase: "header")
            let body = errorBody(.headerTimeout, "the request head did not arrive within \(clock.limits.headerTimeout)")
            let head = "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: \(body.readableBytes)\r\nConnection: close\r\n\r\n"
            var answer = ByteBuffer(string: head)
            answer.writeImmutableBuffer(body)
            closeAfter(context.writeAndFlush(NIOAny(answer)), context)
        }
    }
}

/// Parsed requests and the answers to them: requests in progress, the idle timer between them,
/// `Connection: close` for HTTP/1.0 without keep-alive and while draining, and the drain itself.
final class RequestWatch: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart
    let clock: ConnectionClock

    init(clock: ConnectionClock) { self.clock = clock }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        clock.cancel()
        clock.phase = .inRequest
        clock.inProgress += 1
        clock.book.began()
        clock.book.forget(context.channel)
        // An HTTP/1.0 client keeps the connection only when the answer says so.
        clock.sayKeepAlive = head.version == .http1_0 && head.isKeepAlive
        // What only this layer sees (the version) is refused by the router, told through a header
        // only this layer sets.
        head.headers.remove(name: Refusal.header)
        if let refusal = Refusal.of(head) { head.headers.add(name: Refusal.header, value: refusal.value) }
        // curl and others wait a second for this before sending a large body (HTTP/1.1 only).
        if head.version == .http1_1, head.headers["expect"].map({ $0.lowercased() }) == ["100-continue"] {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        if !head.isKeepAlive || clock.book.isDraining {
            // Hummingbird closes after the answer to a request that asks it to.
            head.headers.replaceOrAdd(name: "connection", value: "close")
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    /// A framing error outside any request (Content-Length twice, negative, or beside
    /// Transfer-Encoding; not HTTP at all): Hummingbird answers it 400 without a body and closes.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError, clock.inProgress == 0 { clock.parseError = error }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if let error = clock.parseError {
            // That 400 gets the JSON body every other refusal has.
            switch unwrapOutboundIn(data) {
            case .head(var head) where head.status == .badRequest:
                let body = errorBody(.malformedRequest, "malformed request (\(describe(error))): the connection is closed")
                head.headers.replaceOrAdd(name: "content-type", value: "application/json")
                head.headers.replaceOrAdd(name: "content-length", value: "\(body.readableBytes)")
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: promise)
                return
            case .end:
                clock.parseError = nil
            default: break
            }
        }
        if case .head(var head) = unwrapOutboundIn(data), head.status.code >= 200 {
            // An answer that says it closes the connection does (Hummingbird closes only when the request asked).
            clock.closesAfter = head.headers["connection"].contains { $0.lowercased() == "close" }
            if clock.sayKeepAlive, !clock.book.isDraining, !clock.closesAfter {
                head.headers.replaceOrAdd(name: "connection", value: "keep-alive")
                return context.write(wrapOutboundOut(.head(head)), promise: promise)
            }
        }
        if case .end = unwrapOutboundIn(data), clock.closesAfter {
            clock.closesAfter = false
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.cascade(to: promise)
            context.writeAndFlush(data, promise: written)
            if clock.inProgress > 0 { clock.inProgress -= 1; clock.book.ended() }
            return closeAfter(written.futureResult, context)
        }
        guard case .end = unwrapOutboundIn(data), clock.inProgress > 0 else { return context.write(data, promise: promise) }
        clock.inProgress -= 1
        clock.book.ended()
        guard clock.inProgress == 0 else { return context.write(data, promise: promise) }
        if clock.book.isDraining {
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.cascade(to: promise)
            context.writeAndFlush(data, promise: written)
            return closeAfter(written.futureResult, context)
        }
        context.write(data, promise: promise)
        clock.phase = .idle
        clock.schedule(clock.limits.idleTimeout, on: context) { [clock] context in
            guard clock.phase == .idle, clock.inProgress == 0 else { return }
            clock.book.metrics.timedOut(phase: "idle")
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Hummingbird's own handler would close idle connections at once; here they stay until
        // the last request in progress is done, and a request on one of them gets 503.
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        clock.book.drain(idle: clock.inProgress == 0 ? context.channel : nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clock.cancel()
        clock.stall?.cancel()
        clock.book.forget(context.channel)
        if clock.inProgress > 0 { clock.book.ended(clock.inProgress) }
        clock.inProgress = 0
        context.fireChannelInactive()
    }
}

/// What `RequestWatch` passes to the router to refuse (`RefusalMiddleware`): what only its layer
/// sees (the version, headers as sent), told through a header only it sets.
enum Refusal: Equatable {
    static let header = "clipdetect-refusal"
    /// HTTP/1.1 without exactly one valid Host (RFC 9112 §3.2).
    case host
    /// A transfer coding whose last is not chunked: the body's length cannot be known (RFC 9112 §6.3).
    case unframed
    /// Transfer codings before chunked, which are not decoded here (501, RFC 9112 §6.1).
    case coded(String)

    static func of(_ head: HTTPRequestHead) -> Refusal? {
        let hosts = head.headers["host"]
        if head.version == .http1_1, hosts.count != 1 || hosts[0].contains(where: { $0 == " " || $0 == "/" || $0 == "\t" }) { return .host }
        let codings = head.headers["transfer-encoding"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        if !codings.isEmpty, codings.last != "chunked" { return .unframed }
        if codings.count > 1 { return .coded(codings.joined(separator: ", ")) }
        return nil
    }

    /// As the header carries it.
    var value: String {
        switch self {
        case .host: "host"
        case .unframed: "unframed"
        case .coded(let codings): "coded:" + codings
        }
    }

    init?(header: String) {
        switch header {
        case "host": self = .host
        case "unframed": self = .unframed
        case let text where text.hasPrefix("coded:"): self = .coded(String(text.dropFirst(6)))
        default: return nil
        }
    }
}

/// Closes the connection once `write` is done (written or failed), on the connection's loop.
private func closeAfter(_ write: EventLoopFuture<Void>, _ context: ChannelHandlerContext) {
    write.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
}

/// The JSON body of a refusal made below the router (the router's own are `DetectionServer.error`).
private func errorBody(_ kind: ErrorKind, _ message: String) -> ByteBuffer {
    ByteBuffer(bytes: (try? JSONEncoder().encode(ErrorResponse(error: .init(kind: kind.rawValue, message: message)))) ?? Data())
}

/// What the parser refused, in words (its own; `.unexpectedContentLength` named by its causes).
func describe(_ error: HTTPParserError) -> String {
    switch error {
    case .unexpectedContentLength: "a Content-Length beside Transfer-Encoding, or two of them"
    case .invalidContentLength: "a Content-Length that is not a number of bytes"
    // The parser's own states, not the request's fault in words a client can act on.
    case .unknown, .paused, .invalidInternalState, .strictModeAssertion: "not HTTP/1.1 as this server reads it"
    default: error.debugDescription
    }
}
