// Rules compiled for a run (docs/rules.md, "Running rules"): packs loaded and checked against the
// model, thresholds and action levels worked out per feature, and per sequence a `RuleRun` whose
// hooks detect (scope, min_tokens, aggregate, any/all) and steer through a `FeaturePlan`.

import Foundation
import ProbityFeatures
import ProbityLM

/// A pack a compiled rule set uses, for reports.
public struct CompiledPack: Sendable {
    /// The name the rules use (the first declaration's, when several files declare the pack).
    public var name: String
    /// The directory, resolved against the first rules file that declares it.
    public var path: String
    public var kind: PackKind
    /// SHA-256 of every regular file in the pack directory, by file name, in name order.
    public var files: [(name: String, sha256: String)]
    /// What differed from the model the pack names, when `allowModelMismatch` let it through.
    public var modelMismatch: String?
    /// The items that derived it, when its manifest records them (`provenance.items`).
    public var derivationItems: DerivationItems?
}

/// A watched feature of a compiled rule, with its detection level.
public struct CompiledFeature: Sendable {
    public var resolved: ResolvedFeature
    public var target: FeatureTarget
    /// The detection threshold for this feature (`Nx` worked out against its max activation).
    public var threshold: Float
    /// `pack[123]` or the direction's name.
    public var label: String { target.label }
}

/// One edit of a compiled rule: an intervention on one feature. An `after_fire` one is gated by the
/// rule's detection in each run.
public struct CompiledIntervention: Sendable {
    public enum When: Sendable {
        case always
        case afterFire
        /// At positions where the condition (at or above its level) holds.
        case whileActive(FeatureCondition)
    }

    public var target: FeatureTarget
    /// The action, its levels worked out for `target`.
    public var action: any Action
    public var positions: PositionFilter
    public var when: When
    /// Where the `intervene` item is.
    public var location: FileLocation
}

/// A rule ready to run: its features and levels resolved against loaded packs.
public struct CompiledRule: Sendable {
    public var resolved: ResolvedRule
    public var features: [CompiledFeature]
    public var detector: ThresholdDetector
    public var interventions: [CompiledIntervention]
    /// The tokens of the rule's `effects`, each with its id in the model's vocabulary.
    public var effectTokens: [(text: String, id: Int)]

    public var id: String { resolved.rule.id }
    public var rule: Rule { resolved.rule }
}

/// Rule files compiled against a model: every error of every file is found before any token runs.
public final class CompiledRules: Sendable {
    public let rules: [CompiledRule]
    public let packs: [CompiledPack]
    /// Lint warnings of the files compiled.
    public let warnings: [Diagnostic]
    public let model: ModelInfo

    init(rules: [CompiledRule], packs: [CompiledPack], warnings: [Diagnostic], model: ModelInfo) {
        self.rules = rules
        self.packs = packs
        self.warnings = warnings
        self.model = model
    }

    /// Compiles the rule files under `files` (files or directories) for `model`. Throws
    /// `RulesError.invalid` with every diagnostic when anything is wrong: what lint finds, plus what
    /// needs the packs' weights and the model (pack d_in against the model's width, the model the
    /// pack was made for, unreadable weights), each at its file, line and column.
    public static func compile(files: [String], model: LoadedModel, registry: PluginRegistry = .standard,
                               allowModelMismatch: Bool = false) throws -> CompiledRules {
        try compile(files: files, model: model.model.info, modelPath: model.path,
                    modelName: model.file.value("general.name")?.stringValue, tokenizer: model.tokenizer,
                    registry: registry, allowModelMismatch: allowModelMismatch)
    }

