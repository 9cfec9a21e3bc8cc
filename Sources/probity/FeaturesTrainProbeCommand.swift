// `probity features train-probe`: a logistic-regression probe on labelled eval-format items, its
// layer and L2 strength chosen by cross-validation grouped by pair, written as a probe pack with its
// provenance (docs/features.md, "Probes").

import ArgumentParser
import Foundation
import ProbityAudit
import ProbityFeatures
import ProbityLM
import ProbityTraining

struct FeaturesTrainProbe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-probe",
        abstract: "Train a logistic-regression probe on labelled items (eval JSONL) and write it as a probe pack.",
        discussion: """
            Each item is rendered and teacher-forced exactly as `probity eval` runs it; the response's \
            activations at each candidate hook are pooled (mean over the response, or its last token) \
            in one pass; with --pool tokens the probe is trained on single tokens instead (the \
            tokens where a label-1 response differs from its pair's label-0 response are the \
            positives, every token of a label-0 or benign response a negative) and read as its \
            maximum over the response. Items of the concept with label 1 are positives; its label-0 items and benign \
            items are negatives. The layer and L2 strength are chosen by k-fold cross-validation on \
            these items only, with both halves of a pair in the same fold; the probe is then fitted on \
            all of them. Its value at a token is w·x + b (the logit), so a rule with scope response and \
            aggregate mean reads exactly what --pool mean trained on, and aggregate max what \
            --pool tokens trained on.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .customLong("data"), help: "Labelled items, eval JSONL (repeatable).")
    var data: [String] = []

    @Option(help: "The concept the probe detects (default: the one non-benign concept of the data).")
    var concept: String?

    @Option(help: "Candidate blocks, comma-separated: the probe reads blocks.L.hook_resid_post.")
    var layers: String?

    @Option(help: "One hook point to train at instead of --layers.")
    var hook: String?

    @Option(help: "Write the probe at this block rather than the best by cross-validation (one of --layers).")
    var layer: Int?

    @Option(help: "How the response's activations are pooled: mean, last, or both (mean,last: both are cross-validated, the probe is written for the first listed); or tokens: a token-level probe read as its maximum over the response.")
    var pool: String = "mean"

    @Option(help: "L2 strength λ: a positive number, or auto to choose among \(ProbeCrossValidation.autoL2.map { formatL2($0) }.joined(separator: ", ")) by cross-validation.")
    var l2: String = "auto"

    @Option(help: "Cross-validation folds.")
    var folds: Int = 5

    @Option(help: "Seed of the fold assignment.")
    var seed: UInt64 = 0

    @Option(help: "Output pack directory.")
    var out: String

    @Option(help: "The probe's name (rules watch it as {probe: NAME}; default: the output directory's name).")
    var name: String?

    @Option(help: "The false-positive rate the suggested threshold keeps to (out of fold, as the rule reading the probe judges), on each group of --calibrate-on.")
    var fpr: Double = 0.05

    @Option(help: "The negatives the threshold keeps to --fpr: benign (the benign items), or benign,concept (also the concept's label-0 items; the threshold keeps to the rate on each).")
    var calibrateOn: String = "benign"

    @Option(help: "Also write each item's out-of-fold score at the chosen layer and λ, as JSON that scripts/pick-threshold reads.")
    var cvOut: String?

    @OptionGroup var chatFormatOption: ChatFormatOption

    func validate() throws {
        guard !data.isEmpty else { throw ValidationError("--data: give at least one labelled JSONL file") }
        guard (layers == nil) != (hook == nil) else { throw ValidationError("give exactly one of --layers and --hook") }
        if pool != "tokens" { _ = try poolings() }
        guard folds >= 2 else { throw ValidationError("--folds: expected at least 2, found \(folds)") }
        guard fpr >= 0 && fpr < 1 else { throw ValidationError("--fpr: expected a rate in [0, 1), found \(fpr)") }
        _ = try calibrationGroups()
        _ = try l2Grid()
        _ = try candidatePoints()
        if let layer, hook != nil { throw ValidationError("--layer \(layer) goes with --layers, not --hook") }
    }

    func poolings() throws -> [ReplyPooling] {
        var out: [ReplyPooling] = []
        for part in pool.split(separator: ",", omittingEmptySubsequences: false) {
            guard let p = ReplyPooling(rawValue: String(part)) else {
                throw ValidationError("--pool: expected mean, last, mean,last or tokens, found '\(pool)'")
            }
            if !out.contains(p) { out.append(p) }
        }
        return out
    }

    /// The groups of negatives the threshold is calibrated on: benign, and the concept's own.
    func calibrationGroups() throws -> (benign: Bool, concept: Bool) {
        switch calibrateOn {
        case "benign": return (true, false)
        case "benign,concept", "concept,benign": return (true, true)
        default: throw ValidationError("--calibrate-on: expected benign or benign,concept, found '\(calibrateOn)'")
        }
    }

    func l2Grid() throws -> [Double] {
        if l2 == "auto" { return ProbeCrossValidation.autoL2 }
        guard let v = Double(l2), v > 0, v.isFinite else { throw ValidationError("--l2: expected auto or a positive number, found '\(l2)'") }
        return [v]
    }

    func candidatePoints() throws -> [HookPoint] {
        if let hook {
            guard let point = HookPoint(name: hook) else { throw HookNameError.notAHookName(hook) }
            return [point]
        }
        var out: [HookPoint] = []
        for part in (layers ?? "").split(separator: ",", omittingEmptySubsequences: false) {
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let block = Int(text), block >= 0 else {
                throw ValidationError("--layers: expected block numbers separated by commas (e.g. 3,6,9), found '\(layers ?? "")'")
            }
            if !out.contains(.residPost(block)) { out.append(.residPost(block)) }
        }
        if let layer, !out.contains(.residPost(layer)) {
            throw ValidationError("--layer \(layer) is not among --layers \(layers ?? "")")
        }
        return out
    }

    func run() throws {
        let points = try candidatePoints()
        let grid = try l2Grid()
        let tokenLevel = pool == "tokens"
        let pools = tokenLevel ? [] : try poolings()
        let items = try EvalItem.load(paths: data)
        let concepts = Set(items.map(\.concept)).subtracting([EvalItem.benign]).sorted()
        let target: String
        if let concept {
            guard concepts.contains(concept) else {
                throw ProbeTrainingInput.concept("--concept '\(concept)' has no items in the data (concepts: \(concepts.joined(separator: ", ")))")
            }
            target = concept
        } else {
            guard concepts.count == 1, let only = concepts.first else {
                throw ProbeTrainingInput.concept(concepts.isEmpty
                    ? "the data holds no concept items, only benign ones: nothing to detect"
                    : "the data holds several concepts (\(concepts.joined(separator: ", "))): name one with --concept")
            }
            target = only
        }
        let labels = items.map { $0.concept == target && $0.positive }
        let groups = items.map { "\($0.concept)/\($0.pair ?? $0.id)" }
        let nPos = labels.count { $0 }
        let nBenign = items.count { $0.concept == EvalItem.benign }
        let nNeg = items.count - nPos - nBenign
        guard nPos >= folds, items.count - nPos >= folds else {
            throw ProbeTrainingInput.concept("\(nPos) positives and \(items.count - nPos) negatives: each of the \(folds) folds needs both")
        }
        let probeName = name ?? URL(fileURLWithPath: out).standardizedFileURL.lastPathComponent

        let loaded = try modelOptions.load()
        for p in points { try loaded.model.info.validate(p) }
        let terminal = isatty(2) != 0
        func note(_ line: String, final: Bool = true) {
            FileHandle.standardError.write(Data(((terminal ? "\r" : "") + line + (terminal && !final ? "" : "\n")).utf8))
        }
        // The calibration negatives' per-token activations are kept, to calibrate a threshold out of
        // fold; a token-level probe keeps every item's.
        let calibrateGroups = try calibrationGroups()
        let benignItems = items.indices.filter { items[$0].concept == EvalItem.benign }
        let conceptNegatives = calibrateGroups.concept ? items.indices.filter { items[$0].concept == target && !labels[$0] } : []
        let collected = try Evaluation.replyActivations(items: items, points: points, poolings: tokenLevel ? [.mean] : pools,
                                                   keepTokens: Set(tokenLevel ? Array(items.indices) : benignItems + conceptNegatives),
                                                   loaded: loaded,
                                                   chatFormat: chatFormatOption.chatFormat ?? "auto") { p in
            guard terminal || p.done == p.total || p.done % 50 == 0 else { return }
            note("train-probe: \(p.done)/\(p.total) items, " + String(format: "%.1f s", p.seconds), final: p.done == p.total)
        }
        let foldOf = GroupedFolds.assign(groups: groups, labels: labels, k: folds, seed: seed)
        let run = tokenLevel
            ? try tokenRun(items: items, labels: labels, target: target, points: points, grid: grid, foldOf: foldOf,
                           collected: collected, loaded: loaded, note: { note($0) })
            : try pooledRun(labels: labels, points: points, pools: pools, grid: grid, foldOf: foldOf, collected: collected,
                            note: { note($0) })
        let forced = layer.flatMap { l in points.firstIndex(of: .residPost(l)) }
        let allowed = run.cells.filter { cell in run.writable[cell.candidate] && (forced.map { run.point[cell.candidate] == $0 } ?? true) }
        guard let chosen = ProbeCrossValidation.best(allowed) else {
            throw ProbeTrainingInput.concept("cross-validation scored no fold (each fold needs a positive and a negative)")
        }
        let point = points[run.point[chosen.candidate]]

        // The CV table: layer × λ → mean AUROC over the folds (positives against every negative).
        print("cross-validation: \(folds) folds grouped by pair (seed \(seed)), \(nPos) positive / \(nNeg) negative / \(nBenign) benign, pool \(run.poolings.joined(separator: ", "))"
              + (tokenLevel ? " (\(run.trainingTokens) training tokens, items scored by their maximum)" : ""))
        print("mean AUROC over folds (positives vs every negative)")
        print("hook".padding(toLength: 34, withPad: " ", startingAt: 0) + grid.map { ("λ " + formatL2($0)).leftPadded(10) }.joined())
        for c in run.names.indices {
            let row = grid.map { l -> String in
                let v = run.cells.first { $0.candidate == c && $0.l2 == l }?.meanAUROC
                return (v.map { String(format: "%.3f", $0) } ?? "-").leftPadded(10)
            }
            print(run.names[c].padding(toLength: 34, withPad: " ", startingAt: 0) + row.joined())
        }
        // The matched contrast, from the out-of-fold scores: the concept's positives against its own
        // negatives only (no benign items), which a probe reading only style or topic fails.
        let own = items.indices.filter { items[$0].concept == target }
        print("out-of-fold AUROC vs the concept's own negatives")
        for c in run.names.indices {
            let row = grid.map { l -> String in
                let cell = run.cells.first { $0.candidate == c && $0.l2 == l }
                let v = cell.flatMap { cell in ProbeMetrics.auroc(scores: own.map { cell.outOfFold[$0] }, labels: own.map { labels[$0] }) }
                return (v.map { String(format: "%.3f", $0) } ?? "-").leftPadded(10)
            }
            print(run.names[c].padding(toLength: 34, withPad: " ", startingAt: 0) + row.joined())
        }

        // Out-of-fold scores of the chosen cell, for the threshold and the matched contrast.
        let oofAll = ProbeMetrics.auroc(scores: chosen.outOfFold, labels: labels)
        let oofOwn = ProbeMetrics.auroc(scores: own.map { chosen.outOfFold[$0] }, labels: own.map { labels[$0] })
        let final = try run.fit(chosen.candidate, chosen.l2, nil)
        let probe = Probe(name: probeName, point: point, weights: final.weights.map(Float.init), bias: Float(final.bias))
        let trainAUROC = ProbeMetrics.auroc(scores: items.indices.map { run.score(final, chosen.candidate, $0) }, labels: labels)

        // A threshold for the rule that reads the probe (scope response; aggregate mean for --pool
        // mean, max for --pool tokens) at the target FPR, from what that rule would score on each
        // calibration negative with the fold model that did not see it: the highest of the
        // thresholds that keep each group (benign; the concept's own negatives) to the rate.
        var ruleScores: [Int: Double] = [:]
        var threshold: Double?
        let calibrationItems = benignItems + conceptNegatives
        if let statistic = run.ruleStatistic, !benignItems.isEmpty {
            for f in 0..<folds {
                let m = try run.fit(chosen.candidate, chosen.l2, f)
                for i in calibrationItems where foldOf[i] == f {
                    guard let rows = collected.tokens[i]?[run.point[chosen.candidate]] else { continue }
                    ruleScores[i] = statistic(m, rows)
                }
            }
            threshold = [benignItems, conceptNegatives].filter { !$0.isEmpty }
                .compactMap { group in Self.threshold(scores: group.compactMap { ruleScores[$0] }, fpr: fpr) }.max()
        }
        func groupFPR(_ group: [Int]) -> Double? {
            guard let threshold, !group.isEmpty else { return nil }
            return Double(group.count { (ruleScores[$0] ?? -.infinity) >= threshold }) / Double(group.count)
        }
        let pooling = run.poolings[run.pooling[chosen.candidate]]

        func number(_ v: Double?) -> Any { v.map { ($0 * 1e6).rounded() / 1e6 } ?? NSNull() }
        let modelSHA = try SHA256.hex(file: loaded.path)
        let modelName = loaded.file.value("general.name")?.stringValue
        let provenance: [String: Any] = [
            "method": "L2-regularised logistic regression, float64 Newton (IRLS) on standardised features; the standardisation is folded into weight and bias, so the value is w·x + b (the logit)",
            "hook": point.name,
            "pooling": pooling,
            "l2": chosen.l2,
            "concept": target,
            "n": ["positive": nPos, "negative": nNeg, "benign": nBenign],
            "data": try data.map { path in
                ["file": path, "sha256": try SHA256.hex(file: path), "items": items.count { $0.file == path }] as [String: Any]
            },
            "cross_validation": [
                "folds": folds, "grouped_by": "pair", "seed": Int(seed),
                "hooks": points.map(\.name), "poolings": run.poolings, "l2": grid,
                "chosen": (forced == nil ? "best mean AUROC" : "the requested layer, its best λ") + (run.poolings.count > 1 ? ", pooling \(run.poolings[0]) (the first listed)" : ""),
                "mean_auroc": number(chosen.meanAUROC),
                "fold_auroc": chosen.foldAUROC.map(number),
                "out_of_fold_auroc": number(oofAll),
                "out_of_fold_auroc_concept": number(oofOwn),
                "table": run.cells.map {
                    ["hook": points[run.point[$0.candidate]].name, "pooling": run.poolings[run.pooling[$0.candidate]],
                     "l2": $0.l2, "mean_auroc": number($0.meanAUROC)] as [String: Any]
                },
            ] as [String: Any],
            "training_auroc": number(trainAUROC),
            "training_tokens": tokenLevel ? run.trainingTokens as Any : NSNull(),
            "calibration": threshold.map { t -> Any in
                ["fpr_target": fpr, "on": calibrateGroups.concept ? ["benign", "concept"] : ["benign"], "threshold": number(t),
                 "benign": benignItems.count, "benign_fpr": number(groupFPR(benignItems)),
                 "concept_negatives": conceptNegatives.count, "concept_fpr": number(groupFPR(conceptNegatives)),
                 "statistic": "out of fold: " + run.statisticText + ", on each group; the lowest threshold at which every group stays within the rate"] as [String: Any]
            } ?? NSNull(),
            "iterations": final.iterations,
            "model": ["name": modelName as Any? ?? NSNull(), "gguf_sha256": modelSHA] as [String: Any],
            DerivationItems.key: DerivationItems(fingerprints: items.map { ItemFingerprint.of(messages: $0.messages, response: $0.response) }).jsonObject,
        ]
        try FeaturePack.writeProbe(probe, to: out, modelName: modelName, modelSHA256: modelSHA, provenance: provenance)

        if let cvOut {
            let rows: [[String: Any]] = items.indices.filter { items[$0].concept == target || items[$0].concept == EvalItem.benign }.map { i in
                var o: [String: Any] = ["id": items[i].id, "label": labels[i] ? 1 : 0, "concept": items[i].concept, "score": chosen.outOfFold[i]]
                if let r = ruleScores[i] { o["rule_score"] = r }
                return o
            }
            let object: [String: Any] = ["rules": [["rule": probeName, "hook": point.name, "l2": chosen.l2, "pooling": pooling,
                                                    "items": rows] as [String: Any]]]
            try Data((try jsonString(object) + "\n").utf8).write(to: URL(fileURLWithPath: cvOut), options: .atomic)
        }
        print("chosen: \(point.name), λ \(formatL2(chosen.l2)): mean AUROC \(chosen.meanAUROC.map { String(format: "%.3f", $0) } ?? "-"), "
              + "out-of-fold \(oofAll.map { String(format: "%.3f", $0) } ?? "-") (vs own negatives \(oofOwn.map { String(format: "%.3f", $0) } ?? "-"))")
        if let threshold {
            let rates = [("benign", benignItems), ("concept", conceptNegatives)].compactMap { name, group in
                groupFPR(group).map { String(format: "%@ %.3f of %d", name, $0, group.count) }
            }
            print("threshold for a \(tokenLevel ? "max" : "mean")-over-response rule at ≤ \(formatL2(fpr * 100))% FPR on \(calibrateGroups.concept ? "benign and concept negatives" : "benign items"): "
                  + "\(String(format: "%.4f", threshold)) (out of fold: \(rates.joined(separator: ", ")))")
        }
        print("wrote \(out): probe '\(probeName)' at \(point.name), ‖w‖ \(String(format: "%.4f", probe.norm)), bias \(String(format: "%.4f", probe.bias)), "
              + "fitted on \(items.count) items (training AUROC \(trainAUROC.map { String(format: "%.3f", $0) } ?? "-"))")
    }
}

extension FeaturesTrainProbe {
    /// The threshold scripts/pick-threshold picks: at most ⌊fpr·n⌋ benign scores at or above it,
    /// midway between the last that may fire and the next.
    static func threshold(scores benign: [Double], fpr: Double) -> Double? {
        let b = benign.sorted(by: >)
        guard let lowest = b.last else { return nil }
        let allowed = Int((fpr * Double(b.count)).rounded(.down))
        guard allowed < b.count - 1 else { return lowest }
        if allowed == 0 { return b[0] + 1e-6 }
        if b[allowed - 1] == b[allowed] { return b[allowed - 1] + 1e-6 }
        return (b[allowed - 1] + b[allowed]) / 2
    }
}

/// What is wrong with the items a probe is asked to learn from.
enum ProbeTrainingInput: BadInput {
    case concept(String)

    var description: String {
        switch self {
        case .concept(let text): return "train-probe: \(text)"
        }
    }
}

/// λ as the table and help print it: `0.001`, `10`.
func formatL2(_ v: Double) -> String { String(format: "%g", v) }

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
