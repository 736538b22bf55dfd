import ClipDetectCore
import ClipDetectEncoder
import Crypto
import Foundation
import GRDB

/// Features already computed, in SQLite, keyed by the SHA-256 of the file's bytes, the backbone
/// fingerprint and every setting that changes the vector. Several processes may share it (WAL);
/// a file that is not this cache (corrupt, truncated, foreign) is moved aside and rebuilt.
public final class FeatureCache: Sendable {
    /// Bump when decoding or preprocessing changes pixels: old entries then stop matching.
    package static let preprocessingVersion = "pillow-13-bicubic-1"
    static let schema = "clipdetect-features-1"

    /// The SQLite file, as given.
    public let path: String
    private let pool: DatabasePool
    /// Where a damaged file was moved when this cache was opened, so the caller can say so.
    public let movedAside: String?

    /// `owned`: the path is the cache's own (the default, in `$CLIPDETECT_HOME`), so whatever is
    /// there is a cache, damaged or not; a path a user named that holds no SQLite is someone's
    /// file and is refused. A damaged cache is moved aside (never deleted) and started afresh.
    public init(path: String, owned: Bool = false) throws {
        self.path = path
        let folder = Files.folder(of: path)
        // Its own folder is made; a folder a user named must be there (a typo is not a new folder).
        if owned { try Files.makeDirectory(folder, for: "feature cache") } else if FileKind(folder) != .directory {
            throw FileError(.write, path, .noFolder(folder), purpose: "feature cache")
        }
        var damaged = false
        switch FileKind(path) {
        case .missing: break
        case .regular:
            if !Self.isSQLiteOrEmpty(path) {
                guard owned else {
                    throw FeatureCacheError.notSQLite(path)
                }
                damaged = true
            }
        default: throw FileError(.write, path, .notRegular, purpose: "feature cache")
        }
        var aside: String?
        if damaged {
            aside = Self.moveAside(path)
            pool = try Self.open(path)
        } else {
            do {
                pool = try Self.open(path)
            } catch let error where Self.isDamage(error) {
                aside = Self.moveAside(path)
                pool = try Self.open(path)
            }
        }
        movedAside = aside
    }

