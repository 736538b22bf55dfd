import ClipDetectCore
import ClipDetectDetection
import ClipDetectEncoder
import Crypto
import Foundation

/// `eval --report`: one self-contained HTML file (inline SVG, inline CSS and script, images as data
/// URIs; nothing fetched) with the run's provenance, the metric tables, ROC curves, score
/// distributions, reliability diagrams, the robustness figure for impairment conditions and the
/// worst mistakes. The file is well-formed XML, so tests (and anyone) can parse it.
public struct EvaluationReport: Sendable {
    /// One condition's scores and tables.
    public typealias Run = Evaluation.Run

    /// Where the numbers come from.
    public struct Provenance: Sendable {
        /// How the scores were had: "computed here with MODEL" or "read from FILE".
        public var source: String
        /// `ModelDescription.architecture` of the backbone; nil when the scores were read from a file.
        public var architecture: String?
        /// `ImageEncoder.fingerprint` of the backbone weights; nil when not known.
        public var fingerprint: String?
        /// The list file's name.
        public var list: String
        /// The clipdetect version that wrote the report.
        public var version = clipdetectVersion
        /// When the report was made (written in ISO 8601).
        public var date: Date

        /// Provenance from its parts; the version is this build's.
        public init(source: String, architecture: String? = nil, fingerprint: String? = nil, list: String, date: Date = Date()) {
            self.source = source
            self.architecture = architecture
            self.fingerprint = fingerprint
            self.list = list
            self.date = date
        }
    }

    /// The labelled images evaluated.
    public var list: [LabeledImage]
    /// The runs: the clean images first, then each impairment condition.
    public var runs: [Run]
    /// Where the numbers come from.
    public var provenance: Provenance
    /// Downscaled copies of the worst-scored images, embedded; false keeps every image out of the file.
    public var thumbnails: Bool
    /// Images per side in "worst mistakes".
    public var mistakes = 6

    /// A report on a list's runs; `thumbnails` false embeds no image.
    public init(list: [LabeledImage], runs: [Run], provenance: Provenance, thumbnails: Bool = true) {
        self.list = list
        self.runs = runs
        self.provenance = provenance
        self.thumbnails = thumbnails
    }

    /// SHA-256 of the sorted "name<TAB>typ" lines: the same list in any order gives the same hash.
    package static func listHash(_ list: [LabeledImage]) -> String {
        let lines = list.map { "\($0.item.name)\t\($0.type)\n" }.sorted().joined()
        return SHA256.hash(data: Data(lines.utf8)).hex
    }

    /// The whole report as one HTML document.
    public func html() -> String {
        var page = Page()
        page.add("<h1>clipdetect evaluation</h1>")
        page.add(provenanceSection())
        page.add(metricsSection())
        page.add(rocSection())
        page.add(distributionSection())
        page.add(reliabilitySection())
        if runs.count > 1 { page.add(robustnessSection()) }
        page.add(mistakesSection())
        return page.document(title: "clipdetect evaluation: \(provenance.list)")
    }

    private var clean: Run? { runs.first }

    private func provenanceSection() -> String {
        let formatter = ISO8601DateFormatter()
        var rows: [(String, String)] = [
            ("scores", provenance.source),
            ("backbone", provenance.architecture ?? "not recorded (scores read from a file)"),
            ("fingerprint", provenance.fingerprint ?? "not recorded"),
            ("detectors", clean?.columns.map(\.detector).joined(separator: ", ") ?? ""),
        ]
        for column in clean?.columns ?? [] { rows.append(("rule of \(column.detector)", Self.describe(column.decision))) }
        let reals = list.filter { !$0.isSynthetic }.count
        rows += [
            ("image list", "\(provenance.list): \(list.count) images (\(reals) real, \(list.count - reals) synthetic), SHA-256 of names and types \(Self.listHash(list))"),
            ("conditions", runs.map(\.condition).joined(separator: ", ")),
            ("clipdetect", provenance.version),
            ("date", formatter.string(from: provenance.date)),
        ]
        let items = rows.map { "<dt>\(HTML.escape($0.0))</dt><dd>\(HTML.escape($0.1))</dd>" }.joined()
        return "<section id=\"provenance\"><h2>Provenance</h2><dl>\(items)</dl></section>"
    }

