import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 for downloader tests: each request is answered by a
/// handler that can send ranges, redirects, errors, cut the connection, or send slowly.
package final class LoopbackServer: @unchecked Sendable {
    package struct Request { package let path: String; package let headers: [String: String] }
    package struct Reply {
        package var status = 200
        package var headers: [String: String] = [:]
        package var body = Data()
        /// Close the connection after this many body bytes.
        package var cutAfter: Int?
        /// Pause between 1 KiB chunks.
        package var delay: TimeInterval = 0

        package init(status: Int = 200, headers: [String: String] = [:], body: Data = Data(), cutAfter: Int? = nil, delay: TimeInterval = 0) {
            (self.status, self.headers, self.body, self.cutAfter, self.delay) = (status, headers, body, cutAfter, delay)
        }
    }

    package let port: UInt16
    private let socket: Int32
    private let handler: @Sendable (Request) -> Reply
    private let lock = NSLock()
    private var log: [Request] = []

    package var requests: [Request] { lock.withLock { log } }
    package var base: URL { URL(string: "http://127.0.0.1:\(port)")! }

    package init(handler: @escaping @Sendable (Request) -> Reply) throws {
        self.handler = handler
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        socket = fd
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    package func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }

    private func acceptLoop() {
        while true {
            let client = accept(socket, nil, nil)
            if client < 0 { return }
            Thread { [self] in serve(client) }.start()
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var buffer = [UInt8](repeating: 0, count: 8192)
        var received = Data()
        while !received.contains(Data("\r\n\r\n".utf8)) {
            let n = recv(client, &buffer, buffer.count, 0)
            if n <= 0 { return }
            received.append(contentsOf: buffer[0..<n])
        }
        let lines = String(decoding: received, as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let request = Request(path: String(parts[1]), headers: headers)
        lock.withLock { log.append(request) }
        let reply = handler(request)
        var head = "HTTP/1.1 \(reply.status) X\r\nContent-Length: \(reply.body.count)\r\nConnection: close\r\n"
        for (name, value) in reply.headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        guard sendAll(client, Data(head.utf8)) else { return }
        let body = Data(reply.body)  // zero-based, whatever slice the handler returned
        let limit = min(body.count, reply.cutAfter ?? body.count)
        var offset = 0
        while offset < limit {
            let end = min(offset + 1024, limit)
            guard sendAll(client, body[offset..<end]) else { return }
            offset = end
            if reply.delay > 0 { Thread.sleep(forTimeInterval: reply.delay) }
        }
    }

    private func sendAll(_ client: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(client, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 { return false }
                sent += n
            }
            return true
        }
    }

    /// Serves `body` honouring a `Range: bytes=N-` header with 206, as the hub and its CDN do.
    package static func ranged(_ body: Data, request: Request, headers: [String: String] = [:]) -> Reply {
        if let range = request.headers["range"], range.hasPrefix("bytes="),
           let start = Int(range.dropFirst(6).split(separator: "-").first ?? "") {
            guard start < body.count else { return Reply(status: 416) }
            var h = headers
            h["Content-Range"] = "bytes \(start)-\(body.count - 1)/\(body.count)"
            return Reply(status: 206, headers: h, body: Data(body[start...]))
        }
        return Reply(status: 200, headers: headers, body: body)
    }
}
