import Foundation

/// The command-line tool built beside the tests, run as a user runs it.
package struct CLI: Sendable {
    package init() {}
    package static var binary: URL {
        // Tests run from the build folder beside the products.
        Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("clipdetect")
    }

    /// `environment` is applied over the hermetic one (a nil value removes the variable); `output`
    /// replaces the captured standard output (e.g. /dev/full).
    package func run(_ arguments: [String], environment overrides: [String: String?] = [:], output: FileHandle? = nil) throws
        -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        // Hermetic: each run has its own model store, feature cache and (empty) Hugging Face cache.
        var environment = ProcessInfo.processInfo.environment
        let home = try Fixtures.temporaryDirectory()
        environment["CLIPDETECT_HOME"] = home.path
        environment["HF_HUB_CACHE"] = home.appendingPathComponent("hub").path
        for (key, value) in overrides { environment[key] = value }
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = output ?? out
        process.standardError = err
        try process.run()
        let stdout = output == nil ? out.fileHandleForReading.readDataToEndOfFile() : Data()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }
}
