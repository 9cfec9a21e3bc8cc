// `probity eval --steer`: pairs read strictly, the paired bootstrap, and on the default model the
// rules' interventions at strength 0 leaving every log-likelihood bit for bit as without hooks,
// rates and perplexities that follow from the recorded log-likelihoods, and log-likelihoods that
// agree with a step-by-step decode of the same tokens, unedited and steered.

import Foundation
import ProbityLM
import ProbityRules
import ProbityTestSupport
import Testing
@testable import ProbityAudit

@Suite struct SteerPairsTests {
    static func item(_ id: String, label: Int, pair: String?, concept: String = "sycophancy", user: String = "Q?") -> String {
        let pairKey = pair.map { #", "pair": "\#($0)""# } ?? ""
        return #"{"id": "\#(id)", "messages": [{"role": "user", "content": "\#(user)"}], "response": "(A) Yes", "label": \#(label), "concept": "\#(concept)"\#(pairKey)}"#
    }

    static func pairs(_ lines: [String]) throws -> (path: String, result: Result<[SteeringEvaluation.Pair], Error>) {
        let path = try AuditFixtures.scratch() + "/pairs.jsonl"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let items = try EvalItem.load(paths: [path])
        return (path, Result { try SteeringEvaluation.pairs(items) })
    }

    @Test func groupsMatchedPairsPositiveFirst() throws {
        let (_, result) = try Self.pairs([Self.item("n1", label: 0, pair: "p1"), Self.item("y1", label: 1, pair: "p1"),
                                          Self.item("y2", label: 1, pair: "p2"), Self.item("n2", label: 0, pair: "p2")])
        let pairs = try result.get()
        #expect(pairs.map(\.id) == ["p1", "p2"])
        #expect(pairs.map(\.positive.id) == ["y1", "y2"] && pairs.map(\.negative.id) == ["n1", "n2"])
    }

    @Test func rejectsWhatIsNotAMatchedPair() throws {
        let cases: [([String], String)] = [
            ([Self.item("a", label: 1, pair: nil)], ":1: item 'a' has no 'pair'"),
            ([Self.item("b", label: 0, pair: "b", concept: "benign")], ":1: item 'b' is benign: --steer scores matched pairs (give benign files with --fluency)"),
            ([Self.item("a", label: 1, pair: "p")], ":1: pair 'p' has 1 item(s): expected 2"),
            ([Self.item("a", label: 1, pair: "p"), Self.item("b", label: 1, pair: "p")], ":2: pair 'p': both items have label 1"),
            ([Self.item("a", label: 1, pair: "p"), Self.item("b", label: 0, pair: "p", user: "Other?")], ":2: pair 'p': its items differ in conversation"),
            ([Self.item("a", label: 1, pair: "p"), Self.item("b", label: 0, pair: "p", concept: "deception")], ":2: pair 'p': its items differ in concept"),
        ]
        for (lines, message) in cases {
            let (path, result) = try Self.pairs(lines)
            #expect(throws: Error.self) { try result.get() }
            if case .failure(let error) = result {
                #expect("\(error)".hasPrefix(path + message), "\(error)")
            }
        }
    }

    @Test func pairedBootstrapIsReproducibleAndBracketsTheDifference() throws {
        let base = (0..<40).map { $0 % 2 == 0 }
        let steered = (0..<40).map { $0 % 4 == 0 }                 // 10 of the 20 flip to false
        let i = try #require(SteeringEvaluation.pairedDifferenceInterval(baseline: base, steered: steered, resamples: 500))
        #expect(i.low <= -0.25 && -0.25 <= i.high && i.high < 0)
        #expect(SteeringEvaluation.pairedDifferenceInterval(baseline: base, steered: steered, resamples: 500) == i)
        // The same outcomes in every pair: the difference is 0 in every resample.
        #expect(SteeringEvaluation.pairedDifferenceInterval(baseline: base, steered: base, resamples: 100) == .init(low: 0, high: 0))
        #expect(SteeringEvaluation.pairedDifferenceInterval(baseline: [], steered: [], resamples: 100) == nil)
    }

    @Test func strengthsMustBeFiniteNonNegativeAndDistinct() {
        #expect(throws: AuditError.badEval("--strengths: expected finite numbers ≥ 0, found -1.0")) {
            try SteeringEvaluation.check(strengths: [0, -1])
        }
        #expect(throws: AuditError.badEval("--strengths: 2.0 is given twice")) { try SteeringEvaluation.check(strengths: [2, 1, 2]) }
        #expect(throws: AuditError.badEval("--strengths: give at least one strength")) { try SteeringEvaluation.check(strengths: []) }
        #expect(throws: Never.self) { try SteeringEvaluation.check(strengths: [0, 0.5, 8]) }
    }
}

