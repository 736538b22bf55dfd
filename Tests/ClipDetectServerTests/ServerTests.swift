import AsyncHTTPClient
import ClipDetect
import ClipDetectTestSupport
import ClipDetectServer
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// The real server on a loopback port, spoken to over HTTP by a real client.
@Suite struct ServerTests {
    static let images = ["jpeg_420.jpg", "png_rgba.png", "webp_lossy.webp"].map { Fixtures.path("images", $0) }

    static func detector() throws -> Detector {
        let encoder = try ImageEncoder(path: Fixtures.path("encoder", "a_gelu_proj32", "openclip.safetensors"))
        let head = try Head.importReference(checkpoint: Fixtures.path("heads", "weights.pth"), config: nil, name: "tiny", backbone: encoder)
        return try Detector(encoder: encoder, heads: [head])
    }

    /// Runs `body` against a server started with `configuration` (port 0), then stops it.
    static func withServer(_ configuration: ServerConfiguration = ServerConfiguration(port: 0), detector given: Detector? = nil,
                           models: [String] = ["tiny-fixture"], _ body: @Sendable (_ base: String, _ client: HTTPClient) async throws -> Void) async throws {
        var configuration = configuration
        configuration.port = 0
        let server = DetectionServer(detector: try given ?? detector(), models: models, configuration: configuration,
                                     logger: Logger(label: "test"))
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run(signals: []) { continuation.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { Issue.record("server did not start"); return }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            try await body("http://127.0.0.1:\(port)", client)
        } catch {
            Issue.record("\(error)")
        }
        try await client.shutdown()
        task.cancel()
        _ = try? await task.value
    }

