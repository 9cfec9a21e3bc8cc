// The audit runner: for each case a baseline run with detection only, a steered run with the
// rules' interventions, and the interventions' effects measured along the steered tokens by
// teacher-forced passes: one without interventions (the baseline distributions), one with every
// rule steering, then one per intervening rule with only its interventions when there are two or
// more (KL(baseline ‖ steered) per position, top-1 changes, logit deltas of the tokens a rule names).
// The unsteered pass also decides every rule's edits without making them; a pass whose rules
// decided none there would compute the same bits, and is not run.

import Foundation
import ProbityFeatures
import ProbityLM
import ProbityRules
import ProbityTensor

/// One generation with the rules attached.
public struct RunResult: Sendable {
    public var tokens: [Int]
    public var text: String
    /// Why it ended (the report's `AuditReport.FinishReason` names it).
    public var finishReason: FinishReason
    public var outcomes: [RuleOutcome]
    public var applications: [String: Int]
    public var features: [Int: [(pack: String, relativeError: Double, top: [ActiveLatentSummary])]]
    /// Per SAE pack: the FVU sums over the run's prompt and response positions.
    public var reconstruction: [PackTally]
}

/// One SAE pack's FVU sums over a run's positions (`countsForFVU`): those of the prompt, and those of
/// the response (the generated tokens that went through the model).
public struct PackTally: Sendable, Equatable {
    public var pack: String
    public var prompt: ReconstructionTally
    public var response: ReconstructionTally
}

/// An SAE latent and its activation, as reports show them.
public struct ActiveLatentSummary: Sendable, Equatable {
    public var index: Int
    public var activation: Double
}

/// The effect of the interventions along the steered token path.
public struct InterventionEffects: Sendable {
    /// KL(baseline ‖ steered) in nats at each generated position of the steered path.
    public var kl: [Double]
    /// Fraction of those positions whose most likely token differs.
    public var top1ChangedFraction: Double
    /// The tokens whose probability the interventions together moved most.
    public var topShifts: TopShifts
    /// Per rule with interventions: steered − baseline logit of each token its `effects` names, at
    /// each generated position, with every rule steering.
    public var logitDeltas: [String: [String: [Double]]]
    /// Per rule with interventions: the same path with only that rule's interventions attached.
    public var alone: [String: RuleEffect]
}

/// What one rule's interventions alone do along the steered path (one teacher-forced pass).
public struct RuleEffect: Sendable {
    /// KL(baseline ‖ this rule alone) in nats at each generated position.
    public var kl: [Double]
    public var top1ChangedFraction: Double
    /// The tokens whose probability this rule's interventions alone moved most.
    public var topShifts: TopShifts
    /// Per token the rule names: this rule alone − baseline logit at each generated position.
    public var logitDeltas: [String: [Double]]
    /// Positions its interventions edited in that pass.
    public var positionsEdited: Int
    /// Whether the rule fires in that pass.
    public var fires: Bool
}

/// The tokens whose probability a pass moved most against the baseline, whatever tokens the rules
/// name: mean over the path's positions of the change in probability, with the mean change in
/// logit beside it.
public struct TopShifts: Sendable, Equatable {
    public struct Shift: Sendable, Equatable {
        public var token: Int
        /// Mean over positions of steered − baseline probability.
        public var probabilityDelta: Double
        /// Mean over positions of steered − baseline logit.
        public var logitDelta: Double
    }

    /// How many tokens each list keeps.
    public static let count = 5

    /// Largest mean rise first (only tokens that rose).
    public var raised: [Shift] = []
    /// Largest mean fall first (only tokens that fell).
    public var lowered: [Shift] = []

    public init() {}

    /// From each row's probability change (steered − baseline, one per token) and its two logit
    /// rows; ties go to the lower token id.
    /// A row whose `dp` is empty is one where the pass equals the baseline: it changes nothing
    /// (adding its zeros would leave every sum's bits as they are) but counts in the means.
    init(rows: [(dp: [Double], base: [Float], steered: [Float])], k: Int) {
        guard let vocab = rows.first(where: { !$0.dp.isEmpty })?.dp.count else { return }
        var sum = [Double](repeating: 0, count: vocab)
        for r in rows where r.dp.count == vocab {
            for i in 0..<vocab { sum[i] += r.dp[i] }
        }
        let m = Double(rows.count)
        func shift(_ i: Int) -> Shift {
            let dl = rows.reduce(0.0) { acc, r in
                i < r.base.count && i < r.steered.count ? acc + Double(r.steered[i]) - Double(r.base[i]) : acc
            }
            return Shift(token: i, probabilityDelta: sum[i] / m, logitDelta: dl / m)
        }
        let up = sum.indices.filter { sum[$0] > 0 }.sorted { sum[$0] != sum[$1] ? sum[$0] > sum[$1] : $0 < $1 }
        let down = sum.indices.filter { sum[$0] < 0 }.sorted { sum[$0] != sum[$1] ? sum[$0] < sum[$1] : $0 < $1 }
        raised = up.prefix(k).map(shift)
        lowered = down.prefix(k).map(shift)
    }
}