    /// Keeps a damaged file (and its WAL) for inspection, out of the way; returns where it went.
    private static func moveAside(_ path: String) -> String {
        let aside = path + ".broken-\(Int(Date().timeIntervalSince1970))"
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            try? FileManager.default.moveItem(atPath: path + suffix, toPath: aside + suffix)
        }
        return aside
    }

    /// Only a file that is not this cache is moved aside; a full disk, a lock or a permission
    /// problem leaves a healthy cache where it is.
    static func isDamage(_ error: Error) -> Bool {
        if error is CacheError { return true }
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
    }

    static func isSQLiteOrEmpty(_ path: String) -> Bool {
        guard let head = try? Files.prefix(path, count: 16) else { return false }
        return head.isEmpty || head == Data("SQLite format 3\0".utf8)
    }

    /// The default location: `<Home.path>/features.sqlite`.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        Home.path(environment: environment) + "/features.sqlite"
    }

    private static func open(_ path: String) throws -> DatabasePool {
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        let pool = try DatabasePool(path: path, configuration: configuration)
        try pool.write { db in
            guard try String.fetchOne(db, sql: "PRAGMA quick_check") == "ok" else { throw CacheError.corrupt }
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
            let version = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE name = 'schema'")
            if version == nil && tables == ["meta"] {
                try db.execute(sql: "INSERT INTO meta (name, value) VALUES ('schema', ?)", arguments: [schema])
                try db.execute(sql: """
                    CREATE TABLE features (key TEXT PRIMARY KEY, width INTEGER NOT NULL, vector BLOB NOT NULL,
                                           created REAL NOT NULL)
                    """)
            } else if version != schema || !tables.contains("features") {
                throw CacheError.foreign
            }
        }
        return pool
    }

    /// The cache key of one file's feature under one encoder setting. bf16 features and the crop
    /// view are kept apart; keys of fp32 resize-crop features are those of earlier versions, so
    /// their entries stay valid.
    package static func key(fileDigest: String, fingerprint: String, kind: FeatureKind, normalized: Bool, oriented: Bool,
                           precision: Precision = .fp32, view: InputView = .resizeCrop, settings: String = "") -> String {
        ([fileDigest, fingerprint, preprocessingVersion, kind.rawValue, normalized ? "l2" : "raw", oriented ? "exif" : "asis"]
            + (precision == .bf16 ? ["bf16"] : []) + (view == .resizeCrop ? [] : [view.rawValue]) + (settings.isEmpty ? [] : [settings]))
            .joined(separator: ":")
    }

    /// The stored feature, or nil; an entry of the wrong size is dropped, not returned.
    /// `unitCrops`: for an L2-normalised feature, how many unit vectors it joins (one per crop).
    /// An entry that cannot be what was stored (another width, a value not finite, a normalised
    /// vector whose norm is not 1: a damaged file) is dropped and computed again, never returned.
    public func feature(_ key: String, width: Int, unitCrops: Int? = nil) throws -> [Float]? {
        let row = try pool.read { db in try Row.fetchOne(db, sql: "SELECT width, vector FROM features WHERE key = ?", arguments: [key]) }
        guard let row else { return nil }
        let stored: Int = row["width"], blob: Data = row["vector"]
        let values = stored == width && blob.count == width * 4
            ? blob.withUnsafeBytes { raw in (0..<width).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
            : nil
        guard let values, values.allSatisfy(\.isFinite), unitCrops.map({ Self.isUnit(values, crops: $0) }) ?? true else {
            try pool.write { try $0.execute(sql: "DELETE FROM features WHERE key = ?", arguments: [key]) }
            return nil
        }
        return values
    }

    /// Each of `crops` equal parts has norm 1, to float precision. (A zero vector, which normalising
    /// leaves as it is, fails: it is computed again each time, which costs time, not results.)
    static func isUnit(_ values: [Float], crops: Int) -> Bool {
        guard crops > 0, values.count % crops == 0 else { return false }
        let part = values.count / crops
        return (0..<crops).allSatisfy { crop in
            let norm = values[(crop * part)..<((crop + 1) * part)].reduce(0.0) { $0 + Double($1) * Double($1) }
            return abs(norm - 1) < 1e-4
        }
    }

    /// Stores each feature under its key in one transaction, replacing an entry with the same key.
    public func store(_ entries: [(key: String, feature: [Float])]) throws {
        guard !entries.isEmpty else { return }
        let now = Date().timeIntervalSince1970
        try pool.write { db in
            for (key, feature) in entries {
                var blob = Data(capacity: feature.count * 4)
                for value in feature { withUnsafeBytes(of: value.bitPattern.littleEndian) { blob.append(contentsOf: $0) } }
                try db.execute(sql: "INSERT OR REPLACE INTO features (key, width, vector, created) VALUES (?, ?, ?, ?)",
                               arguments: [key, feature.count, blob, now])
            }
        }
    }

    /// The features held, and the bytes on disk (the file and its WAL).
    public struct Stats: Sendable { public var entries: Int; public var bytes: Int }

    /// How many features the cache holds and how large it is.
    public func stats() throws -> Stats {
        let entries = try pool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM features") ?? 0 }
        let bytes = ["", "-wal"].compactMap { try? FileManager.default.attributesOfItem(atPath: path + $0)[.size] as? Int }.reduce(0, +)
        return Stats(entries: entries, bytes: bytes)
    }

    /// Deletes every entry and vacuums the file, so the space is given back.
    public func clear() throws {
        try pool.write { try $0.execute(sql: "DELETE FROM features") }
        try pool.vacuum()
    }

    enum CacheError: Error { case corrupt, foreign }
}

/// A file named as the feature cache that is something else; it is kept as it is.
public enum FeatureCacheError: Error, Equatable, CustomStringConvertible, ClassifiedError {
    case notSQLite(String)

    public var description: String {
        switch self {
        case .notSQLite(let path): "feature cache: \(PathName.display(path)) is not a SQLite file; refusing to replace it"
        }
    }
    public var kind: FailureKind { .invalidInput }
}
