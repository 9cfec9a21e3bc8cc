// Batched audits compute what sequential ones do: the same report (timings aside) at every batch
// size, whether a case's runs share one pass of its prompt (interventions only on the response),
// share its positions before the first one an intervention may edit (`positions: {last: N}`) and
// fork there, or each run their own (an intervention that may edit the whole prompt), and an
// interruption keeps the cases before the first one it cut short, as a sequential run does. A
// suite's calibration answers batch too, with the same thresholds.

import Foundation
import ProbityAudit
import ProbityLM
import Testing

@Suite(.serialized) struct BatchedAuditTests {
    static func run(_ path: String, batchSize: Int, interrupted: @escaping () -> Bool = { false }) throws -> AuditReport {
        try Audit.run(suitePath: path, version: "test", failOn: .high, shard: (1, 1), threads: 2, batchSize: batchSize,
                      interrupted: interrupted, progress: { _ in })
    }

    /// The suite at `path` run one case at a time, after checking that each of `widths` writes the
    /// same report apart from timings.
    static func sameAtEveryWidth(_ path: String, widths: [Int]) throws -> AuditReport {
        let sequential = try run(path, batchSize: 1)
        let want = try AuditRunTests.stable(sequential)
        for width in widths {
            #expect(try AuditRunTests.stable(try run(path, batchSize: width)) == want, "batch size \(width)")
        }
        return sequential
    }

    static let fiveCases = AuditFixtures.threeCases + """
      - id: four
        messages: [{role: system, content: "Answer in one word."}, {role: user, content: "What colour is the sky?"}]
      - id: five
        text: "def add(a, b):"

    """

    /// A rules file of one rule that steers the positions `positions` admits once it fires.
    static func editingRule(id: String, description: String, positions: String?) -> String {
        let filter = positions.map { ", positions: \($0)" } ?? ""
        return """
        schema_version: 1
        packs:
          - {name: caa-sycophancy, path: \(AuditFixtures.repo)/packs/caa-sycophancy}
        rules:
          - id: \(id)
            description: \(description)
            severity: low
            watch: {direction: sycophancy}
            detect: {threshold: -100000, scope: all, aggregate: max}
            intervene:
              - {action: add, alpha: -4, trigger: after_fire\(filter)}

        """
    }

    /// A rule that steers from the first prompt token on (`positions` defaults to all).
    static let promptEditing = editingRule(id: "everywhere", description: "Steers every position once it fires.", positions: nil)

    /// A rule that steers the last 4 positions of the prompt (and then each generated one).
    static let tailEditing = editingRule(id: "tail", description: "Steers the end of the prompt once it fires.", positions: "{last: 4}")

