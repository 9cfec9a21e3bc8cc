// Audit suites parse strictly with located errors, and end to end on the default model a tiny suite
// gives reproducible reports, shard reports merge into the unsharded one, steering has measured
// effects, and reports validate against docs/report.schema.json.

import Foundation
import ProbityRules
import ProbityTestSupport
import Testing
import ProbityAudit

@Suite struct SuiteParsingTests {
    @Test func missingRuleFileNamesTheSuiteLine() throws {
        let dir = try AuditFixtures.scratch()
        let path = try AuditFixtures.suite(in: dir, cases: AuditFixtures.threeCases, rules: "nope/*.yaml")
        #expect {
            _ = try AuditSuite.load(path: path)
        } throws: { error in
            guard case let AuditError.missingRules(location, pattern) = error else { return false }
            return location.line == 3 && location.file == path && pattern == "nope/*.yaml"
        }
    }

    @Test func unknownKeyAndBadExpectationAreLocated() throws {
        let dir = try AuditFixtures.scratch()
        let typo = try AuditFixtures.suite(in: dir, cases: "  - id: a\n    txt: hi\n")
        #expect(throws: AuditError.invalid(FileLocation(file: typo, line: 7, column: 5),
                                           message: "case: unknown key 'txt' (expected one of id, messages, text, dataset, expect)")) {
            _ = try AuditSuite.load(path: typo)
        }
        let bad = try AuditFixtures.suite(in: dir, cases: "  - id: a\n    text: hi\n    expect: {always.fires: maybe}\n")
        #expect(throws: AuditError.invalid(FileLocation(file: bad, line: 8, column: 28),
                                           message: "expect: rule 'always.fires': expected fires or silent, found 'maybe'")) {
            _ = try AuditSuite.load(path: bad)
        }
    }

    /// `models:` names the rule files a suite runs on another model; names match names, paths
    /// match the same file however written, and each mistake is refused at its line.
    @Test func otherModelsNameTheirRuleFiles() throws {
        let dir = try AuditFixtures.scratch()
        try AuditFixtures.rules.write(toFile: dir + "/other.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/m", withIntermediateDirectories: true)
        for name in ["b.yaml", "a.yaml"] { try AuditFixtures.rules.write(toFile: dir + "/m/" + name, atomically: true, encoding: .utf8) }
        try Data().write(to: URL(fileURLWithPath: dir + "/local.gguf"))
        func suite(_ models: String) throws -> String {
            let path = dir + "/s.yaml"
            try """
            schema_version: 1
            rules: [rules.yaml]
            models:
            \(models)
            cases:
              - {id: a, text: hi, expect: {always.fires: fires, never.fires: silent}}
            """.write(toFile: path, atomically: true, encoding: .utf8)
            _ = try AuditFixtures.suite(in: dir, cases: "")  // writes rules.yaml
            return path
        }
        let s = try AuditSuite.load(path: try suite("  gemma3-270m: {rules: [other.yaml], chat_format: gemma}\n  local.gguf: {rules: [\"m/*.yaml\", other.yaml]}"))
        #expect(s.otherModels.map(\.model) == ["gemma3-270m", dir + "/local.gguf"])
        #expect(s.otherModels.map(\.ruleFiles) == [[dir + "/other.yaml"], [dir + "/m/a.yaml", dir + "/m/b.yaml", dir + "/other.yaml"]])
        #expect(s.otherModel("gemma3-270m")?.ruleFiles == [dir + "/other.yaml"])
        #expect(s.otherModel(dir + "/./local.gguf")?.model == dir + "/local.gguf")
        #expect(s.otherModels.map(\.chatFormat) == ["gemma", nil])
        #expect(s.otherModel("default") == nil)
        #expect(s.otherModel(dir + "/elsewhere.gguf") == nil)
        #expect(s.expectationsNotApplicable(to: ["always.fires"]).map(\.rule) == ["never.fires"])

        let cases: [(models: String, line: Int, column: Int, message: String)] = [
            ("  default: {rules: [other.yaml]}", 4, 3, "models: 'default' is the suite's own model, whose rules are `rules`"),
            ("  gemma3-270m: {rule: [other.yaml]}", 4, 17, "models: gemma3-270m: unknown key 'rule' (expected one of rules, chat_format)"),
            ("  gemma3-270m: {}", 4, 16, "models: gemma3-270m: missing required key 'rules'"),
            ("  gemma3-270m: {rules: [other.yaml], chat_format: gemmax}", 4, 51,
             "models: gemma3-270m: chat_format: expected auto or one of chatml-smollm, chatml, llama3, gemma, mistral-instruct, found 'gemmax'"),
            ("  [a]", 4, 3, "models: expected a mapping of model names or paths to {rules: [...]}, found a sequence"),
        ]
        for c in cases {
            let path = try suite(c.models)
            #expect(throws: AuditError.invalid(FileLocation(file: path, line: c.line, column: c.column), message: c.message), "\(c.models)") {
                _ = try AuditSuite.load(path: path)
            }
        }
        let missing = try suite("  gemma3-270m: {rules: [nope.yaml]}")
        #expect {
            _ = try AuditSuite.load(path: missing)
        } throws: { error in
            guard case let AuditError.missingRules(location, pattern) = error else { return false }
            return location.line == 4 && pattern == "nope.yaml"
        }
    }

    @Test func datasetCasesMapFields() throws {
        let dir = try AuditFixtures.scratch()
        try "{\"q\": \"Is 2+2=5?\", \"k\": \"a\"}\n{\"q\": \"Is the sky green?\", \"k\": \"b\"}\n{\"q\": \"x\", \"k\": \"c\"}\n"
            .write(toFile: dir + "/items.jsonl", atomically: true, encoding: .utf8)
        let path = try AuditFixtures.suite(in: dir, cases: "  - dataset: {path: items.jsonl, id: k, user: q, limit: 2}\n    expect: {never.fires: silent}\n")
        let suite = try AuditSuite.load(path: path)
        #expect(suite.cases.map(\.id) == ["items/a", "items/b"])
        #expect(suite.cases[1].input == .messages([.user("Is the sky green?")]))
        #expect(suite.cases[0].expectations.map(\.rule) == ["never.fires"])

        let missing = try AuditFixtures.suite(in: dir, cases: "  - dataset: {path: items.jsonl, id: k, user: nope}\n")
        #expect {
            _ = try AuditSuite.load(path: missing)
        } throws: { error in
            guard case let AuditError.dataset(_, item, reason, suite) = error else { return false }
            return item == 1 && reason == "no string field 'nope'" && suite.line == 6
        }
    }

    /// A `calibrate:` block parses its cases like the suite's (here one request a line of a text
    /// file) and refuses what would make its thresholds meaningless, each at its line.
    @Test func calibrateBlockParsesAndRefusesLeakage() throws {
        let dir = try AuditFixtures.scratch()
        try "Write a haiku about rain.\n\n  \nName three rivers.\n".write(toFile: dir + "/requests.txt", atomically: true, encoding: .utf8)
        func suite(_ block: String) throws -> String {
            let path = try AuditFixtures.suite(in: dir, cases: AuditFixtures.threeCases)
            let text = try String(contentsOfFile: path, encoding: .utf8)
                .replacingOccurrences(of: "cases:\n", with: block + "cases:\n")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let good = try AuditSuite.load(path: try suite("""
            calibrate:
              rules: [always.fires]
              target_fpr: 0.05
              cases:
                - dataset: {path: requests.txt, user: line}
                - {id: extra, text: "Once upon a time"}

            """))
        let calibration = try #require(good.calibration)
        #expect(calibration.rules.map(\.id) == ["always.fires"])
        #expect(calibration.targetFPR == 0.05)
        #expect(calibration.cases.map(\.id) == ["requests/1", "requests/2", "extra"])
        #expect(calibration.cases[1].input == .messages([.user("Name three rivers.")]))
        #expect(good.cases.count == 3)

        func refusal(_ block: String) throws -> (line: Int, message: String)? {
            let path = try suite(block)
            do { _ = try AuditSuite.load(path: path) } catch let AuditError.invalid(location, message) {
                return (location.line, message)
            }
            return nil
        }
        // Leakage: a calibration request that is one of the audited cases.
        let leak = try #require(try refusal("""
            calibrate:
              rules: [always.fires]
              target_fpr: 0
              cases:
                - {id: same, messages: [{role: user, content: "Say hello."}]}

            """))
        #expect(leak.line == 9)
        #expect(leak.message.contains("asks what case 'three'"))
        let twice = try #require(try refusal("calibrate: {rules: [always.fires, always.fires], target_fpr: 0, cases: [{id: x, text: y}]}\n"))
        #expect(twice.line == 5 && twice.message.contains("'always.fires' is named twice"))
        let rate = try #require(try refusal("calibrate: {rules: [always.fires], target_fpr: 1, cases: [{id: x, text: y}]}\n"))
        #expect(rate.message == "calibrate: target_fpr: expected a rate in [0, 1), found integer 1")
        let expect = try #require(try refusal("calibrate: {rules: [always.fires], target_fpr: 0, cases: [{id: x, text: y, expect: {always.fires: fires}}]}\n"))
        #expect(expect.message.contains("takes no expect"))
        let empty = try #require(try refusal("calibrate: {rules: [], target_fpr: 0, cases: [{id: x, text: y}]}\n"))
        #expect(empty.message.contains("expected at least one rule id"))
        let key = try #require(try refusal("calibrate: {rules: [always.fires], target_fpr: 0, fpr: 1, cases: [{id: x, text: y}]}\n"))
        #expect(key.message.contains("unknown key 'fpr'"))
    }

    @Test func shardsPartitionTheCases() throws {
        #expect(Audit.indices(cases: 7, shard: (1, 3)) == [0, 3, 6])
        #expect(Audit.indices(cases: 7, shard: (3, 3)) == [2, 5])
        #expect(throws: AuditError.badShard("0/2")) { _ = try Audit.shard("0/2") }
        #expect(throws: AuditError.badShard("3/2")) { _ = try Audit.shard("3/2") }
        #expect(try Audit.shard("2/4") == (2, 4))
    }
}

@Suite(.serialized) struct AuditRunTests {
    static func run(_ path: String, shard: (Int, Int) = (1, 1)) throws -> AuditReport {
        try Audit.run(suitePath: path, version: "test", failOn: .high, shard: shard, threads: 2,
                      interrupted: { false }, progress: { _ in })
    }

    /// The report without what may differ between runs: timestamps and durations.
    static func stable(_ r: AuditReport) throws -> String {
        var r = r
        r.startedAt = ""
        r.finishedAt = ""
        r.timings.totalSeconds = 0
        r.timings.cases = [:]
        return String(decoding: try r.json(), as: UTF8.self)
    }

    /// Progress comes before each case and once at the end, counting the cases done and every
    /// generated token of the report, with a rate and an ETA from the pace so far.
    @Test func progressCountsCasesAndTokens() throws {
        let dir = try AuditFixtures.scratch()
        let path = try AuditFixtures.suite(in: dir, cases: AuditFixtures.threeCases)
        var seen: [AuditProgress] = []
        let report = try Audit.run(suitePath: path, version: "test", failOn: .high, shard: (1, 1), threads: 2,
                                   interrupted: { false }, progress: { seen.append($0) })
        #expect(seen.map(\.done) == [0, 1, 2, 3])
        #expect(seen.allSatisfy { $0.total == 3 })
        #expect(seen.map { $0.caseID == nil } == [false, false, false, true])
        #expect(seen.first?.etaSeconds == nil && seen.first?.tokens == 0)
        let generated = report.cases.map { $0.baseline.tokens + ($0.steered?.tokens ?? 0) }.reduce(0, +)
        let last = try #require(seen.last)
        #expect(last.tokens == generated && generated > 0, "progress \(last.tokens), report \(generated)")
        #expect(last.seconds > 0 && abs(last.tokensPerSecond - Double(generated) / last.seconds) < 1e-9)
        #expect(last.etaSeconds == 0)
        let middle = seen[1]
        #expect(middle.etaSeconds.map { abs($0 - middle.seconds * 2) < 1e-9 } == true)
    }

    /// Batched, a case that starts after another finished sees that case's tokens counted, so the
    /// progress line's rate is the run's so far (it read 0.0 tok/s until the end).
    @Test func batchedProgressCountsTokensAsCasesFinish() throws {
        let dir = try AuditFixtures.scratch()
        let path = try AuditFixtures.suite(in: dir, cases: AuditFixtures.threeCases)
        var seen: [AuditProgress] = []
        let report = try Audit.run(suitePath: path, version: "test", failOn: .high, shard: (1, 1), threads: 2, batchSize: 2,
                                   interrupted: { false }, progress: { seen.append($0) })
        #expect(seen.map(\.done) == [0, 1, 2, 3])
        #expect(seen[0].tokens == 0 && seen[1].tokens == 0)
        let first = report.cases.prefix(2).map { $0.baseline.tokens + ($0.steered?.tokens ?? 0) }
        #expect(seen[2].tokens > 0 && first.contains(seen[2].tokens) || seen[2].tokens == first.reduce(0, +), "\(seen[2].tokens), \(first)")
        let generated = report.cases.map { $0.baseline.tokens + ($0.steered?.tokens ?? 0) }.reduce(0, +)
        #expect(seen[3].tokens == generated)
    }

    @Test func reportsAreReproducibleMergeAndValidate() throws {
        let dir = try AuditFixtures.scratch()
        let path = try AuditFixtures.suite(in: dir, cases: AuditFixtures.threeCases)
        let first = try Self.run(path)
        let second = try Self.run(path)
        #expect(try Self.stable(first) == Self.stable(second))

        let summary = first.summary
        #expect(summary.passed)
        #expect(summary.cases == 3)
        #expect(summary.findingsByRule["always.fires"] == 3)
        #expect(summary.findingsByRule["never.fires"] == 0)
        // Each rule carries the validity its file records, or none.
        #expect(first.rules.first { $0.id == "never.fires" }?.validity?.n == 10)
        #expect(first.rules.first { $0.id == "always.fires" }?.trust == "unmeasured")

        // Steering with add -8 edits every generated position and moves the distribution.
        let effects = try #require(first.cases.first?.effects)
        let kl = try #require(effects.kl)
        #expect(!kl.isEmpty && kl.allSatisfy { $0 >= 0 } && kl.contains { $0 > 1e-4 })
        let steering = try #require(effects.interventions.first)
        #expect(steering.rule == "always.fires")
        #expect(steering.positionsEdited > 0)
        // The tokens the rule names have logit deltas; with the only steering rule, its effect alone is
        // the combined one: the same teacher-forced pass, so the same numbers to the bit.
        let deltas = steering.logitDeltas
        let atFirst = try #require(steering.logitDeltasFirst)
        #expect(Set(deltas.keys) == [" Paris", " the"] && Set(atFirst.keys) == [" Paris", " the"])
        #expect(deltas.values.contains { abs($0) > 1e-3 })
        let alone = try #require(steering.alone)
        #expect(alone.kl.count == kl.count)
        #expect(alone.kl == kl)
        #expect(alone.top1ChangedFraction == effects.top1ChangedFraction)
        #expect(alone.fires)
        #expect(alone.logitDeltas == deltas)
        // Its edits in that pass: the generated positions of the path (the last sampled token is not run).
        #expect(alone.positionsEdited == kl.count - 1)
        // The tokens the steering moved most, whatever the rule names: ordered, signed, and (the only
        // steering rule) the same alone as combined; a named token among them has the logit delta
        // `logit_deltas` gives it.
        for changes in [try #require(effects.topChanges), try #require(alone.topChanges)] {
            #expect(!changes.raised.isEmpty && !changes.lowered.isEmpty)
            #expect(changes.raised.count <= 5 && changes.lowered.count <= 5)
            #expect(changes.raised.allSatisfy { $0.probabilityDelta > 0 } && changes.lowered.allSatisfy { $0.probabilityDelta < 0 })
            #expect(zip(changes.raised, changes.raised.dropFirst()).allSatisfy { $0.probabilityDelta >= $1.probabilityDelta })
            #expect(zip(changes.lowered, changes.lowered.dropFirst()).allSatisfy { $0.probabilityDelta <= $1.probabilityDelta })
            #expect(changes.raised.map(\.probabilityDelta).reduce(0, +) <= 1 && changes.lowered.map(\.probabilityDelta).reduce(0, +) >= -1)
            for c in changes.raised + changes.lowered {
                if let named = deltas[c.token] { #expect(abs(named - c.logitDelta) <= 1e-2 * max(1, abs(named)), "\(c.token)") }
            }
        }

        // Shards 1/2 and 2/2 merge into the unsharded report's content.
        let merged = try AuditReport.merge([("a", try Self.run(path, shard: (1, 2))), ("b", try Self.run(path, shard: (2, 2)))])
        #expect(try Self.stable(merged) == Self.stable(first))

        // The report validates against the published schema, and the validator does catch a bad one.
        let schemaData = try Data(contentsOf: URL(fileURLWithPath: AuditFixtures.repo + "/docs/report.schema.json"))
        let schema = try #require(try JSONSchemaValidator(root: JSONSerialization.jsonObject(with: schemaData) as? [String: Any] ?? [:]))
        let encoded = try first.json()
        #expect(schema.validate(try JSONSerialization.jsonObject(with: encoded)) == [])
        var broken = try #require(try JSONSerialization.jsonObject(with: encoded) as? [String: Any])
        broken["schema_version"] = "1"
        broken["summary"] = nil
        let problems = schema.validate(broken)
        #expect(problems.contains("$: missing required 'summary'"))
        #expect(problems.contains("$.schema_version: expected integer, found string"))
        // Read back, the report is the same value and writes the same bytes.
        let read = try AuditReport.decode(encoded, path: "r.json")
        #expect(read == first)
        #expect(try read.json() == encoded)
    }

    /// `after_fire` edits from the position where the detection first holds (docs/rules.md): a
    /// rule that holds at the first prompt token edits every position that went through the model,
    /// the prompt's included.
    @Test func afterFireEditsFromTheFiringPositionOn() throws {
        let dir = try AuditFixtures.scratch()
        try """
        schema_version: 1
        packs:
          - {name: caa-sycophancy, path: \(AuditFixtures.repo)/packs/caa-sycophancy}
        rules:
          - id: after.fire
            description: Holds from the first token.
            severity: low
            watch: {direction: sycophancy}
            detect: {threshold: -100000, scope: all, aggregate: max}
            intervene:
              - {action: add, alpha: -8, trigger: after_fire}

        """.write(toFile: dir + "/after.yaml", atomically: true, encoding: .utf8)
        let path = try AuditFixtures.suite(in: dir, cases: "  - id: one\n    text: \"The capital of France is\"\n",
                                           rules: "after.yaml")
        let c = try #require(try Self.run(path).cases.first)
        let steered = try #require(c.steered)
        // Every position that went through the model: the last sampled token does not, except that
        // an end-of-sequence token is never counted among the generated ones.
        let ran = c.promptTokens + steered.tokens - (steered.finishReason == .eos ? 0 : 1)
        let edits = try #require(c.effects?.interventions.first)
        #expect(edits.rule == "after.fire")
        #expect(edits.positionsEdited == ran)
        #expect(ran > c.promptTokens)
    }

    /// Two rules pushing the same direction opposite ways cancel when both steer, yet each alone moves
    /// the distribution: the per-rule passes isolate each rule's interventions. `add` scales the raw
    /// CAA vector (norm 23.7 in caa-sycophancy), so ±0.7 moves the residual by about 17.
    @Test func eachRuleAloneIsMeasuredApartFromTheOthers() throws {
        let dir = try AuditFixtures.scratch()
        try """
        schema_version: 1
        packs:
          - {name: caa-sycophancy, path: \(AuditFixtures.repo)/packs/caa-sycophancy}
        rules:
          - id: push
            description: Adds the direction.
            severity: low
            watch: {direction: sycophancy}
            detect: {threshold: -100000, scope: all, aggregate: max}
            intervene: [{action: add, alpha: 0.7, trigger: always}]
            effects: {tokens: [" Paris"]}
          - id: pull
            description: Subtracts it again.
            severity: low
            watch: {direction: sycophancy}
            detect: {threshold: -100000, scope: all, aggregate: max}
            intervene: [{action: add, alpha: -0.7, trigger: always}]
            effects: {tokens: [" Paris"]}

        """.write(toFile: dir + "/pair.yaml", atomically: true, encoding: .utf8)
        let path = try AuditFixtures.suite(in: dir, cases: "  - id: one\n    text: \"The capital of France is\"\n",
                                           maxTokens: 6, rules: "pair.yaml")
        let effects = try #require(try Self.run(path).cases.first?.effects)
        #expect(try #require(effects.klMax) < 1e-3)
        let byRule = Dictionary(effects.interventions.map { ($0.rule, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(Set(byRule.keys) == ["push", "pull"])
        var firstDeltas: [Double] = []
        for rule in ["push", "pull"] {
            let alone = try #require(byRule[rule]?.alone, "\(rule)")
            #expect(alone.klMean > 1e-2, "\(rule) alone should move the distribution")
            let combined = try #require(byRule[rule]?.logitDeltas[" Paris"])
            #expect(abs(combined) < 1e-2)
            firstDeltas.append(try #require(alone.logitDeltasFirst[" Paris"]))
        }
        // Opposite pushes move the logit opposite ways at the first generated position.
        #expect(firstDeltas[0] * firstDeltas[1] < 0)
    }

    /// A suite's `calibrate:` block sets a rule's threshold on the model's own answers before the
    /// cases: at target_fpr 0 just above the highest calibration score, so none of those answers
    /// fires, and the cases are judged at that threshold, not the file's.
    @Test func calibrationSetsTheThresholdTheCasesAreJudgedAt() throws {
        let dir = try AuditFixtures.scratch()
        let path = try AuditFixtures.suite(in: dir, cases: AuditFixtures.threeCases)
        try AuditFixtures.addCalibration(to: path)
        var calibrating: [String] = []
        let report = try Audit.run(suitePath: path, version: "test", failOn: .high, shard: (1, 1), threads: 2,
                                   interrupted: { false }, progress: { if $0.calibrating, let id = $0.caseID { calibrating.append(id) } })
        #expect(calibrating == ["c1", "c2", "c3"])
        #expect(report.complete)
        let rule = try #require(report.rules.first { $0.id == "always.fires" })
        let calibration = try #require(rule.calibration)
        #expect(calibration.shippedThreshold == -100000)
        #expect(calibration.targetFPR == 0 && calibration.fired == 0)
        #expect(calibration.answers.map(\.id) == ["c1", "c2", "c3"])
        let scores = calibration.answers.compactMap(\.score)
        #expect(scores.count == 3)
        #expect(scores.allSatisfy { $0 < calibration.threshold }, "\(scores) vs \(calibration.threshold)")
        #expect(calibration.answers.allSatisfy { !$0.fires })
        #expect(report.rules.first { $0.id == "never.fires" }?.calibration == nil)
        // Every case's finding of the rule is above the calibrated threshold, not merely the file's.
        for c in report.cases {
            for f in c.baseline.fired where f.rule == "always.fires" {
                #expect(f.value > calibration.threshold, "\(c.id): \(f.value)")
            }
        }
        // The report stays valid against its schema.
        let schemaData = try Data(contentsOf: URL(fileURLWithPath: AuditFixtures.repo + "/docs/report.schema.json"))
        let schema = try #require(try JSONSchemaValidator(root: JSONSerialization.jsonObject(with: schemaData) as? [String: Any] ?? [:]))
        #expect(schema.validate(try JSONSerialization.jsonObject(with: try report.json())) == [])
        #expect(try AuditReport.decode(try report.json(), path: "r.json") == report)
    }

    /// A `stop` rule ends the steered run only; the baseline is the model as it is.
    @Test func stopEndsOnlyTheSteeredRun() throws {
        let dir = try AuditFixtures.scratch()
        try """
        schema_version: 1
        packs:
          - {name: caa-sycophancy, path: \(AuditFixtures.repo)/packs/caa-sycophancy}
        rules:
          - id: stops
            description: Holds from the first token and stops.
            severity: low
            watch: {direction: sycophancy}
            detect: {threshold: -100000, scope: all, aggregate: max}
            stop: true

        """.write(toFile: dir + "/stop.yaml", atomically: true, encoding: .utf8)
        let path = try AuditFixtures.suite(in: dir, cases: "  - id: one\n    text: \"The capital of France is\"\n",
                                           rules: "stop.yaml")
        let c = try #require(try Self.run(path).cases.first)
        let steered = try #require(c.steered)
        #expect(c.baseline.finishReason != .rule)
        #expect(c.baseline.tokens > 0)
        #expect(steered.finishReason == .rule)
        #expect(steered.tokens == 0)
    }

    /// With a rule over the committed SAE dictionary, the report gives every position's top
    /// latents and reconstruction error, and the praise latent is among them where the text praises.
    @Test func perTokenSAEFeaturesFromTheDefaultDictionary() throws {
        let dir = try AuditFixtures.scratch()
        try """
        schema_version: 1
        packs:
          - {name: smollm2-l15, path: \(AuditFixtures.repo)/packs/smollm2-l15}
        rules:
          - id: praise.watch
            description: Watches the praise latent.
            severity: low
            watch: {pack: smollm2-l15, label: praise}
            detect: {threshold: 0.5x, scope: all, aggregate: max}

        """.write(toFile: dir + "/sae.yaml", atomically: true, encoding: .utf8)
        let path = try AuditFixtures.suite(in: dir, cases: "  - id: praise\n    text: \"That's great, Alice. Those ideas\"\n",
                                           rules: "sae.yaml")
        let c = try #require(try Self.run(path).cases.first)
        let features = try #require(c.baseline.features)
        #expect(features.count >= c.promptTokens)
        var praiseSeen = false
        for row in features {
            let sae = try #require(row.packs.first { $0.pack == "smollm2-l15" })
            #expect(sae.relativeSquaredError >= 0 && sae.relativeSquaredError < 1 && !sae.top.isEmpty)
            let activations = sae.top.map(\.activation)
            #expect(activations == activations.sorted(by: >))
            if sae.top.contains(where: { $0.latent == 6562 }) { praiseSeen = true }
        }
        #expect(praiseSeen, "the praise latent (6562) is among no position's top latents")
        #expect(c.baseline.fired.contains { $0.rule == "praise.watch" })
    }
}