    static func describe(_ rule: DecisionRule) -> String {
        var parts: [String] = []
        switch rule.calibration {
        case .platt(let a, let b)?: parts.append("Platt-calibrated, P = σ(\(a)·score + \(b))")
        case .isotonic(let map)?: parts.append("isotonic calibration (\(map.x.count) knots)")
        case nil: parts.append("uncalibrated, P = σ(score)")
        }
        parts.append(rule.threshold.map { "synthetic above score \($0)" } ?? "synthetic when P > 1/2")
        if let band = rule.band { parts.append("uncertain for \(band.scale == .probability ? "P" : "score") in [\(band.low), \(band.high)]") }
        return parts.joined(separator: "; ")
    }

    // MARK: tables

    private static let titles = ["generator", "real", "fake", "AUC", "acc", "EER", "TPR@1%", "TPR@5%", "NLL", "ECE", "cover", "acc_cov"]

    private func metricsSection() -> String {
        var out = "<section id=\"metrics\"><h2>Metrics</h2><p>As the terminal prints them; click a column to sort. Each cell holds the full value in <code>data-value</code>.</p>"
        for run in runs {
            for table in run.tables {
                let label = runs.count > 1 ? "\(table.detector) [\(run.condition)]" : table.detector
                out += "<h3>\(HTML.escape(label))</h3>"
                if table.rows.isEmpty { out += "<p>Nothing evaluated: no generator has real and fake images with finite scores.</p>"; continue }
                out += "<div class=\"scroll\"><table class=\"metrics sortable\" data-detector=\"\(HTML.escape(table.detector))\" data-condition=\"\(HTML.escape(run.condition))\"><thead><tr>"
                out += Self.titles.enumerated().map { "<th scope=\"col\" tabindex=\"0\" data-column=\"\($0.offset)\">\(HTML.escape($0.element))</th>" }.joined()
                out += "</tr></thead><tbody>"
                for row in table.rows {
                    out += "<tr\(row.generator == "AVG" ? " class=\"average\"" : "")><th scope=\"row\">\(HTML.escape(row.generator))</th>"
                    out += "<td data-value=\"\(row.reals)\">\(row.reals)</td><td data-value=\"\(row.fakes)\">\(row.fakes)</td>"
                    out += row.values.map { "<td data-value=\"\(String($0))\">\($0.isNaN ? "–" : String(format: "%.4f", $0))</td>" }.joined()
                    out += "</tr>"
                }
                out += "</tbody></table></div>"
                if table.missing + table.nonFinite > 0 || !table.unevaluated.isEmpty {
                    out += "<p class=\"note\">Left out: \(table.missing) without a score, \(table.nonFinite) with a score that is not finite"
                        + (table.unevaluated.isEmpty ? "" : "; not evaluated: \(HTML.escape(table.unevaluated.joined(separator: ", ")))") + ".</p>"
                }
            }
        }
        return out + "</section>"
    }

    // MARK: ROC

    /// Labels and finite scores of the reals and one generator's fakes (every fake for nil).
    private func pairs(_ column: ScoreColumn, generator: String?) -> (labels: [Bool], scores: [Double]) {
        var labels: [Bool] = [], scores: [Double] = []
        for image in list where image.type == "real" || generator == nil || image.type == generator {
            guard let score = column.scores[image.item.name], score.isFinite else { continue }
            labels.append(image.isSynthetic)
            scores.append(score)
        }
        return (labels, scores)
    }

    private var generators: [String] { Set(list.map(\.type)).subtracting(["real"]).sorted() }

    /// The rule's operating point: (FPR, TPR) of its labels.
    private static func operatingPoint(_ labels: [Bool], _ scores: [Double], _ rule: DecisionRule) -> (Double, Double) {
        var fp = 0.0, tp = 0.0, n = 0.0, p = 0.0
        for (label, score) in zip(labels, scores) {
            if label { p += 1; tp += rule.isSynthetic(score) ? 1 : 0 } else { n += 1; fp += rule.isSynthetic(score) ? 1 : 0 }
        }
        return (n > 0 ? fp / n : .nan, p > 0 ? tp / p : .nan)
    }

    private func rocChart(title: String, id: String, curves: [(label: String, labels: [Bool], scores: [Double], rule: DecisionRule?)],
                          logarithmic: Bool) -> String {
        let floor = 1e-3
        var chart = SVGChart(title: title,
                             x: .init(low: logarithmic ? floor : 0, high: 1, label: logarithmic ? "false-positive rate (log)" : "false-positive rate",
                                      logarithmic: logarithmic, ticks: logarithmic ? [1e-3, 1e-2, 1e-1, 1] : SVGChart.ticks(0, 1)),
                             y: .init(low: 0, high: 1, label: "true-positive rate", ticks: SVGChart.ticks(0, 1)))
        chart.line(logarithmic ? stride(from: -3.0, through: 0, by: 0.1).map { (pow(10, $0), pow(10, $0)) } : [(0, 0), (1, 1)],
                   color: "#bbb", dashed: true, width: 1)
        for (i, curve) in curves.enumerated() where Set(curve.labels).count == 2 {
            let color = SVGChart.palette[i % SVGChart.palette.count]
            let (fpr, tpr) = Metrics.roc(labels: curve.labels, scores: curve.scores)
            let auc = Metrics.auc(labels: curve.labels, scores: curve.scores)
            chart.line(Self.thinned(Array(zip(fpr, tpr))), color: color, label: "\(curve.label) \(String(format: "%.3f", auc))")
            if let rule = curve.rule {
                let point = Self.operatingPoint(curve.labels, curve.scores, rule)
                chart.marker(point, color: color, title: String(format: "%@ at the head's operating point: FPR %.4f, TPR %.4f", curve.label, point.0, point.1))
            }
        }
        return chart.svg(id: id)
    }

    /// A curve of many points with those dropped that move less than 1/1000 of the axes from the
    /// last one kept (the first and last stay): the same picture from a list of 100,000 images.
    static func thinned(_ points: [(Double, Double)]) -> [(Double, Double)] {
        guard points.count > 2000, let last = points.last else { return points }
        var kept = [points[0]]
        for point in points.dropFirst().dropLast() where max(abs(point.0 - kept.last!.0), abs(point.1 - kept.last!.1)) >= 1e-3 {
            kept.append(point)
        }
        return kept + [last]
    }

    private func rocSection() -> String {
        guard let clean else { return "" }
        var out = "<section id=\"roc\"><h2>ROC curves</h2><p>Each generator against the real images (AUC in the legend); the dot is the operating point of the detector's rule. "
            + "<label><input type=\"checkbox\" id=\"log-fpr\"/> log-scaled false-positive rate</label> (from 10⁻³; lower rates are drawn at 10⁻³).</p><div class=\"figures\">"
        for (d, column) in clean.columns.enumerated() {
            let curves = generators.map { g in let (l, s) = pairs(column, generator: g); return (label: g, labels: l, scores: s, rule: Optional(column.decision)) }
            let title = "ROC: \(column.detector)"
            out += "<figure class=\"roc\" data-detector=\"\(HTML.escape(column.detector))\">"
            out += rocChart(title: title, id: "roc-\(d)", curves: curves, logarithmic: false)
            out += rocChart(title: title, id: "roc-log-\(d)", curves: curves, logarithmic: true).replacingOccurrences(of: "class=\"chart\"", with: "class=\"chart log\"")
            out += "</figure>"
        }
        return out + "</div></section>"
    }

    // MARK: distributions

    private func distributionSection() -> String {
        guard let clean else { return "" }
        var out = "<section id=\"distributions\"><h2>Score distributions</h2><p>Share of each set per bin of score (log-likelihood ratio); the dashed line is where the rule's label turns synthetic, the shaded span its uncertain band.</p><div class=\"figures\">"
        for (d, column) in clean.columns.enumerated() {
            let everything = pairs(column, generator: nil)
            let realScores = zip(everything.labels, everything.scores).filter { !$0.0 }.map(\.1)
            for (g, generator) in generators.enumerated() {
                let (labels, scores) = pairs(column, generator: generator)
                let fakes = zip(labels, scores).filter(\.0).map(\.1)
                guard !fakes.isEmpty || !realScores.isEmpty else { continue }
                // Drawn within ±1e300, so the span and the bins stay finite for any finite score.
                let all = (realScores + fakes).map { min(max($0, -1e300), 1e300) }
                var low = all.min() ?? -1, high = all.max() ?? 1
                if high - low < 1e-9 { low -= 1; high += 1 }
                let bins = 30, width = (high - low) / Double(bins)
                let edges = (0...bins).map { low + Double($0) * width }
                func shares(_ values: [Double]) -> [Double] {
                    var counts = [Double](repeating: 0, count: bins)
                    for v in values { counts[min(max(Int((min(max(v, low), high) - low) / width), 0), bins - 1)] += 1 }
                    return counts.map { values.isEmpty ? 0 : $0 / Double(values.count) }
                }
                let real = shares(realScores), fake = shares(fakes)
                let top = max(real.max() ?? 0, fake.max() ?? 0, 0.01)
                var chart = SVGChart(title: "\(column.detector): real vs \(generator)",
                                     x: .init(low: low, high: high, label: "score", ticks: SVGChart.ticks(low, high)),
                                     y: .init(low: 0, high: top * 1.08, label: "share of images", ticks: SVGChart.ticks(0, top * 1.08, count: 4)))
                for (a, b) in Self.uncertainSpans(column.decision, low: low, high: high) {
                    chart.span(from: a, to: b, color: "#f0ad4e", title: "uncertain")
                }
                if let boundary = Self.boundary(column.decision, low: low, high: high) {
                    chart.verticalLine(at: boundary, color: "#333", label: "rule")
                }
                chart.steps(edges: edges, heights: real, color: SVGChart.palette[0], label: "real (\(realScores.count))")
                chart.steps(edges: edges, heights: fake, color: SVGChart.palette[1], label: "\(generator) (\(fakes.count))")
                out += "<figure class=\"distribution\" data-detector=\"\(HTML.escape(column.detector))\" data-generator=\"\(HTML.escape(generator))\">"
                    + chart.svg(id: "dist-\(d)-\(g)") + "</figure>"
            }
        }
        return out + "</div></section>"
    }

    /// Where on [low, high] the rule's label turns synthetic (found on a fine grid), if it does.
    static func boundary(_ rule: DecisionRule, low: Double, high: Double) -> Double? {
        let steps = 600
        var previous = rule.isSynthetic(low)
        for i in 1...steps {
            let score = low + (high - low) * Double(i) / Double(steps)
            let now = rule.isSynthetic(score)
            if now != previous { return score }
            previous = now
        }
        return nil
    }

    /// The stretches of [low, high] where the rule's verdict is uncertain (on a fine grid).
    static func uncertainSpans(_ rule: DecisionRule, low: Double, high: Double) -> [(Double, Double)] {
        guard rule.band != nil else { return [] }
        let steps = 600
        var spans: [(Double, Double)] = [], start: Double? = nil
        for i in 0...steps {
            let score = low + (high - low) * Double(i) / Double(steps)
            let uncertain = rule.verdict(score) == .uncertain
            if uncertain, start == nil { start = score }
            if !uncertain, let s = start { spans.append((s, score)); start = nil }
        }
        if let s = start { spans.append((s, high)) }
        return spans
    }

    // MARK: reliability

    private func reliabilitySection() -> String {
        guard let clean else { return "" }
        let calibrated = clean.columns.enumerated().filter { $0.element.decision.calibration != nil }
        var out = "<section id=\"reliability\"><h2>Reliability</h2>"
        guard !calibrated.isEmpty else {
            return out + "<p>No detector here is calibrated: its probability is σ(score). <code>clipdetect calibrate</code> makes one that is.</p></section>"
        }
        out += "<p>Mean predicted P(synthetic) against the share of synthetic images in 10 equal-width bins, over every evaluated image; the dot's size follows the bin's count.</p><div class=\"figures\">"
        for (d, column) in calibrated {
            let (labels, scores) = pairs(column, generator: nil)
            let reliability = Reliability(labels: labels, probabilities: scores.map(column.decision.probability),
                                          logits: scores.map(column.decision.logit), bins: 10)
            var chart = SVGChart(title: "\(column.detector): reliability", x: .init(low: 0, high: 1, label: "predicted P(synthetic)", ticks: SVGChart.ticks(0, 1)),
                                 y: .init(low: 0, high: 1, label: "observed share synthetic", ticks: SVGChart.ticks(0, 1)))
            chart.line([(0, 0), (1, 1)], color: "#bbb", dashed: true, width: 1)
            let filled = reliability.bins.filter { $0.count > 0 }
            chart.line(filled.map { ($0.predicted, $0.observed) }, color: SVGChart.palette[0],
                       label: String(format: "ECE %.3f", reliability.ece))
            let most = Double(filled.map(\.count).max() ?? 1)
            for bin in filled {
                chart.marker((bin.predicted, bin.observed), color: SVGChart.palette[0], radius: 2.5 + 4 * (Double(bin.count) / most).squareRoot(),
                             title: String(format: "%d images, predicted %.3f, observed %.3f", bin.count, bin.predicted, bin.observed))
            }
            out += "<figure class=\"reliability\" data-detector=\"\(HTML.escape(column.detector))\">" + chart.svg(id: "reliability-\(d)") + "</figure>"
        }
        return out + "</div></section>"
    }

    // MARK: robustness

    private func robustnessSection() -> String {
        guard let clean else { return "" }
        var out = "<section id=\"robustness\"><h2>Robustness</h2><p>AUC on the clean images and on each impaired copy; the last column is the worst drop.</p>"
        for (d, column) in clean.columns.enumerated() {
            let detector = column.detector
            out += "<h3>\(HTML.escape(detector))</h3><div class=\"scroll\"><table class=\"robustness\" data-detector=\"\(HTML.escape(detector))\"><thead><tr><th scope=\"col\">generator</th>"
            out += runs.map { "<th scope=\"col\">\(HTML.escape($0.condition))</th>" }.joined() + "<th scope=\"col\">worst drop</th></tr></thead><tbody>"
            let rowNames = (clean.tables.first { $0.detector == detector }?.rows.map(\.generator)) ?? []
            for name in rowNames {
                let values = runs.map { run in run.tables.first { $0.detector == detector }?.rows.first { $0.generator == name }?.auc }
                out += "<tr><th scope=\"row\">\(HTML.escape(name))</th>"
                out += values.map { v in v.map { "<td data-value=\"\(String($0))\">\(String(format: "%.4f", $0))</td>" } ?? "<td>–</td>" }.joined()
                let drops = values.dropFirst().compactMap { $0 }.map { (values[0] ?? .nan) - $0 }
                out += drops.isEmpty ? "<td>–</td>" : "<td>\(String(format: "%.4f", drops.max()!))</td>"
                out += "</tr>"
            }
            out += "</tbody></table></div>"
            let curves = runs.map { run -> (label: String, labels: [Bool], scores: [Double], rule: DecisionRule?) in
                let column = run.columns.first { $0.detector == detector } ?? ScoreColumn(detector: detector, scores: [:])
                let (l, s) = pairs(column, generator: nil)
                return (run.condition, l, s, nil)
            }
            out += "<div class=\"figures\"><figure class=\"robustness-roc\" data-detector=\"\(HTML.escape(detector))\">"
                + rocChart(title: "ROC by condition: \(detector)", id: "robust-\(d)", curves: curves, logarithmic: false) + "</figure></div>"
        }
        return out + "</section>"
    }

    // MARK: mistakes

    private func mistakesSection() -> String {
        guard let clean, let column = clean.columns.last else { return "" }
        var out = "<section id=\"mistakes\"><h2>Worst mistakes</h2><p>By \(HTML.escape(column.detector)) on the clean images: the highest-scored real images and the lowest-scored synthetic ones.</p>"
        let scored = list.compactMap { image in column.scores[image.item.name].flatMap { $0.isFinite ? (image, $0) : nil } }
        let reals = scored.filter { !$0.0.isSynthetic }.sorted { $0.1 > $1.1 }.prefix(mistakes)
        let fakes = scored.filter { $0.0.isSynthetic }.sorted { $0.1 < $1.1 }.prefix(mistakes)
        if !thumbnails { out += "<p class=\"note\">Thumbnails were left out: no image is in this file.</p>" }
        for (title, group) in [("Real images scored most synthetic", Array(reals)), ("Synthetic images scored most real", Array(fakes))] {
            out += "<h3>\(HTML.escape(title))</h3><ul class=\"mistakes\">"
            for (image, score) in group {
                let verdict = column.decision.verdict(score).rawValue
                out += "<li>"
                if thumbnails { out += Self.thumbnail(image.item.path) }
                out += "<span class=\"name\">\(HTML.escape(image.item.name))</span><span>\(HTML.escape(image.type)), score \(String(format: "%.3f", score)), \(verdict)</span></li>"
            }
            out += "</ul>"
        }
        return out + "</section>"
    }

    /// The image downscaled to at most 160 pixels a side, as a JPEG data URI; a placeholder when it
    /// cannot be read (the report never fails for a thumbnail).
    static func thumbnail(_ path: String) -> String {
        do {
            let image = try ImageDecoder.decode(path: path)
            let scale = min(1, 160 / Double(max(image.width, image.height)))
            let small = scale < 1
                ? PillowResample.resize(image, width: max(1, Int((Double(image.width) * scale).rounded())), height: max(1, Int((Double(image.height) * scale).rounded())))
                : image
            let jpeg = try LossyEncoder.jpeg(small, quality: 80)
            return "<img alt=\"\" width=\"\(small.width)\" height=\"\(small.height)\" src=\"data:image/jpeg;base64,\(jpeg.base64EncodedString())\"/>"
        } catch {
            return "<span class=\"missing\">no thumbnail: \(HTML.escape("\(error)"))</span>"
        }
    }
}

