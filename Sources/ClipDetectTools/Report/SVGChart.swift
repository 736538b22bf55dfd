import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Foundation

/// A small x–y chart drawn as inline SVG: axes with ticks, lines, markers, shaded spans. Enough for
/// ROC curves, histograms and reliability diagrams, with no plotting library and nothing fetched.
struct SVGChart {
    struct Axis {
        var low: Double
        var high: Double
        var label: String
        /// Base-10 logarithmic: values at or below `low` are drawn at `low`.
        var logarithmic = false
        var ticks: [Double]

        func fraction(_ value: Double) -> Double {
            guard logarithmic else { return high > low ? (value - low) / (high - low) : 0.5 }
            let v = log10(max(value, low))
            return (v - log10(low)) / (log10(high) - log10(low))
        }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]

    var x: Axis
    var y: Axis
    var title: String
    let width = 380.0, height = 300.0
    let left = 52.0, right = 14.0, top = 28.0, bottom = 44.0
    private var body: [String] = []
    private var legend: [(label: String, color: String, dashed: Bool)] = []

    init(title: String, x: Axis, y: Axis) {
        self.title = title
        self.x = x
        self.y = y
    }

    func px(_ value: Double) -> Double { left + x.fraction(value) * (width - left - right) }
    func py(_ value: Double) -> Double { height - bottom - min(max(y.fraction(value), 0), 1) * (height - top - bottom) }

    mutating func line(_ points: [(Double, Double)], color: String, label: String? = nil, dashed: Bool = false, width stroke: Double = 1.8) {
        guard !points.isEmpty else { return }
        let path = points.map { String(format: "%.2f,%.2f", px($0.0), py($0.1)) }.joined(separator: " ")
        body.append("<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(stroke)\"\(dashed ? " stroke-dasharray=\"5 4\"" : "") points=\"\(path)\"/>")
        if let label { legend.append((label, color, dashed)) }
    }

    mutating func marker(_ point: (Double, Double), color: String, radius: Double = 4.5, title: String) {
        body.append(String(format: "<circle class=\"marker\" cx=\"%.2f\" cy=\"%.2f\" r=\"%.1f\" fill=\"%@\" stroke=\"#000\" stroke-width=\"1\"><title>%@</title></circle>",
                           px(point.0), py(point.1), radius, color, HTML.escape(title)))
    }

    /// A shaded vertical span between two x values.
    mutating func span(from low: Double, to high: Double, color: String, title: String) {
        let a = px(low), b = px(high)
        body.append(String(format: "<rect class=\"band\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%@\" opacity=\"0.18\"><title>%@</title></rect>",
                           min(a, b), top, abs(b - a), height - top - bottom, color, HTML.escape(title)))
    }

    mutating func verticalLine(at value: Double, color: String, label: String) {
        let a = px(value)
        body.append(String(format: "<line class=\"threshold\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%@\" stroke-width=\"1.5\" stroke-dasharray=\"2 3\"/>",
                           a, top, a, height - bottom, color))
        legend.append((label, color, true))
    }

    /// Steps of a histogram: `counts[i]` over [edges[i], edges[i + 1]).
    mutating func steps(edges: [Double], heights: [Double], color: String, label: String) {
        guard edges.count == heights.count + 1, !heights.isEmpty else { return }
        var points: [(Double, Double)] = [(edges[0], 0)]
        for (i, h) in heights.enumerated() { points += [(edges[i], h), (edges[i + 1], h)] }
        points.append((edges[edges.count - 1], 0))
        line(points, color: color, label: label, width: 1.6)
    }

    func svg(id: String) -> String {
        var out = String(format: "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"%@\" class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"%@\">",
                         HTML.escape(id), width, height, HTML.escape(title))
        out += "<title>\(HTML.escape(title))</title>"
        out += String(format: "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#fff\" stroke=\"#999\"/>",
                      left, top, width - left - right, height - top - bottom)
        for tick in x.ticks {
            let a = px(tick)
            out += String(format: "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#eee\"/>", a, top, a, height - bottom)
            out += String(format: "<text x=\"%.2f\" y=\"%.2f\" font-size=\"10\" text-anchor=\"middle\">%@</text>", a, height - bottom + 13, Self.tickLabel(tick))
        }
        for tick in y.ticks {
            let b = py(tick)
            out += String(format: "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#eee\"/>", left, b, width - right, b)
            out += String(format: "<text x=\"%.2f\" y=\"%.2f\" font-size=\"10\" text-anchor=\"end\">%@</text>", left - 4, b + 3, Self.tickLabel(tick))
        }
        out += String(format: "<text x=\"%.2f\" y=\"%.2f\" font-size=\"11\" text-anchor=\"middle\">%@</text>",
                      left + (width - left - right) / 2, height - 8, HTML.escape(x.label))
        out += String(format: "<text x=\"12\" y=\"%.2f\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 12 %.2f)\">%@</text>",
                      top + (height - top - bottom) / 2, top + (height - top - bottom) / 2, HTML.escape(y.label))
        out += String(format: "<text x=\"%.2f\" y=\"16\" font-size=\"12\" font-weight=\"bold\">%@</text>", left, HTML.escape(title))
        out += body.joined()
        for (i, entry) in legend.enumerated() {
            let ly = top + 10 + Double(i) * 13
            out += String(format: "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%@\" stroke-width=\"2\"%@/>",
                          width - right - 118, ly, width - right - 102, ly, entry.color, entry.dashed ? " stroke-dasharray=\"4 3\"" : "")
            out += String(format: "<text x=\"%.2f\" y=\"%.2f\" font-size=\"10\">%@</text>", width - right - 98, ly + 3, HTML.escape(String(entry.label.prefix(20))))
        }
        return out + "</svg>"
    }

    static func tickLabel(_ value: Double) -> String {
        if value != 0 && abs(value) < 0.01 { return String(format: "%g", value) }
        return value == value.rounded() ? String(format: "%.0f", value) : String(format: "%g", (value * 1000).rounded() / 1000)
    }

    /// About `count` round ticks over [low, high].
    static func ticks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
        guard high > low, (high - low).isFinite else { return low.isFinite ? [low] : [] }
        let raw = (high - low) / Double(count)
        let exponent = Int(floor(log10(raw)))
        let scale = pow(10, Double(abs(exponent)))
        let mantissa = [1.0, 2, 2.5, 5, 10].first { $0 * pow(10, Double(exponent)) >= raw } ?? 10
        // k·m·10^e as (k·m) × or ÷ an exact power of ten: the nearest double to the decimal (0.6, not 0.6000000000000001).
        func tick(_ k: Int) -> Double { exponent >= 0 ? Double(k) * mantissa * scale : Double(k) * mantissa / scale }
        let step = tick(1)
        var ticks: [Double] = []
        var k = Int((low / step).rounded(.up))
        while tick(k) <= high + step * 1e-9 { ticks.append(tick(k) == 0 ? 0 : tick(k)); k += 1 }
        return ticks
    }
}

/// Text for HTML and XML alike: the report is well-formed XML, so a parser can check it.
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            // Characters XML 1.0 does not allow, even escaped: shown as U+FFFD.
            case _ where scalar.value < 0x20 && scalar != "\n" && scalar != "\t" && scalar != "\r": out += "\u{FFFD}"
            case _ where scalar.value == 0xFFFE || scalar.value == 0xFFFF: out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
