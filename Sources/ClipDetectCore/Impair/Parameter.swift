/// One parameter of an impairment: a value, or a range `low..high` drawn per image. Always finite
/// with low ≤ high; each operation checks its own bounds (`Impairment.validate`).
public struct Parameter: Sendable, Equatable, CustomStringConvertible {
    public let low: Double
    public let high: Double

    public init(_ low: Double, _ high: Double? = nil) throws {
        let high = high ?? low
        guard low.isFinite, high.isFinite else { throw ImpairmentError.invalid("\(low)..\(high) is not a finite number") }
        guard low <= high else { throw ImpairmentError.invalid("range \(low)..\(high) runs backwards") }
        self.low = low
        self.high = high
    }

    init(parsing text: String, key: String) throws {
        let parts = text.components(separatedBy: "..")
        guard (1...2).contains(parts.count), let low = Numbers.decimal(parts[0]), let high = Numbers.decimal(parts.last!) else {
            throw ImpairmentError.invalid("\(key)=\(text) is neither a number nor a range low..high")
        }
        guard low.isFinite, high.isFinite else { throw ImpairmentError.invalid("\(key)=\(text) is not a finite number") }
        try self.init(low, high)
    }

    /// Refuses a parameter outside `bounds` (or not whole, when `integer`), naming the key.
    func check(_ key: String, in bounds: ClosedRange<Double>, integer: Bool = false, open: Bool = false) throws {
        let inside = bounds.contains(low) && bounds.contains(high) && !(open && low == bounds.lowerBound)
        guard inside else {
            throw ImpairmentError.invalid("\(key)=\(self) is outside \(open ? "(" : "[")\(Self.format(bounds.lowerBound)), \(Self.format(bounds.upperBound))]")
        }
        if integer, low != low.rounded() || high != high.rounded() {
            throw ImpairmentError.invalid("\(key)=\(self) must be a whole number")
        }
    }

    func draw(_ generator: inout SeededGenerator) -> Double {
        low == high ? low : Double.random(in: low...high, using: &generator)
    }

    /// Bounds were checked, so the conversion cannot trap.
    func drawInteger(_ generator: inout SeededGenerator) -> Int {
        low == high ? Int(low) : Int.random(in: Int(low.rounded())...Int(high.rounded()), using: &generator)
    }

    public var description: String { low == high ? Self.format(low) : "\(Self.format(low))..\(Self.format(high))" }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
    }
}
