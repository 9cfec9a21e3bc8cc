// Finding latents for a rule: by words in their top contexts near the peak token (needs a
// statistics scan), or by how differently they fire on two prompt sets (mean difference per prompt,
// Welch's t statistic and Cohen's d).

import Foundation
import ProbityLM

/// Searches over a pack's latents.
public enum FeatureSearch {
    /// A latent whose top contexts contain the searched text near their peak.
    public struct TextHit: Sendable, Equatable {
        public var latent: Int
        /// Σ over matching contexts of (context peak / the latent's strongest context peak): each
        /// match counts up to 1, the strongest contexts most.
        public var score: Double
        public var matchingContexts: Int
        public var contexts: Int
        /// The strongest matching context.
        public var example: FeatureContext
    }

    /// Latents whose contexts contain `query` (case-insensitive, pieces joined) on a token within
    /// `near` tokens before or after the context's peak, best first: by score, then matching
    /// contexts, then index. Throws if no label holds contexts (no statistics scan yet).
    public static func text(_ query: String, in labels: FeatureLabels, path: String, near: Int = 2) throws -> [TextHit] {
        guard labels.hasContexts else { throw FeatureError.noContexts(path: path) }
        let needle = query.lowercased()
        guard !needle.isEmpty else { return [] }
        var hits: [TextHit] = []
        labels.forEach { label in
            guard let latent = Int(label.id), let contexts = label.contexts, let top = contexts.first else { return }
            let unit = Double(max(top.peakActivation, contexts.map(\.peakActivation).max() ?? 0))
            var score = 0.0, matching = 0
            var example: FeatureContext?
            for c in contexts where matches(needle, c, near: near) {
                matching += 1
                score += unit > 0 ? Double(c.peakActivation) / unit : 1
                if example == nil { example = c }
            }
            if let example {
                hits.append(TextHit(latent: latent, score: score, matchingContexts: matching, contexts: contexts.count, example: example))
            }
        }
        return hits.sorted { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.matchingContexts != b.matchingContexts { return a.matchingContexts > b.matchingContexts }
            return a.latent < b.latent
        }
    }

    /// Whether `needle` (lower case) occurs in the context's text overlapping a token within `near`
    /// of the peak.
    static func matches(_ needle: String, _ c: FeatureContext, near: Int) -> Bool {
        // Character offsets of each lower-cased piece in the joined text.
        var text: [Character] = []
        var starts: [Int] = []
        for piece in c.tokens {
            starts.append(text.count)
            text.append(contentsOf: piece.lowercased())
        }
        let lo = max(0, c.peakIndex - near), hi = min(c.tokens.count - 1, c.peakIndex + near)
        guard lo <= hi, hi < starts.count else { return false }
        let windowStart = starts[lo]
        let windowEnd = hi + 1 < starts.count ? starts[hi + 1] : text.count
        let pattern = Array(needle)
        guard pattern.count <= text.count else { return false }
        var i = 0
        while i + pattern.count <= text.count {
            if text[i] == pattern[0] && Array(text[i..<(i + pattern.count)]) == pattern {
                // Overlaps the tokens around the peak.
                if i < windowEnd && i + pattern.count > windowStart { return true }
            }
            i += 1
        }
        return false
    }

    /// How a prompt's positions are reduced to one value per latent.
    public enum Aggregate: String, Sendable, CaseIterable {
        case max
        case mean
    }

    /// Two groups of values compared.
    public struct Comparison: Sendable, Equatable {
        public var meanA: Double
        public var meanB: Double
        /// meanA − meanB.
        public var difference: Double
        /// Welch's t: difference / √(s²_A/n_A + s²_B/n_B); ±∞ when both groups are constant and
        /// differ, 0 when they are constant and equal.
        public var t: Double
        /// Cohen's d: difference / pooled standard deviation (same conventions at zero spread).
        public var cohensD: Double
    }

