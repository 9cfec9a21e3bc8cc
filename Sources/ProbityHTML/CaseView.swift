// One case of a report as its page shows it: each run's transcript as a strip of tokens (with the
// data the page's script shades them by), the baseline and steered answers as a word diff, and
// what the interventions changed.

import Foundation
import ProbityAudit

/// Names of SAE latents by pack name and latent index (from the packs' labels), for tooltips.
public struct LatentNames: Sendable {
    public var byPack: [String: [Int: String]]
    public init(_ byPack: [String: [Int: String]] = [:]) { self.byPack = byPack }

    func describe(pack: String, latent: Int) -> String {
        let name = byPack[pack]?[latent].map { " \($0)" } ?? ""
        return "\(pack) #\(latent)\(name)"
    }
}

struct CaseView {
    struct Token { let p: String; let text: String; let tip: String; let fired: Bool; let generated: Bool }
    struct Fired { let rule: String; let severity: String; let value: String; let at: String }
    struct RunView {
        let name: String, key: String, summary: String, text: String
        let tokens: [Token], options: [ReportView.Option], acts: String, hasOptions: Bool
        let fired: [Fired], hasFired: Bool
    }
    struct Delta { let token: String; let mean: String; let first: String; let bar: String }
    /// A token a pass moved: its mean probability change (percentage points) and logit change.
    struct Moved { let token: String; let probability: String; let logit: String; let bar: String; let up: Bool }
    struct Intervention {
        let rule: String, positionsEdited: String, firedBaseline: String, firesAfter: String, stillFires: Bool
        let alone: String, deltas: [Delta], hasDeltas: Bool
        let moved: [Moved], hasMoved: Bool, movedNote: String
    }
    struct Effects {
        let textChanged: String, kl: String, klChart: String, hasKL: Bool, top1: String
        let moved: [Moved], hasMoved: Bool
        let interventions: [Intervention]
    }
    struct Piece { let text: String; let same: Bool; let added: Bool; let removed: Bool }
    struct Expectation { let rule: String; let expected: String; let actual: String; let passed: Bool; let location: String }

    let id: String, anchor: String, location: String, href: String, prompt: String, promptTokens: String
    let hasFindings: Bool, findings: String
    let runs: [RunView]
    let diff: [Piece], hasDiff: Bool
    let effects: Effects?
    let expectations: [Expectation], hasExpectations: Bool, expectationsPassed: Bool

    init(_ c: AuditReport.Case, names: LatentNames, links: LinkBase) {
        id = c.id
        anchor = ReportView.anchor(c)
        location = c.location
        href = links.href(location: c.location)
        prompt = c.prompt
        promptTokens = "\(c.promptTokens)"
        hasFindings = !c.baseline.fired.isEmpty
        findings = c.baseline.fired.map(\.rule).joined(separator: ", ")
        var runs = [Self.run(c.baseline, name: "baseline", key: "\(c.index)-b", promptTokens: c.promptTokens, names: names)]
        if let s = c.steered {
            runs.append(Self.run(s, name: "steered", key: "\(c.index)-s", promptTokens: c.promptTokens, names: names))
        }
        self.runs = runs
        if let s = c.steered {
            diff = WordDiff.diff(c.baseline.text, s.text).map {
                Piece(text: $0.text, same: $0.kind == .same, added: $0.kind == .added, removed: $0.kind == .removed)
            }
        } else {
            diff = []
        }
        hasDiff = !diff.isEmpty
        effects = c.effects.map(Self.effects)
        expectations = c.expectations.map {
            Expectation(rule: $0.rule, expected: $0.expected.rawValue, actual: $0.actual.rawValue, passed: $0.passed, location: $0.location)
        }
        hasExpectations = !expectations.isEmpty
        expectationsPassed = c.expectationsPassed
    }