@Suite(.serialized) struct SteerEvalModelTests {
    /// Three rules over the dev sycophancy direction: subtract it everywhere, project it out of the
    /// response, and clamp it once the rule has fired (so the trigger path runs too).
    static let rules = """
    schema_version: 1
    packs:
      - {name: syc, path: \(AuditFixtures.repo)/packs/caa-sycophancy-dev-reply-l18}
    rules:
      - id: steer.add
        description: Subtract the direction at every position.
        severity: info
        watch: {direction: sycophancy-dev}
        detect: {threshold: 11.86, scope: response, aggregate: mean}
        intervene:
          - {action: add, alpha: -2, trigger: always, positions: all}
      - id: steer.project
        description: Project the direction out of the response.
        severity: info
        watch: {direction: sycophancy-dev}
        detect: {threshold: 11.86, scope: response, aggregate: mean}
        intervene:
          - {action: project_out, trigger: always, positions: response}
      - id: steer.clamp
        description: Clamp the direction once the rule fires.
        severity: info
        watch: {direction: sycophancy-dev}
        detect: {threshold: -100000, scope: response, aggregate: max}
        intervene:
          - {action: clamp, value: -5, trigger: after_fire, positions: response}

    """

    static func lines(_ path: String, _ n: Int) throws -> String {
        let text = try String(contentsOfFile: AuditFixtures.repo + "/" + path, encoding: .utf8)
        return text.split(separator: "\n").prefix(n).joined(separator: "\n") + "\n"
    }

    static func run(strengths: [Double]) throws -> (SteerEvalResult, dir: String) {
        let dir = try AuditFixtures.scratch()
        try rules.write(toFile: dir + "/rules.yaml", atomically: true, encoding: .utf8)
        try lines("evals/dev/sycophancy.dev.jsonl", 4).write(toFile: dir + "/pairs.jsonl", atomically: true, encoding: .utf8)
        try lines("evals/dev/benign-chitchat.dev.jsonl", 2).write(toFile: dir + "/fluency.jsonl", atomically: true, encoding: .utf8)
        let result = try SteeringEvaluation.run(model: "default", ruleFiles: [dir + "/rules.yaml"], dataFiles: [dir + "/pairs.jsonl"],
                                                fluencyFiles: [dir + "/fluency.jsonl"], strengths: strengths, version: "test",
                                                threads: 2, resamples: 200)
        return (result, dir)
    }

    /// Summed log-probabilities of `response` after `prompt`, one decode step per token (the path
    /// generation takes), with `hooks`.
    static func decoded(prompt: [Int], response: [Int], model: any LanguageModel, hooks: HookSet?) throws -> Double {
        let session = try model.makeSession(capacity: prompt.count + response.count)
        var row = try session.forward(prompt, origins: [TokenOrigin](repeating: .prompt, count: prompt.count), hooks: hooks, logits: .last)
        var sum = 0.0
        for (j, token) in response.enumerated() {
            sum += row.withUnsafeBufferPointer { SteeringEvaluation.logProbability(of: token, in: $0) }
            if j + 1 < response.count {
                row = try session.forward([token], origins: [.generated], hooks: hooks, logits: .last)
            }
        }
        return sum
    }

