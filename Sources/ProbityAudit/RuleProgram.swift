// Rules compiled for a run: monitors for every watched feature, the rules' interventions as a
// FeaturePlan, and the evaluation of each rule's detection over the recorded activations
// (docs/rules.md "Detection"). The audit runner talks to it through `AuditRules`/`RuleRecorder`.

import Foundation
import ProbityFeatures
import ProbityLM
import ProbityRules

/// What a rule is, for reports.
public struct RuleInfo: Sendable, Equatable {
    public var id: String
    public var severity: RuleSeverity
    public var description: String
    public var file: String
    /// The rule has interventions or stops generation.
    public var intervenes: Bool
}

/// One rule's verdict over a sequence.
public struct RuleOutcome: Sendable, Equatable {
    public var rule: String
    public var fired: Bool
    /// The detection's aggregate (max, mean or count) over its scope, for the first watched feature
    /// that fired (or the first watched feature).
    public var value: Double
    /// Positions in the scope where the watched features reach the threshold, with their activations
    /// (feature label → value).
    public var positions: [(position: Int, activations: [String: Double])]

    public static func == (a: RuleOutcome, b: RuleOutcome) -> Bool {
        a.rule == b.rule && a.fired == b.fired && a.value == b.value && a.positions.map(\.position) == b.positions.map(\.position)
    }
}

/// Rules ready to instrument a run; the rules compiler provides the same shape.
public protocol AuditRules {
    var infos: [RuleInfo] { get }
    /// Attaches detection (and, with `steer`, the interventions and stops) to `hooks`.
    func instrument(_ hooks: HookSet, model: ModelInfo, steer: Bool) throws -> any RuleRecorder
}

/// What a run records and decides as it goes.
public protocol RuleRecorder: AnyObject {
    /// Called after each forward step with the sequence so far; returns true to end generation
    /// (a `stop` rule fired). With interventions, `after_fire` actions start here.
    func step(length: Int, promptLength: Int) throws -> Bool
    /// Every rule's verdict over the first `length` positions.
    func evaluate(length: Int, promptLength: Int) -> [RuleOutcome]
    /// Per rule with interventions: positions its interventions edited.
    var applications: [String: Int] { get }
    /// Per position: the SAE packs' top features and FVU (empty without SAE packs).
    var featureRecords: [Int: [(pack: String, fvu: Double, top: [ActiveLatent])]] { get }
}

/// The compiler from a checked RuleSet to monitors, a FeaturePlan and detections.
public final class AuditRuleCompiler: AuditRules {
    struct Feature {
        var label: String
        var target: FeatureTarget
        var maxActivation: Double?
    }
    struct Compiled {
        var info: RuleInfo
        var rule: Rule
        var watched: [Feature]
        var interventions: [(Intervention, afterFire: Bool)]
    }

    public let infos: [RuleInfo]
    let compiled: [Compiled]
    /// Pack name → (path, sha256 of its files) for reports.
    public let packDigests: [(name: String, path: String, sha256: String)]

    /// Loads, checks and compiles `files`; `blocks` and the model check hook points and packs.
    public init(files: [String], model: ModelInfo, modelPath: String) throws {
        let set: RuleSet
        do { (set, _) = try RuleSet.loadChecked(files, blocks: model.blockCount) } catch {
            if case .invalid(let d) = error { throw AuditError.rules(d) }
            throw AuditError.invalid(error.location ?? .file(files.first ?? ""), message: error.message)
        }
        var packs: [String: FeaturePack] = [:]
        var digests: [(String, String, String)] = []
        func pack(_ f: ResolvedFeature) throws -> FeaturePack {
            if let p = packs[f.packPath] { return p }
            let p = try FeaturePack.load(path: f.packPath)
            _ = try p.checkCompatibility(model: model, modelPath: modelPath, modelName: nil, allowModelMismatch: false)
            packs[f.packPath] = p
            digests.append((f.pack, AuditSuite.normalize(f.packPath), try Self.digest(directory: f.packPath)))
            return p
        }
        func feature(_ f: ResolvedFeature) throws -> Feature {
            let p = try pack(f)
            guard let point = HookPoint(name: f.hook) else { throw AuditError.invalid(.file(f.packPath), message: "bad hook point \(f.hook)") }
            switch f.target {
            case .direction(let name):
                guard let d = p.directions.first(where: { $0.name == name }) else {
                    throw AuditError.invalid(.file(f.packPath), message: "pack '\(f.pack)' has no direction '\(name)'")
                }
                return Feature(label: "\(f.pack)/\(name)", target: .direction(Direction(name: name, point: point, vector: d.vector)),
                               maxActivation: f.maxActivation)
            case .latent(let i):
                guard let b = p.binding else { throw AuditError.invalid(.file(f.packPath), message: "pack '\(f.pack)' is not an SAE pack") }
                return Feature(label: "\(f.pack)[\(i)]", target: .latent(SAEBinding(name: b.name, sae: b.sae, point: point, labels: b.labels), i),
                               maxActivation: f.maxActivation)
            }
        }
        var out: [Compiled] = []
        for file in set.files {
            for rule in file.rules {
                var diagnostics = Diagnostics()
                guard let resolved = set.resolve(rule, in: file, blocks: model.blockCount, into: &diagnostics) else {
                    throw AuditError.rules(diagnostics.sorted)
                }
                let watched = try resolved.watched.map(feature)
                var ivs: [(Intervention, Bool)] = []
                for ri in resolved.interventions {
                    let positions: PositionFilter
                    switch ri.intervention.positions {
                    case .prompt: positions = .prompt
                    case .response: positions = .generated
                    case .all: positions = .all
                    case .last(let n): positions = .last(n)
                    }
                    for t in ri.targets {
                        let f = try feature(t)
                        let action = try Self.action(ri.intervention.action, feature: f, at: ri.intervention.location)
                        switch ri.intervention.trigger {
                        case .always: ivs.append((Intervention(f.target, action, positions: positions), false))
                        case .afterFire: ivs.append((Intervention(f.target, action, positions: positions), true))
                        case .whileActive(_, let level):
                            guard let w = ri.whileFeature else { continue }
                            let wf = try feature(w)
                            let condition = FeatureCondition(wf.target, atLeast: Float(Self.level(level, wf)))
                            ivs.append((Intervention(f.target, action, positions: positions, trigger: .whileActive(condition)), false))
                        }
                    }
                }
                let info = RuleInfo(id: rule.id, severity: rule.severity, description: rule.description, file: file.path,
                                    intervenes: !ivs.isEmpty || rule.stop)
                out.append(Compiled(info: info, rule: rule, watched: watched, interventions: ivs))
            }
        }
        compiled = out
        infos = out.map(\.info)
        packDigests = digests
    }

