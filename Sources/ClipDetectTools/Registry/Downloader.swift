import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One file to fetch: where from, and how to know it arrived whole.
package struct RemoteFile: Sendable, Equatable {
    package var url: URL
    /// Pinned SHA-256; when nil, a 64-hex ETag from the server (as the Hugging Face hub sends for LFS files) is used.
    package var sha256: String?
    package var size: Int?

    package init(url: URL, sha256: String? = nil, size: Int? = nil) {
        self.url = url
        self.sha256 = sha256
        self.size = size
    }
}

package enum DownloadError: Error, CustomStringConvertible, Equatable {
    case notFound(URL)
    case http(URL, Int)
    case checksum(URL, expected: String, found: String)
    case network(URL, String)
    /// `sha256`: what the file must hash to, when it is known; else `accept`: the named model to
    /// accept it as once it is there.
    case offline(URL, destination: String, sha256: String? = nil, accept: String? = nil)
    case badEndpoint(setting: String, value: String)
    case altered(path: String, expected: String, found: String)

    package var description: String {
        switch self {
        case .notFound(let url): "not found: \(url.absoluteString) (HTTP 404)"
        case .http(let url, let status): "download of \(url.absoluteString) failed with HTTP \(status)"
        case .checksum(let url, let expected, let found):
            "checksum mismatch for \(url.absoluteString): expected sha256 \(expected), got \(found); the partial file was removed"
        case .network(let url, let why): "cannot download \(url.absoluteString): \(why)"
        case .offline(let url, let destination, let sha256, let accept):
            "offline: download \(url.absoluteString) yourself and put it at \(destination)" + (sha256.map { " (its SHA-256 must be \($0))" } ?? "")
                + (accept.map { ", then accept it as \($0)" } ?? "")
        case .badEndpoint(let setting, let value): "\(setting) = '\(value)' is not an http(s) URL"
        case .altered(let path, let expected, let found):
            "\(path) is not the published file (sha256 \(found), pinned \(expected)): remove it to download it again, or put the published file there"
        }
    }
}