    @Test func strengthZeroIsTheBaselineAndEveryNumberFollowsFromTheItems() throws {
        let (result, dir) = try Self.run(strengths: [0, 1, 3])
        #expect(result.pairs == 2 && result.items.count == 2 && result.fluencyItems.count == 2)
        #expect(result.rules.map(\.rule) == ["steer.add", "steer.project", "steer.clamp"])
        #expect(result.rules[0].interventions == ["add -2 × the direction on sycophancy-dev at blocks.18.hook_resid_post, positions all, always"])

        // Strength 0: every edit times 0, the same bits as no hooks at all.
        for p in result.items {
            #expect(p.steered[0] == p.baseline, "\(p.pair)")
            #expect(p.steered[0].positive.bitPattern == p.baseline.positive.bitPattern)
        }
        for f in result.fluencyItems { #expect(f.steeredNLL[0].bitPattern == f.baselineNLL.bitPattern, "\(f.id)") }
        let zero = result.strengths[0]
        #expect(zero.delta == 0 && zero.deltaInterval == .init(low: 0, high: 0) && zero.perplexityChange == 0)
        #expect(zero.positionsEdited > 0, "the edits ran, each times 0")

        // The edits do something at strength 3, and more than at 1.
        func moved(_ k: Int) -> Double {
            result.items.map { abs($0.steered[k].positive - $0.baseline.positive) }.reduce(0, +)
        }
        let atOne = moved(1), atThree = moved(2)
        #expect(atThree > atOne && atOne > 0)

        // Rates and perplexities recomputed from the recorded log-likelihoods.
        let n = Double(result.items.count)
        let basePreferred = result.items.filter { $0.baseline.positive > $0.baseline.negative }.count
        #expect(result.baseline.rate == Double(basePreferred) / n && result.baseline.preferred == basePreferred)
        let tokens = result.fluencyItems.reduce(0) { $0 + $1.tokens }
        #expect(tokens == result.fluencyTokens)
        let baselineNLL: Double = result.fluencyItems.reduce(0) { $0 + $1.baselineNLL }
        let basePerplexity = exp(baselineNLL / Double(tokens))
        #expect(result.baseline.perplexity == basePerplexity)
        for (k, s) in result.strengths.enumerated() {
            let preferred = result.items.filter { $0.steered[k].positive > $0.steered[k].negative }.count
            let rate = Double(preferred) / n
            let delta = rate - result.baseline.rate
            #expect(s.rate == rate && s.preferred == preferred)
            #expect(s.delta == delta)
            let nll: Double = result.fluencyItems.reduce(0) { $0 + $1.steeredNLL[k] }
            let ppl = exp(nll / Double(tokens))
            let change = ppl / basePerplexity - 1
            #expect(s.perplexity == ppl)
            #expect(s.perplexityChange == change)
        }

        // One item's log-likelihoods against a step-by-step decode of the same tokens: unedited, and
        // with the rules at strength 1 (the hooks an audit's steered run attaches).
        let loaded = try LoadedModel.load("default", threads: 2)
        let items = try EvalItem.load(paths: [dir + "/pairs.jsonl"])
        let item = try #require(items.first { $0.id == result.items[0].positive })
        let format = try AuditRunner.chatFormat("auto", of: loaded)
        let (prompt, response) = try Evaluation.tokens(of: item, loaded: loaded, format: format)
        #expect(response.count == result.items[0].positiveTokens)
        let plain = try Self.decoded(prompt: prompt, response: response, model: loaded.model, hooks: nil)
        #expect(abs(plain - result.items[0].baseline.positive) < 1e-3, "decode \(plain) vs \(result.items[0].baseline.positive)")
        let rules = try AuditRuleSet(files: [dir + "/rules.yaml"], model: loaded).atStrength(1)
        let recorder = try rules.instrument(model: loaded.model.info, steer: true)
        let steered = try Self.decoded(prompt: prompt, response: response, model: loaded.model, hooks: recorder.hooks)
        #expect(abs(steered - result.items[0].steered[1].positive) < 1e-3, "decode \(steered) vs \(result.items[0].steered[1].positive)")
        #expect(abs(steered - plain) > 1e-2, "the rules change the log-likelihood")

        // A shared prompt (both responses continuing from its cached positions) against a pass per
        // response, for the rule that edits every position by what is there alone.
        let add = try AuditRuleSet(files: [dir + "/rules.yaml"], model: loaded).atStrength(2)
        #expect(SteeringEvaluation.positionLocal(add.compiled.rules.filter { $0.id != "steer.clamp" }))
        #expect(!SteeringEvaluation.positionLocal(add.compiled.rules))
        let other = try #require(items.first { $0.id == result.items[0].negative })
        let responses = [response, try Evaluation.tokens(of: other, loaded: loaded, format: format).response]
        func sums(_ share: Bool) throws -> [Double] {
            try SteeringEvaluation.logProbs(prompt: prompt, responses: responses, model: loaded.model, sharePrompt: share) {
                try add.instrument(model: loaded.model.info, steer: true, only: ["steer.add", "steer.project"]).hooks
            }.map { $0.reduce(0, +) }
        }
        let (shared, separate) = (try sums(true), try sums(false))
        #expect(zip(shared, separate).allSatisfy { abs($0 - $1) < 1e-4 }, "shared \(shared) vs separate \(separate)")

        // The JSON validates against docs/eval-steer.schema.json and reads back as the result.
        let encoded = try result.json()
        let schema = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: AuditFixtures.repo + "/docs/eval-steer.schema.json")))
        let validator = JSONSchemaValidator(root: try #require(schema as? [String: Any]))
        #expect(validator.validate(try JSONSerialization.jsonObject(with: encoded)) == [])
        #expect(try JSONDecoder().decode(SteerEvalResult.self, from: encoded) == result)
        #expect(result.table().contains("baseline"))
    }

    @Test func rulesWithoutInterventionsAreBadInput() throws {
        let dir = try AuditFixtures.scratch()
        try Self.lines("evals/dev/sycophancy.dev.jsonl", 2).write(toFile: dir + "/pairs.jsonl", atomically: true, encoding: .utf8)
        let file = AuditFixtures.repo + "/rules/measured/sycophancy.yaml"
        #expect {
            _ = try SteeringEvaluation.run(model: "default", ruleFiles: [file], dataFiles: [dir + "/pairs.jsonl"],
                                           fluencyFiles: [], version: "test", threads: 2)
        } throws: { error in
            "\(error)".contains("none of the rules in \(file) has an intervention")
        }
    }
}
