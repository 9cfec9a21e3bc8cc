// Data that derived or calibrated a direction never scores it (docs/eval.md, "Leakage"): before any
// item is scored, eval compares every item's probity-item-v1 fingerprint with the derivation items
// of each pack a rule watches, and calibration data with test data; any overlap is bad input.

import ProbityFeatures
import ProbityRules

/// The leakage checks of `probity eval`.
public enum EvalLeakage {
    /// How many offending items an error lists before "and N more".
    public static let shown = 5

    /// The fingerprint eval compares: the item's conversation followed by its response.
    public static func fingerprint(_ item: EvalItem) -> String {
        ItemFingerprint.of(messages: item.messages, response: item.response)
    }

    /// One item found among the derivation items of a pack a rule watches.
    public struct Hit: Sendable, Equatable {
        public var item: EvalItem
        public var rule: String
        public var pack: String
        public var packPath: String
    }

    /// Per item (in order), the first watched pack and rule whose derivation items hold it.
    public static func hits(items: [EvalItem], rules: CompiledRules) -> [Hit] {
        let packs = Dictionary(rules.packs.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        // Each rule's watched packs (by resolved path), in watch order, those that record items.
        let watched: [(rule: String, pack: CompiledPack, items: Set<String>)] = rules.rules.flatMap { rule in
            var seen: Set<String> = []
            return rule.features.compactMap { f -> (String, CompiledPack, Set<String>)? in
                guard seen.insert(f.resolved.packPath).inserted, let p = packs[f.resolved.packPath],
                      let derivation = p.derivationItems else { return nil }
                return (rule.id, p, derivation.fingerprints)
            }
        }
        guard !watched.isEmpty else { return [] }
        return items.compactMap { item in
            let print = fingerprint(item)
            guard let w = watched.first(where: { $0.items.contains(print) }) else { return nil }
            return Hit(item: item, rule: w.rule, pack: w.pack.name, packPath: AuditSuite.normalize(w.pack.path))
        }
    }

    /// Per rule, the watched packs that record no derivation items: eval cannot check them.
    public static func unchecked(rules: CompiledRules) -> [String: [String]] {
        let packs = Dictionary(rules.packs.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [String: [String]] = [:]
        for rule in rules.rules {
            let names = Set(rule.features.compactMap { f in
                packs[f.resolved.packPath].flatMap { $0.derivationItems == nil ? $0.name : nil }
            })
            if !names.isEmpty { out[rule.id] = names.sorted() }
        }
        return out
    }

    /// Throws when any of `items` derived a pack a rule watches. `what` names the items ("data",
    /// "calibration").
    public static func check(items: [EvalItem], rules: CompiledRules, what: String) throws {
        let found = hits(items: items, rules: rules)
        guard !found.isEmpty else { return }
        var lines = ["leakage: \(found.count) \(what) item\(found.count == 1 ? "" : "s") derived a pack that a measured rule watches, "
            + "and data that derived a direction never scores it (docs/eval.md, \"Leakage\"); remove \(found.count == 1 ? "it" : "them") "
            + "or measure the rule on other data:"]
        for h in found.prefix(shown) {
            lines.append("  \(h.item.file):\(h.item.line): '\(h.item.id)' derived pack '\(h.pack)' (\(h.packPath)), watched by rule '\(h.rule)'")
        }
        if found.count > shown { lines.append("  and \(found.count - shown) more") }
        throw AuditError.badEval(lines.joined(separator: "\n"))
    }

    /// Throws when calibration and test data share an item (by fingerprint).
    public static func checkDisjoint(calibration: [EvalItem], test: [EvalItem]) throws {
        var seen: [String: EvalItem] = [:]
        for item in test { seen[fingerprint(item)] = seen[fingerprint(item)] ?? item }
        let shared = calibration.compactMap { c in seen[fingerprint(c)].map { (c, $0) } }
        guard !shared.isEmpty else { return }
        var lines = ["calibration and test data share \(shared.count) item\(shared.count == 1 ? "" : "s") (the same exchange, by fingerprint): "
            + "a threshold chosen on an item must not be measured on it (docs/eval.md, \"Calibrating a threshold\"):"]
        for (c, t) in shared.prefix(shown) {
            lines.append("  \(c.file):\(c.line): '\(c.id)' is \(t.file):\(t.line): '\(t.id)'")
        }
        if shared.count > shown { lines.append("  and \(shared.count - shown) more") }
        throw AuditError.badEval(lines.joined(separator: "\n"))
    }
}
