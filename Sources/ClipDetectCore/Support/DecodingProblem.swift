import Foundation

/// A JSON decoding error in one line that names the field (Swift's own text quotes its containers).
package func describeDecoding(_ error: Error) -> String {
    func path(_ keys: [CodingKey]) -> String {
        keys.isEmpty ? "the top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            .replacingOccurrences(of: ".[", with: "[")
    }
    /// JSON's names for what was expected.
    func kind(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "text"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type, is UInt64.Type: "a whole number"
        case is Double.Type, is Float.Type: "a number"
        default: "\(type)".hasPrefix("Dictionary") ? "an object" : "\(type)".hasPrefix("Array") ? "a list" : "of the expected kind"
        }
    }
    guard let error = error as? DecodingError else { return "\(error)" }
    switch error {
    case .keyNotFound(let key, let context): return "\(path(context.codingPath + [key])) is missing"
    case .valueNotFound(_, let context): return "\(path(context.codingPath)) is null"
    case .typeMismatch(let type, let context): return "\(path(context.codingPath)) is not \(kind(type))"
    case .dataCorrupted(let context):
        // Swift's text for a value outside an enum names the type: say the value is not one of them.
        return context.codingPath.isEmpty ? "not JSON" : "\(path(context.codingPath)) has a value this version does not know"
    @unknown default: return "\(error)"
    }
}
