// The rules runtime for one sequence: detection hooks read each watched feature per position
// (latent value, or projection on the unit direction) before the edits at their hook point, decide
// each rule online over its scope, and open its `after_fire` edits; a `FeaturePlan` does the edits.

import ProbityFeatures
import ProbityLM

/// What one rule did over a sequence.
public struct RuleResult: Sendable {
    /// One watched feature's strongest showing.
    public struct Observation: Sendable {
        public var feature: String
        public var threshold: Float
        /// The peak of the aggregate (`max` or `mean` over the scope, for `count` the largest value)
        /// over every point the rule was judged at; nil when it never was (scope too small).
        public var value: Float?
    }

    /// A position in the scope where the watched features (any, or all) reached their thresholds.
    public struct Crossing: Sendable {
        public var position: Int
        public var token: Int
        public var origin: TokenOrigin
        /// Each watched feature's activation there, in watch order.
        public var activations: [Float]
    }

    /// An edit and the positions it changed.
    public struct Applied: Sendable {
        public var feature: String
        public var action: String
        public var positions: [Int]
    }

    public var rule: String
    public var severity: RuleSeverity
    public var fired: Bool
    /// The position at which the detection first held.
    public var firedAt: Int?
    public var aggregate: Aggregate
    public var minTokens: Int
    public var observations: [Observation]
    /// For `count`: the most positions of one scope that reached the threshold.
    public var count: Int
    public var crossings: [Crossing]
    public var interventions: [Applied]

    /// The aggregate against the threshold in a few words: `max 3.1 vs 2.5`, `count 1 of 2 (≥ 0.8)`.
    public var summary: String {
        func num(_ v: Float) -> String { String(format: "%.4g", Double(v)) }
        if aggregate == .count {
            let levels = observations.map { "\($0.feature) ≥ \(num($0.threshold))" }.joined(separator: ", ")
            return "count \(count) of \(minTokens) (\(levels))"
        }
        return observations.map { o in
            "\(observations.count > 1 ? o.feature + " " : "")\(aggregate.rawValue) \(o.value.map(num) ?? "-") vs \(num(o.threshold))"
        }.joined(separator: ", ")
    }
}

/// Detection and steering hooks for one sequence; `reset()` between sequences.
public final class RuleRun {
    /// Attach these to the forward pass (`Generator.generate(…, hooks:)`).
    public let hooks = HookSet()
    public let steered: Bool
    private let states: [RuleState]
    private let plan: FeaturePlan?
    /// SAE encodings shared by detection, the observers and the edits: one encode per SAE per
    /// hook point per step however many of them read it.
    public let encodings = SAEEncodingCache()
    // Per plan intervention (in the order added): its rule's index and a name for reports.
    private var planned: [(rule: Int, feature: String, action: String)] = []

    init(rules: [CompiledRule], steered: Bool, decidesOnly: Bool = false, model: ModelInfo, observers: FeaturePlan? = nil) throws {
        self.steered = steered
        states = rules.map(RuleState.init)
        // Detection first at every point, so it reads the activations before that point's edits.
        var points: [HookPoint] = []
        for s in states { for f in s.rule.features where !points.contains(f.target.point) { points.append(f.target.point) } }
        for p in points {
            let watching = states.filter { $0.rule.features.contains { $0.target.point == p } }
            hooks.attach(at: p) { [encodings] acts in RuleRun.detect(acts, states: watching, encodings: encodings) }
        }
        // Then the caller's monitors, also ahead of the edits.
        try observers?.attach(to: hooks, model: model, encodings: encodings)
        guard steered else { plan = nil; return }
        let plan = FeaturePlan(decidesOnly: decidesOnly)
        for (k, s) in states.enumerated() {
            for iv in s.rule.interventions {
                try plan.add(iv.intervention(gate: s))
                planned.append((k, iv.target.label, iv.action.brief))
            }
        }
        try plan.attach(to: hooks, model: model, encodings: encodings)
        self.plan = plan
    }

    /// True once a rule with `stop: true` has fired: pass `{ run.shouldStop }` to
    /// `Generator.generate(…, shouldStop:)`.
    public var shouldStop: Bool { states.contains { $0.rule.rule.stop && $0.firedAt != nil } }

    /// Per rule, in compile order.
    public func results() -> [RuleResult] {
        states.enumerated().map { k, s in
            var r = s.result()
            if let plan {
                for (i, p) in planned.enumerated() where p.rule == k {
                    r.interventions.append(.init(feature: p.feature, action: p.action, positions: plan.appliedPositions[i]))
                }
            }
            return r
        }
    }

    /// Forgets everything seen: call between sequences.
    public func reset() {
        for s in states { s.reset() }
        plan?.reset()
    }

    private static func detect(_ acts: HookActivations, states: [RuleState], encodings: SAEEncodingCache) {
        let tokens = Array(acts.tokens), origins = Array(acts.origins)
        for s in states {
            for (f, feature) in s.rule.features.enumerated() where feature.target.point == acts.point {
                let values = (0..<acts.count).map {
                    feature.target.activation(row: $0, of: acts) { encodings.encoding($0, of: acts) }
                }
                s.record(feature: f, from: acts.positions.lowerBound, values: values, tokens: tokens, origins: origins)
            }
            s.evaluate()
        }
    }
}

