// The audit runner with batching and shared prompts: several cases in flight at once, every
// generation of them (baselines and steered runs) decoded together by one `BatchGenerator`, and each
// case's prompt run once for all its runs up to the first position an intervention may edit (all of
// it when none may): its baseline, its steered run and its teacher-forced passes continue from
// copies of that one pass, each running the rest of the prompt itself.
//
// It computes what `run(_:index:interrupted:)` computes, bit for bit: a batched decode step gives
// each sequence the bits of its own step, a fork continues exactly as the session it copies, a
// prompt split at the fork runs as the same two calls in both paths (`promptPlan`), and the
// recorders of all runs read the shared pass as each would read its own (none of them edits it,
// which the plan checks before sharing and the recorders confirm after). So a report is the same at
// any batch size; only its timings differ.

import Foundation
import ProbityLM

extension AuditRunner {
    /// Runs `cases` (with their suite indices), up to `width` at a time, in order of index. Returns the
    /// results of the cases before the first one an interruption cut short (all of them when none
    /// was), and whether every case finished. `started` is called as each case begins, `finishedCase` with
    /// each result as its case finishes (in the order they finish).
    public func run(_ cases: [(auditCase: AuditCase, index: Int)], width: Int, interrupted: () -> Bool,
                    started: (AuditCase) -> Void = { _ in },
                    finishedCase: (CaseResult) -> Void = { _ in }) throws -> (results: [CaseResult], complete: Bool) {
        precondition(width >= 1, "a batch holds at least one case")
        let generator = BatchGenerator(model: loaded.model)
        var pending = cases[...]
        var inFlight: [InFlightCase] = []
        var finished: [Int: CaseResult] = [:]
        var cut = false
        while !cut {
            while inFlight.count < width, let next = pending.first {
                if interrupted() { cut = true; break }
                pending = pending.dropFirst()
                started(next.auditCase)
                inFlight.append(try start(next.auditCase, index: next.index, on: generator))
            }
            if cut || inFlight.isEmpty { break }
            let ended = Set(try generator.step(interrupted: interrupted))
            var still: [InFlightCase] = []
            for f in inFlight {
                f.collect(ended, from: generator)
                guard f.generationsDone else { still.append(f); continue }
                if let result = try finish(f, interrupted: interrupted) {
                    finished[f.index] = result
                    finishedCase(result)
                } else {
                    cut = true
                }
            }
            inFlight = still
        }
        // A report holds the cases before the first that did not finish, as a sequential run's does.
        var results: [CaseResult] = []
        for c in cases {
            guard let r = finished[c.index] else { break }
            results.append(r)
        }
        return (results, results.count == cases.count)
    }

    /// Unsteered generations of `cases`' prompts with detection attached (what a case's baseline
    /// run is), up to `width` decoding together; with `width` 1 one after another. Results in order;
    /// nil when interrupted before all finished. `started` is called as each begins.
    func baselines(_ cases: [AuditCase], width: Int, interrupted: () -> Bool,
                   started: (AuditCase) -> Void = { _ in }) throws -> [RunResult]? {
        precondition(width >= 1, "a batch holds at least one sequence")
        if width == 1 {
            var out: [RunResult] = []
            for c in cases {
                if interrupted() { return nil }
                started(c)
                let (_, tokens, stops) = try prompt(for: c)
                guard let run = try generate(tokens, stops: stops, steer: false, interrupted: interrupted) else { return nil }
                out.append(run)
            }
            return out
        }
        let model = loaded.model
        let generator = BatchGenerator(model: model)
        var pending = cases.enumerated()[...]
        var running: [Int: (index: Int, recorder: any RuleRecorder)] = [:]
        var out = [RunResult?](repeating: nil, count: cases.count)
        while true {
            while running.count < width, let (i, c) = pending.first {
                if interrupted() { return nil }
                pending = pending.dropFirst()
                started(c)
                let runs = try caseRuns(for: c)
                let recorder = try rules.instrument(model: model.info, steer: false)
                running[try startRun(runs, recorder, on: generator)] = (i, recorder)
            }
            if running.isEmpty { break }
            for id in try generator.step(interrupted: interrupted) {
                guard let (i, recorder) = running.removeValue(forKey: id), let r = generator.result(id) else { continue }
                guard let run = Self.result(of: r, recorder: recorder) else { return nil }
                out[i] = run
            }
        }
        return out.count == cases.count && !out.contains { $0 == nil } ? out.compactMap { $0 } : nil
    }

    /// A case whose generations are in the batch.
    final class InFlightCase {
        let auditCase: AuditCase
        let index: Int
        let runs: CaseRuns
        let baseline: any RuleRecorder
        let steered: (any RuleRecorder)?
        /// The shared prompt pass, with the recorders of the teacher-forced passes that read it;
        /// nil when the runs could not share it.
        let shared: SharedPrompt?
        var pendingIDs: [Int: Bool]  // generator id → is the steered run
        var baselineRun: GenerationResult?
        var steeredRun: GenerationResult?