    @Test(arguments: ["", "everywhere", "tail"])
    func everyBatchSizeWritesTheSameReport(promptEditing: String) throws {
        let dir = try AuditFixtures.scratch()
        var rules = "rules.yaml"
        if !promptEditing.isEmpty {
            try (promptEditing == "tail" ? Self.tailEditing : Self.promptEditing)
                .write(toFile: dir + "/editing.yaml", atomically: true, encoding: .utf8)
            rules = "rules.yaml, editing.yaml"
        }
        let path = try AuditFixtures.suite(in: dir, cases: Self.fiveCases, maxTokens: 6, rules: rules)
        // 2: cases join as others finish; 8: all at once.
        let sequential = try Self.sameAtEveryWidth(path, widths: [2, 8])
        #expect(sequential.cases.count == 5 && sequential.complete)
        #expect(sequential.cases.contains { ($0.effects?.interventions.first?.positionsEdited ?? 0) > 0 })
        if promptEditing == "tail" {
            // The chat cases' prompts are long enough to fork, the text cases' are not.
            let loaded = try LoadedModel.load("default", threads: 2)
            let suite = try AuditSuite.load(path: path)
            let runner = AuditRunner(loaded: loaded, rules: try AuditRuleSet(files: suite.ruleFiles, model: loaded),
                                     settings: suite.settings)
            let forks = try suite.cases.map { c in
                let n = try runner.prompt(for: c).1.count
                return PromptSplit.point(length: n, first: try #require(runner.rules.firstEditablePromptPosition(length: n)))
            }
            #expect(forks.contains { $0 != nil } && forks.contains { $0 == nil }, "\(forks)")
        }
    }

    /// Rules that count each distinct forward step their recorders see at `hook_embed` (a shared
    /// pass is one step, however many recorders read it), by the positions it ran.
    final class CountingRules: AuditRules {
        let inner: AuditRuleSet
        var steps: [UInt64: Range<Int>] = [:]
        init(_ inner: AuditRuleSet) { self.inner = inner }
        var infos: [RuleInfo] { inner.infos }
        var steering: [(rule: String, tokens: [(text: String, id: Int)])] { inner.steering }
        func firstEditablePromptPosition(length: Int) -> Int? { inner.firstEditablePromptPosition(length: length) }
        func instrument(model: ModelInfo, steer: Bool, only: Set<String>?) throws -> any RuleRecorder {
            let recorder = try inner.instrument(model: model, steer: steer, only: only)
            recorder.hooks.attach(at: .embed) { [self] acts in steps[acts.step] = acts.positions }
            return recorder
        }
    }

    /// Rules that count the forward steps their steering recorders see (the steered generation and
    /// the effects' passes with interventions), and give the unsteered pass its decisions recorder
    /// or, without `decides`, none (every pass then runs).
    final class PassCounting: AuditRules {
        let inner: AuditRuleSet
        let decides: Bool
        var steps: Set<UInt64> = []
        init(_ inner: AuditRuleSet, decides: Bool) {
            self.inner = inner
            self.decides = decides
        }
        var infos: [RuleInfo] { inner.infos }
        var steering: [(rule: String, tokens: [(text: String, id: Int)])] { inner.steering }
        func firstEditablePromptPosition(length: Int) -> Int? { inner.firstEditablePromptPosition(length: length) }
        func instrument(model: ModelInfo, steer: Bool, only: Set<String>?) throws -> any RuleRecorder {
            let recorder = try inner.instrument(model: model, steer: steer, only: only)
            if steer { recorder.hooks.attach(at: .embed) { [self] acts in steps.insert(acts.step) } }
            return recorder
        }
        func instrumentDecisions(model: ModelInfo) throws -> (any RuleRecorder)? {
            decides ? try inner.instrumentDecisions(model: model) : nil
        }
    }

    /// A rule gated on a detection that never holds decides no edit anywhere, so the effects do
    /// not run its pass alone (nor, when no rule edits, the pass with all of them): they take the
    /// unsteered pass for it. The effects are the same, bit for bit, as when every pass runs, one
    /// case at a time and batched, with fewer forward steps.
    @Test func passesThatWouldEditNothingAreNotRun() throws {
        let dir = try AuditFixtures.scratch()
        try """
        schema_version: 1
        packs:
          - {name: caa-sycophancy, path: \(AuditFixtures.repo)/packs/caa-sycophancy}
        rules:
          - id: gated
            description: Steers once a detection that never holds has held.
            severity: low
            watch: {direction: sycophancy}
            detect: {threshold: 100000, scope: all, aggregate: max}
            intervene: [{action: add, alpha: -8, trigger: after_fire}]
            effects: {tokens: [" Paris"]}

        """.write(toFile: dir + "/gated.yaml", atomically: true, encoding: .utf8)
        let loaded = try LoadedModel.load("default", threads: 2)
        // With a rule that edits (`always.fires`), and alone: then no rule edits at all.
        for rules in ["rules.yaml, gated.yaml", "gated.yaml"] {
            let path = try AuditFixtures.suite(in: dir, cases: AuditFixtures.threeCases, maxTokens: 5, rules: rules)
            let suite = try AuditSuite.load(path: path)
            var effects: [String: [InterventionEffects]] = [:]
            var steps: [String: Int] = [:]
            for decides in [false, true] {
                for width in [1, 8] {
                    let counting = PassCounting(try AuditRuleSet(files: suite.ruleFiles, model: loaded), decides: decides)
                    let runner = AuditRunner(loaded: loaded, rules: counting, settings: suite.settings)
                    let cases = suite.cases.enumerated().map { ($1, $0) }
                    let results = width == 1
                        ? try cases.map { try #require(try runner.run($0.0, index: $0.1, interrupted: { false })) }
                        : try runner.run(cases, width: width, interrupted: { false }).results
                    let key = "\(decides) \(width)"
                    effects[key] = try results.map { try #require($0.effects) }
                    steps[key] = counting.steps.count
                }
            }
            let want = try #require(effects["false 1"])
            for (key, got) in effects {
                #expect(got.count == want.count, "\(rules), \(key)")
                for (a, b) in zip(want, got) { Self.expectSame(a, b, "\(rules), \(key)") }
            }
            for e in want {
                #expect(e.alone["gated"]?.positionsEdited == 0 && e.alone["gated"]?.fires == false)
                #expect(e.alone["gated"]?.kl.allSatisfy { $0 == 0 } == true)
            }
            for width in [1, 8] {
                let all = try #require(steps["false \(width)"]), fewer = try #require(steps["true \(width)"])
                #expect(fewer < all, "\(rules) at width \(width): \(fewer) steps with decisions, \(all) without")
            }
        }
    }

    static func expectSame(_ a: InterventionEffects, _ b: InterventionEffects, _ what: String) {
        #expect(a.kl == b.kl && a.top1ChangedFraction == b.top1ChangedFraction && a.topShifts == b.topShifts, "\(what)")
        #expect(a.logitDeltas == b.logitDeltas, "\(what)")
        #expect(Set(a.alone.keys) == Set(b.alone.keys), "\(what)")
        for (rule, x) in a.alone {
            guard let y = b.alone[rule] else { continue }
            #expect(x.kl == y.kl && x.top1ChangedFraction == y.top1ChangedFraction && x.topShifts == y.topShifts, "\(what): \(rule)")
            #expect(x.logitDeltas == y.logitDeltas && x.positionsEdited == y.positionsEdited && x.fires == y.fires, "\(what): \(rule)")
        }
    }

    /// With a rule on the prompt's last positions, a batch runs a chat prompt's positions before
    /// the fork once for all the case's runs, each run its own rest; one at a time, every run
    /// runs the prefix itself. The two write the same case.
    @Test func theSharedPrefixRunsOnce() throws {
        let dir = try AuditFixtures.scratch()
        try Self.tailEditing.write(toFile: dir + "/editing.yaml", atomically: true, encoding: .utf8)
        let path = try AuditFixtures.suite(in: dir, cases: AuditFixtures.threeCases, maxTokens: 4, rules: "rules.yaml, editing.yaml")
        let suite = try AuditSuite.load(path: path)
        let loaded = try LoadedModel.load("default", threads: 2)
        let chat = try #require(suite.cases.first)
        var steps: [Int: [Range<Int>]] = [:]
        var results: [Int: CaseResult] = [:]
        for width in [1, 8] {
            let rules = CountingRules(try AuditRuleSet(files: suite.ruleFiles, model: loaded))
            let runner = AuditRunner(loaded: loaded, rules: rules, settings: suite.settings)
            // Width 1 is the sequential path (`--batch-size 1`), 8 the batched one.
            results[width] = width == 1 ? try runner.run(chat, index: 0, interrupted: { false })
                : try runner.run([(chat, 0)], width: width, interrupted: { false }).results.first
            steps[width] = rules.steps.values.sorted { ($0.lowerBound, $0.upperBound) < ($1.lowerBound, $1.upperBound) }
        }
        let runner = AuditRunner(loaded: loaded, rules: try AuditRuleSet(files: suite.ruleFiles, model: loaded), settings: suite.settings)
        let n = try runner.prompt(for: chat).1.count
        let fork = try #require(PromptSplit.point(length: n, first: n - 4))
        // Instrumented runs: the baseline, the steered run, the pass with every rule steering and
        // one per steering rule alone (the unsteered pass has no recorder to count it).
        let runs = 3 + runner.rules.steering.count
        let prefix = { (w: Int) in steps[w, default: []].filter { $0.lowerBound == 0 } }
        let rests = { (w: Int) in steps[w, default: []].filter { $0.lowerBound == fork } }
        #expect(prefix(1) == Array(repeating: 0..<fork, count: runs))
        #expect(prefix(8) == [0..<fork])
        #expect(rests(1) == Array(repeating: fork..<n, count: runs) && rests(8) == rests(1))
        let (a, b) = (try #require(results[1]), try #require(results[8]))
        #expect(a.baseline.tokens == b.baseline.tokens && a.steered?.tokens == b.steered?.tokens)
        #expect(a.effects?.kl == b.effects?.kl && a.effects?.alone["tail"]?.kl == b.effects?.alone["tail"]?.kl)
        #expect((a.effects?.alone["tail"]?.positionsEdited ?? 0) > 0)
    }

    /// Two cases per core, 2 to 16, within a quarter of physical memory at 100 MB a case.
    @Test func theDefaultBatchSizeFollowsTheMachine() {
        let gb: UInt64 = 1 << 30
        #expect(Audit.defaultBatchSize(cores: 2, memory: 24 * gb) == 4)
        #expect(Audit.defaultBatchSize(cores: 1, memory: 24 * gb) == 2)
        #expect(Audit.defaultBatchSize(cores: 64, memory: 256 * gb) == 16)
        #expect(Audit.defaultBatchSize(cores: 8, memory: gb) == 2)
        #expect(Audit.defaultBatchSize(cores: 8, memory: 200 << 20) == 1)
    }

    @Test func calibrationAnswersAreTheSameBatched() throws {
        let dir = try AuditFixtures.scratch()
        let path = try AuditFixtures.suite(in: dir, cases: AuditFixtures.threeCases, maxTokens: 6)
        try AuditFixtures.addCalibration(to: path, more: [#"{id: c4, text: "Water boils at"}"#])
        let sequential = try Self.sameAtEveryWidth(path, widths: [3, 8])
        let calibration = try #require(sequential.rules.first { $0.id == "always.fires" }?.calibration)
        #expect(calibration.answers.map(\.id) == ["c1", "c2", "c3", "c4"])
    }

    @Test func anInterruptionKeepsTheCasesBeforeIt() throws {
        let dir = try AuditFixtures.scratch()
        let path = try AuditFixtures.suite(in: dir, cases: Self.fiveCases, maxTokens: 6)
        let whole = try Self.run(path, batchSize: 1)
        // Two cases in flight; the interruption comes while the second pair decodes.
        var polls = 0
        let cut = try Self.run(path, batchSize: 2, interrupted: { polls += 1; return polls > 14 })
        #expect(!cut.complete)
        #expect(cut.cases.count < 5)
        #expect(cut.cases.map(\.id) == Array(whole.cases.map(\.id).prefix(cut.cases.count)))
        for (a, b) in zip(cut.cases, whole.cases) {
            #expect(a.baseline.text == b.baseline.text && a.steered?.text == b.steered?.text, "\(a.id)")
        }
    }
}
