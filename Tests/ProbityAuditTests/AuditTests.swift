// Audit suites parse strictly with located errors, and end to end on the default model a tiny suite
// gives reproducible reports, shard reports merge into the unsharded one, steering has measured
// effects, and reports validate against docs/report.schema.json.

import Foundation
import ProbityRules
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

    @Test func shardsPartitionTheCases() throws {
        #expect(Audit.indices(cases: 7, shard: (1, 3)) == [0, 3, 6])
        #expect(Audit.indices(cases: 7, shard: (3, 3)) == [2, 5])
        #expect(throws: AuditError.badShard("0/2")) { _ = try Audit.shard("0/2") }
        #expect(throws: AuditError.badShard("3/2")) { _ = try Audit.shard("3/2") }
        #expect(try Audit.shard("2/4") == (2, 4))
    }
}

@Suite(.serialized) struct AuditRunTests {
    static func run(_ path: String, shard: (Int, Int) = (1, 1)) throws -> [String: Any] {
        try Audit.run(suitePath: path, version: "test", failOn: .high, shard: shard, threads: 2,
                      interrupted: { false }, progress: { _ in })
    }

    /// The report without what may differ between runs: timestamps and durations.
    static func stable(_ r: [String: Any]) throws -> String {
        var r = r
        r["started_at"] = nil
        r["finished_at"] = nil
        r["timings"] = nil
        return String(decoding: try AuditReport.json(r), as: UTF8.self)
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
        let cases = try #require(report["cases"] as? [[String: Any]])
        let generated = cases.map { c in
            ["baseline", "steered"].map { (c[$0] as? [String: Any])?["tokens"] as? Int ?? 0 }.reduce(0, +)
        }.reduce(0, +)
        let last = try #require(seen.last)
        #expect(last.tokens == generated && generated > 0, "progress \(last.tokens), report \(generated)")
        #expect(last.seconds > 0 && abs(last.tokensPerSecond - Double(generated) / last.seconds) < 1e-9)
        #expect(last.etaSeconds == 0)
        let middle = seen[1]
        #expect(middle.etaSeconds.map { abs($0 - middle.seconds * 2) < 1e-9 } == true)
    }

