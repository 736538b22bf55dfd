import Foundation

/// Where clipdetect keeps what it fetches and computes (models, heads, the feature cache, what it
/// verified): `$CLIPDETECT_HOME`, else `$XDG_CACHE_HOME/clipdetect`, else `~/.cache/clipdetect`.
/// Empty variables count as unset (`CLIPDETECT_HOME=` must not mean the filesystem root).
package enum Home {
    package static func path(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        value("CLIPDETECT_HOME", environment) ?? "\(cache(environment))/clipdetect"
    }

    /// The user's cache folder, which the Hugging Face cache also defaults to.
    package static func cache(_ environment: [String: String]) -> String {
        value("XDG_CACHE_HOME", environment) ?? "\(value("HOME", environment) ?? NSHomeDirectory())/.cache"
    }

    package static func value(_ key: String, _ environment: [String: String]) -> String? {
        environment[key].flatMap { $0.isEmpty ? nil : $0 }
    }
}