/// One rule's detection state over a sequence, and the gate of its `after_fire` edits.
// Unchecked: a run serves one sequence, driven from the thread running the forward pass.
final class RuleState: InterventionGate, @unchecked Sendable {
    let rule: CompiledRule
    // Per watched feature, its activation at each position (−∞ where not yet seen).
    private var values: [[Float]]
    private var tokens: [Int] = []
    private var origins: [TokenOrigin] = []
    private var judged = 0
    private(set) var firedAt: Int?
    private var peak: [Float?]
    private var peakCount = 0
    private var crossings: [RuleResult.Crossing] = []
    // Running totals over a growing scope (prompt, response, all).
    private var inScope = 0
    private var maxSoFar: [Float]
    private var sums: [Double]
    private var anyAtOnce = false
    private var holdingCount = 0

    init(_ rule: CompiledRule) {
        self.rule = rule
        let n = rule.features.count
        values = Array(repeating: [], count: n)
        peak = Array(repeating: nil, count: n)
        maxSoFar = Array(repeating: -.infinity, count: n)
        sums = Array(repeating: 0, count: n)
    }

    func reset() {
        let n = rule.features.count
        values = Array(repeating: [], count: n)
        tokens = []
        origins = []
        judged = 0
        firedAt = nil
        peak = Array(repeating: nil, count: n)
        peakCount = 0
        crossings = []
        inScope = 0
        maxSoFar = Array(repeating: -.infinity, count: n)
        sums = Array(repeating: 0, count: n)
        anyAtOnce = false
        holdingCount = 0
    }

    func isOpen(at position: Int) -> Bool { firedAt.map { position >= $0 } ?? false }

    func record(feature f: Int, from start: Int, values v: [Float], tokens t: [Int], origins o: [TokenOrigin]) {
        // A session rewound (truncated) and ran again: forget the positions it dropped.
        if start < values[f].count || start < judged { rewind(to: start) }
        while values[f].count < start { values[f].append(-.infinity) }
        values[f] += v
        for r in v.indices where start + r >= tokens.count {
            while tokens.count < start + r { tokens.append(-1); origins.append(.prompt) }
            tokens.append(r < t.count ? t[r] : -1)
            origins.append(r < o.count ? o[r] : .prompt)
        }
    }

    private func rewind(to start: Int) {
        // Judgement state cannot be undone position by position; start over from the prefix kept.
        let kept = values.map { Array($0.prefix(start)) }
        let keptTokens = Array(tokens.prefix(start)), keptOrigins = Array(origins.prefix(start))
        reset()
        values = kept
        tokens = keptTokens
        origins = keptOrigins
    }

    private func inScope(_ p: Int) -> Bool {
        switch rule.detector.scope {
        case .prompt: return origins[p] == .prompt
        case .response: return origins[p] == .generated
        case .all, .last: return true
        }
    }

    private func holds(_ f: Int, _ p: Int) -> Bool { values[f][p] >= rule.features[f].threshold }

    private func holdsCombined(_ p: Int) -> Bool {
        let n = rule.features.count
        switch rule.resolved.rule.watch.combine {
        case .any: return (0..<n).contains { holds($0, p) }
        case .all: return (0..<n).allSatisfy { holds($0, p) }
        }
    }

    /// Judges every position all watched features have reached.
    func evaluate() {
        let ready = values.map(\.count).min() ?? 0
        guard ready > judged, ready <= tokens.count else { return }
        for p in judged..<ready { judge(p) }
        judged = ready
    }

    // The rule is judged after each position, over the scope as it stands then.
    private func judge(_ p: Int) {
        let d = rule.detector
        let n = rule.features.count
        guard n > 0 else { return }
        let combined = holdsCombined(p)
        if inScope(p), combined {
            crossings.append(.init(position: p, token: tokens[p], origin: origins[p], activations: (0..<n).map { values[$0][p] }))
        }
        var aggregates: [Float] = Array(repeating: 0, count: n)
        var size = 0, count = 0, atOnce = false
        if case .last(let w) = d.scope {
            let window = max(0, p - w + 1)...p
            size = window.count
            for f in 0..<n {
                aggregates[f] = d.aggregate == .mean
                    ? Float(window.reduce(0.0) { $0 + Double(values[f][$1]) } / Double(size))
                    : window.map { values[f][$0] }.max() ?? -.infinity
            }
            count = window.count { holdsCombined($0) }
            atOnce = count > 0
        } else {
            guard inScope(p) else { return }
            inScope += 1
            for f in 0..<n {
                maxSoFar[f] = max(maxSoFar[f], values[f][p])
                sums[f] += Double(values[f][p])
            }
            if combined { holdingCount += 1; anyAtOnce = true }
            size = inScope
            count = holdingCount
            atOnce = anyAtOnce
            for f in 0..<n { aggregates[f] = d.aggregate == .mean ? Float(sums[f] / Double(size)) : maxSoFar[f] }
        }
        peakCount = max(peakCount, count)
        if size >= d.minTokens || d.aggregate == .count {
            for f in 0..<n { peak[f] = max(peak[f] ?? -.infinity, aggregates[f]) }
        }
        guard firedAt == nil else { return }
        let fires: Bool
        switch d.aggregate {
        case .count: fires = count >= d.minTokens
        case .max: fires = size >= d.minTokens && atOnce
        case .mean:
            let each = (0..<n).map { aggregates[$0] >= rule.features[$0].threshold }
            fires = size >= d.minTokens && (rule.resolved.rule.watch.combine == .any ? each.contains(true) : !each.contains(false))
        }
        if fires { firedAt = p }
    }

    func result() -> RuleResult {
        RuleResult(rule: rule.id, severity: rule.rule.severity, fired: firedAt != nil, firedAt: firedAt,
                   aggregate: rule.detector.aggregate, minTokens: rule.detector.minTokens,
                   observations: rule.features.enumerated().map { f, feature in
                       .init(feature: feature.label, threshold: feature.threshold, value: peak[f])
                   },
                   count: peakCount, crossings: crossings, interventions: [])
    }
}