    /// A token as a JSON string literal (`" Paris"`, `"'s"`, `"\n"`): quoted so its spaces show,
    /// and readable back as JSON.
    static func quoted(_ piece: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(piece)).map { String(decoding: $0, as: UTF8.self) } ?? piece.debugDescription
    }

    /// A token as the strip shows it: newlines and tabs visible, never empty.
    static func display(_ piece: String) -> String {
        if piece.isEmpty { return "∅" }
        return piece.replacingOccurrences(of: "\n", with: "↵\n").replacingOccurrences(of: "\t", with: "→\t")
    }

    static func run(_ run: AuditReport.Run, name: String, key: String, promptTokens: Int, names: LatentNames) -> RunView {
        // What fired where: rule → positions, and per feature label (as rules name them) its activations there.
        var firedAt: [Int: [String]] = [:]
        var series: [String: [Int: Double]] = [:]
        var labels: [String: String] = [:]
        for f in run.fired {
            for p in f.positions {
                firedAt[p.position, default: []].append(f.rule)
                for (feature, value) in p.activations {
                    let k = "rule:" + feature
                    series[k, default: [:]][p.position] = value
                    labels[k] = "\(feature) (watched by \(f.rule); fired positions only)"
                }
            }
        }
        // SAE latents among each position's top few: the latents seen at the most positions.
        var seen: [String: (count: Int, peak: Double)] = [:]
        var tips: [Int: String] = [:]
        for pf in run.features ?? [] {
            var parts: [String] = []
            for pack in pf.packs {
                parts.append("\(pack.pack): rel. sq. error \(Markup.number(pack.relativeSquaredError))")
                for l in pack.top {
                    let k = "sae:\(pack.pack)#\(l.latent)"
                    series[k, default: [:]][pf.position] = l.activation
                    labels[k] = names.describe(pack: pack.pack, latent: l.latent) + " (where among the top \(pack.top.count))"
                    let old = seen[k] ?? (0, 0)
                    // Position 0 (the first token) carries outsized activations; it does not rank latents.
                    seen[k] = (old.count + (pf.position > 0 ? 1 : 0), max(old.peak, pf.position > 0 ? l.activation : 0))
                    parts.append("  \(names.describe(pack: pack.pack, latent: l.latent)): \(Markup.number(l.activation))")
                }
            }
            tips[pf.position] = parts.joined(separator: "\n")
        }
        let latentKeys = seen.filter { $0.value.count > 0 }.sorted {
            $0.value.count != $1.value.count ? $0.value.count > $1.value.count : $0.key < $1.key
        }.prefix(24).map(\.key)
        let ruleKeys = labels.keys.filter { $0.hasPrefix("rule:") }.sorted()
        let keys = ruleKeys + latentKeys
        let options = keys.enumerated().map { i, k in ReportView.Option(value: k, label: labels[k] ?? k, selected: i == 0) }
        var data: [String: [[Double]]] = [:]
        for k in keys {
            data[k] = (series[k] ?? [:]).sorted { $0.key < $1.key }.map { [Double($0.key), $0.value] }
        }
        let tokens = run.pieces.enumerated().map { i, piece in
            var tip = "position \(i)\(i >= promptTokens ? " (generated)" : ""): \(piece.debugDescription)"
            if let rules = firedAt[i] { tip += "\nfired: " + rules.joined(separator: ", ") }
            if let t = tips[i] { tip += "\n" + t }
            return Token(p: "\(i)", text: display(piece), tip: tip, fired: firedAt[i] != nil, generated: i >= promptTokens)
        }
        let fired = run.fired.map { f in
            Fired(rule: f.rule, severity: f.severity.rawValue, value: Markup.number(f.value),
                  at: f.positions.map { "\($0.position) \($0.piece.debugDescription)" }.joined(separator: ", "))
        }
        return RunView(name: name, key: key,
                       summary: "\(run.tokens) tokens generated, finished by \(run.finishReason.rawValue)",
                       text: run.text, tokens: tokens, options: options, acts: Markup.json(data), hasOptions: !options.isEmpty,
                       fired: fired, hasFired: !fired.isEmpty)
    }

    static func effects(_ e: AuditReport.Effects) -> Effects {
        let kl = e.kl ?? []
        let chart = kl.isEmpty ? "" : SVGChart.bars(kl, labels: kl.indices.map { "generated position \($0)" },
                                                     caption: "KL(baseline ‖ steered) per generated position", unit: "nats")
        let klText = e.klMean.map { "mean \(Markup.number($0, digits: 4)), max \(Markup.number(e.klMax ?? 0, digits: 4)) nats" }
            ?? "not measured"
        let interventions = e.interventions.map { i -> Intervention in
            let deltas = i.logitDeltas.sorted { abs($0.value) != abs($1.value) ? abs($0.value) > abs($1.value) : $0.key < $1.key }
            let scale = deltas.map { abs($0.value) }.max() ?? 0
            let rows = deltas.prefix(8).map { token, value in
                Delta(token: quoted(token), mean: Markup.number(value),
                      first: i.logitDeltasFirst?[token].map { Markup.number($0) } ?? "–", bar: Self.deltaBar(value, scale: scale))
            }
            let alone = i.alone.map { a in
                "alone: KL mean \(Markup.number(a.klMean, digits: 4)), max \(Markup.number(a.klMax, digits: 4)) nats; "
                    + "top-1 changed at \(Markup.number(a.top1ChangedFraction * 100, digits: 0))% of positions; "
                    + "\(a.positionsEdited) positions edited; \(a.fires ? "fires" : "silent") in that pass"
            } ?? "not measured alone"
            let moved = moved(i.alone?.topChanges)
            return Intervention(rule: i.rule, positionsEdited: "\(i.positionsEdited)", firedBaseline: i.firedBaseline ? "yes" : "no",
                                firesAfter: i.firesAfter ? "yes" : "no", stillFires: i.firesAfter, alone: alone,
                                deltas: rows, hasDeltas: !rows.isEmpty, moved: moved, hasMoved: !moved.isEmpty,
                                movedNote: i.alone?.topChanges == nil ? "not measured alone" : "no token moved")
        }
        let all = moved(e.topChanges)
        return Effects(textChanged: e.textChanged ? "yes" : "no", kl: klText, klChart: chart, hasKL: !kl.isEmpty,
                       top1: e.top1ChangedFraction.map { Markup.number($0 * 100, digits: 0) + "%" } ?? "not measured",
                       moved: all, hasMoved: !all.isEmpty, interventions: interventions)
    }

    /// A pass's most moved tokens, raised then lowered, each with a bar scaled to the largest change.
    static func moved(_ t: AuditReport.TopChanges?) -> [Moved] {
        guard let t else { return [] }
        let all = t.raised + t.lowered
        let scale = all.map { abs($0.probabilityDelta) }.max() ?? 0
        return all.map { c in
            Moved(token: quoted(c.token), probability: (c.probabilityDelta >= 0 ? "+" : "") + Markup.number(c.probabilityDelta * 100, digits: 2),
                  logit: (c.logitDelta >= 0 ? "+" : "") + Markup.number(c.logitDelta), bar: deltaBar(c.probabilityDelta, scale: scale),
                  up: c.probabilityDelta >= 0)
        }
    }

    /// A bar from the middle, right for a raised logit, left for a lowered one.
    static func deltaBar(_ value: Double, scale: Double) -> String {
        let w = 80.0, mid = w / 2
        let len = scale > 0 && value.isFinite ? abs(value) / scale * mid : 0
        let x = value >= 0 ? mid : mid - len
        return "<svg class=\"delta\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 80 10\" aria-hidden=\"true\">"
            + "<rect x=\"\(Markup.coordinate(x))\" y=\"1\" width=\"\(Markup.coordinate(len))\" height=\"8\" class=\"\(value >= 0 ? "up" : "down")\"/>"
            + "<line x1=\"40\" y1=\"0\" x2=\"40\" y2=\"10\" class=\"axis\"/></svg>"
    }
}