    /// Compares two groups of at least two values each (sample variances, n − 1).
    public static func compare(_ a: [Double], _ b: [Double]) -> Comparison {
        precondition(a.count >= 2 && b.count >= 2, "each group needs two values for a variance")
        func meanVar(_ x: [Double]) -> (Double, Double) {
            let m = x.reduce(0, +) / Double(x.count)
            let v = x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)
            return (m, v)
        }
        let (ma, va) = meanVar(a), (mb, vb) = meanVar(b)
        let na = Double(a.count), nb = Double(b.count)
        let diff = ma - mb
        func ratio(_ d: Double, _ s: Double) -> Double {
            if s > 0 { return d / s }
            return d == 0 ? 0 : (d > 0 ? .infinity : -.infinity)
        }
        let se = (va / na + vb / nb).squareRoot()
        let pooled = (((na - 1) * va + (nb - 1) * vb) / (na + nb - 2)).squareRoot()
        return Comparison(meanA: ma, meanB: mb, difference: diff, t: ratio(diff, se), cohensD: ratio(diff, pooled))
    }

    /// A latent's difference between the positive and negative prompt sets.
    public struct DifferentialHit: Sendable, Equatable {
        public var latent: Int
        public var comparison: Comparison
        public var difference: Double { comparison.difference }
        public var t: Double { comparison.t }
        public var cohensD: Double { comparison.cohensD }
    }

    /// Each prompt's latents at `point`, reduced over its non-special positions: one row of d_sae
    /// values per prompt. Each prompt runs alone, only as far as `point`.
    public static func promptLatents(sae: SparseAutoencoder, model: any LanguageModel, tokenizer: Tokenizer, point: HookPoint,
                                     prompts: [[Int]], aggregate: Aggregate) throws -> [[Float]] {
        try model.info.validate(point)
        let width = model.info.width
        guard sae.dIn == width else { throw FeatureError.widthMismatch(pack: "SAE", dIn: sae.dIn, modelWidth: width) }
        let n = sae.dSAE
        var out: [[Float]] = []
        for tokens in prompts {
            let rows = tokens.indices.filter { !tokenizer.isSpecial(tokens[$0]) }
            guard !rows.isEmpty else { throw FeatureError.emptyPrompt }
            var x = [Float](repeating: 0, count: rows.count * width)
            var keep = [Int](repeating: -1, count: tokens.count)
            for (slot, p) in rows.enumerated() { keep[p] = slot }
            let hooks = HookSet()
            hooks.attach(at: point) { acts in
                for r in 0..<acts.count {
                    let p = acts.positions.lowerBound + r
                    guard p < keep.count, keep[p] >= 0 else { continue }
                    for j in 0..<width { x[keep[p] * width + j] = acts.values[r * width + j] }
                }
            }
            let session = try model.makeSession(capacity: tokens.count)
            try session.forward(tokens, origins: nil, hooks: hooks, through: point)
            let enc = x.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: rows.count) }
            var reduced = [Float](repeating: 0, count: n)
            for r in 0..<rows.count {
                for i in 0..<n {
                    let v = enc.latents[r * n + i]
                    switch aggregate {
                    case .max: reduced[i] = Swift.max(reduced[i], v)
                    case .mean: reduced[i] += v / Float(rows.count)
                    }
                }
            }
            out.append(reduced)
        }
        return out
    }

    /// Every latent compared between the prompt sets (per prompt: `aggregate` over its non-special
    /// positions), ranked by Welch's t, then by the difference, then by index.
    public static func differential(sae: SparseAutoencoder, model: any LanguageModel, tokenizer: Tokenizer, point: HookPoint,
                                    positive: [[Int]], negative: [[Int]], aggregate: Aggregate) throws -> [DifferentialHit] {
        let pos = try promptLatents(sae: sae, model: model, tokenizer: tokenizer, point: point, prompts: positive, aggregate: aggregate)
        let neg = try promptLatents(sae: sae, model: model, tokenizer: tokenizer, point: point, prompts: negative, aggregate: aggregate)
        let hits = (0..<sae.dSAE).map { i in
            DifferentialHit(latent: i, comparison: compare(pos.map { Double($0[i]) }, neg.map { Double($0[i]) }))
        }
        return hits.sorted { a, b in
            if a.t != b.t { return a.t > b.t }
            if a.difference != b.difference { return a.difference > b.difference }
            return a.latent < b.latent
        }
    }
}
