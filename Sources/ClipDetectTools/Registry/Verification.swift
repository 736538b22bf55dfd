import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// What the store knows of a named model's backbone file before it is used: every file is checked
/// against a SHA-256 it must have (the one recorded when clipdetect downloaded it or a user accepted
/// it, or the Hugging Face cache's blob name, which is the file's hash), once per file identity
/// (device, inode, size, modification time), so a 1.7 GB file is hashed once, not on every run.
/// A file that appeared otherwise (put there by hand, or by another tool outside the hub's cache)
/// has no hash to be checked against: it is refused until `model accept NAME` records its own.
public enum BackboneState: Sendable, Equatable {
    case verified
    /// Verified before, but the file changed since: hashed again at its next use.
    case changed
    /// In the Hugging Face cache under its hash: hashed at its first use.
    case hubBlob(sha256: String)
    case unverified
}

/// A backbone file the store cannot vouch for, or nothing there to accept.
public enum VerificationError: Error, CustomStringConvertible, Equatable {
    case unverified(model: String, path: String)
    case nothingToAccept(model: String, destination: String)

    public var description: String {
        switch self {
        case .unverified(let model, let path):
            "\(PathName.display(path)) was not downloaded by clipdetect and no published hash is known to check it: if it is the file you meant, "
                + "accept it as \(model) (its SHA-256 is recorded), else remove it to download \(model) again"
        case .nothingToAccept(let model, let destination):
            "no backbone file of \(model) to accept: put it at \(PathName.display(destination)) first"
        }
    }
}

/// The record of verified files, a JSON object in the store's home keyed by resolved path.
struct VerificationRecord: Codable {
    struct Entry: Codable, Equatable {
        var sha256: String
        var identity: FileIdentity
        /// downloaded, hub-cache or accepted.
        var how: String
    }
    var files: [String: Entry] = [:]
}

/// A file as the filesystem names it: a change of any of these means it must be hashed again.
struct FileIdentity: Codable, Equatable {
    var device: UInt64, inode: UInt64, size: Int64, modified: Int64

    init?(_ path: String) {
        var info = stat()
        guard PathName.withCString(path, { stat($0, &info) }) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }
}

extension ModelStore {
    var verificationPath: String { "\(home)/verified.json" }

    func verificationRecord() -> VerificationRecord {
        guard let data = try? Files.read(verificationPath, limit: 16 << 20),
              let record = try? JSONDecoder().decode(VerificationRecord.self, from: data) else { return VerificationRecord() }
        return record
    }

    /// Remembers that `path` (resolved) has `sha256` now.
    func remember(_ path: String, sha256: String, how: String) throws {
        let resolved = PathName.resolved(path) ?? path
        guard let identity = FileIdentity(resolved) else { return }
        var record = verificationRecord()
        record.files[resolved] = .init(sha256: sha256, identity: identity, how: how)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try Files.makeDirectory(home, for: "model cache (CLIPDETECT_HOME)")
        try Files.write(try encoder.encode(record), to: verificationPath)
    }

    /// The hash a Hugging Face cache file must have: its snapshot entry links to `blobs/<sha256>`.
    static func hubBlobHash(_ path: String) -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) else { return nil }
        let name = (target as NSString).lastPathComponent
        guard Files.folder(of: target).hasSuffix("blobs"), name.count == 64, name.allSatisfy(\.isHexDigit) else { return nil }
        return name.lowercased()
    }

    /// Where `path` stands, without hashing it (for `model list`).
    public func state(ofBackbone path: String) -> BackboneState {
        let resolved = PathName.resolved(path) ?? path
        if let entry = verificationRecord().files[resolved] { return entry.identity == FileIdentity(resolved) ? .verified : .changed }
        if let blob = Self.hubBlobHash(path) { return .hubBlob(sha256: blob) }
        return .unverified
    }

    /// Checks a named model's backbone file before its first use (and after any change), or refuses it.
    public func verify(backbone path: String, of model: NamedModel) throws {
        let resolved = PathName.resolved(path) ?? path
        let entry = verificationRecord().files[resolved]
        if let entry, entry.identity == FileIdentity(resolved) { return }
        guard let expected = entry?.sha256 ?? Self.hubBlobHash(path) else { throw VerificationError.unverified(model: model.name, path: path) }
        let found = try Downloader.sha256(ofFile: resolved)
        guard found == expected else { throw DownloadError.altered(path: path, expected: expected, found: found) }
        try remember(resolved, sha256: found, how: entry?.how ?? "hub-cache")
    }

    /// Records the hash of a named model's backbone file as it is now, deliberately: the file is
    /// then used as verified. A file that has a hash to match is checked instead, never overridden.
    public func accept(_ model: NamedModel) throws -> (path: String, sha256: String) {
        guard let path = cachedBackbone(model) else {
            let file = model.backbone.files[0]
            throw VerificationError.nothingToAccept(model: model.name,
                                                    destination: "\(home)/models/\(model.backbone.repository.replacingOccurrences(of: "/", with: "--"))/\(file)")
        }
        if Self.hubBlobHash(path) != nil {
            try verify(backbone: path, of: model)
            return (path, verificationRecord().files[PathName.resolved(path) ?? path]!.sha256)
        }
        let found = try Downloader.sha256(ofFile: path)
        try remember(path, sha256: found, how: "accepted")
        return (path, found)
    }
}

extension VerificationError: ClassifiedError {
    public var kind: FailureKind {
        switch self {
        case .unverified: .mismatch
        case .nothingToAccept: .notFound
        }
    }
}