    /// As `compile(files:model:…)`, for a model described by its info, file and `general.name`.
    /// `tokenizer` checks the tokens rules name in `effects`; without it such a rule is an error.
    public static func compile(files: [String], model info: ModelInfo, modelPath: String, modelName: String?,
                               tokenizer: Tokenizer? = nil, registry: PluginRegistry = .standard,
                               allowModelMismatch: Bool = false) throws -> CompiledRules {
        var diagnostics = Diagnostics()
        let set = RuleSet.load(files, parser: RuleParser(registry: registry), blocks: info.blockCount, into: &diagnostics)
        guard !diagnostics.hasErrors else { throw RulesError.invalid(diagnostics.sorted) }
        let warnings = diagnostics.sorted

        // Each pack once, by resolved path, reported at the first declaration that names it.
        var loaded: [String: FeaturePack] = [:]
        var packs: [CompiledPack] = []
        var modelDigest: String?   // hashed once, for the first pack that records one
        for file in set.files {
            for declaration in file.packs where loaded[declaration.resolvedPath] == nil {
                let where_ = declaration.pathLocation
                do {
                    let pack = try FeaturePack.load(path: declaration.resolvedPath)
                    if pack.manifest?.modelSHA256 != nil, modelDigest == nil { modelDigest = try SHA256.hex(file: modelPath) }
                    let mismatch = try pack.checkCompatibility(model: info, modelPath: modelPath, modelName: modelName,
                                                               modelSHA256: modelDigest, allowModelMismatch: allowModelMismatch)
                    loaded[declaration.resolvedPath] = pack
                    packs.append(CompiledPack(name: declaration.name, path: declaration.resolvedPath, kind: pack.kind,
                                              files: try digests(declaration.resolvedPath), modelMismatch: mismatch,
                                              derivationItems: pack.derivationItems))
                    if let mismatch {
                        diagnostics.warning("pack '\(declaration.name)': \(mismatch) (allowed for this run)", at: where_)
                    }
                } catch let e as FeatureError {
                    // Errors of a loaded pack start with its name, which the message already gives.
                    var text = e.description
                    if text.hasPrefix(declaration.name + ": ") { text.removeFirst(declaration.name.count + 2) }
                    diagnostics.error("pack '\(declaration.name)': \(text)", at: where_)
                } catch {
                    diagnostics.error("pack '\(declaration.name)': \(error)", at: where_)
                }
            }
        }
        guard !diagnostics.hasErrors else { throw RulesError.invalid(diagnostics.sorted) }

        var rules: [CompiledRule] = []
        for file in set.files {
            for rule in file.rules {
                var scratch = Diagnostics()
                guard let resolved = set.resolve(rule, in: file, blocks: info.blockCount, into: &scratch) else {
                    for d in scratch.items where d.severity == .error { diagnostics.error(d.message, at: d.location, hint: d.hint) }
                    continue
                }
                if var compiled = compileRule(resolved, packs: loaded, model: info, into: &diagnostics) {
                    compiled.effectTokens = effectTokens(rule, tokenizer: tokenizer, into: &diagnostics)
                    rules.append(compiled)
                }
            }
        }
        guard !diagnostics.hasErrors else { throw RulesError.invalid(diagnostics.sorted) }
        return CompiledRules(rules: rules, packs: packs, warnings: warnings + diagnostics.items.filter { $0.severity == .warning },
                             model: info)
    }

    /// Each `effects` token as its id: it must encode to exactly one token, without special-token
    /// parsing and without the BOS the tokenizer may add.
    private static func effectTokens(_ rule: Rule, tokenizer: Tokenizer?, into diagnostics: inout Diagnostics) -> [(text: String, id: Int)] {
        guard !rule.effectTokens.isEmpty else { return [] }
        guard let tokenizer else {
            diagnostics.error("rule '\(rule.id)': effects: checking tokens needs the model's tokenizer (compile with the loaded model)",
                              at: rule.effectTokens[0].location)
            return []
        }
        var out: [(text: String, id: Int)] = []
        for token in rule.effectTokens {
            let ids = tokenizer.encode(token.text, addSpecial: false, parseSpecial: false)
            if ids.count == 1, let id = ids.first {
                out.append((token.text, id))
                continue
            }
            let pieces = ids.map { quotedToken((try? tokenizer.piece($0)) ?? "<\($0)>") }.joined(separator: ", ")
            diagnostics.error("rule '\(rule.id)': effects: token \(quotedToken(token.text)) is not one token of the model's vocabulary: "
                              + "it splits into \(ids.count) tokens [\(pieces)]",
                              at: token.location, hint: ids.count > 1 ? "name one of its pieces, or a single token" : nil)
        }
        return out
    }

