/// One parameter of an impairment: a value, or a range `low..high` drawn per image. Always finite
/// with low ≤ high; each operation checks its own bounds (`Impairment.validate`).
public struct Parameter: Sendable, Equatable, CustomStringConvertible {
    /// The lowest value drawn (the value itself when fixed).
    public let low: Double
    /// The highest value drawn; equal to `low` when fixed.
    public let high: Double

    /// A fixed value, or the range `low...high` when `high` is given; throws when not finite or backwards.
    public init(_ low: Double, _ high: Double? = nil) throws {
        let high = high ?? low
        guard low.isFinite, high.isFinite else { throw ImpairmentError.notFinite(key: nil, text: "\(low)..\(high)") }
        guard low <= high else { throw ImpairmentError.backwards(low: low, high: high) }
        self.low = low
        self.high = high
    }

    init(parsing text: String, key: String) throws {
        let parts = text.components(separatedBy: "..")
        guard (1...2).contains(parts.count), let low = Numbers.decimal(parts[0]), let high = Numbers.decimal(parts.last!) else {
            throw ImpairmentError.notNumber(key: key, text: text)
        }
        guard low.isFinite, high.isFinite else { throw ImpairmentError.notFinite(key: key, text: text) }
        try self.init(low, high)
    }

    /// Refuses a parameter outside `bounds` (or not whole, when `integer`), naming the key.
    func check(_ key: String, in bounds: ClosedRange<Double>, integer: Bool = false, open: Bool = false) throws {
        let inside = bounds.contains(low) && bounds.contains(high) && !(open && low == bounds.lowerBound)
        guard inside else {
            throw ImpairmentError.outside(key: key, value: self, bounds: bounds, open: open)
        }
        if integer, low != low.rounded() || high != high.rounded() {
            throw ImpairmentError.notWhole(key: key, value: self)
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