        init(auditCase: AuditCase, index: Int, runs: CaseRuns, baseline: any RuleRecorder, steered: (any RuleRecorder)?,
             shared: SharedPrompt?, pendingIDs: [Int: Bool]) {
            self.auditCase = auditCase
            self.index = index
            self.runs = runs
            self.baseline = baseline
            self.steered = steered
            self.shared = shared
            self.pendingIDs = pendingIDs
        }

        var generationsDone: Bool { pendingIDs.isEmpty }

        func collect(_ ended: Set<Int>, from generator: BatchGenerator) {
            for (id, isSteered) in pendingIDs where ended.contains(id) {
                guard let r = generator.result(id) else { continue }
                if isSteered { steeredRun = r } else { baselineRun = r }
                pendingIDs[id] = nil
            }
        }
    }

    /// A case's prompt run once, all of it or the positions before its fork: the session holding
    /// them, the last position's logits when it holds the whole prompt, and the recorders of the
    /// teacher-forced passes (the unsteered pass's decisions; every rule steering; each intervening
    /// rule alone), which read it along with the generations' recorders.
    struct SharedPrompt {
        var session: InferenceSession
        /// Nil when the session holds only a prefix: each pass runs the rest itself.
        var logits: [Float]?
        var decisions: (any RuleRecorder)?
        var all: any RuleRecorder
        var alone: [String: any RuleRecorder]

        func continued(_ tokens: [Int], capacity: Int, hooks: HookSet?) throws -> (InferenceSession, [Float]) {
            try AuditRunner.continued(session, logits, tokens, capacity: capacity, hooks: hooks)
        }
    }

    /// A copy of `shared` (a pass of all of the prompt `tokens`, whose last position's logits are
    /// `logits`, or of a prefix, `logits` nil) with room for `capacity` positions, once it has run the
    /// rest of the prompt with `hooks`; and its last position's logits.
    static func continued(_ shared: InferenceSession, _ logits: [Float]?, _ tokens: [Int], capacity: Int,
                          hooks: HookSet?) throws -> (InferenceSession, [Float]) {
        let session = try shared.fork(capacity: capacity)
        if let logits { return (session, logits) }
        let rest = Array(tokens.dropFirst(session.length))
        return (session, try session.forward(rest, origins: nil, hooks: hooks, logits: .last))
    }

    /// Runs a case's prompt (once for all its runs, or its positions before the first an
    /// intervention may edit) and puts its generations in the batch.
    func start(_ c: AuditCase, index: Int, on generator: BatchGenerator) throws -> InFlightCase {
        let model = loaded.model
        let runs = try caseRuns(for: c)
        let intervenes = rules.infos.contains(where: \.intervenes)
        let shareUpTo: Int? = switch runs.plan {
        case .shared: runs.tokens.count
        case .fork(let at): at
        case .separate: nil
        }
        if let shareUpTo, let shared = try startShared(c, index: index, runs, upTo: shareUpTo, intervenes: intervenes,
                                                       on: generator) {
            return shared
        }
        // Each run runs the prompt itself.
        let baseline = try rules.instrument(model: model.info, steer: false)
        let steered = intervenes ? try rules.instrument(model: model.info, steer: true) : nil
        var ids: [Int: Bool] = [:]
        for (recorder, isSteered) in [(baseline, false)] + (steered.map { [($0, true)] } ?? []) {
            ids[try startRun(runs, recorder, on: generator)] = isSteered
        }
        return InFlightCase(auditCase: c, index: index, runs: runs, baseline: baseline, steered: steered, shared: nil,
                            pendingIDs: ids)
    }

    /// A case's prompt, checked to leave room for a token, with the generation settings its runs share.
    func caseRuns(for c: AuditCase) throws -> CaseRuns {
        let startedAt = ContinuousClock().now
        let (text, tokens, stops) = try prompt(for: c)
        try checkRoom(tokens)
        return CaseRuns(text: text, tokens: tokens, options: generationOptions(stops: stops),
                        capacity: min(tokens.count + settings.maxTokens, loaded.model.info.contextLength),
                        plan: promptPlan(length: tokens.count), startedAt: startedAt)
    }

    /// Runs the prompt in a session of its own with `recorder` attached (split as every run of the
    /// case splits it) and puts the generation in the batch; returns its id.
    func startRun(_ runs: CaseRuns, _ recorder: any RuleRecorder, on generator: BatchGenerator) throws -> Int {
        let session = try loaded.model.makeSession(capacity: runs.capacity)
        let logits = try session.forward(runs.tokens, hooks: recorder.hooks, split: runs.split)
        return try runs.add(session, logits, recorder, to: generator, tokenizer: loaded.tokenizer)
    }

    /// What the runs of a case share before they start.
    struct CaseRuns {
        var text: String
        var tokens: [Int]
        var options: GenerationOptions
        /// Each generation's session holds this many positions, as `Generator`'s does.
        var capacity: Int
        /// How its runs run the prompt (`promptPlan`).
        var plan: PromptPlan
        var startedAt: ContinuousClock.Instant

        /// Where each run splits the prompt (nil: one call).
        var split: Int? {
            if case .fork(let at) = plan { return at }
            return nil
        }