    static func level(_ t: Threshold, _ f: Feature) -> Double {
        switch t {
        case .absolute(let v): return v
        case .relative(let v): return v * (f.maxActivation ?? 0)
        }
    }

    static func action(_ a: any Action, feature f: Feature, at location: FileLocation) throws -> FeatureAction {
        switch a {
        case let a as ClampAction: return .clamp(Float(level(a.value, f)))
        case let a as ScaleAction: return .scale(Float(a.factor))
        case is AblateAction: return .ablate
        case let a as CapAction: return .cap(Float(level(a.value, f)))
        case let a as AddAction: return .add(Float(a.alpha))
        case is ProjectOutAction: return .projectOut
        default: throw AuditError.invalid(location, message: "action '\(type(of: a).name)' is not one the audit runner can apply")
        }
    }

    /// The SHA-256 of a pack: of the sorted lines "file sha256" of its regular files.
    static func digest(directory: String) throws -> String {
        let names = (try FileManager.default.contentsOfDirectory(atPath: directory)).sorted()
        var lines = ""
        for n in names {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory + "/" + n, isDirectory: &isDir), !isDir.boolValue else { continue }
            lines += "\(n) \(try SHA256.hex(file: directory + "/" + n))\n"
        }
        return SHA256.hex(Array(lines.utf8))
    }

    public func instrument(_ hooks: HookSet, model: ModelInfo, steer: Bool) throws -> any RuleRecorder {
        try Recorder(rules: self, hooks: hooks, model: model, steer: steer)
    }

    final class Recorder: RuleRecorder {
        let rules: AuditRuleCompiler
        let hooks: HookSet
        let model: ModelInfo
        let steer: Bool
        let monitorPlan = FeaturePlan()
        var directionMonitors: [String: DirectionMonitor] = [:]
        var saeMonitors: [String: FeatureMonitor] = [:]
        /// Per rule with interventions: (the plan holding them, their indices).
        var steerPlans: [String: [FeaturePlan]] = [:]
        var fired: Set<String> = []

        init(rules: AuditRuleCompiler, hooks: HookSet, model: ModelInfo, steer: Bool) throws {
            self.rules = rules
            self.hooks = hooks
            self.model = model
            self.steer = steer
            for c in rules.compiled {
                for f in c.watched { try watch(f.target) }
                for (iv, _) in c.interventions { if case .whileActive(let cond) = iv.trigger { try watch(cond.target) } }
            }
            // Monitors first: they read the activations as they arrive, before any edit at that point.
            try monitorPlan.attach(to: hooks, model: model)
            guard steer else { return }
            for c in rules.compiled where !c.interventions.isEmpty {
                let plan = FeaturePlan()
                for (iv, afterFire) in c.interventions where !afterFire { _ = try plan.add(iv) }
                if !plan.isEmptyOfInterventions { try plan.attach(to: hooks, model: model) }
                steerPlans[c.info.id] = [plan]
            }
        }

        func watch(_ t: FeatureTarget) throws {
            switch t {
            case .direction(let d):
                let key = "\(d.point.name)/\(d.name)"
                if directionMonitors[key] == nil { directionMonitors[key] = try monitorPlan.monitor(d) }
            case .latent(let b, _):
                let key = "\(b.point.name)/\(b.name)"
                if saeMonitors[key] == nil { saeMonitors[key] = monitorPlan.monitor(b, top: b.sae.dSAE, threshold: 0) }
            }
        }

        /// Activation of `t` at every position so far (0 where an SAE latent is inactive).
        func series(_ t: FeatureTarget, length: Int) -> [Double] {
            var v = [Double](repeating: 0, count: length)
            switch t {
            case .direction(let d):
                for r in directionMonitors["\(d.point.name)/\(d.name)"]?.records ?? [] where r.position < length {
                    v[r.position] = Double(r.projection)
                }
            case .latent(let b, let i):
                for r in saeMonitors["\(b.point.name)/\(b.name)"]?.records ?? [] where r.position < length {
                    v[r.position] = Double(r.latents.first { $0.index == i }?.activation ?? 0)
                }
            }
            return v
        }

        func step(length: Int, promptLength: Int) throws -> Bool {
            guard steer else { return false }
            var stop = false
            for c in rules.compiled where c.rule.stop || c.interventions.contains(where: { $0.afterFire }) {
                guard !fired.contains(c.info.id) else { continue }
                let outcome = rules.evaluate(c, series: c.watched.map { series($0.target, length: length) },
                                             length: length, promptLength: promptLength)
                guard outcome.fired else { continue }
                fired.insert(c.info.id)
                if c.rule.stop { stop = true }
                // after_fire: from the next position on (earlier positions are already in the cache).
                let plan = FeaturePlan()
                for (iv, afterFire) in c.interventions where afterFire {
                    var later = iv
                    later.positions = iv.positions == .prompt ? .range(0..<0) : .range(length..<Int.max)
                    _ = try plan.add(later)
                }
                if !plan.isEmptyOfInterventions {
                    try plan.attach(to: hooks, model: model)
                    steerPlans[c.info.id, default: []].append(plan)
                }
            }
            return stop
        }

        func evaluate(length: Int, promptLength: Int) -> [RuleOutcome] {
            rules.compiled.map { c in
                rules.evaluate(c, series: c.watched.map { series($0.target, length: length) }, length: length, promptLength: promptLength)
            }
        }

        var applications: [String: Int] {
            steerPlans.mapValues { $0.map { $0.applications.reduce(0, +) }.reduce(0, +) }
        }

        var featureRecords: [Int: [(pack: String, fvu: Double, top: [ActiveLatent])]] {
            var out: [Int: [(pack: String, fvu: Double, top: [ActiveLatent])]] = [:]
            for key in saeMonitors.keys.sorted() {
                guard let m = saeMonitors[key] else { continue }
                for r in m.records { out[r.position, default: []].append((r.pack, r.fvu, Array(r.latents.prefix(5)))) }
            }
            return out
        }
    }

    /// A rule's detection over the activation series of its watched features (docs/rules.md).
    func evaluate(_ c: Compiled, series: [[Double]], length: Int, promptLength: Int) -> RuleOutcome {
        guard let detector = c.rule.detector as? ThresholdDetector else {
            return RuleOutcome(rule: c.info.id, fired: false, value: 0, positions: [])
        }
        let scope: Range<Int>
        switch detector.scope {
        case .prompt: scope = 0..<min(promptLength, length)
        case .response: scope = min(promptLength, length)..<length
        case .all: scope = 0..<length
        case .last(let n): scope = max(0, length - n)..<length
        }
        let thresholds = c.watched.map { Self.level(detector.threshold, $0) }
        let hit: (Int, Int) -> Bool = { f, p in series[f][p] >= thresholds[f] }
        let all = c.rule.watch.combine == .all
        var perFeature: [(fired: Bool, value: Double)] = []
        for f in c.watched.indices {
            let values = scope.map { series[f][$0] }
            let enough = values.count >= detector.minTokens
            switch detector.aggregate {
            case .max:
                let m = values.max() ?? 0
                perFeature.append((enough && m >= thresholds[f], m))
            case .mean:
                let m = values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
                perFeature.append((enough && m >= thresholds[f], m))
            case .count:
                let n = scope.filter { hit(f, $0) }.count
                perFeature.append((n >= detector.minTokens, Double(n)))
            }
        }
        let positions = scope.filter { p in
            all ? c.watched.indices.allSatisfy { hit($0, p) } : c.watched.indices.contains { hit($0, p) }
        }
        var fired: Bool
        if all && detector.aggregate != .mean {
            // At the same token: positions where every feature reaches its threshold.
            fired = detector.aggregate == .count ? positions.count >= detector.minTokens
                : (!positions.isEmpty && scope.count >= detector.minTokens)
        } else {
            fired = all ? perFeature.allSatisfy(\.fired) : perFeature.contains(where: \.fired)
        }
        if c.watched.isEmpty { fired = false }
        let value = (perFeature.first(where: \.fired) ?? perFeature.first)?.value ?? 0
        let reported = positions.map { p in
            (position: p, activations: Dictionary(uniqueKeysWithValues: c.watched.indices.map { (c.watched[$0].label, series[$0][p]) }))
        }
        return RuleOutcome(rule: c.info.id, fired: fired, value: value, positions: reported)
    }
}

extension FeaturePlan {
    /// Whether any intervention was added (monitors aside).
    var isEmptyOfInterventions: Bool { applications.isEmpty }
}
