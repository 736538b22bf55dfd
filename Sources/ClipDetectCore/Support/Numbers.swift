/// Numbers read from text people or files wrote.
package enum Numbers {
    /// A decimal number (nan and inf as Python writes them), or nil. Only the characters a decimal
    /// can hold are allowed: `Double(_:)` also reads hexadecimal ("0x10" is 16), and it parses a C
    /// string, so "3.\u{0}garbage" would read as 3.
    package static func decimal(_ text: some StringProtocol) -> Double? {
        guard !text.isEmpty, text.unicodeScalars.allSatisfy({ "0123456789+-.eEinfatyINFATY".unicodeScalars.contains($0) }) else { return nil }
        return Double(text)
    }
}