/// Everything measured for one case.
public struct CaseResult: Sendable {
    public var index: Int
    public var auditCase: AuditCase
    public var prompt: String
    public var promptTokens: [Int]
    public var baseline: RunResult
    public var steered: RunResult?
    public var effects: InterventionEffects?
    public var seconds: Double
}

/// Runs a suite's cases on a loaded model with compiled rules.
public struct AuditRunner {
    public let loaded: LoadedModel
    public let rules: any AuditRules
    public let settings: AuditSettings

    public init(loaded: LoadedModel, rules: any AuditRules, settings: AuditSettings) {
        self.loaded = loaded
        self.rules = rules
        self.settings = settings
    }

    /// The prompt text and tokens of a case.
    public func prompt(for c: AuditCase) throws -> (String, [Int], stops: [String]) {
        switch c.input {
        case .text(let t):
            return (t, loaded.tokenizer.encode(t, addSpecial: true, parseSpecial: true), [])
        case .messages(let messages):
            let format = try Self.chatFormat(settings.chatFormat, of: loaded)
            let (text, tokens) = try Self.chatPrompt(messages, format: format, tokenizer: loaded.tokenizer)
            return (text, tokens, [format.endOfTurn])
        }
    }

    /// The chat format a suite or eval setting names: `auto` is the model's own template.
    static func chatFormat(_ setting: String, of loaded: LoadedModel) throws -> ChatFormat {
        try ChatTemplate.format(for: loaded.file, override: setting == "auto" ? nil : setting)
    }

    /// A conversation rendered with the generation prompt, and its tokens: what the model reads
    /// before its reply, in audits and evals alike.
    static func chatPrompt(_ messages: [ChatMessage], format: ChatFormat, tokenizer: Tokenizer) throws -> (text: String, tokens: [Int]) {
        let chat = try format.renderChat(messages, addGenerationPrompt: true)
        return (chat.text, tokenizer.encode(chat, addSpecial: true))
    }

    /// Runs one case. `interrupted` is polled between tokens; when it returns true the case is
    /// abandoned (nil).
    public func run(_ c: AuditCase, index: Int, interrupted: () -> Bool) throws -> CaseResult? {
        let clock = ContinuousClock()
        let t0 = clock.now
        let (text, tokens, stops) = try prompt(for: c)
        guard let baseline = try generate(tokens, stops: stops, steer: false, interrupted: interrupted) else { return nil }
        var steered: RunResult?
        var effects: InterventionEffects?
        if rules.infos.contains(where: \.intervenes) {
            guard let s = try generate(tokens, stops: stops, steer: true, interrupted: interrupted) else { return nil }
            steered = s
            guard let e = try measure(prompt: tokens, steered: s, interrupted: interrupted) else { return nil }
            effects = e
        }
        return CaseResult(index: index, auditCase: c, prompt: text, promptTokens: tokens, baseline: baseline, steered: steered,
                          effects: effects, seconds: (clock.now - t0).seconds)
    }

    /// How a case's runs run a prompt of `length` tokens, from the first position the rules'
    /// interventions may edit there.
    enum PromptPlan: Equatable {
        /// No intervention edits the prompt: the runs may share one pass of all of it.
        case shared
        /// Positions before `at` are edited by none (`PromptSplit.point`): every run, batched or
        /// not, runs the prompt as two calls split there, one step, so runs may share the first.
        case fork(at: Int)
        /// Each run runs the whole prompt itself in one call.
        case separate
    }

    func promptPlan(length: Int) -> PromptPlan {
        guard rules.infos.contains(where: \.intervenes),
              let first = rules.firstEditablePromptPosition(length: length) else { return .shared }
        return PromptSplit.point(length: length, first: first).map { .fork(at: $0) } ?? .separate
    }

    /// Where every run of a case with this prompt splits it (nil: it runs in one call).
    func promptSplit(_ prompt: [Int]) -> Int? {
        if case .fork(let at) = promptPlan(length: prompt.count) { return at }
        return nil
    }

