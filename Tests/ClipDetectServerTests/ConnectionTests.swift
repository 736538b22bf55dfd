import AsyncHTTPClient
import ClipDetect
@testable import ClipDetectServer
import Foundation
import Glibc
import Testing

/// What a connection may cost the service, tried with a raw socket as slow and idle clients behave.
@Suite struct ConnectionTests {
    /// A raw loopback connection to the server at `base`.
    static func connect(_ base: String) throws -> Int32 {
        try #require(ServerTests.rawConnection(port: Int(base.split(separator: ":").last!)!))
    }

    /// A server with `configure` applied and a raw connection to it, closed after `body`.
    static func withConnection(_ configure: (inout ServerConfiguration) -> Void = { _ in },
                               _ body: @Sendable (_ socket: Int32, _ base: String, _ client: HTTPClient) async throws -> Void) async throws {
        var configuration = ServerConfiguration(port: 0)
        configure(&configuration)
        try await ServerTests.withServer(configuration) { base, client in
            let socket = try Self.connect(base)
            defer { close(socket) }
            try await body(socket, base, client)
        }
    }

    /// Sends without SIGPIPE; false once the server has closed the connection.
    @discardableResult
    static func send(_ socket: Int32, _ text: String) -> Bool {
        text.withCString { Glibc.send(socket, $0, strlen($0), Int32(MSG_NOSIGNAL)) } == text.utf8.count
    }