        /// Puts a generation whose session has run the prompt in the batch; returns its id.
        func add(_ session: InferenceSession, _ logits: [Float], _ recorder: any RuleRecorder,
                 to generator: BatchGenerator, tokenizer: Tokenizer) throws -> Int {
            let stream = try GenerationStream(prompt: tokens, options: options, tokenizer: tokenizer, halted: recorder.shouldStop)
            return generator.add(session: session, logits: logits, stream: stream, hooks: recorder.hooks,
                                 prefillSeconds: (ContinuousClock().now - startedAt).seconds,
                                 shouldStop: { recorder.shouldStop })
        }
    }

    /// Runs the prompt's positions before `upTo` (all of it, or up to its fork) once with every
    /// run's recorder reading them, then starts the generations from copies of that pass, each
    /// running the rest of the prompt with its own recorder. Nil, having added nothing to the
    /// batch, if a recorder edited the shared positions after all (the rules said none could): the
    /// caller then runs the prompt once per run.
    private func startShared(_ c: AuditCase, index: Int, _ runs: CaseRuns, upTo: Int, intervenes: Bool,
                             on generator: BatchGenerator) throws -> InFlightCase? {
        let info = loaded.model.info
        let baseline = try rules.instrument(model: info, steer: false)
        var readers: [any RuleRecorder] = [baseline]
        var steered: (any RuleRecorder)?
        var all: (any RuleRecorder)?
        var decisions: (any RuleRecorder)?
        var alone: [String: any RuleRecorder] = [:]
        if intervenes {
            let s = try rules.instrument(model: info, steer: true), a = try rules.instrument(model: info, steer: true)
            steered = s
            all = a
            readers += [s, a]
            decisions = try rules.instrumentDecisions(model: info)
            if let decisions { readers.append(decisions) }
            for (rule, _) in rules.steering where measuresRulesAlone {
                let r = try rules.instrument(model: info, steer: true, only: [rule])
                alone[rule] = r
                readers.append(r)
            }
        }
        let length = runs.tokens.count
        // Room for the whole prompt, so its chunks are those of a session that runs all of it.
        let session = try loaded.model.makeSession(capacity: length)
        let hooks = HookSet.merging(readers.map(\.hooks))
        let logits: [Float]?
        if upTo < length {
            // The first part of the prompt's one step, as every run of the case runs it.
            _ = try session.forward(Array(runs.tokens[..<upTo]), origins: nil, hooks: hooks, logits: .none, stepEnd: length)
            logits = nil
        } else {
            logits = try session.forward(runs.tokens, origins: nil, hooks: hooks, logits: .last)
        }
        guard readers.allSatisfy({ $0.applications.values.allSatisfy { $0 == 0 } }) else { return nil }
        var ids: [Int: Bool] = [:]
        let (b, bLogits) = try Self.continued(session, logits, runs.tokens, capacity: runs.capacity, hooks: baseline.hooks)
        ids[try runs.add(b, bLogits, baseline, to: generator, tokenizer: loaded.tokenizer)] = false
        var shared: SharedPrompt?
        if let steered, let all {
            let (s, sLogits) = try Self.continued(session, logits, runs.tokens, capacity: runs.capacity, hooks: steered.hooks)
            ids[try runs.add(s, sLogits, steered, to: generator, tokenizer: loaded.tokenizer)] = true
            shared = SharedPrompt(session: session, logits: logits, decisions: decisions, all: all, alone: alone)
        }
        return InFlightCase(auditCase: c, index: index, runs: runs, baseline: baseline, steered: steered, shared: shared,
                            pendingIDs: ids)
    }

    /// A case whose generations ended: its results and the effects of its interventions (measured
    /// from the shared prompt when there is one). Nil when a generation was interrupted.
    func finish(_ f: InFlightCase, interrupted: () -> Bool) throws -> CaseResult? {
        guard let b = f.baselineRun, let baseline = Self.result(of: b, recorder: f.baseline) else { return nil }
        var steered: RunResult?
        var effects: InterventionEffects?
        if let recorder = f.steered {
            guard let s = f.steeredRun, let run = Self.result(of: s, recorder: recorder) else { return nil }
            steered = run
            let measured: InterventionEffects?
            if let shared = f.shared {
                measured = try measure(prompt: f.runs.tokens, steered: run, interrupted: interrupted) { pass, path in
                    var recorder: (any RuleRecorder)?
                    switch pass {
                    case .unsteered: recorder = shared.decisions
                    case .steered(nil): recorder = shared.all
                    case .steered(let rule?): recorder = shared.alone[rule]
                    }
                    let (session, first) = try shared.continued(path.prompt, capacity: path.length, hooks: recorder?.hooks)
                    return (first + (try path.continue(session, hooks: recorder?.hooks)), recorder)
                }
            } else {
                measured = try measure(prompt: f.runs.tokens, steered: run, interrupted: interrupted)
            }
            guard let measured else { return nil }
            effects = measured
        }
        return CaseResult(index: f.index, auditCase: f.auditCase, prompt: f.runs.text, promptTokens: f.runs.tokens,
                          baseline: baseline, steered: steered, effects: effects,
                          seconds: (ContinuousClock().now - f.runs.startedAt).seconds)
    }
}