/// The page around the sections: style and the one script (sorting, the log-axis switch).
private struct Page {
    private var sections: [String] = []

    mutating func add(_ section: String) { sections.append(section) }

    func document(title: String) -> String {
        """
        <!DOCTYPE html>
        <html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title>\(HTML.escape(title))</title>
        <style>
        body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:12px;color:#222;line-height:1.4}
        h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:1.6em}h3{font-size:1.05em}
        dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
        .scroll{overflow-x:auto}table{border-collapse:collapse;font-variant-numeric:tabular-nums}
        th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}th[scope=row],thead th:first-child{text-align:left}
        thead th{cursor:pointer;background:#f6f6f6;position:sticky;top:0}thead th:focus{outline:2px solid #1f77b4}
        tr.average{font-weight:600;background:#fafafa}.note{color:#555;font-size:.9em}
        .figures{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;flex:1 1 360px;max-width:480px}svg.chart{width:100%;height:auto}
        svg.log{display:none}body.log-fpr svg.log{display:block}body.log-fpr figure.roc svg.chart:not(.log){display:none}
        ul.mistakes{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:10px}
        ul.mistakes li{width:170px;font-size:.85em;display:flex;flex-direction:column;gap:2px}
        ul.mistakes img{max-width:160px;height:auto;border:1px solid #ccc}.name{font-family:monospace;overflow-wrap:anywhere}
        </style></head><body>
        \(sections.joined(separator: "\n"))
        <script>//<![CDATA[
        (function () {
          var box = document.getElementById("log-fpr");
          if (box) box.addEventListener("change", function () { document.body.classList.toggle("log-fpr", box.checked); });
          function value(cell) { var v = cell.getAttribute("data-value"); var n = v === null ? NaN : parseFloat(v); return isNaN(n) ? cell.textContent : n; }
          document.querySelectorAll("table.sortable").forEach(function (table) {
            table.querySelectorAll("thead th").forEach(function (th) {
              function sort() {
                var column = +th.getAttribute("data-column"), body = table.tBodies[0];
                var descending = th.getAttribute("aria-sort") !== "descending";
                table.querySelectorAll("thead th").forEach(function (other) { other.removeAttribute("aria-sort"); });
                th.setAttribute("aria-sort", descending ? "descending" : "ascending");
                var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return !r.classList.contains("average"); });
                var averages = Array.prototype.slice.call(body.rows).filter(function (r) { return r.classList.contains("average"); });
                rows.sort(function (a, b) {
                  var x = value(a.cells[column]), y = value(b.cells[column]);
                  var order = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y));
                  return descending ? -order : order;
                });
                rows.concat(averages).forEach(function (r) { body.appendChild(r); });
              }
              th.addEventListener("click", sort);
              th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
            });
          });
        })();
        //]]></script>
        </body></html>

        """
    }
}
