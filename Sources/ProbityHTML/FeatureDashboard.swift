// `probity features dashboard PACK`: static pages for an SAE pack's latents in the manner of
// SAEDashboard and Neuronpedia: an index searchable by label and id, and per latent its label,
// firing frequency and max activation, a histogram of all its activations over the scan, those
// contexts shaded by activation (all from `features stats`), the tokens its decoder direction
// promotes and suppresses through the model's output head, and the rules that use it.

import Foundation
import ProbityFeatures
import ProbityLM
import ProbityRules

/// A rule that watches or edits a latent, as a dashboard lists it.
public struct DashboardRule: Sendable, Equatable {
    public var id: String
    public var severity: String
    public var description: String
    /// The rule's file, as the rules were compiled from (relative to the working directory, or absolute).
    public var file: String
    /// The line of the rule's id in `file` (1-based).
    public var line: Int
    /// How the rule uses the latent: "watches", "edits" or both.
    public var use: String

    public init(id: String, severity: String, description: String, file: String, line: Int, use: String) {
        self.id = id
        self.severity = severity
        self.description = description
        self.file = file
        self.line = line
        self.use = use
    }

    /// `file:line`.
    public var location: String { "\(file):\(line)" }
}

/// Builds a pack's dashboard.
public enum FeatureDashboard {
    /// Tokens listed per latent as promoted and as suppressed.
    static let tokensShown = 12

    /// The latents to show: `ids` (indices or label names) when given, else the `top` most often
    /// active by the labels' frequency, with every named latent.
    public static func select(pack: FeaturePack, ids: [String]?, top: Int) throws -> [Int] {
        guard let sae = pack.sae else { throw FeatureError.needsSAE(pack: pack.name, action: "features dashboard") }
        if let ids {
            return try ids.map { id in
                if let i = Int(id) {
                    guard i >= 0 && i < sae.dSAE else { throw HTMLError.unknownLatent(pack: pack.name, id: id, count: sae.dSAE) }
                    return i
                }
                guard case .latent(_, let i) = try pack.feature(id) else { throw FeatureError.unknownFeature(pack: pack.name, name: id) }
                return i
            }
        }
        var labels: [(Int, Double, Bool)] = []
        pack.labels.forEach { l in
            guard let i = Int(l.id), i >= 0, i < sae.dSAE else { return }
            labels.append((i, l.frequency ?? 0, l.name != nil))
        }
        let frequent = labels.filter { $0.1 > 0 }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(top).map(\.0)
        let named = labels.filter(\.2).map(\.0)
        var seen = Set<Int>()
        return (named + frequent).filter { seen.insert($0).inserted }
    }

    /// Which rules of `compiled` watch or edit latents of the pack at `packPath`, by latent.
    public static func rules(_ compiled: CompiledRules, packPath: String) -> [Int: [DashboardRule]] {
        let mine = URL(fileURLWithPath: packPath).standardizedFileURL.path
        func isMine(_ path: String) -> Bool { URL(fileURLWithPath: path).standardizedFileURL.path == mine }
        // The name the rules know the pack by (edits name their SAE by it).
        let names = Set(compiled.packs.filter { isMine($0.path) }.map(\.name))
        var out: [Int: [DashboardRule]] = [:]
        for rule in compiled.rules {
            var uses: [Int: Set<String>] = [:]
            for f in rule.features {
                if case .latent(let i) = f.resolved.target, isMine(f.resolved.packPath) { uses[i, default: []].insert("watches") }
            }
            for e in rule.interventions {
                if case .latent(let binding, let i) = e.target, names.contains(binding.name) { uses[i, default: []].insert("edits") }
            }
            for (i, use) in uses {
                out[i, default: []].append(DashboardRule(id: rule.id, severity: rule.rule.severity.rawValue, description: rule.rule.description,
                                                         file: rule.rule.location.file, line: rule.rule.location.line,
                                                         use: use.sorted().joined(separator: " and ")))
            }
        }
        return out.mapValues { $0.sorted { $0.id < $1.id } }
    }

    /// Per latent of `latents`, the tokens its decoder row raises and lowers most through `model`'s
    /// output head: (piece, logit) pairs, strongest first.
    public static func logitEffects(pack: FeaturePack, model: LlamaModel, tokenizer: Tokenizer, latents: [Int])
        -> [Int: (promoted: [(String, Float)], suppressed: [(String, Float)])] {
        guard let sae = pack.sae else { return [:] }
        let (width, vocab) = model.unembeddingShape
        guard sae.dIn == width else { return [:] }
        var out: [Int: (promoted: [(String, Float)], suppressed: [(String, Float)])] = [:]
        let chunk = 64
        var start = 0
        while start < latents.count {
            let part = Array(latents[start..<min(start + chunk, latents.count)])
            var rows: [Float] = []
            rows.reserveCapacity(part.count * width)
            for i in part { rows += sae.decoderRow(i) }
            let logits = model.unembed(rows, count: part.count)
            for (n, i) in part.enumerated() {
                let base = n * vocab
                func piece(_ t: Int) -> (String, Float) { ((try? tokenizer.piece(t)) ?? "#\(t)", logits[base + t]) }
                let (high, low) = extremes(logits, from: base, count: vocab, keep: tokensShown)
                out[i] = (high.map(piece), low.map(piece))
            }
            start += chunk
        }
        return out
    }

    /// The indices (relative to `from`) of the `keep` largest and `keep` smallest of `count` values,
    /// strongest first: one pass, a short sorted list each.
    static func extremes(_ x: [Float], from start: Int, count: Int, keep: Int) -> (high: [Int], low: [Int]) {
        var high: [(Int, Float)] = [], low: [(Int, Float)] = []
        for t in 0..<count {
            let v = x[start + t]
            if high.count < keep || v > high[high.count - 1].1 {
                let at = high.firstIndex { v > $0.1 } ?? high.count
                high.insert((t, v), at: at)
                if high.count > keep { high.removeLast() }
            }
            if low.count < keep || v < low[low.count - 1].1 {
                let at = low.firstIndex { v < $0.1 } ?? low.count
                low.insert((t, v), at: at)
                if low.count > keep { low.removeLast() }
            }
        }
        return (high.map(\.0), low.map(\.0))
    }
}