/// Downloads into a cache: to `<file>.part` first (resumed with an HTTP range after a cut), verified
/// by SHA-256, then renamed into place, so a file in the cache is always whole.
package struct Downloader: Sendable {
    /// Seconds without a byte before giving up on a server.
    package var idleTimeout: TimeInterval = 60
    /// How many times a cut connection is resumed before giving up.
    package var attempts = 5
    /// Called with (bytes so far, total if known).
    package var progress: (@Sendable (Int, Int?) -> Void)?

    package init() {}

    /// Returns the file's SHA-256 (checked against the pin or the server's, else computed), so the
    /// caller can remember what it downloaded.
    @discardableResult
    package func fetch(_ file: RemoteFile, to destination: String) throws -> String {
        let part = destination + ".part"
        try Files.makeDirectory(Files.folder(of: destination), for: "download folder")
        // A part that holds bytes is kept to be resumed; an empty one is only litter.
        defer {
            if (try? FileManager.default.attributesOfItem(atPath: part)[.size] as? Int) == 0 { try? FileManager.default.removeItem(atPath: part) }
        }
        var lastError: Error?
        for _ in 0..<max(1, attempts) {
            let have = (try? FileManager.default.attributesOfItem(atPath: part)[.size] as? Int) ?? 0
            do {
                let response = try transfer(file.url, into: part, from: have)
                let digest = try verify(file, part: part, etag: response.etag)
                guard rename(part, destination) == 0 else { throw DownloadError.network(file.url, "cannot move into \(destination)") }
                return digest
            } catch let error as DownloadError {
                switch error {
                case .network: lastError = error  // cut or timed out: resume from what arrived
                default:
                    if case .checksum = error { try? FileManager.default.removeItem(atPath: part) }
                    throw error
                }
            }
        }
        throw lastError ?? DownloadError.network(file.url, "gave up")
    }

    private func verify(_ file: RemoteFile, part: String, etag: String?) throws -> String {
        let expected = file.sha256?.lowercased() ?? etag.flatMap { Self.sha256ETag($0) }
        if let size = file.size {
            let found = (try? FileManager.default.attributesOfItem(atPath: part)[.size] as? Int) ?? 0
            if found != size {
                try? FileManager.default.removeItem(atPath: part)
                throw DownloadError.checksum(file.url, expected: "\(size) bytes", found: "\(found) bytes")
            }
        }
        let found = try Self.sha256(ofFile: part)
        guard let expected else { return found }
        guard found == expected else { throw DownloadError.checksum(file.url, expected: expected, found: found) }
        return found
    }

    /// The hub's ETag of an LFS file is its SHA-256, quoted, sometimes weak (W/"…").
    static func sha256ETag(_ etag: String) -> String? {
        let bare = etag.replacingOccurrences(of: "W/", with: "").trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        return bare.count == 64 && bare.allSatisfy(\.isHexDigit) ? bare.lowercased() : nil
    }

    /// A regular file's SHA-256; anything else (a folder, a device) or a failed read is one line.
    package static func sha256(ofFile path: String) throws(FileError) -> String {
        let (fd, _) = try Files.openRegular(path)
        defer { close(fd) }
        var hash = SHA256(), buffer = [UInt8](repeating: 0, count: 4 << 20)
        while true {
            let got = read(fd, &buffer, buffer.count)
            if got < 0, errno == EINTR { continue }
            guard got >= 0 else { throw FileError(.read, path, .system(errno)) }
            if got == 0 { break }
            hash.update(data: buffer[0..<got])
        }
        return hash.finalize().hex
    }

    struct Response { var etag: String? }

    /// One GET (with a range when `offset` > 0), appending the body to `part`.
    private func transfer(_ url: URL, into part: String, from offset: Int) throws -> Response {
        var request = URLRequest(url: url)
        request.timeoutInterval = idleTimeout
        if offset > 0 { request.setValue("bytes=\(offset)-", forHTTPHeaderField: "Range") }
        let sink = try DownloadSink(path: part, offset: offset, progress: progress)
        let litter = FoundationLitter()  // before the configuration, which makes Foundation's folders
        defer { litter.sweep() }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = idleTimeout
        // Nothing of Foundation's outside the store: no URL cache or cookie jar under the user's home.
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        configuration.urlCredentialStorage = nil
        let session = URLSession(configuration: configuration, delegate: sink, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        session.dataTask(with: request).resume()
        sink.done.wait()
        sink.handle.synchronizeFile()
        try sink.handle.close()
        if let failure = sink.failure { throw failure }
        return Response(etag: sink.etag)
    }
}

/// Receives a response body on URLSession's queue and appends it to the part file.
private final class DownloadSink: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let handle: FileHandle
    let done = DispatchSemaphore(value: 0)
    let progress: (@Sendable (Int, Int?) -> Void)?
    var received: Int
    var total: Int?
    var etag: String?
    var redirectETag: String?
    var failure: DownloadError?
    private var accepted = false
    private let path: String

    init(path: String, offset: Int, progress: (@Sendable (Int, Int?) -> Void)?) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw DownloadError.network(URL(fileURLWithPath: path), "cannot write") }
        self.handle = handle
        self.path = path
        self.received = offset
        self.progress = progress
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        guard let http = response as? HTTPURLResponse, let url = response.url ?? dataTask.originalRequest?.url else {
            completionHandler(.cancel)
            return
        }
        etag = redirectETag ?? http.value(forHTTPHeaderField: "X-Linked-Etag") ?? http.value(forHTTPHeaderField: "ETag")
        switch http.statusCode {
        case 206:
            handle.seekToEndOfFile()
        case 200:
            // The server ignored the range: start over.
            handle.truncateFile(atOffset: 0)
            received = 0
        case 404:
            failure = .notFound(url)
            completionHandler(.cancel)
            return
        case 416:
            // Nothing left to send: the part file already holds the whole file.
            completionHandler(.cancel)
            return
        default:
            failure = .http(url, http.statusCode)
            completionHandler(.cancel)
            return
        }
        let length = http.expectedContentLength
        total = length >= 0 ? received + Int(length) : nil
        accepted = true
        completionHandler(.allow)
    }

    /// The hub answers LFS files with a redirect whose X-Linked-Etag is the file's SHA-256: keep it.
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        if let linked = response.value(forHTTPHeaderField: "X-Linked-Etag") { redirectETag = linked }
        completionHandler(request)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        // A refused response's body (a 404 page) is not the file.
        guard accepted else { return }
        handle.write(data)
        received += data.count
        progress?(received, total)
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if failure == nil, let error, (error as? URLError)?.code != .cancelled {
            failure = .network(task.originalRequest?.url ?? URL(fileURLWithPath: path), error.localizedDescription)
        }
        if failure == nil, let total, received < total {
            failure = .network(task.originalRequest?.url ?? URL(fileURLWithPath: path), "connection closed after \(received) of \(total) bytes")
        }
        done.signal()
    }
}

/// Foundation makes a URL-cache folder and a cookie folder under the user's home at its first
/// request, even with both turned off. The empty ones a download made are removed after it, so
/// nothing of clipdetect's is left outside its store.
struct FoundationLitter {
    private let made: [String]

    init() {
        let files = FileManager.default
        let caches = files.urls(for: .cachesDirectory, in: .userDomainMask).first?.path
        let data = files.urls(for: .applicationSupportDirectory, in: .userDomainMask).first?.path
        let urlCache = caches.map { "\($0)/org.swift.foundation.URLCache" }
        // Innermost first, so that a folder is empty when its parent is tried.
        let candidates = [urlCache.map { "\($0)/\(ProcessInfo.processInfo.processName)" }, urlCache, caches,
                          data.map { "\($0)/\(Bundle.main.bundleURL.lastPathComponent)" }, data,
                          data.map { Files.folder(of: $0) }].compactMap { $0 }
        made = candidates.filter { !files.fileExists(atPath: $0) }
    }

    /// rmdir removes only empty folders: anything with contents stays.
    func sweep() { for path in made { _ = rmdir(path) } }
}

extension DownloadError: ClassifiedError {
    package var kind: FailureKind {
        switch self {
        case .notFound: .notFound
        case .http, .checksum, .network, .offline: .network
        case .badEndpoint: .invalidInput
        case .altered: .mismatch
        }
    }
}