    /// Everything the server sends until it closes the connection (`closed`), or until nothing has
    /// come for `guardSeconds` (a guard against a hang, not a time limit on the server).
    /// (On a Dispatch thread: a blocking read on one of the few cooperative threads would starve the servers.)
    /// `until`: stop as soon as what arrived holds it (an answer on a connection kept alive).
    static func readToEnd(_ socket: Int32, guardSeconds: Int = 60, until: String? = nil) async -> (text: String, closed: Bool) {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: blockingRead(socket, guardSeconds: guardSeconds, until: until)) }
        }
    }

    static func blockingRead(_ socket: Int32, guardSeconds: Int, until: String?) -> (text: String, closed: Bool) {
        var timeout = timeval(tv_sec: guardSeconds, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received = [UInt8](), buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(socket, &buffer, buffer.count)
            if count > 0 {
                received += buffer[0..<count]
                if let until, String(decoding: received, as: UTF8.self).contains(until) { return (String(decoding: received, as: UTF8.self), false) }
                continue
            }
            return (String(decoding: received, as: UTF8.self), count == 0 || errno == ECONNRESET)
        }
    }

    /// A head trickled in a byte at a time, each in time, still has to be whole within the header
    /// timeout: the server answers 408 `header_timeout` and closes while the bytes still come.
    @Test func aTrickledHeadIsCutOffAtTheHeaderDeadline() async throws {
        try await Self.withConnection({ $0.connections.headerTimeout = .milliseconds(600) }) { socket, _, _ in
            let trickle = Task.detached { () -> Int in
                let head = Array("GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: " + String(repeating: "a", count: 400) + "\r\n\r\n")
                for (sent, byte) in head.enumerated() {
                    guard Self.send(socket, String(byte)) else { return sent }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                return head.count
            }
            let answer = await Self.readToEnd(socket)
            #expect(answer.closed)
            #expect(answer.text.hasPrefix("HTTP/1.1 408") && answer.text.contains("\"header_timeout\"") && answer.text.contains("Connection: close"), "\(answer.text)")
            #expect(await trickle.value < 400, "the server closed while the head was still coming")
        }
    }

    /// A kept-alive connection with no next request is closed after the idle timeout; /metrics counts it.
    @Test func anIdleKeptAliveConnectionIsClosed() async throws {
        try await Self.withConnection({ $0.connections.idleTimeout = .milliseconds(300) }) { socket, base, client in
            Self.send(socket, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            let answer = await Self.readToEnd(socket)
            #expect(answer.closed && answer.text.hasPrefix("HTTP/1.1 200") && answer.text.contains("\"ok\""), "\(answer.text)")
            let metrics = try await ServerTests.send(client, base + "/metrics").text
            #expect(metrics.contains("clipdetect_connections_timed_out_total{phase=\"idle\"} 1"), "\(metrics)")
            #expect(metrics.contains("clipdetect_idle_timeout_seconds 0.3") && metrics.contains("clipdetect_header_timeout_seconds 30"), "\(metrics)")
        }
    }

    /// Past the cap, a new connection waits to be accepted (no descriptor spent on it) and is
    /// served as soon as one of the others closes.
    @Test func connectionsPastTheCapWaitForAFreeOne() async throws {
        var configuration = ServerConfiguration(port: 0)
        configuration.connections.maxConnections = 2
        try await ServerTests.withServer(configuration) { base, client in
            // The test's own HTTP client holds no connection yet; two raw ones fill the cap.
            let held = [try Self.connect(base), try Self.connect(base)]
            Self.send(held[0], "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            let first = await Self.readToEnd(held[0], until: #"{"status":"ok"}"#)
            #expect(first.text.hasPrefix("HTTP/1.1 200"), "the first is served")
            let waiting = try Self.connect(base)
            defer { close(waiting) }
            Self.send(waiting, "GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            let early = await Self.readToEnd(waiting, guardSeconds: 1)
            #expect(early.text.isEmpty && !early.closed, "not served while two are open: \(early.text)")
            close(held[1])
            let later = await Self.readToEnd(waiting)
            #expect(later.closed && later.text.hasPrefix("HTTP/1.1 200"), "\(later.text)")
            close(held[0])
            let metrics = try await ServerTests.send(client, base + "/metrics").text
            #expect(metrics.contains("clipdetect_max_connections 2") && metrics.contains("clipdetect_open_connections "), "\(metrics)")
        }
    }

    /// A request whose deadline passes while its image waits in the queue gets 503 at its deadline,
    /// and its image is dropped from the queue: never decoded or encoded (no pass, nothing scored).
    @Test func workOfAnExpiredRequestIsDropped() async throws {
        var configuration = ServerConfiguration(port: 0, maxBatch: 16, maxWait: .seconds(2), deadline: .milliseconds(300))
        configuration.maxImagesPerRequest = 1
        try await ServerTests.withServer(configuration) { base, client in
            let jpeg = try Data(contentsOf: URL(fileURLWithPath: ServerTests.images[0]))
            let late = try await ServerTests.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", "image/jpeg")], body: jpeg)
            #expect(late.status == 503 && late.text.contains("deadline_exceeded"), "\(late.text)")
            try await Task.sleep(for: .seconds(3))  // past the batching wait the image would have had
            let metrics = try await ServerTests.send(client, base + "/metrics").text
            #expect(!metrics.contains("clipdetect_images_scored_total 1") && metrics.contains("clipdetect_batch_size_count 0"), "\(metrics)")
        }
    }

    /// Images already in a pass when their request expires are not decoded or encoded when their
    /// turn comes: a few large images cannot keep the cores busy long after the 503 (here 8 images
    /// of 8000×8000 pixels, seconds each; at most those being decoded at expiry go on).
    @Test func imagesOfAnExpiredRequestInAPassAreSkipped() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("large-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("large.png").path
        try PNGEncoder.write(RGBImage(width: 8000, height: 8000, pixels: [UInt8](repeating: 0, count: 8000 * 8000 * 3)), to: path)
        let large = try Data(contentsOf: URL(fileURLWithPath: path))
        var configuration = ServerConfiguration(port: 0, maxBatch: 16, maxWait: .zero, deadline: .milliseconds(500))
        configuration.maxImagesPerRequest = 8
        try await ServerTests.withServer(configuration) { base, client in
            let (type, body) = ServerTests.form((0..<8).map { ("media", "large\($0).png", large) })
            let late = try await ServerTests.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", type)], body: body)
            #expect(late.status == 503 && late.text.contains("deadline_exceeded"), "\(late.text)")
            // The pass records what it skipped when it ends.
            var metrics = "", dropped = 0.0
            for _ in 0..<240 where dropped == 0 {  // a guard against a hang
                try await Task.sleep(for: .milliseconds(500))
                metrics = try await ServerTests.send(client, base + "/metrics", headers: [("Connection", "close")]).text
                dropped = metrics.split(separator: "\n").first { $0.hasPrefix("clipdetect_images_dropped_total ") }.flatMap { Double($0.split(separator: " ").last!) } ?? 0
            }
            #expect(dropped >= Double(8 - ProcessInfo.processInfo.activeProcessorCount), "\(metrics)")
        }
    }

    /// A client that sends requests but never reads the answers is closed once its answers have
    /// waited the idle timeout: it cannot hold a connection (or a drain) for ever.
    @Test func aClientThatDoesNotReadIsClosed() async throws {
        try await Self.withConnection({ $0.connections.idleTimeout = .milliseconds(500) }) { socket, base, client in
            var small: Int32 = 4096
            setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            let requests = String(repeating: "GET /openapi.json HTTP/1.1\r\nHost: test\r\n\r\n", count: 400)
            let sender = Task.detached { for _ in 0..<10 where Self.send(socket, requests) {} }
            var closed = false
            for _ in 0..<120 where !closed {  // a guard against a hang, not a time limit
                try await Task.sleep(for: .milliseconds(500))
                // A fresh connection each time: a pooled one would meet the 500 ms idle timeout itself.
                closed = try await ServerTests.send(client, base + "/metrics", headers: [("Connection", "close")]).text
                    .contains(#"clipdetect_connections_timed_out_total{phase="write"} 1"#)
            }
            #expect(closed, "the server closed the connection that does not read")
            await sender.value
        }
    }

    /// A chunked body whose chunk size is not a number gets one 400 that says so, then the close.
    @Test func aMalformedChunkSizeIsSaidToBeMalformed() async throws {
        try await Self.withConnection { socket, _, _ in
            Self.send(socket, "POST /v1/detect HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")
            let answer = await Self.readToEnd(socket)
            #expect(answer.closed && answer.text.hasPrefix("HTTP/1.1 400") && answer.text.contains("malformed request body")
                    && answer.text.contains(#""malformed_request""#), "\(answer.text)")
            #expect(answer.text.components(separatedBy: "HTTP/1.1 ").count == 2, "one answer: \(answer.text)")
        }
    }

    /// HTTP/1.0 without keep-alive is closed after its answer; HEAD answers as GET, without a body.
    @Test func http10IsClosedAfterItsAnswerAndHeadHasNoBody() async throws {
        try await ServerTests.withServer(ServerConfiguration(port: 0)) { base, _ in
            let old = try Self.connect(base)
            defer { close(old) }
            Self.send(old, "GET /healthz HTTP/1.0\r\n\r\n")
            let answer = await Self.readToEnd(old)
            #expect(answer.closed && answer.text.contains(" 200 ") && answer.text.hasSuffix(#"{"status":"ok"}"#), "\(answer.text)")
            // With keep-alive asked, the answer says it is kept (a 1.0 client assumes the close otherwise).
            let kept = try Self.connect(base)
            defer { close(kept) }
            Self.send(kept, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let first = await Self.readToEnd(kept, until: #"{"status":"ok"}"#)
            #expect(!first.closed && first.text.lowercased().contains("connection: keep-alive"), "\(first.text)")
            Self.send(kept, "GET /readyz HTTP/1.0\r\n\r\n")
            let second = await Self.readToEnd(kept)
            #expect(second.closed && second.text.contains(#""ready""#), "\(second.text)")

            for path in ["/healthz", "/readyz"] {
                let socket = try Self.connect(base)
                defer { close(socket) }
                Self.send(socket, "HEAD \(path) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                let head = await Self.readToEnd(socket)
                let parts = head.text.components(separatedBy: "\r\n\r\n")
                #expect(head.closed && head.text.hasPrefix("HTTP/1.1 200") && head.text.lowercased().contains("content-type: application/json")
                        && parts.count == 2 && parts[1].isEmpty, "\(path): \(head.text)")
            }
        }
    }

    /// What the parser refuses before any request (two lengths, a length beside chunked, a negative
    /// one, not HTTP at all) is one 400 with the JSON body every refusal has, then the close.
    @Test func framingErrorsAreAnsweredInJSON() async throws {
        let requests = [
            "POST /v1/detect HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            "POST /v1/detect HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            "POST /v1/detect HTTP/1.1\r\nHost: t\r\nContent-Length: -3\r\n\r\nabc",
            "NOT HTTP\r\n\r\n",
        ]
        for request in requests {
            try await Self.withConnection { socket, _, _ in
                Self.send(socket, request)
                let answer = await Self.readToEnd(socket)
                let parts = answer.text.components(separatedBy: "\r\n\r\n")
                let body = try? JSONSerialization.jsonObject(with: Data((parts.last ?? "").utf8)) as? [String: [String: String]]
                #expect(answer.closed && answer.text.hasPrefix("HTTP/1.1 400") && answer.text.lowercased().contains("content-type: application/json")
                        && body?["error"]?["kind"] == "malformed_request" && body?["error"]?["message"]?.hasPrefix("malformed request (") == true,
                        "\(request.prefix(60)): \(answer.text)")
            }
        }
    }

    /// A body in a coding the server does not decode is refused, not scored as the image: a transfer
    /// coding besides chunked 501, a content coding 415.
    @Test func codedBodiesAreRefused() async throws {
        let body = "3\r\nabc\r\n0\r\n\r\n"
        let cases = [("Transfer-Encoding: gzip, chunked", "HTTP/1.1 501"), ("Transfer-Encoding: chunked\r\nContent-Encoding: gzip", "HTTP/1.1 415")]
        for (header, status) in cases {
            try await Self.withConnection { socket, _, _ in
                Self.send(socket, "POST /v1/detect HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n\(header)\r\nConnection: close\r\n\r\n\(body)")
                let answer = await Self.readToEnd(socket)
                #expect(answer.text.hasPrefix(status) && answer.text.contains(#""unsupported_encoding""#), "\(header): \(answer.text)")
            }
        }
    }

    /// OPTIONS * asks what the server answers: 204 with Allow, not 404.
    @Test func optionsStarNamesTheServersMethods() async throws {
        try await Self.withConnection { socket, _, _ in
            Self.send(socket, "OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            let answer = await Self.readToEnd(socket)
            #expect(answer.text.hasPrefix("HTTP/1.1 204") && answer.text.contains("Allow: GET, HEAD, POST, OPTIONS"), "\(answer.text)")
        }
    }

    /// Expect: 100-continue is answered before the body (curl waits a second for it otherwise);
    /// another expectation gets 417; HTTP/1.1 without Host 400; a length past any limit 413 at once,
    /// with the close (the body is not read).
    @Test func expectationsHostAndHugeLengths() async throws {
        try await Self.withConnection { socket, _, _ in
            Self.send(socket, "POST /v1/detect HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
            let interim = await Self.readToEnd(socket, until: "\r\n\r\n")
            #expect(interim.text.hasPrefix("HTTP/1.1 100 Continue"), "\(interim.text)")
            Self.send(socket, "abc")
            let final = await Self.readToEnd(socket, until: "}]")
            #expect(final.text.contains("HTTP/1.1 200") && final.text.contains("not an image"), "\(final.text)")
        }
        // Each closes as soon as it is answered (the idle timeout is far away; the read's guard is
        // below it): an answer that says Connection: close does close.
        let cases: [(String, String, String)] = [
            ("GET /healthz HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n", "HTTP/1.1 417", "malformed_request"),
            ("GET /healthz HTTP/1.1\r\n\r\n", "HTTP/1.1 400", "needs one Host header"),
            ("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400", "needs one Host header"),
            ("GET /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nabc", "HTTP/1.1 400", "must end with chunked"),
            ("POST /v1/detect HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: 9223372036854775808\r\n\r\nabc", "HTTP/1.1 413", "too_large"),
            ("POST /v1/detect HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "HTTP/1.1 501", "unsupported_encoding"),
        ]
        for (request, status, needle) in cases {
            try await Self.withConnection({ $0.connections.idleTimeout = .seconds(600) }) { socket, _, _ in
                Self.send(socket, request)
                let answer = await Self.readToEnd(socket, guardSeconds: 30)
                #expect(answer.closed && answer.text.hasPrefix(status) && answer.text.contains(needle), "\(request.prefix(50)): \(answer.text)")
                #expect(answer.text.components(separatedBy: "HTTP/1.1 ").count == 2, "one answer: \(answer.text)")
            }
        }
    }

    /// CORS: a preflight from an allowed origin carries Allow (the contract says every 204 does);
    /// every answer says it varies by Origin, so a shared cache keeps them apart.
    @Test func corsPreflightHasAllowAndAnswersVaryByOrigin() async throws {
        try await Self.withConnection({ $0.corsOrigins = ["https://ok.example"] }) { socket, base, client in
            Self.send(socket, "OPTIONS /v1/detect HTTP/1.1\r\nHost: t\r\nOrigin: https://ok.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n")
            let preflight = await Self.readToEnd(socket)
            #expect(preflight.text.hasPrefix("HTTP/1.1 204") && preflight.text.contains("Allow: POST, OPTIONS"), "\(preflight.text)")
            let other = try await ServerTests.send(client, base + "/healthz", headers: [("Origin", "https://evil.example")])
            #expect(other.headers["Vary"].contains("Origin") && other.headers["Access-Control-Allow-Origin"].isEmpty, "\(other.headers)")
            let nowhere = try await ServerTests.send(client, base + "/nope", method: .OPTIONS, headers: [("Origin", "https://ok.example"), ("Access-Control-Request-Method", "POST")])
            #expect(nowhere.status == 404, "a preflight for no path: \(nowhere.status)")
        }
    }
}