    private static func digests(_ directory: String) throws -> [(name: String, sha256: String)] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        var out: [(name: String, sha256: String)] = []
        for name in names {
            var isDirectory: ObjCBool = false
            let path = directory + "/" + name
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            out.append((name, try SHA256.hex(file: path)))
        }
        return out
    }

    /// The loaded feature a resolved reference names.
    private static func target(_ f: ResolvedFeature, packs: [String: FeaturePack]) -> FeatureTarget? {
        guard let pack = packs[f.packPath] else { return nil }
        let point = f.hook
        switch f.target {
        case .latent(let i):
            guard let sae = pack.sae else { return nil }
            return .latent(SAEBinding(name: pack.name, sae: sae, point: point, labels: pack.labels), i)
        case .direction(let name):
            guard var d = pack.directions.first(where: { $0.name == name }) else { return nil }
            d.point = point
            return .direction(d)
        case .probe(let name):
            guard var p = pack.probe, p.name == name else { return nil }
            p.point = point
            return .probe(p)
        }
    }

    private static func level(_ t: Threshold, _ f: ResolvedFeature) -> Float {
        // Lint has checked the pack records a max activation wherever a relative level is used.
        t.value(maxActivation: f.maxActivation ?? 0) ?? 0
    }

    private static func compileRule(_ r: ResolvedRule, packs: [String: FeaturePack], model: ModelInfo,
                                    into diagnostics: inout Diagnostics) -> CompiledRule? {
        let rule = r.rule
        guard let detector = rule.detector as? ThresholdDetector else {
            diagnostics.error("rule '\(rule.id)': detector '\(type(of: rule.detector).kind)' cannot run (the runtime evaluates 'threshold')",
                              at: rule.location)
            return nil
        }
        var features: [CompiledFeature] = []
        for f in r.watched {
            guard let t = target(f, packs: packs) else {
                diagnostics.error("rule '\(rule.id)': \(f) is not in the loaded pack", at: rule.location)
                return nil
            }
            features.append(CompiledFeature(resolved: f, target: t, threshold: level(detector.threshold, f)))
        }
        var interventions: [CompiledIntervention] = []
        for ri in r.interventions {
            let item = ri.intervention
            var when = CompiledIntervention.When.always
            switch item.trigger {
            case .always: when = .always
            case .afterFire: when = .afterFire
            case .whileActive(_, let threshold):
                guard let wf = ri.whileFeature, let wt = target(wf, packs: packs) else {
                    diagnostics.error("rule '\(rule.id)': the while feature is not in the loaded pack", at: item.location)
                    continue
                }
                when = .whileActive(FeatureCondition(wt, atLeast: level(threshold, wf)))
            }
            let positions: PositionFilter
            switch item.positions {
            case .all: positions = .all
            case .prompt: positions = .prompt
            case .response: positions = .generated
            case .last(let n): positions = .last(n)
            }
            for f in ri.targets {
                guard let t = target(f, packs: packs) else { continue }
                let action = item.action.resolved { level($0, f) }
                interventions.append(CompiledIntervention(target: t, action: action, positions: positions, when: when,
                                                          location: item.location))
            }
        }
        let compiled = CompiledRule(resolved: r, features: features, detector: detector, interventions: interventions,
                                    effectTokens: [])
        // The plan's own checks (finite values, nonzero directions, widths, condition order), now.
        for iv in interventions {
            let plan = FeaturePlan()
            do {
                try plan.add(iv.intervention(gate: nil))
                try plan.attach(to: HookSet(), model: model)
            } catch let e as FeatureError {
                diagnostics.error("rule '\(rule.id)': \(e.description)", at: iv.location)
            } catch {
                diagnostics.error("rule '\(rule.id)': \(error)", at: iv.location)
            }
        }
        return compiled
    }

    /// Hooks for one sequence. `steered` false: detection only (a baseline); true: detection and
    /// interventions. `only`, when given, keeps just the rules with these ids. `observers`, a plan
    /// of monitors only, is attached after detection and before the edits, so it reads the
    /// activations as they arrive; the caller keeps (and resets) it.
    /// `decidesOnly` (with `steered`): the interventions decide and count their edits without
    /// making them (`FeaturePlan.decidesOnly`).
    public func makeRun(steered: Bool, decidesOnly: Bool = false, only: Set<String>? = nil, observers: FeaturePlan? = nil) throws -> RuleRun {
        try RuleRun(rules: rules.filter { only?.contains($0.id) ?? true }, steered: steered, decidesOnly: decidesOnly,
                    model: model, observers: observers)
    }
}

extension CompiledIntervention {
    /// The plan intervention; `gate` opens an `after_fire` one (nil: from the first position).
    func intervention(gate: (any InterventionGate)?) -> Intervention {
        let trigger: Trigger
        switch when {
        case .always: trigger = .always
        case .afterFire: trigger = gate.map { .gate($0) } ?? .always
        case .whileActive(let c): trigger = .whileActive(c)
        }
        return Intervention(target, action, positions: positions, trigger: trigger)
    }
}