    /// One generation with the rules attached (and with `steer`, their interventions and stops).
    /// Nil when interrupted between tokens.
    func generate(_ prompt: [Int], stops: [String], steer: Bool, interrupted: () -> Bool) throws -> RunResult? {
        let model = loaded.model
        try checkRoom(prompt)
        let recorder = try rules.instrument(model: model.info, steer: steer)
        let run = try Generator(model: model, tokenizer: loaded.tokenizer)
            .generate(prompt: prompt, options: generationOptions(stops: stops), hooks: recorder.hooks,
                      promptSplit: promptSplit(prompt), shouldStop: { recorder.shouldStop }, interrupted: interrupted)
        return Self.result(of: run, recorder: recorder)
    }

    /// A case must leave room for at least one generated token.
    func checkRoom(_ prompt: [Int]) throws {
        let context = loaded.model.info.contextLength
        guard prompt.count < context else { throw ModelError.contextOverflow(needed: prompt.count + 1, capacity: context) }
    }

    /// The suite's generation settings, with a chat format's end-of-turn as a stop string.
    func generationOptions(stops: [String]) -> GenerationOptions {
        let sampling = SamplingOptions(temperature: Float(settings.temperature), topP: Float(settings.topP), seed: settings.seed)
        return GenerationOptions(maxTokens: settings.maxTokens, sampling: sampling, stopStrings: stops)
    }

    /// What a report keeps of a generation and of the rules' recorder that watched it; nil when it
    /// was interrupted.
    public static func result(of run: GenerationResult, recorder: any RuleRecorder) -> RunResult? {
        if run.finishReason == .interrupted { return nil }
        let features = recorder.featureRecords.mapValues { rows in
            rows.map { (pack: $0.pack, relativeError: $0.relativeError, top: $0.top.map { ActiveLatentSummary(index: $0.index, activation: Double($0.activation)) }) }
        }
        // Rules judge every position that went through the model.
        return RunResult(tokens: run.tokens, text: run.text, finishReason: run.finishReason,
                         outcomes: recorder.evaluate(length: run.positions),
                         applications: recorder.applications, features: features, reconstruction: recorder.reconstruction)
    }

    /// KL(baseline ‖ steered) and top-1 changes along the steered path: the baseline and steered
    /// distributions come from teacher-forced passes of prompt + steered tokens, without and with
    /// every rule's interventions. Then per rule with interventions, one more pass along the same
    /// path with only that rule's interventions gives its own effect (when one rule has
    /// interventions, the second pass is that one already). Nil when interrupted between
    /// passes. Each pass runs as generation does: the prompt (the first row of logits is its last
    /// position's), then the generated tokens in one more call.
    func measure(prompt: [Int], steered: RunResult, interrupted: () -> Bool) throws -> InterventionEffects? {
        try measure(prompt: prompt, steered: steered, interrupted: interrupted) { pass, path in
            switch pass {
            case .unsteered:
                let decisions = try rules.instrumentDecisions(model: loaded.model.info)
                return (try teacherForced(path, hooks: decisions?.hooks), decisions)
            case .steered(let only):
                let recorder = try rules.instrument(model: loaded.model.info, steer: true, only: only.map { [$0] })
                return (try teacherForced(path, hooks: recorder.hooks), recorder)
            }
        }
    }

    /// Whether `measure` runs a pass per steering rule alone. With one rule steering, its pass alone
    /// makes the same edits as the pass with every rule's (the others only read), so that pass
    /// stands for it instead of running again.
    var measuresRulesAlone: Bool { rules.steering.count > 1 }

    /// A teacher-forced pass of `measure`: without interventions, or with every rule's (`only` nil)
    /// or one rule's.
    enum ForcedPass {
        /// Without interventions; its recorder, when the rules give one, decides every rule's edits
        /// without making them (`AuditRules.instrumentDecisions`).
        case unsteered
        case steered(only: String?)
    }

