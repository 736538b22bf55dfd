import Crypto
import Foundation
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// The downloader and the model store against a real HTTP server on 127.0.0.1.
@Suite(.serialized) struct DownloaderTests {
    static let payload = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) })
    static let digest = SHA256.hash(data: payload).map { String(format: "%02x", $0) }.joined()

    func destination() throws -> String {
        try Fixtures.temporaryDirectory().appendingPathComponent("cache/model.bin").path
    }

    @Test func resumesAfterACutConnection() throws {
        let server = try LoopbackServer { request in
            var reply = LoopbackServer.ranged(Self.payload, request: request)
            // The first answer breaks off a third of the way through.
            if request.headers["range"] == nil { reply.cutAfter = 100_000 }
            return reply
        }
        defer { server.stop() }
        let target = try destination()
        try Downloader().fetch(RemoteFile(url: server.base.appendingPathComponent("file"), sha256: Self.digest), to: target)
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)) == Self.payload)
        #expect(server.requests.count == 2)
        #expect(server.requests[1].headers["range"] == "bytes=100000-")
        #expect(!FileManager.default.fileExists(atPath: target + ".part"))
    }

    @Test func wrongChecksumIsRefusedAndNothingIsKept() throws {
        let server = try LoopbackServer { LoopbackServer.ranged(Self.payload, request: $0) }
        defer { server.stop() }
        let target = try destination()
        let wrong = String(repeating: "ab", count: 32)
        #expect(throws: DownloadError.checksum(server.base.appendingPathComponent("file"), expected: wrong, found: Self.digest)) {
            try Downloader().fetch(RemoteFile(url: server.base.appendingPathComponent("file"), sha256: wrong), to: target)
        }
        #expect(!FileManager.default.fileExists(atPath: target) && !FileManager.default.fileExists(atPath: target + ".part"))
    }

    @Test func hubETagIsTheChecksumWhenNothingIsPinned() throws {
        let server = try LoopbackServer { request in
            // Like the hub: a redirect carrying X-Linked-Etag, then the CDN with an ETag of its own.
            if request.path == "/resolve/model.bin" {
                return .init(status: 302, headers: ["Location": "/cdn/model.bin", "X-Linked-Etag": "\"\(String(repeating: "0", count: 64))\""])
            }
            return LoopbackServer.ranged(Self.payload, request: request, headers: ["ETag": "\"cdn-etag\""])
        }
        defer { server.stop() }
        let target = try destination()
        let error = #expect(throws: DownloadError.self) {
            try Downloader().fetch(RemoteFile(url: server.base.appendingPathComponent("resolve/model.bin")), to: target)
        }
        guard case .checksum? = error else { Issue.record("expected a checksum error, got \(String(describing: error))"); return }
        #expect(server.requests.map(\.path) == ["/resolve/model.bin", "/cdn/model.bin"])
    }

    @Test func redirectsAreFollowed() throws {
        let server = try LoopbackServer { request in
            request.path == "/old" ? .init(status: 301, headers: ["Location": "/new"]) : LoopbackServer.ranged(Self.payload, request: request)
        }
        defer { server.stop() }
        let target = try destination()
        try Downloader().fetch(RemoteFile(url: server.base.appendingPathComponent("old"), sha256: Self.digest), to: target)
        #expect(FileManager.default.fileExists(atPath: target))
    }

    @Test func notFoundIsAClearError() throws {
        let server = try LoopbackServer { _ in .init(status: 404) }
        defer { server.stop() }
        let url = server.base.appendingPathComponent("missing")
        #expect(throws: DownloadError.notFound(url)) { try Downloader().fetch(RemoteFile(url: url), to: try destination()) }
    }

    @Test func aSlowServerFinishesAndAStalledOneTimesOut() throws {
        let slow = try LoopbackServer { request in
            var reply = LoopbackServer.ranged(Self.payload.prefix(20_000), request: request)
            reply.delay = 0.005
            return reply
        }
        defer { slow.stop() }
        var downloader = Downloader()
        downloader.idleTimeout = 2
        let target = try destination()
        try downloader.fetch(RemoteFile(url: slow.base.appendingPathComponent("slow"), size: 20_000), to: target)
        #expect(try Data(contentsOf: URL(fileURLWithPath: target)).count == 20_000)

        let stalled = try LoopbackServer { _ in .init(status: 200, body: Self.payload, cutAfter: 1024, delay: 5) }
        defer { stalled.stop() }
        downloader.idleTimeout = 1
        downloader.attempts = 1
        #expect(throws: DownloadError.self) {
            try downloader.fetch(RemoteFile(url: stalled.base.appendingPathComponent("stall")), to: try destination())
        }
    }


    @Test func namedModelsComeFromTheCachesOrTheServer() throws {
        // A named detector served as the hub and GitHub would: the tiny fixture tower stands in for ViT-L.
        let backbone = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("encoder", "a_gelu_proj32", "openclip.safetensors")))
        let server = try LoopbackServer { request in
            request.path.hasSuffix("/open_clip_model.safetensors") ? LoopbackServer.ranged(backbone, request: request) : .init(status: 404)
        }
        defer { server.stop() }
        let home = try Fixtures.temporaryDirectory()
        let environment = ["CLIPDETECT_HOME": home.appendingPathComponent("home").path, "HOME": home.path,
                           "CLIPDETECT_HF_ENDPOINT": server.base.absoluteString, "CLIPDETECT_HEADS_ENDPOINT": server.base.absoluteString]
        let model = NamedModel.named("clip-vit-l14-commonpool")!
        let offline = ModelStore(environment: environment, offline: true)
        #expect(throws: DownloadError.self) { try offline.backbone(model) }

        let path = try ModelStore(environment: environment).backbone(model)
        #expect(path.hasPrefix(home.appendingPathComponent("home/models/laion--CLIP-ViT-L-14-CommonPool.XL-s13B-b90K").path))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == backbone)
        // Once cached, offline works and the server is not asked again.
        let asked = server.requests.count
        #expect(try offline.backbone(model) == path)
        #expect(server.requests.count == asked)

        // Changed since it was downloaded (same size, another byte): refused, not used silently.
        var changed = backbone
        changed[changed.count - 1] ^= 1
        try changed.write(to: URL(fileURLWithPath: path))
        #expect { try offline.backbone(model) } throws: { "\($0)".contains("is not the published file") }
        try backbone.write(to: URL(fileURLWithPath: path))
        #expect(try offline.backbone(model) == path, "the downloaded bytes again: verified by the recorded hash")

        // A file in the Hugging Face hub cache is used in place, checked against its blob's name
        // (the hub names blobs by their SHA-256); a plain file there has no hash and is refused.
        let b32 = NamedModel.named("openai-vit-b32")!
        let repository = home.appendingPathComponent(".cache/huggingface/hub/models--openai--clip-vit-base-patch32")
        let snapshot = repository.appendingPathComponent("snapshots/abc"), blobs = repository.appendingPathComponent("blobs")
        try FileManager.default.createDirectory(at: snapshot, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        let inSnapshot = snapshot.appendingPathComponent("model.safetensors").path
        try backbone.write(to: URL(fileURLWithPath: inSnapshot))
        #expect(throws: VerificationError.unverified(model: "openai-vit-b32", path: inSnapshot)) { try offline.backbone(b32) }
        try FileManager.default.removeItem(atPath: inSnapshot)
        let digest = try Downloader.sha256(ofFile: path)
        try backbone.write(to: blobs.appendingPathComponent(digest))
        try FileManager.default.createSymbolicLink(atPath: inSnapshot, withDestinationPath: "../../blobs/\(digest)")
        #expect(try offline.backbone(b32) == inSnapshot)
        #expect(offline.state(ofBackbone: inSnapshot) == .verified)
        // A blob whose bytes are not its name is refused.
        let wrong = String(repeating: "a", count: 64)
        try changed.write(to: blobs.appendingPathComponent(wrong))
        try FileManager.default.removeItem(atPath: inSnapshot)
        try FileManager.default.createSymbolicLink(atPath: inSnapshot, withDestinationPath: "../../blobs/\(wrong)")
        #expect(throws: DownloadError.self) { try offline.backbone(b32) }

        // A backbone put in our cache by hand is refused until it is accepted, then used.
        let l14 = NamedModel.named("clip-vit-l14-laion2b")!
        let byHand = offline.localPath(l14, l14.backbone.files[0])
        try FileManager.default.createDirectory(atPath: (byHand as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try backbone.write(to: URL(fileURLWithPath: byHand))
        #expect(throws: VerificationError.unverified(model: l14.name, path: byHand)) { try offline.backbone(l14) }
        #expect(offline.state(ofBackbone: byHand) == .unverified)
        let accepted = try offline.accept(l14)
        #expect(accepted.path == byHand && accepted.sha256 == digest)
        #expect(try offline.backbone(l14) == byHand)

        // The reference head's pin is enforced: this server has none to give.
        #expect(throws: DownloadError.self) { try ModelStore(environment: environment).head(NamedModel.named("clipdet-latent10k")!, backbone: nil) }
    }
}