    static func send(_ client: HTTPClient, _ url: String, method: HTTPMethod = .GET, headers: [(String, String)] = [],
                     body: Data? = nil) async throws -> (status: Int, headers: HTTPHeaders, json: [String: Any]?, text: String) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(data: body)) }
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        let data = Data(buffer: bytes)
        return (Int(response.status.code), response.headers, (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
                String(decoding: data, as: UTF8.self))
    }

    static func form(_ parts: [(name: String, filename: String, data: Data)], boundary: String = "clipdetect-test-boundary") -> (String, Data) {
        var body = Data()
        for part in parts {
            body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\"; filename=\"\(part.filename)\"\r\nContent-Type: application/octet-stream\r\n\r\n".utf8))
            body.append(part.data)
            body.append(Data("\r\n".utf8))
        }
        body.append(Data("--\(boundary)--\r\n".utf8))
        return ("multipart/form-data; boundary=\(boundary)", body)
    }

    /// A service over heads on two backbones, of other features and views: each head's score is the
    /// library's, and /v1/models says which backbone each head reads.
    @Test func headsOnTwoBackbonesAreServedTogether() async throws {
        let encoder = try ImageEncoder(path: Fixtures.path("encoder", "a_gelu_proj32", "openclip.safetensors"))
        let other = try ImageEncoder(path: Fixtures.path("encoder", "b_quickgelu_proj48", "openclip.safetensors"))
        let paper = try Head.importReference(checkpoint: Fixtures.path("heads", "weights.pth"), config: nil, name: "tiny", backbone: encoder)
        let univfd = try Head.importUnivFD(checkpoint: Fixtures.path("heads", "univfd_fc_weights.pth"), name: "univfd", backbone: encoder)
        let elsewhere = Head(weights: (0..<other.featureWidth(.pooled)).map { Float(cos(Double($0))) }, bias: -0.5,
                             metadata: Head.Metadata(name: "elsewhere", feature: Head.Feature(encoder: other)))
        let detector = try Detector(heads: [(paper, encoder), (elsewhere, other), (univfd, encoder)])
        let expected = try await detector.detect(.file(Self.images[0]))
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.images[0]))
        try await Self.withServer(detector: detector, models: ["a.safetensors", "b.safetensors"]) { base, client in
            let response = try await Self.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", "image/jpeg")], body: data)
            #expect(response.status == 200, "\(response.text)")
            let image = (response.json?["images"] as? [[String: Any]])?.first
            let scores = image?["scores"] as? [String: Double]
            // Within JSON's round trip of a double.
            for (index, name) in ["tiny", "elsewhere", "univfd"].enumerated() {
                #expect(abs((scores?[name] ?? .nan) - expected.scores[index]) <= 1e-12, "\(response.text)")
            }
            #expect(response.json?["model"] as? String == "a.safetensors + b.safetensors")
            let models = try await Self.send(client, base + "/v1/models")
            let backbones = models.json?["backbones"] as? [[String: Any]]
            #expect(backbones?.map { $0["fingerprint"] as? String } == [encoder.fingerprint, other.fingerprint], "\(models.text)")
            #expect(backbones?.map { $0["model"] as? String } == ["a.safetensors", "b.safetensors"])
            #expect((models.json?["heads"] as? [[String: Any]])?.map { $0["backbone"] as? Int } == [0, 1, 0], "\(models.text)")
        }
    }

    @Test func verdictsEqualTheLibrarysAndABadImageFailsAlone() async throws {
        var found: [Detection] = []
        try Self.detector().run(paths: Self.images) { _, result in found.append(try result.get()) }
        let expected = found
        let files = try Self.images.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        try await Self.withServer { base, client in
            let (type, body) = Self.form([("media", "a.jpg", files[0]), ("media", "bad.png", Data("garbage".utf8)),
                                          ("media", "b.png", files[1]), ("media", "c.webp", files[2])])
            let response = try await Self.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", type)], body: body)
            #expect(response.status == 200, "\(response.text)")
            let images = try #require(response.json?["images"] as? [[String: Any]])
            #expect(images.count == 4)
            #expect((images[1]["error"] as? [String: Any])?["kind"] as? String == "invalid_input")
            #expect(expected.count == 3)
            for (verdict, detection) in zip([images[0], images[2], images[3]], expected) {
                // The same batch composition as the library's run: equal but for the JSON round trip.
                #expect(abs((verdict["score"] as? Double ?? .nan) - detection.score) <= 1e-12)
                #expect(abs((verdict["ai_generated"] as? Double ?? .nan) - detection.probability) <= 1e-12)
                #expect(verdict["verdict"] as? String == (detection.isSynthetic ? "synthetic" : "real"))
                #expect(verdict["width"] as? Int == detection.imageWidth && verdict["height"] as? Int == detection.imageHeight)
            }
            #expect(images[0]["name"] as? String == "a.jpg")
            // A quoted file name keeps its semicolons and escaped quotes.
            let (named, namedBody) = Self.form([("media", #"photo; edited \"v2\".jpg"#, files[0])])
            let echoed = try await Self.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", named)], body: namedBody)
            #expect((echoed.json?["images"] as? [[String: Any]])?.first?["name"] as? String == #"photo; edited "v2".jpg"#, "\(echoed.text)")

            let raw = try await Self.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", "image/jpeg")], body: files[0])
            #expect(raw.status == 200)
            let one = try #require((raw.json?["images"] as? [[String: Any]])?.first)
            // Alone in its pass: another batch composition, the same score (the encoder multiplies one
            // image at a time) but for Foundation's JSON reading, which is not always correctly rounded.
            #expect(abs((one["score"] as? Double ?? .nan) - expected[0].score) <= 1e-15)
        }
    }

    @Test func badRequestsGetAJSONErrorAndTheServerKeepsServing() async throws {
        var configuration = ServerConfiguration(port: 0, maxBodyBytes: 200_000, maxImagesPerRequest: 3)
        configuration.limits = DecodeLimits(maxPixels: 10_000, maxBytes: 200_000)
        try await Self.withServer(configuration) { base, client in
            let jpeg = try Data(contentsOf: URL(fileURLWithPath: Self.images[0]))
            let cases: [(String, [(String, String)], Data?, Int, String)] = [
                ("empty body", [("Content-Type", "image/png")], Data(), 400, "invalid_input"),
                ("no content type", [], jpeg, 415, "invalid_input"),
                ("json body", [("Content-Type", "application/json")], Data("{}".utf8), 415, "invalid_input"),
                ("too large", [("Content-Type", "image/jpeg")], Data(repeating: 0xFF, count: 300_000), 413, "too_large"),
                ("broken form", [("Content-Type", "multipart/form-data; boundary=xyz")], Data("--xyz\r\nno end".utf8), 400, "invalid_input"),
                ("form without media", [("Content-Type", Self.form([("other", "x", jpeg)]).0)], Self.form([("other", "x", jpeg)]).1, 400, "invalid_input"),
                ("form without a boundary", [("Content-Type", "multipart/form-data")], Data("--x\r\n".utf8), 400, "invalid_input"),
                ("too many images", [("Content-Type", Self.form(Array(repeating: ("media", "x.jpg", Data("x".utf8)), count: 4)).0)],
                 Self.form(Array(repeating: ("media", "x.jpg", Data("x".utf8)), count: 4)).1, 400, "too_large"),
            ]
            for (label, headers, body, status, kind) in cases {
                let response = try await Self.send(client, base + "/v1/detect", method: .POST, headers: headers, body: body)
                #expect(response.status == status, "\(label): \(response.text)")
                #expect((response.json?["error"] as? [String: Any])?["kind"] as? String == kind, "\(label): \(response.text)")
            }
            // A bomb (above the pixel limit) is that image's error, not the request's.
            let bomb = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("images", "bad_bomb.png")))
            let response = try await Self.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", "image/png")], body: bomb)
            #expect(response.status == 200)
            let image = try #require((response.json?["images"] as? [[String: Any]])?.first)
            #expect((image["error"] as? [String: Any])?["kind"] as? String == "too_large", "\(response.text)")
            #expect(try await Self.send(client, base + "/healthz").status == 200)
            let unknown = try await Self.send(client, base + "/nope")
            #expect(unknown.status == 404)
            #expect((unknown.json?["error"] as? [String: Any])?["kind"] as? String == "not_found", "\(unknown.text)")
            // A known path asked with another method: 405 naming the methods it answers.
            for (path, method, allow) in [("/v1/detect", HTTPMethod.GET, "POST, OPTIONS"), ("/healthz", .DELETE, "GET, HEAD, OPTIONS"),
                                          ("/v1/models", .RAW(value: "TRACE"), "GET, HEAD, OPTIONS")] {
                let wrong = try await Self.send(client, base + path, method: method)
                #expect(wrong.status == 405, "\(path) \(method): \(wrong.text)")
                #expect(wrong.headers["Allow"].first == allow)
                #expect(wrong.json?["error"] != nil)
            }
            let options = try await Self.send(client, base + "/v1/detect", method: .OPTIONS)
            #expect(options.status == 204 && options.headers["Allow"].first == "POST, OPTIONS")
        }
    }

    @Test func aFullQueueIsRefusedAtOnceWithRetryAfter() async throws {
        try await Self.withServer(ServerConfiguration(port: 0, maxImagesPerRequest: 4, maxQueuedImages: 2)) { base, client in
            let jpeg = try Data(contentsOf: URL(fileURLWithPath: Self.images[0]))
            let (type, body) = Self.form(Array(repeating: ("media", "x.jpg", jpeg), count: 3))
            let response = try await Self.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", type)], body: body)
            #expect(response.status == 429 && response.headers["Retry-After"] == ["1"], "\(response.text)")
            #expect((response.json?["error"] as? [String: Any])?["kind"] as? String == "overloaded", "\(response.text)")
            let message = (response.json?["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.contains("queue is full") && message.contains("limit of 2") && !message.contains("deadline"), "\(message)")
        }
    }

    /// A client that stops halfway through its body gets 408 `body_timeout` with `Connection: close`
    /// after the body timeout, then the close; the others are served meanwhile and after.
    @Test func aStalledUploadIsCutOffAndOthersAreServed() async throws {
        var configuration = ServerConfiguration(port: 0)
        configuration.bodyTimeout = .milliseconds(500)
        try await Self.withServer(configuration) { base, client in
            let port = Int(base.split(separator: ":").last!)!
            let socket = try #require(Self.rawConnection(port: port))
            defer { close(socket) }
            let head = "POST /v1/detect HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\nonly a little"
            #expect(head.withCString { write(socket, $0, strlen($0)) } == head.utf8.count)
            let jpeg = try Data(contentsOf: URL(fileURLWithPath: Self.images[0]))
            let other = try await Self.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", "image/jpeg")], body: jpeg)
            #expect(other.status == 200, "served while another upload stalls")
            // The stalled one: closed by the server (end of stream), not by this read's 10 s timeout.
            let (answer, ended) = await ConnectionTests.readToEnd(socket)
            #expect(ended, "the server closed the stalled connection")
            #expect(answer.hasPrefix("HTTP/1.1 408") && answer.lowercased().contains("connection: close") && answer.contains("\"body_timeout\""), "\(answer)")
            #expect(try await Self.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", "image/jpeg")], body: jpeg).status == 200)
            let metrics = try await Self.send(client, base + "/metrics")
            #expect(metrics.text.contains("status=\"408\""), "\(metrics.text)")
        }
    }

    /// A chunked body (no declared length) over the limit is 413 too, not a broken connection.
    @Test func aChunkedBodyOverTheLimitIs413() async throws {
        try await Self.withServer(ServerConfiguration(port: 0, maxBodyBytes: 100_000)) { base, _ in
            let socket = try #require(Self.rawConnection(port: Int(base.split(separator: ":").last!)!))
            defer { close(socket) }
            var request = Data("POST /v1/detect HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            for _ in 0..<3 { request.append(Data("ea60\r\n".utf8) + Data(repeating: 0xFF, count: 60_000) + Data("\r\n".utf8)) }
            request.append(Data("0\r\n\r\n".utf8))
            #expect(request.withUnsafeBytes { write(socket, $0.baseAddress, $0.count) } == request.count)
            // A guard against a hang, not a time limit: under AddressSanitizer with every suite running
            // at once, the answer has been seen to take over 10 s.
            let text = await ConnectionTests.readToEnd(socket, guardSeconds: 120, until: "too_large").text
            #expect(text.hasPrefix("HTTP/1.1 413") && text.contains("too_large"), "\(text)")
        }
    }

    static func rawConnection(port: Int) -> Int32? {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return connected == 0 ? socket : nil
    }

    /// Keys may come through a pipe (`--api-keys <(…)`); one whose writer never writes is refused
    /// after the wait instead of holding the start for ever.
    @Test func apiKeysFromAPipeAndFromAPipeWithoutWriter() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("keys").path
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: FileError.self) { try ServerConfiguration.apiKeys(file: fifo, wait: .milliseconds(200)) }
        let writer = Thread {
            let fd = open(fifo, O_WRONLY)
            _ = "# keys\nfirst\n\nsecond\n".withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
        writer.start()
        #expect(try ServerConfiguration.apiKeys(file: fifo, wait: .seconds(60)) == ["first", "second"])
        let large = folder.appendingPathComponent("large").path
        try Data(repeating: 0x61, count: 2 << 20).write(to: URL(fileURLWithPath: large))
        #expect(throws: FileError.self) { try ServerConfiguration.apiKeys(file: large) }
    }

    @Test func apiKeysGuardTheAPIButNotHealth() async throws {
        try await Self.withServer(ServerConfiguration(port: 0, apiKeys: ["s3cret", "other"])) { base, client in
            #expect(try await Self.send(client, base + "/v1/models").status == 401)
            #expect(try await Self.send(client, base + "/v1/models", headers: [("Authorization", "Bearer wrong")]).status == 401)
            #expect(try await Self.send(client, base + "/metrics").status == 401)
            let models = try await Self.send(client, base + "/v1/models", headers: [("Authorization", "Bearer other")])
            #expect(models.status == 200 && (models.json?["heads"] as? [[String: Any]])?.first?["name"] as? String == "tiny")
            let head = (models.json?["heads"] as? [[String: Any]])?.first
            #expect(head?["view"] as? String == "resize-crop" && head?["network"] as? String == "linear")
            // What computes the features is stated: the tests' tower runs fp32 on any CPU.
            let backbone = models.json?["backbone"] as? [String: Any]
            #expect(backbone?["precision"] as? String == "fp32" && (backbone?["compute"] as? String)?.hasPrefix("fp32, ") == true)
            #expect(try await Self.send(client, base + "/v1/models", headers: [("Authorization", "bearer s3cret")]).status == 200, "the scheme is case-insensitive")
            let refused = try await Self.send(client, base + "/v1/models", headers: [("Authorization", "Basic s3cret")])
            #expect(refused.status == 401 && (refused.json?["error"] as? [String: Any])?["kind"] as? String == "unauthorized")
            #expect(try await Self.send(client, base + "/healthz").status == 200)
            #expect(try await Self.send(client, base + "/readyz").status == 200)
        }
    }

    @Test func metricsPageAndContractAreServed() async throws {
        try await Self.withServer { base, client in
            let jpeg = try Data(contentsOf: URL(fileURLWithPath: Self.images[0]))
            _ = try await Self.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", "image/jpeg")], body: jpeg)
            let metrics = try await Self.send(client, base + "/metrics")
            #expect(metrics.status == 200)
            for name in ["clipdetect_http_requests_total", "clipdetect_images_scored_total", "clipdetect_batch_size", "clipdetect_queue_depth",
                         "clipdetect_http_request_duration_seconds"] {
                #expect(metrics.text.contains(name), "\(name)")
            }
            let page = try await Self.send(client, base + "/")
            #expect(page.status == 200 && page.text.contains("<input id=\"files\"") && !page.text.contains("http://") && !page.text.contains("https://"))
            let contract = try await Self.send(client, base + "/openapi.json")
            #expect(contract.json?["openapi"] as? String == "3.1.0")
            let paths = try #require(contract.json?["paths"] as? [String: Any])
            #expect(Set(paths.keys) == ["/v1/detect", "/v1/models", "/healthz", "/readyz", "/metrics", "/openapi.json"])
            let cors = try await Self.send(client, base + "/healthz", headers: [("Origin", "https://elsewhere.example")])
            #expect(cors.headers["Access-Control-Allow-Origin"].isEmpty, "CORS is off unless configured")
        }
    }

    /// The contract lists what the server does: every content type /v1/detect takes (each is accepted,
    /// `image/*` for any image type), every status it sends, OPTIONS on every path, and the two the
    /// routes cannot name (404, 405) as shared responses.
    @Test func theContractListsEveryContentTypeAndStatus() async throws {
        try await Self.withServer { base, client in
            let contract = try #require(try await Self.send(client, base + "/openapi.json").json)
            let paths = try #require(contract["paths"] as? [String: [String: Any]])
            let detect = try #require(paths["/v1/detect"]?["post"] as? [String: Any])
            let types = try #require(((detect["requestBody"] as? [String: Any])?["content"] as? [String: Any])?.keys)
            #expect(Set(types) == ["multipart/form-data", "application/octet-stream", "image/*", "image/jpeg", "image/png", "image/webp"])
            let jpeg = try Data(contentsOf: URL(fileURLWithPath: Self.images[0]))
            for type in types where type != "multipart/form-data" {
                let answer = try await Self.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", type == "image/*" ? "image/x-anything" : type)], body: jpeg)
                #expect(answer.status == 200, "\(type): \(answer.text)")
            }
            let statuses = Set((detect["responses"] as? [String: Any])?.keys.map { $0 } ?? [])
            #expect(statuses == ["200", "400", "401", "408", "413", "415", "417", "429", "501", "503"])
            for (path, operations) in paths {
                let preflight = try #require(operations["options"] as? [String: Any], "\(path)")
                #expect((preflight["responses"] as? [String: Any])?["204"] != nil, "\(path)")
                let answer = try await Self.send(client, base + path, method: .OPTIONS)
                #expect(answer.status == 204, "\(path)")
                for (method, operation) in operations {
                    #expect(((operation as? [String: Any])?["responses"] as? [String: Any])?["503"] != nil, "\(method) \(path) lists 503 (draining)")
                }
            }
            let shared = try #require((contract["components"] as? [String: Any])?["responses"] as? [String: Any])
            #expect(shared["NotFound"] != nil && shared["MethodNotAllowed"] != nil)
        }
    }

    /// Concurrent requests share forward passes and each gets its own verdicts back.
    @Test func concurrentRequestsAreBatchedAndAnsweredInOrder() async throws {
        try await Self.withServer(ServerConfiguration(port: 0, maxBatch: 8, maxWait: .milliseconds(50))) { base, client in
            let files = try Self.images.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
            let scores = try await withThrowingTaskGroup(of: (Int, Double?).self) { group in
                for i in 0..<9 {
                    group.addTask {
                        let response = try await Self.send(client, base + "/v1/detect", method: .POST, headers: [("Content-Type", "application/octet-stream")],
                                                           body: files[i % 3])
                        return (i, (response.json?["images"] as? [[String: Any]])?.first?["score"] as? Double)
                    }
                }
                var found: [Int: Double?] = [:]
                for try await (i, score) in group { found[i] = score }
                return found
            }
            for i in 0..<9 {
                let score = try #require(scores[i] ?? nil)
                let same = try #require(scores[i % 3] ?? nil)
                #expect(abs(score - same) <= 1e-15, "request \(i): batched with others, the same score")
            }
            let metrics = try await Self.send(client, base + "/metrics")
            #expect(metrics.text.contains("clipdetect_images_scored_total 9"), "\(metrics.text)")
        }
    }

    /// `?stability=N` gives what the library's check gives, and hostile values are refused.
    @Test func stabilityDrawsMatchTheLibraryAndAreBounded() async throws {
        let detector = try Self.detector()
        let check = try StabilityCheck(draws: 3, chain: ImpairmentChain(condition: "reshare"))
        let expected = try check.check(.file(Self.images[0]), with: detector).1
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: Self.images[0]))
        try await Self.withServer(ServerConfiguration(port: 0, maxImagesPerRequest: 4, maxQueuedImages: 8, maxStabilityDraws: 4)) { base, client in
            let response = try await Self.send(client, base + "/v1/detect?stability=3", method: .POST, headers: [("Content-Type", "image/jpeg")], body: jpeg)
            #expect(response.status == 200, "\(response.text)")
            let image = try #require((response.json?["images"] as? [[String: Any]])?.first)
            let stability = try #require(image["stability"] as? [String: Any])
            #expect(stability["agreement"] as? Double == expected.agreement)
            #expect(abs((stability["medianScore"] as? Double ?? .nan) - (try #require(expected.medianScore))) <= 1e-5)
            #expect(stability["isStable"] as? Bool == expected.isStable)
            for (query, why) in [("stability=0", "1…4"), ("stability=5", "1…4"), ("stability=abc", "1…4"), ("stability=2&chain=evil", "chain takes"),
                                 ("chain=social", "needs stability"), ("stability=1&stability=2", "more than once"),
                                 ("stability=1&chain=social&chain=paper", "more than once"), ("stabilty=2", "unknown query parameter stabilty")] {
                let refused = try await Self.send(client, base + "/v1/detect?" + query, method: .POST, headers: [("Content-Type", "image/jpeg")], body: jpeg)
                #expect(refused.status == 400 && refused.text.contains(why), "\(query): \(refused.text)")
            }
            // 2 images × (4 + 1) passes do not fit a queue of 8: refused before any work.
            let (type, body) = Self.form([("media", "a.jpg", jpeg), ("media", "b.jpg", jpeg)])
            let many = try await Self.send(client, base + "/v1/detect?stability=4", method: .POST, headers: [("Content-Type", type)], body: body)
            #expect(many.status == 400 && many.text.contains("queue"), "\(many.text)")
            // An image too small for the paper's crop: its verdict stands, the draws say why they failed.
            let small = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("images", "size_33x17.png")))
            let untested = try await Self.send(client, base + "/v1/detect?stability=2&chain=paper", method: .POST,
                                               headers: [("Content-Type", "image/png")], body: small)
            let verdict = try #require((untested.json?["images"] as? [[String: Any]])?.first)
            #expect(verdict["verdict"] is String && verdict["probability"] is Double, "\(untested.text)")
            let draws = try #require(verdict["stability"] as? [String: Any])
            #expect(draws["failedDraws"] as? Int == 2 && draws["isStable"] == nil && (draws["failure"] as? String ?? "").contains("160"), "\(untested.text)")
            let bad = try await Self.send(client, base + "/v1/detect?stability=2", method: .POST, headers: [("Content-Type", "image/png")], body: Data("no".utf8))
            #expect(bad.status == 200 && bad.text.contains("invalid_input"), "\(bad.text)")
        }
    }
}