    /// `measure` with its passes run by `run`: a pass's logits from the prompt's last position on,
    /// and the recorder of its rules (for the unsteered pass, the decisions recorder or nil).
    ///
    /// A pass that would compute what the unsteered pass computed is not run again: a rule for
    /// which the decisions counted no edit along the path would edit nothing in a pass of its own
    /// (up to its first edit it sees the unsteered activations, and there is none), so that pass
    /// is the unsteered one, bit for bit, and so is the pass with every rule when none of them
    /// decided an edit. The rule's verdict there is the decisions recorder's.
    func measure(prompt: [Int], steered: RunResult, interrupted: () -> Bool,
                 run: (ForcedPass, TeacherForcedPath) throws -> (logits: [Float], recorder: (any RuleRecorder)?)) throws -> InterventionEffects? {
        // Each generated token was sampled from one row of logits.
        let m = steered.tokens.count
        let steering = rules.steering
        guard m > 0 else {
            let none = RuleEffect(kl: [], top1ChangedFraction: 0, topShifts: TopShifts(), logitDeltas: [:], positionsEdited: 0, fires: false)
            return InterventionEffects(kl: [], top1ChangedFraction: 0, topShifts: TopShifts(), logitDeltas: [:],
                                       alone: Dictionary(uniqueKeysWithValues: steering.map { ($0.rule, none) }))
        }
        // The steered path up to its last generated position; that position's logits choose the
        // token after it, so the last sampled token itself is not run. Row j of a pass's logits is
        // what the j-th generated token was sampled from.
        let path = TeacherForcedPath(prompt: prompt, generated: Array(steered.tokens.prefix(m - 1)))
        let (base, decisions) = try run(.unsteered, path)
        let decided = decisions?.applications
        func editsNothing(_ rule: String) -> Bool { decided.map { ($0[rule] ?? 0) == 0 } ?? false }
        let vocab = base.count / m
        func row(_ all: [Float], _ j: Int) -> ArraySlice<Float> { all[(j * vocab)..<((j + 1) * vocab)] }
        let baseRows = (0..<m).map { Array(row(base, $0)) }
        let baseline = Self.distributions(baseRows, pool: loaded.pool)
        // Every rule steering, along the same path in the same kind of pass as the baseline rows:
        // where no intervention edits a position the two passes are the same computation and
        // agree to the bit, where decode's one-token steps would differ in rounding.
        let (steeredAll, allRecorder) = steering.allSatisfy({ editsNothing($0.rule) })
            ? (base, decisions) : try run(.steered(only: nil), path)
        let steeredRows = (0..<m).map { Array(row(steeredAll, $0)) }
        let combined = Self.compare(baseline, base: baseRows, steeredRows, pool: loaded.pool)
        var deltas: [String: [String: [Double]]] = [:]
        for (rule, tokens) in steering {
            deltas[rule] = Self.deltas(tokens, baseRows, steeredRows)
        }
        var alone: [String: RuleEffect] = [:]
        for (rule, tokens) in steering {
            if interrupted() { return nil }
            let (all, recorder) = !measuresRulesAlone ? (steeredAll, allRecorder)
                : editsNothing(rule) ? (base, decisions) : try run(.steered(only: rule), path)
            let rows = (0..<m).map { Array(row(all, $0)) }
            let c = Self.compare(baseline, base: baseRows, rows, pool: loaded.pool)
            alone[rule] = RuleEffect(kl: c.kl, top1ChangedFraction: c.top1, topShifts: c.shifts, logitDeltas: Self.deltas(tokens, baseRows, rows),
                                     positionsEdited: recorder?.applications[rule] ?? 0,
                                     fires: recorder?.evaluate(length: path.length).contains { $0.rule == rule && $0.fired } ?? false)
        }
        return InterventionEffects(kl: combined.kl, top1ChangedFraction: combined.top1, topShifts: combined.shifts,
                                   logitDeltas: deltas, alone: alone)
    }

    /// The logits of `path` from its prompt's last position on, with `hooks` attached: the prompt as
    /// a generation runs it (one call, or two split where the case's runs fork), then the generated
    /// tokens (as `.generated`, so `response` scopes and positions mean what they mean in
    /// generation) in one more.
    func teacherForced(_ path: TeacherForcedPath, hooks: HookSet?) throws -> [Float] {
        let session = try loaded.model.makeSession(capacity: path.length)
        let first = try session.forward(path.prompt, hooks: hooks, split: promptSplit(path.prompt))
        return try first + path.continue(session, hooks: hooks)
    }

    /// A teacher-forced pass's tokens: a case's prompt and the steered tokens fed back.
    struct TeacherForcedPath {
        var prompt: [Int]
        var generated: [Int]
        var length: Int { prompt.count + generated.count }

        /// Runs the generated tokens on `session`, which holds the prompt: their logits, one row each.
        func `continue`(_ session: InferenceSession, hooks: HookSet?) throws -> [Float] {
            guard !generated.isEmpty else { return [] }
            return try session.forward(generated, origins: [TokenOrigin](repeating: .generated, count: generated.count),
                                       hooks: hooks, logits: .all)
        }
    }

