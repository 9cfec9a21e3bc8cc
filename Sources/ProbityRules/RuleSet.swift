// Loads rules from files and directories, then checks them across files (unique ids) and against
// their packs (indices, labels, directions, hook points, max activations for relative levels)
// and, when given, the model's block count. Every problem of every file is gathered in one pass.

import Foundation
import ProbityFeatures
import ProbityLM

/// A feature reference resolved against its pack.
public struct ResolvedFeature: Sendable, Equatable, CustomStringConvertible {
    public enum Target: Sendable, Equatable {
        case latent(Int)
        case direction(String)
        case probe(String)
    }

    public var pack: String
    public var packPath: String
    public var target: Target
    /// The label the rule used, if it named the latent by label.
    public var label: String?
    public var hook: HookPoint
    public var maxActivation: Double?

    public var description: String {
        switch target {
        case .latent(let i): return "latent \(i)\(label.map { " ('\($0)')" } ?? "") of SAE pack '\(pack)' at \(hook)"
        case .direction(let d): return "direction '\(d)' of pack '\(pack)' at \(hook)"
        case .probe(let p): return "probe '\(p)' of pack '\(pack)' at \(hook)"
        }
    }
}

/// Rules loaded from any number of files, checked as a whole.
public struct RuleSet: Sendable {
    public var files: [RuleFile]
    /// Pack summaries by resolved path; packs that could not be read are absent.
    public var packs: [String: PackSummary]

    public var rules: [Rule] { files.flatMap(\.rules) }