    @Test func reportsAreReproducibleMergeAndValidate() throws {
        let dir = try AuditFixtures.scratch()
        let path = try AuditFixtures.suite(in: dir, cases: AuditFixtures.threeCases)
        let first = try Self.run(path)
        let second = try Self.run(path)
        #expect(try Self.stable(first) == Self.stable(second))

        let summary = try #require(first["summary"] as? [String: Any])
        #expect(summary["passed"] as? Bool == true)
        #expect(summary["cases"] as? Int == 3)
        #expect((summary["findings_by_rule"] as? [String: Int])?["always.fires"] == 3)
        #expect((summary["findings_by_rule"] as? [String: Int])?["never.fires"] == 0)

        // Steering with add -8 edits every generated position and moves the distribution.
        let cases = try #require(first["cases"] as? [[String: Any]])
        let effects = try #require(cases[0]["effects"] as? [String: Any])
        let kl = try #require(effects["kl"] as? [Double])
        #expect(!kl.isEmpty && kl.allSatisfy { $0 >= 0 } && kl.contains { $0 > 1e-4 })
        let interventions = try #require(effects["interventions"] as? [[String: Any]])
        let steering = try #require(interventions.first)
        #expect(steering["rule"] as? String == "always.fires")
        #expect((steering["positions_edited"] as? Int ?? 0) > 0)
        // The tokens the rule names have logit deltas; with the only steering rule, its effect alone is
        // the combined one (a teacher-forced pass instead of decoding: equal to rounding).
        let deltas = try #require(steering["logit_deltas"] as? [String: Double])
        let atFirst = try #require(steering["logit_deltas_first"] as? [String: Double])
        #expect(Set(deltas.keys) == [" Paris", " the"] && Set(atFirst.keys) == [" Paris", " the"])
        #expect(deltas.values.contains { abs($0) > 1e-3 })
        let alone = try #require(steering["alone"] as? [String: Any])
        let aloneKL = try #require(alone["kl"] as? [Double])
        #expect(aloneKL.count == kl.count)
        for (a, b) in zip(aloneKL, kl) { #expect(abs(a - b) <= 1e-3 + 1e-2 * b, "alone \(a) vs combined \(b)") }
        #expect(alone["top1_changed_fraction"] as? Double == effects["top1_changed_fraction"] as? Double)
        #expect(alone["fires"] as? Bool == true)
        let aloneDeltas = try #require(alone["logit_deltas"] as? [String: Double])
        for (token, d) in deltas { #expect(abs((aloneDeltas[token] ?? .nan) - d) <= 1e-2 * max(1, abs(d)), "\(token)") }
        // Its edits in that pass: the generated positions of the path (the last sampled token is not run).
        #expect((alone["positions_edited"] as? Int ?? 0) == kl.count - 1)

        // Shards 1/2 and 2/2 merge into the unsharded report's content.
        let merged = try AuditReport.merge([("a", try Self.run(path, shard: (1, 2))), ("b", try Self.run(path, shard: (2, 2)))])
        #expect(try Self.stable(merged) == Self.stable(first))

        // The report validates against the published schema, and the validator does catch a bad one.
        let schemaData = try Data(contentsOf: URL(fileURLWithPath: AuditFixtures.repo + "/docs/report.schema.json"))
        let schema = try #require(try JSONSchemaValidator(root: JSONSerialization.jsonObject(with: schemaData) as? [String: Any] ?? [:]))
        let roundTripped = try JSONSerialization.jsonObject(with: AuditReport.json(first))
        #expect(schema.validate(roundTripped) == [])
        var broken = first
        broken["schema_version"] = "1"
        broken["summary"] = nil
        let problems = schema.validate(try JSONSerialization.jsonObject(with: AuditReport.json(broken)))
        #expect(problems.contains("$: missing required 'summary'"))
        #expect(problems.contains("$.schema_version: expected integer, found string"))
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
        let report = try Self.run(path)
        let c = try #require((report["cases"] as? [[String: Any]])?.first)
        let promptTokens = try #require(c["prompt_tokens"] as? Int)
        let steered = try #require(c["steered"] as? [String: Any])
        let generated = try #require(steered["tokens"] as? Int)
        // Every position that went through the model: the last sampled token does not, except that
        // an end-of-sequence token is never counted among the generated ones.
        let ran = promptTokens + generated - (steered["finish_reason"] as? String == "eos" ? 0 : 1)
        let effects = try #require(c["effects"] as? [String: Any])
        let edits = try #require((effects["interventions"] as? [[String: Any]])?.first)
        #expect(edits["rule"] as? String == "after.fire")
        #expect(edits["positions_edited"] as? Int == ran)
        #expect(ran > promptTokens)
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
        let c = try #require((try Self.run(path)["cases"] as? [[String: Any]])?.first)
        let effects = try #require(c["effects"] as? [String: Any])
        #expect(try #require(effects["kl_max"] as? Double) < 1e-3)
        let byRule = Dictionary(uniqueKeysWithValues: try #require(effects["interventions"] as? [[String: Any]]).compactMap { i in
            (i["rule"] as? String).map { ($0, i) }
        })
        #expect(Set(byRule.keys) == ["push", "pull"])
        var firstDeltas: [Double] = []
        for rule in ["push", "pull"] {
            let alone = try #require(byRule[rule]?["alone"] as? [String: Any], "\(rule)")
            #expect(try #require(alone["kl_mean"] as? Double) > 1e-2, "\(rule) alone should move the distribution")
            let combined = try #require((byRule[rule]?["logit_deltas"] as? [String: Double])?[" Paris"])
            #expect(abs(combined) < 1e-2)
            firstDeltas.append(try #require((alone["logit_deltas_first"] as? [String: Double])?[" Paris"]))
        }
        // Opposite pushes move the logit opposite ways at the first generated position.
        #expect(firstDeltas[0] * firstDeltas[1] < 0)
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
        let c = try #require((try Self.run(path)["cases"] as? [[String: Any]])?.first)
        let baseline = try #require(c["baseline"] as? [String: Any]), steered = try #require(c["steered"] as? [String: Any])
        #expect(baseline["finish_reason"] as? String != "rule")
        #expect((baseline["tokens"] as? Int ?? 0) > 0)
        #expect(steered["finish_reason"] as? String == "rule")
        #expect(steered["tokens"] as? Int == 0)
    }

    /// With a rule over the committed SAE dictionary, the report gives every position's top
    /// latents and FVU, and the praise latent is among them where the text praises.
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
        let c = try #require((try Self.run(path)["cases"] as? [[String: Any]])?.first)
        let baseline = try #require(c["baseline"] as? [String: Any])
        let features = try #require(baseline["features"] as? [[String: Any]])
        let promptTokens = try #require(c["prompt_tokens"] as? Int)
        #expect(features.count >= promptTokens)
        var praiseSeen = false
        for row in features {
            let packs = try #require(row["packs"] as? [[String: Any]])
            let sae = try #require(packs.first { $0["pack"] as? String == "smollm2-l15" })
            let fvu = try #require(sae["fvu"] as? Double)
            let top = try #require(sae["top"] as? [[String: Any]])
            #expect(fvu >= 0 && fvu < 1 && !top.isEmpty)
            let activations = top.compactMap { $0["activation"] as? Double }
            #expect(activations == activations.sorted(by: >))
            if top.contains(where: { $0["latent"] as? Int == 6562 }) { praiseSeen = true }
        }
        #expect(praiseSeen, "the praise latent (6562) is among no position's top latents")
        let fired = try #require(baseline["fired"] as? [[String: Any]])
        #expect(fired.contains { $0["rule"] as? String == "praise.watch" })
    }
}
