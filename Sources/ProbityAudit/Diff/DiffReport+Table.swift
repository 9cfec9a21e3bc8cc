// `probity diff`'s text output: per pack, the ranked features, each with its strongest rise and fall.

import Foundation

extension DiffReport {
    /// The report as text: a header, then per pack a table of rows and under each row the context
    /// where the feature rose most (+) and fell most (−), the peak token bracketed with its change.
    public func table() -> String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func left(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        func effect(_ e: Effect) -> String { e.value.isFinite ? String(format: "%.3f", e.value) : (e.value > 0 ? "inf" : "-inf") }
        func number(_ x: Double) -> String { String(format: "%.3g", x) }
        func percent(_ f: Double) -> String { String(format: "%.2f%%", f * 100) }
        let adapters = (adapted.adapters ?? []).map { "\($0.path):\(String(format: "%g", $0.scale))" }.joined(separator: ", ")
        var out = "\(base.name) vs \(base.name) + \(adapters): \(positions) positions of "
            + inputs.map { "\(URL(fileURLWithPath: $0.path).lastPathComponent) (\($0.documents) \($0.format == "chat" ? "items" : "documents"))" }
                .joined(separator: ", ")
            + ", ranked by \(rankedBy)\n"
        for p in packs {
            out += "\n\(p.name) (\(p.kind)) at \(p.hook): \(p.changed) of \(p.features) features changed at some position\n"
            out += left("rank", 4) + "  " + pad("feature", 10) + left("score", 8) + left("mean b", 9) + left("mean a", 9)
                + left("effect", 8) + left("freq b", 9) + left("freq a", 9) + left("h", 8) + left("d_z", 8)
                + left("rise", 8) + left("fall", 8) + "  name\n"
            for r in p.rows {
                out += left("\(r.rank)", 4) + "  " + pad(r.feature, 10) + left(effect(r.score), 8)
                    + left(number(r.meanBase), 9) + left(number(r.meanAdapted), 9) + left(effect(r.meanEffect), 8)
                    + left(percent(r.frequencyBase), 9) + left(percent(r.frequencyAdapted), 9)
                    + left(String(format: "%.3f", r.frequencyEffect), 8) + left(effect(r.pairedEffect), 8)
                    + left(String(format: "%.3g", r.largestIncrease), 8) + left(String(format: "%.3g", r.largestDecrease), 8)
                    + "  " + (r.name ?? "-") + "\n"
                if let c = r.increases.first { out += "        + " + Self.render(c) + "\n" }
                if let c = r.decreases.first { out += "        - " + Self.render(c) + "\n" }
            }
        }
        return out
    }

    /// A context on one line: pieces joined, newlines shown as \n, the peak as `piece[change]`.
    static func render(_ c: Context) -> String {
        var s = ""
        for (k, piece) in c.tokens.enumerated() {
            let shown = piece.replacingOccurrences(of: "\n", with: "\\n")
            s += k == c.peakIndex ? shown + "[" + String(format: "%.3g", c.peakChange) + "]" : shown
        }
        return s + "  (\(c.source) #\(c.document))"
    }
}
