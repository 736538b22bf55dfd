import ArgumentParser
import ClipDetect

struct CacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cache", abstract: "Inspect or empty the feature cache.",
                                                    subcommands: [Stats.self, Clear.self])

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "How many features the cache holds and its size on disk.")
        @Option(help: "Feature cache file (default: features.sqlite in $CLIPDETECT_HOME).") var cache: String?
        func run() throws {
            let opened = try FeatureCache(path: cache ?? FeatureCache.defaultPath(), owned: cache == nil)
            let stats = try opened.stats()
            print("\(opened.path): \(stats.entries) feature(s), \(stats.bytes / 1024) KiB")
        }
    }

    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete every cached feature (they are computed again when needed).")
        @Option(help: "Feature cache file (default: features.sqlite in $CLIPDETECT_HOME).") var cache: String?
        func run() throws {
            let opened = try FeatureCache(path: cache ?? FeatureCache.defaultPath(), owned: cache == nil)
            try opened.clear()
            print("cleared \(opened.path)")
        }
    }
}
