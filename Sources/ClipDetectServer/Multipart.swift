import Foundation

/// `multipart/form-data` (RFC 7578) bodies, strictly: a part without the closing boundary, a part
/// without a blank line after its headers, or a body that does not start with the boundary is refused.
struct MultipartPart: Sendable {
    var name: String?
    var filename: String?
    var contentType: String?
    var body: Data
}

enum MultipartError: Error, CustomStringConvertible {
    case malformed(String)
    var description: String {
        switch self { case .malformed(let why): "malformed multipart body: \(why)" }
    }
}

enum Multipart {
    /// The boundary of a `multipart/form-data; boundary=…` content type.
    static func boundary(contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.first?.lowercased() == "multipart/form-data" else { return nil }
        for parameter in parts.dropFirst() {
            let kv = parameter.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, kv[0].lowercased() == "boundary" else { continue }
            let value = kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            return (1...70).contains(value.utf8.count) ? value : nil
        }
        return nil
    }

    static func parse(_ body: Data, boundary: String, maxParts: Int) throws -> [MultipartPart] {
        let bytes = [UInt8](body)
        let delimiter = Array("--\(boundary)".utf8)
        guard let first = find(delimiter, in: bytes, from: 0) else { throw MultipartError.malformed("no boundary") }
        var at = first + delimiter.count
        var parts: [MultipartPart] = []
        while true {
            // After a delimiter: "--" ends the body, CRLF starts a part.
            if bytes[at..<min(at + 2, bytes.count)].elementsEqual([45, 45]) { return parts }
            guard bytes[at..<min(at + 2, bytes.count)].elementsEqual([13, 10]) else { throw MultipartError.malformed("boundary not followed by CRLF") }
            at += 2
            guard let headerEnd = find([13, 10, 13, 10], in: bytes, from: at) else { throw MultipartError.malformed("part headers not ended") }
            guard headerEnd - at <= 16 << 10 else { throw MultipartError.malformed("part headers too long") }
            var part = MultipartPart(body: Data())
            let headers = String(decoding: bytes[at..<headerEnd], as: UTF8.self)
            for line in headers.components(separatedBy: "\r\n") where !line.isEmpty {
                let kv = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard kv.count == 2 else { throw MultipartError.malformed("part header \(line.prefix(40)) has no colon") }
                switch kv[0].lowercased() {
                case "content-disposition":
                    part.name = parameter("name", in: kv[1])
                    part.filename = parameter("filename", in: kv[1])
                case "content-type": part.contentType = kv[1]
                default: break
                }
            }
            let start = headerEnd + 4
            guard let end = find([13, 10] + delimiter, in: bytes, from: start) else { throw MultipartError.malformed("a part is not closed by the boundary") }
            part.body = Data(bytes[start..<end])
            parts.append(part)
            guard parts.count <= maxParts else { throw TooManyParts(limit: maxParts) }
            at = end + 2 + delimiter.count
        }
    }

    struct TooManyParts: Error { let limit: Int }

    /// `name="value"` in a Content-Disposition header. A quoted value may hold `;` and `\"`
    /// (a file named "photo; edited.png" is that name, not "photo").
    static func parameter(_ key: String, in header: String) -> String? {
        for piece in pieces(header) {
            let kv = piece.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces).lowercased() == key else { continue }
            let raw = kv[1].trimmingCharacters(in: .whitespaces)
            guard raw.hasPrefix("\""), raw.hasSuffix("\""), raw.count >= 2 else { return raw }
            var value = "", escaped = false
            for character in raw.dropFirst().dropLast() {
                if escaped || character != "\\" { value.append(character); escaped = false } else { escaped = true }
            }
            return value
        }
        return nil
    }

    /// The header split at the `;` that are not inside a quoted string.
    static func pieces(_ header: String) -> [String] {
        var pieces: [String] = [], current = "", quoted = false, escaped = false
        for character in header {
            if quoted {
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { quoted = false }
            } else if character == "\"" {
                quoted = true
            } else if character == ";" {
                pieces.append(current)
                current = ""
                continue
            }
            current.append(character)
        }
        return pieces + [current]
    }

    /// First index of `needle` in `haystack` at or after `from`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
        let first = needle[0]
        var i = from
        let last = haystack.count - needle.count
        return haystack.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n in
                while i <= last {
                    if h[i] == first, memcmp(h.baseAddress! + i, n.baseAddress!, n.count) == 0 { return i }
                    i += 1
                }
                return nil
            }
        }
    }
}
