// Small SVG charts the pages inline: bars of one value per position (KL per generated position) and
// histograms (of values, or of counts already binned). Numbers only go into coordinates; every label goes through `Markup.escape`.

import Foundation

enum SVGChart {
    /// Vertical bars, one per value, on a zero baseline; each bar's tooltip is its label and value.
    /// `caption` describes the chart for screen readers.
    static func bars(_ values: [Double], labels: [String], caption: String, unit: String, valueDigits: Int = 3,
                     width: Double = 320, height: Double = 72) -> String {
        let top = max(values.filter(\.isFinite).max() ?? 0, 0)
        let n = max(values.count, 1)
        let pad = 14.0
        let plotHeight = height - pad - 2
        let step = width / Double(n)
        let barWidth = max(step * 0.8, 1)
        var out = "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Markup.coordinate(width)) \(Markup.coordinate(height))\""
            + " role=\"img\" aria-label=\"\(Markup.escape(caption))\">"
        out += "<line x1=\"0\" y1=\"\(Markup.coordinate(height - 2))\" x2=\"\(Markup.coordinate(width))\" y2=\"\(Markup.coordinate(height - 2))\" class=\"axis\"/>"
        for (i, v) in values.enumerated() {
            let h = top > 0 && v.isFinite ? max(v, 0) / top * plotHeight : 0
            let label = i < labels.count ? labels[i] : "\(i)"
            out += "<rect x=\"\(Markup.coordinate(Double(i) * step + (step - barWidth) / 2))\" y=\"\(Markup.coordinate(height - 2 - h))\""
                + " width=\"\(Markup.coordinate(barWidth))\" height=\"\(Markup.coordinate(h))\" class=\"bar\">"
                + "<title>\(Markup.escape(label)): \(Markup.number(v, digits: valueDigits == 0 ? 0 : 4)) \(Markup.escape(unit))</title></rect>"
        }
        out += "<text x=\"2\" y=\"10\" class=\"tick\">max \(Markup.number(top, digits: valueDigits)) \(Markup.escape(unit))</text></svg>"
        return out
    }

    /// A histogram of counts already binned: `counts[j]` in the bin from upper·j/n to upper·(j+1)/n.
    static func binned(_ counts: [Int], upper: Double, caption: String, width: Double = 320, height: Double = 80) -> String {
        let n = Double(max(counts.count, 1))
        let labels = counts.indices.map { j in
            Markup.number(upper * Double(j) / n, digits: 2) + "–" + Markup.number(upper * Double(j + 1) / n, digits: 2)
        }
        return bars(counts.map(Double.init), labels: labels, caption: caption, unit: "tokens", valueDigits: 0,
                    width: width, height: height)
    }

    /// A histogram of `values` in `bins` equal bins from 0 to their maximum, bar heights as counts.
    static func histogram(_ values: [Double], bins: Int = 24, caption: String, width: Double = 320, height: Double = 80) -> String {
        let finite = values.filter(\.isFinite)
        let hi = finite.max() ?? 0, lo = min(finite.min() ?? 0, 0)
        var counts = [Double](repeating: 0, count: max(bins, 1))
        let span = hi - lo
        for v in finite {
            let b = span > 0 ? min(Int((v - lo) / span * Double(counts.count)), counts.count - 1) : 0
            counts[max(b, 0)] += 1
        }
        let labels = counts.indices.map { i -> String in
            let a = lo + span * Double(i) / Double(counts.count), b = lo + span * Double(i + 1) / Double(counts.count)
            return Markup.number(a, digits: 2) + "–" + Markup.number(b, digits: 2)
        }
        return bars(counts, labels: labels, caption: caption, unit: "tokens", valueDigits: 0, width: width, height: height)
    }
}