    /// A row of baseline logits as float64 log-probabilities and probabilities (those of tokens
    /// with log-probability above −80; the rest add nothing to a KL), and its most likely token.
    struct Distribution {
        var logits: Int
        var logp: [Double]
        /// exp(logp), every token.
        var probabilities: [Double]
        /// The tokens with logp above −80 and their probabilities (the KL's terms).
        var p: [(index: Int, p: Double)]
        var argmax: Int
    }

    /// Each row's distribution, rows across `pool` (each is computed alone, so the same at any
    /// thread count).
    static func distributions(_ rows: [[Float]], pool: ThreadPool) -> [Distribution] {
        var out = [Distribution?](repeating: nil, count: rows.count)
        out.withUnsafeMutableBufferPointer { slots in
            pool.parallelFor(rows.count) { j in
                let lp = logSoftmax(rows[j])
                let probabilities = lp.map { exp($0) }
                var p: [(index: Int, p: Double)] = []
                for i in lp.indices where lp[i] > -80 { p.append((i, probabilities[i])) }
                slots[j] = Distribution(logits: rows[j].count, logp: lp, probabilities: probabilities, p: p, argmax: argmax(rows[j]))
            }
        }
        return out.compactMap { $0 }
    }

    /// How a pass differs from the baseline rows along one path.
    struct Comparison {
        /// KL(baseline ‖ pass) in nats per row.
        var kl: [Double]
        /// Fraction of rows whose most likely token differs.
        var top1: Double
        /// The tokens whose probability moved most, mean over the rows.
        var shifts: TopShifts
    }

    /// KL(p ‖ q) per row pair, the fraction of rows whose argmax differs, and the `k` tokens whose
    /// probability rose and fell most on average; rows across `pool`, summed in row order (so the
    /// same at any thread count). `base` are the raw logits `p` came from. A row of `q` with the
    /// bits of its `base` row is not worked through: its KL is 0, its argmax the same and every
    /// probability change 0, which is what the arithmetic gives (x − x is +0 for every x here).
    static func compare(_ p: [Distribution], base: [[Float]], _ q: [[Float]], pool: ThreadPool, k: Int = TopShifts.count) -> Comparison {
        let n = min(p.count, base.count, q.count)
        let rows = (0..<n).filter { p[$0].logits == q[$0].count && base[$0].count == q[$0].count }
        var kl = [Double](repeating: 0, count: rows.count)
        var changed = [Bool](repeating: false, count: rows.count)
        var dp = [[Double]](repeating: [], count: rows.count)
        kl.withUnsafeMutableBufferPointer { klSlots in
            changed.withUnsafeMutableBufferPointer { changedSlots in
                dp.withUnsafeMutableBufferPointer { dpSlots in
                    pool.parallelFor(rows.count) { j in
                        let (a, b) = (p[rows[j]], q[rows[j]])
                        if sameBits(b, base[rows[j]]) { return }  // kl 0, unchanged, dp empty (none)
                        let lq = logSoftmax(b)
                        var d = 0.0
                        for (i, pi) in a.p { d += pi * (a.logp[i] - lq[i]) }
                        klSlots[j] = max(0, d)
                        changedSlots[j] = a.argmax != argmax(b)
                        dpSlots[j] = zip(lq, a.probabilities).map { exp($0) - $1 }
                    }
                }
            }
        }
        let n1 = changed.filter { $0 }.count
        return Comparison(kl: kl, top1: kl.isEmpty ? 0 : Double(n1) / Double(kl.count),
                          shifts: TopShifts(rows: rows.indices.map { (dp[$0], base[rows[$0]], q[rows[$0]]) }, k: k))
    }

    /// Per token: steered − baseline logit at each row.
    static func deltas(_ tokens: [(text: String, id: Int)], _ base: [[Float]], _ steered: [[Float]]) -> [String: [Double]] {
        var out: [String: [Double]] = [:]
        for t in tokens {
            out[t.text] = zip(base, steered).compactMap { b, s in
                t.id < b.count && t.id < s.count ? Double(s[t.id]) - Double(b[t.id]) : nil
            }
        }
        return out
    }

    /// Whether two rows hold the same bits.
    static func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                guard let p = x.baseAddress, let q = y.baseAddress else { return x.count == y.count }
                return memcmp(p, q, x.count) == 0
            }
        }
    }

    static func logSoftmax(_ x: [Float]) -> [Double] {
        let m = Double(x.max() ?? 0)
        let lse = log(x.reduce(0.0) { $0 + exp(Double($1) - m) }) + m
        return x.map { Double($0) - lse }
    }

    static func argmax(_ x: [Float]) -> Int {
        var best = 0
        for i in x.indices where x[i] > x[best] { best = i }
        return best
    }
}
