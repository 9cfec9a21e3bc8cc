// A top context as text for a terminal: each token's background shaded by the latent's activation
// there (ANSI 256-colour, white to red in proportion to activation / max), or, for pipes and files,
// the pieces with each active token's activation in brackets after it (`Paris[4.2]`).

import Foundation

extension FeatureContext {
    /// How a context is drawn.
    public enum Style: Sendable {
        /// Pieces, active ones followed by `[activation]`.
        case plain
        /// ANSI 256-colour backgrounds; the peak token underlined.
        case ansi
    }

    /// The context on one line (newlines and tabs in pieces shown as `\n`, `\t`). `scale` is the
    /// activation drawn at full intensity (the latent's max activation).
    public func rendered(_ style: Style, scale: Float) -> String {
        var out = ""
        for (n, piece) in tokens.enumerated() {
            let shown = piece.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
                .replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\t", with: "\\t")
            let a = n < activations.count ? activations[n] : 0
            switch style {
            case .plain:
                out += shown
                if a > 0 { out += "[" + JSONText.format(Double(a), digits: 3) + "]" }
            case .ansi:
                guard a > 0 else { out += shown; continue }
                let t = scale > 0 ? min(max(a / scale, 0), 1) : 1
                // The 6×6×6 cube: red fixed at 5, green and blue falling from 5 (white) to 0 (red).
                let level = Int((5 * (1 - t)).rounded())
                let colour = 16 + 36 * 5 + 6 * level + level
                let underline = n == peakIndex ? ";4" : ""
                out += "\u{1B}[38;5;16;48;5;\(colour)\(underline)m" + shown + "\u{1B}[0m"
            }
        }
        return out
    }
}