    /// The `.yaml` and `.yml` files named by `paths`; directories are searched (not recursively),
    /// in name order. A path that does not exist is reported.
    public static func ruleFiles(_ paths: [String], into diagnostics: inout Diagnostics) -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                diagnostics.error("no such file or directory", at: .file(path))
                continue
            }
            guard isDirectory.boolValue else {
                files.append(path)
                continue
            }
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
            if names.isEmpty { diagnostics.warning("no .yaml rules files in this directory", at: .file(path)) }
            let prefix = path.hasSuffix("/") ? path : path + "/"
            files += names.map { prefix + $0 }
        }
        return files
    }

    /// Loads and checks every rules file under `paths`. `blocks`, when given, is the model's block
    /// count for hook point checks.
    public static func load(_ paths: [String], parser: RuleParser = RuleParser(), blocks: Int? = nil,
                            limits: YAMLLimits = .standard, into diagnostics: inout Diagnostics) -> RuleSet {
        var files: [RuleFile] = []
        for path in ruleFiles(paths, into: &diagnostics) {
            if let file = parser.parse(file: path, limits: limits, into: &diagnostics) { files.append(file) }
        }
        var set = RuleSet(files: files, packs: [:])
        set.checkUniqueIDs(into: &diagnostics)
        set.checkPacks(blocks: blocks, into: &diagnostics)
        return set
    }

    /// Loads and checks every rules file under `paths` for a caller that must not go on with
    /// errors (compiling for a run): throws `RulesError.invalid` with every diagnostic when any is
    /// an error, else returns the set and its warnings.
    public static func loadChecked(_ paths: [String], parser: RuleParser = RuleParser(), blocks: Int? = nil,
                                   limits: YAMLLimits = .standard) throws(RulesError) -> (RuleSet, warnings: [Diagnostic]) {
        var diagnostics = Diagnostics()
        let set = load(paths, parser: parser, blocks: blocks, limits: limits, into: &diagnostics)
        guard !diagnostics.hasErrors else { throw .invalid(diagnostics.sorted) }
        return (set, diagnostics.sorted)
    }

    /// Rule ids are unique across all loaded files; later duplicates are reported and dropped.
    mutating func checkUniqueIDs(into diagnostics: inout Diagnostics) {
        var seen: [String: FileLocation] = [:]
        for f in files.indices {
            files[f].rules.removeAll { rule in
                if let first = seen[rule.id] {
                    diagnostics.error("duplicate rule id '\(rule.id)' (first at \(first))", at: rule.idLocation)
                    return true
                }
                seen[rule.id] = rule.idLocation
                return false
            }
        }
    }

    /// Reads each declared pack once and checks every feature reference against it.
    mutating func checkPacks(blocks: Int?, into diagnostics: inout Diagnostics) {
        var failed: Set<String> = []
        for file in files {
            for declaration in file.packs where packs[declaration.resolvedPath] == nil && !failed.contains(declaration.resolvedPath) {
                guard FileManager.default.fileExists(atPath: declaration.resolvedPath) else {
                    failed.insert(declaration.resolvedPath)
                    let relative = declaration.path.hasPrefix("/") ? "" : " (relative to the rules file's directory)"
                    diagnostics.error("pack '\(declaration.name)': no such directory \(declaration.path)\(relative)",
                                      at: declaration.pathLocation)
                    continue
                }
                switch PackSummary.read(directory: declaration.resolvedPath) {
                case .success(let summary): packs[declaration.resolvedPath] = summary
                case .failure(let problem):
                    failed.insert(declaration.resolvedPath)
                    diagnostics.error("pack '\(declaration.name)': \(problem.reason)", at: declaration.pathLocation)
                }
            }
        }
        for file in files {
            for rule in file.rules {
                _ = resolve(rule, in: file, blocks: blocks, into: &diagnostics)
            }
        }
    }

    /// Resolves one feature reference of `file`; nil when its pack is unreadable or it does not fit.
    public func resolve(_ ref: FeatureReference, in file: RuleFile, blocks: Int?,
                        into diagnostics: inout Diagnostics) -> ResolvedFeature? {
        guard let declaration = file.packs.first(where: { $0.name == ref.pack }),
              let pack = packs[declaration.resolvedPath] else { return nil }
        let target: ResolvedFeature.Target
        var ownHook: HookPoint?
        var maxActivation: Double?
        var label: String?
        switch (ref.selector, pack.kind) {
        case (.latent(let index), .sae):
            let width = pack.dSAE ?? 0
            guard index < width else {
                diagnostics.error("feature \(index) is out of range for pack '\(ref.pack)' (d_sae \(width))", at: ref.selectorLocation)
                return nil
            }
            target = .latent(index)
            maxActivation = pack.maxActivation[String(index)]
        case (.label(let name), .sae):
            let ids = pack.labels[name] ?? []
            guard ids.count == 1, let id = ids.first, let index = Int(id), index >= 0, index < (pack.dSAE ?? 0) else {
                if ids.count > 1 {
                    diagnostics.error("label '\(name)' names \(ids.count) latents in pack '\(ref.pack)' (\(ids.joined(separator: ", "))); name one by 'latent'",
                                      at: ref.selectorLocation)
                } else if let id = ids.first {
                    diagnostics.error("label '\(name)' in pack '\(ref.pack)' belongs to '\(id)', which is not a latent of its SAE (d_sae \(pack.dSAE ?? 0))",
                                      at: ref.selectorLocation)
                } else {
                    diagnostics.error("pack '\(ref.pack)' has no latent labelled '\(name)'", at: ref.selectorLocation,
                                      hint: closest(to: name, in: pack.labels.keys.sorted()).map { "did you mean '\($0)'?" })
                }
                return nil
            }
            target = .latent(index)
            label = name
            maxActivation = pack.maxActivation[id]
        case (.direction(let name), .directions):
            guard let hook = pack.directions[name] else {
                let known = pack.directions.keys.sorted()
                diagnostics.error("pack '\(ref.pack)' has no direction '\(name)' (it has: \(known.joined(separator: ", ")))",
                                  at: ref.selectorLocation, hint: closest(to: name, in: known).map { "did you mean '\($0)'?" })
                return nil
            }
            target = .direction(name)
            ownHook = hook
            maxActivation = pack.maxActivation[name]
        case (.probe(let name), .probe):
            guard let probe = pack.probe, probe == name else {
                diagnostics.error("pack '\(ref.pack)' has no probe '\(name)' (it has: \(pack.probe ?? "none"))",
                                  at: ref.selectorLocation, hint: pack.probe.map { "did you mean '\($0)'?" })
                return nil
            }
            target = .probe(name)
            maxActivation = pack.maxActivation[name]
        case (.direction, .sae), (.probe, .sae):
            diagnostics.error("pack '\(ref.pack)' is an SAE: name a 'latent' or a 'label', not a '\(ref.selector.key)'", at: ref.selectorLocation)
            return nil
        case (.latent, .directions), (.label, .directions), (.probe, .directions):
            diagnostics.error("pack '\(ref.pack)' holds directions: name a 'direction', not a \(ref.selector.key == "probe" ? "probe" : "latent")",
                              at: ref.selectorLocation)
            return nil
        case (.latent, .probe), (.label, .probe), (.direction, .probe):
            diagnostics.error("pack '\(ref.pack)' holds a probe: name its 'probe'\(pack.probe.map { " ('\($0)')" } ?? ""), not a '\(ref.selector.key)'",
                              at: ref.selectorLocation)
            return nil
        }
        guard let hook = ref.hook ?? ownHook ?? pack.hook else {
            diagnostics.error("pack '\(ref.pack)' names no hook point for \(ref); give the feature a 'hook'", at: ref.location)
            return nil
        }
        if pack.kind == .sae, let trained = pack.hook, let override = ref.hook, override != trained {
            diagnostics.warning("the SAE in pack '\(ref.pack)' was trained at \(trained), not \(override)",
                                at: ref.hookLocation ?? ref.location)
        }
        if pack.kind == .probe, let trained = pack.hook, let override = ref.hook, override != trained {
            diagnostics.warning("the probe in pack '\(ref.pack)' was trained at \(trained), not \(override)",
                                at: ref.hookLocation ?? ref.location)
        }
        if let blocks, let block = hook.block, block >= blocks {
            diagnostics.error("hook point '\(hook)' does not exist in the model (\(blocks) blocks: 0-\(blocks - 1))",
                              at: ref.hookLocation ?? ref.location)
            return nil
        }
        return ResolvedFeature(pack: ref.pack, packPath: declaration.resolvedPath, target: target, label: label,
                               hook: hook, maxActivation: maxActivation)
    }

    /// Resolves every feature of a rule and checks relative levels have a max activation to scale.
    public func resolve(_ rule: Rule, in file: RuleFile, blocks: Int?, into diagnostics: inout Diagnostics) -> ResolvedRule? {
        let before = diagnostics.errorCount
        var watched: [ResolvedFeature] = []
        for ref in rule.watch.features {
            guard let f = resolve(ref, in: file, blocks: blocks, into: &diagnostics) else { continue }
            watched.append(f)
            for t in rule.detector.thresholds { needMax(t, f, ref, "threshold", into: &diagnostics) }
        }
        var actions: [ResolvedIntervention] = []
        for intervention in rule.interventions {
            // A probe is read (watched, or a `while` condition), never edited.
            let edited = intervention.target.map { [$0] } ?? rule.watch.features
            for ref in edited {
                guard case .probe(let name) = ref.selector else { continue }
                diagnostics.error("rule '\(rule.id)': \(intervention.action.name) cannot edit probe '\(name)': a probe is read (watch it, or use it in a 'while' trigger), not edited",
                                  at: intervention.location,
                                  hint: intervention.target == nil ? "give the intervention a 'feature' to edit: a direction or an SAE latent" : nil)
            }
            var targets: [ResolvedFeature] = []
            if let ref = intervention.target {
                if let f = resolve(ref, in: file, blocks: blocks, into: &diagnostics) {
                    targets = [f]
                            for level in intervention.action.values { needMax(level, f, ref, "value", into: &diagnostics) }
                }
            } else {
                targets = watched
                for (f, ref) in zip(watched, rule.watch.features) {
                            for level in intervention.action.values { needMax(level, f, ref, "value", into: &diagnostics) }
                }
            }
            var condition: (ResolvedFeature, Threshold)?
            if case let .whileActive(ref, threshold) = intervention.trigger,
               let f = resolve(ref, in: file, blocks: blocks, into: &diagnostics) {
                needMax(threshold, f, ref, "trigger threshold", into: &diagnostics)
                condition = (f, threshold)
            }
            actions.append(ResolvedIntervention(intervention: intervention, targets: targets, whileFeature: condition?.0))
        }
        guard diagnostics.errorCount == before else { return nil }
        return ResolvedRule(rule: rule, file: file.path, watched: watched, interventions: actions)
    }

    private func needMax(_ level: Threshold, _ f: ResolvedFeature, _ ref: FeatureReference, _ what: String,
                         into diagnostics: inout Diagnostics) {
        guard case .relative = level, f.maxActivation == nil else { return }
        diagnostics.error("\(what) '\(level)' is relative to the max activation of \(ref), which the pack does not record",
                          at: ref.selectorLocation, hint: "give an absolute value, or add max_activation to the pack's manifest")
    }

    /// The id closest to `id` among the loaded rules, for a `did you mean` hint.
    public func closestID(to id: String) -> String? {
        closest(to: id, in: rules.map(\.id))
    }

    /// The rule with this id and the file it is in.
    public func find(_ id: String) -> (Rule, RuleFile)? {
        for file in files {
            if let rule = file.rules.first(where: { $0.id == id }) { return (rule, file) }
        }
        return nil
    }
}

/// A rule with its features resolved against packs: what it compiles to.
public struct ResolvedRule: Sendable {
    public var rule: Rule
    public var file: String
    public var watched: [ResolvedFeature]
    public var interventions: [ResolvedIntervention]
}

/// An intervention with the features it edits and, for `while` triggers, the feature it watches.
public struct ResolvedIntervention: Sendable {
    public var intervention: RuleIntervention
    public var targets: [ResolvedFeature]
    public var whileFeature: ResolvedFeature?
}
