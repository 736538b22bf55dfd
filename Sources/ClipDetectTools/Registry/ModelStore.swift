import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// Where named models live and how they are fetched.
public struct ModelStore: Sendable {
    /// `Home.path`.
    public var home: String
    /// The Hugging Face hub cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`): files there are used in place.
    public var huggingFaceCache: String
    /// Where backbones and heads are downloaded from (`CLIPDETECT_HF_ENDPOINT` or `HF_ENDPOINT`,
    /// `CLIPDETECT_HEADS_ENDPOINT`, else each head's own source); checked when a download needs
    /// them, so a bad value fails only that.
    public var hubEndpoint: String
    /// Where every head is downloaded from instead of its own source (`CLIPDETECT_HEADS_ENDPOINT`); nil: each head's own.
    public var headEndpoint: String?
    /// Nothing is downloaded: named models' files must be here already (`CLIPDETECT_OFFLINE=1` or `HF_HUB_OFFLINE=1`).
    public var offline: Bool
    package var downloader = Downloader()

    /// Empty variables count as unset.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, offline: Bool = false) {
        func value(_ key: String) -> String? { Home.value(key, environment) }
        home = Home.path(environment: environment)
        huggingFaceCache = value("HF_HUB_CACHE") ?? value("HF_HOME").map { "\($0)/hub" } ?? "\(Home.cache(environment))/huggingface/hub"
        hubEndpoint = value("CLIPDETECT_HF_ENDPOINT") ?? value("HF_ENDPOINT") ?? "https://huggingface.co"
        headEndpoint = value("CLIPDETECT_HEADS_ENDPOINT")
        self.offline = offline || environment["CLIPDETECT_OFFLINE"] == "1" || environment["HF_HUB_OFFLINE"] == "1"
    }

    /// An endpoint as a URL, or one line saying which setting is wrong.
    static func endpoint(_ text: String, setting: String) throws -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            throw DownloadError.badEndpoint(setting: setting, value: text)
        }
        return url
    }

    /// The backbone's local path when it is already here (the Hugging Face cache, or ours), not yet
    /// verified (`verify(backbone:of:)`).
    public func cachedBackbone(_ model: NamedModel) -> String? {
        let hub = model.backbone
        for file in hub.files {
            if let cached = huggingFaceCached(hub.repository, file) { return cached }
            let local = localPath(model, file)
            if FileManager.default.fileExists(atPath: local) { return local }
        }
        return nil
    }

    /// Where clipdetect keeps a backbone file it downloads.
    func localPath(_ model: NamedModel, _ file: String) -> String {
        "\(home)/models/\(model.backbone.repository.replacingOccurrences(of: "/", with: "--"))/\(file)"
    }

    /// The reference head's downloaded file, when it is here.
    public func cachedHead(_ model: NamedModel) -> String? {
        guard let raw = headPath(model) else { return nil }
        return FileManager.default.fileExists(atPath: raw) ? raw : nil
    }

    /// Where a named model's head file is kept (under its own name, in a folder per model).
    func headPath(_ model: NamedModel) -> String? {
        model.head.map { "\(home)/heads/\(model.name)/\(($0.path as NSString).lastPathComponent)" }
    }

    /// The backbone's local path, verified: the Hugging Face cache if it has the file, else ours
    /// (downloaded when missing, and its hash remembered).
    public func backbone(_ model: NamedModel) throws -> String {
        if let cached = cachedBackbone(model) {
            try verify(backbone: cached, of: model)
            return cached
        }
        let hub = model.backbone
        var lastError: Error?
        for file in hub.files {
            let local = localPath(model, file)
            let url = try Self.endpoint(hubEndpoint, setting: "CLIPDETECT_HF_ENDPOINT / HF_ENDPOINT").appendingPathComponent(hub.repository).appendingPathComponent("resolve")
                .appendingPathComponent(hub.revision).appendingPathComponent(file)
            do {
                let digest = try fetch(RemoteFile(url: url), to: local, acceptAs: model.name)
                try remember(local, sha256: digest, how: "downloaded")
                return local
            } catch DownloadError.notFound(let url) {
                lastError = DownloadError.notFound(url)  // try the next candidate name
            }
        }
        throw lastError ?? DownloadError.offline(try Self.endpoint(hubEndpoint, setting: "CLIPDETECT_HF_ENDPOINT / HF_ENDPOINT"), destination: home, accept: model.name)
    }

    /// The reference head, downloaded, verified by its pinned SHA-256 and imported (safe unpickler).
    /// A file already in the cache is verified on every use too (it is small): one put there by
    /// hand, or changed since, must not score under the model's name.
    public func head(_ model: NamedModel, backbone: ImageEncoder?) throws -> Head? {
        guard let reference = model.head, let raw = headPath(model) else { return nil }
        if !FileManager.default.fileExists(atPath: raw) {
            let base = try Self.endpoint(headEndpoint ?? reference.source, setting: headEndpoint == nil ? "the \(model.name) head's source" : "CLIPDETECT_HEADS_ENDPOINT")
            // The download itself checks the pinned hash.
            try fetch(RemoteFile(url: base.appendingPathComponent(reference.path), sha256: reference.sha256, size: reference.size), to: raw, acceptAs: nil)
        } else {
            let found = try Downloader.sha256(ofFile: raw), pinned = reference.sha256.lowercased()
            guard found == pinned else { throw DownloadError.altered(path: raw, expected: pinned, found: found) }
        }
        switch reference.format {
        case .univfd:
            return try Head.importUnivFD(checkpoint: raw, name: model.name, backbone: backbone)
        case .rine:
            return try Head.importRINE(checkpoint: raw, name: model.name, backbone: backbone)
        case .cozzolino:
            let config = "\(home)/heads/\(model.name)/config.yaml"
            if !FileManager.default.fileExists(atPath: config) {
                try Files.makeDirectory(Files.folder(of: config), for: "model cache (CLIPDETECT_HOME)")
                try Files.write(Data("arch: \(reference.arch ?? "")\nnorm_type: clip\npatch_size: Clip224\n".utf8), to: config)
            }
            return try Head.importReference(checkpoint: raw, config: config, name: model.name, backbone: backbone)
        }
    }

    /// Offline, the files a named model still lacks (its backbone, and its head when `head`), each
    /// with where it comes from, where it goes and the hash it must have when one is pinned.
    public func missing(_ model: NamedModel, head: Bool) -> [(url: String, destination: String, sha256: String?)] {
        var files: [(url: String, destination: String, sha256: String?)] = []
        if cachedBackbone(model) == nil, let file = model.backbone.files.first {
            files.append(("\(hubEndpoint)/\(model.backbone.repository)/resolve/\(model.backbone.revision)/\(file)", localPath(model, file), nil))
        }
        if head, let reference = model.head, let raw = headPath(model), cachedHead(model) == nil {
            files.append(("\(headEndpoint ?? reference.source)/\(reference.path)", raw, reference.sha256))
        }
        return files
    }

    /// `acceptAs`: the named model a file without a published hash belongs to (the offline message
    /// then says to accept it).
    @discardableResult
    private func fetch(_ file: RemoteFile, to destination: String, acceptAs model: String?) throws -> String {
        if offline { throw DownloadError.offline(file.url, destination: destination, sha256: file.sha256, accept: file.sha256 == nil ? model : nil) }
        do { return try downloader.fetch(file, to: destination) } catch DownloadError.network(let url, let why) {
            throw DownloadError.network(url, "\(why); without network, download it elsewhere and put it at \(destination) (or give a local checkpoint)")
        }
    }

    private func huggingFaceCached(_ repository: String, _ file: String) -> String? {
        let snapshots = "\(huggingFaceCache)/models--\(repository.replacingOccurrences(of: "/", with: "--"))/snapshots"
        guard let revisions = try? FileManager.default.contentsOfDirectory(atPath: snapshots) else { return nil }
        return revisions.sorted().map { "\(snapshots)/\($0)/\(file)" }.first { FileManager.default.fileExists(atPath: $0) }
    }
}
