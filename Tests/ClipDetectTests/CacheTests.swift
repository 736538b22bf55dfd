import Foundation
import GRDB
import ClipDetectTestSupport
import Testing
@testable import ClipDetect
@testable import ClipDetectCore
@testable import ClipDetectDetection
@testable import ClipDetectEncoder
@testable import ClipDetectTools

/// The feature cache: hits skip the encoder, and a damaged or foreign file is rebuilt, never trusted.
@Suite struct CacheTests {
    static let images = ["jpeg_420.jpg", "png_rgba.png", "webp_lossy.webp"].map { Fixtures.path("images", $0) }

    func cachePath() throws -> String { try Fixtures.temporaryDirectory().appendingPathComponent("features.sqlite").path }

    func run(_ extractor: FeatureExtractor) throws -> [[Float]] {
        var out: [[Float]] = []
        try extractor.run(paths: Self.images) { out.append(try $1.get()) }
        return out
    }

    @Test func aSecondRunComputesNoFeature() throws {
        let path = try cachePath()
        var extractor = FeatureExtractor(encoder: try ImageEncoder(path: Fixtures.backbone))
        extractor.cache = try FeatureCache(path: path)
        let first = try run(extractor)
        #expect(try FeatureCache(path: path).stats().entries == 3)
        // Plant a marker under every key: a second run that returns it read the cache and computed nothing.
        let pool = try DatabasePool(path: path)
        // (A unit vector: the features are normalised, and a stored one that is not is taken for damage.)
        let unit = [Float(1)] + [Float](repeating: 0, count: first[0].count - 1)
        let marker = unit.withUnsafeBytes { Data($0) }
        try pool.write { try $0.execute(sql: "UPDATE features SET vector = ?", arguments: [marker]) }
        let second = try run(extractor)
        #expect(second.allSatisfy { $0 == unit })
        // Another backbone setting is another key.
        extractor.settings.normalize = false
        #expect(try run(extractor) != second)
    }

    @Test func garbageTruncatedAndForeignFilesAreRebuilt() throws {
        let good = try cachePath()
        var extractor = FeatureExtractor(encoder: try ImageEncoder(path: Fixtures.backbone))
        extractor.cache = try FeatureCache(path: good)
        let reference = try run(extractor)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))

        let garbage = try cachePath()
        try Data("not a database at all".utf8).write(to: URL(fileURLWithPath: garbage))
        let truncated = try cachePath()
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        let foreign = try cachePath()
        try DatabaseQueue(path: foreign).write { try $0.execute(sql: "CREATE TABLE features (key TEXT, vector BLOB)") }

        // A file that is not SQLite, at a path a user named, is somebody's file: refused, left as it is.
        #expect(throws: FeatureCacheError.notSQLite(garbage)) { try FeatureCache(path: garbage) }
        #expect(try String(contentsOfFile: garbage, encoding: .utf8) == "not a database at all")
        // At the cache's own path it is a damaged cache (zeros from a crash, say): moved aside, kept, rebuilt.
        let owned = try cachePath()
        try Data(count: 8192).write(to: URL(fileURLWithPath: owned))
        let rebuilt = try FeatureCache(path: owned, owned: true)
        let aside = try #require(rebuilt.movedAside)
        #expect(try Data(contentsOf: URL(fileURLWithPath: aside)) == Data(count: 8192))
        extractor.cache = rebuilt
        #expect(try run(extractor) == reference)
        #expect(try FeatureCache(path: owned, owned: true).movedAside == nil, "rebuilt once, not on every run")
        for path in [truncated, foreign] {
            let cache = try FeatureCache(path: path)
            #expect(try cache.stats().entries == 0, "\(path)")
            extractor.cache = cache
            #expect(try run(extractor) == reference)
            #expect(try cache.stats().entries == 3)
        }
    }

    @Test func entriesOfTheWrongSizeAreDropped() throws {
        let cache = try FeatureCache(path: try cachePath())
        try cache.store([(key: "k", feature: [1, 2, 3])])
        #expect(try cache.feature("k", width: 3) == [1, 2, 3])
        #expect(try cache.feature("k", width: 4) == nil)
        #expect(try cache.feature("k", width: 3) == nil)
        // A normalised entry that is not a unit vector per crop (zeroed, or scaled) is damage: dropped.
        let unit: [Float] = [0.6, 0.8, 0, 1]
        try cache.store([("unit", unit), ("zero", [0, 0, 0, 0]), ("scaled", unit.map { $0 * 1e30 }), ("inf", [Float.infinity, 0, 0, 1])])
        #expect(try cache.feature("unit", width: 4, unitCrops: 2) == unit)
        #expect(try cache.feature("zero", width: 4, unitCrops: 2) == nil && cache.feature("zero", width: 4) == nil, "dropped on the first read")
        #expect(try cache.feature("scaled", width: 4, unitCrops: 2) == nil)
        #expect(try cache.feature("inf", width: 4) == nil, "not finite, whatever the feature")
    }

    @Test func twoHandlesShareOneFile() throws {
        let path = try cachePath()
        let a = try FeatureCache(path: path), b = try FeatureCache(path: path)
        try a.store([(key: "x", feature: [1])])
        try b.store([(key: "y", feature: [2])])
        #expect(try a.feature("y", width: 1) == [2] && b.feature("x", width: 1) == [1])
    }
}
