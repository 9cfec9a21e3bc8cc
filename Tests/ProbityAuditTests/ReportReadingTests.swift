// Reading reports back is strict: a missing, mistyped, out-of-range or unknown key fails with the
// path of that key, never a default; merging checks the shards belong together.

import Foundation
import ProbityRules
import ProbityTestSupport
import Testing
@testable import ProbityAudit

@Suite struct ReportReadingTests {
    /// A small report written by hand: two cases, one firing, one steered.
    static func sample() -> AuditReport {
        let firing = AuditReport.Firing(rule: "r.high", severity: .high, value: 2.5, positions: [
            AuditReport.FiringPosition(position: 3, token: 42, piece: " yes", activations: ["pack[7]": 2.5]),
        ])
        let run = AuditReport.Run(text: "yes", tokens: 1, finishReason: .eos, fired: [firing],
                                  pieces: ["<s>", "Is", " it", " yes"], features: nil, reconstruction: nil)
        let quiet = AuditReport.Run(text: "no", tokens: 2, finishReason: .length, fired: [], pieces: ["p", "n", "o"], features: [
            AuditReport.PositionFeatures(position: 0, packs: [AuditReport.PackFeatures(pack: "p", relativeSquaredError: 0.25, top: [
                AuditReport.Latent(latent: 1, activation: 0.5),
            ])]),
        ], reconstruction: [AuditReport.Reconstruction(
            pack: "p", prompt: AuditReport.FVU(positions: 1, squaredError: 0.5, totalVariance: 0, fvu: nil),
            response: AuditReport.FVU(positions: 2, squaredError: 0.5, totalVariance: 2, fvu: 0.25))])
        let effects = AuditReport.Effects(textChanged: true, kl: [0.5, 0], klMean: 0.25, klMax: 0.5, top1ChangedFraction: 0.5,
                                          interventions: [AuditReport.InterventionEffect(
                                              rule: "r.high", positionsEdited: 2, firedBaseline: true, firesAfter: false,
                                              logitDeltas: [" yes": -1], logitDeltasFirst: [" yes": -2], alone: nil)])
        let measured = AuditReport.Validity(auroc: 0.93, tpr: 0.8, fpr: 0.05, benignFPR: 0.02, data: String(repeating: "0", count: 64), n: 300)
        let rules = [AuditReport.Rule(id: "r.high", severity: .high, description: "d", file: "rules/r.yaml", line: 3, intervenes: true,
                                      validity: measured),
                     AuditReport.Rule(id: "r.low", severity: .low, description: "d", file: "rules/r.yaml", line: 12, intervenes: false)]
        let cases = [
            AuditReport.Case(id: "a", index: 0, prompt: "p", promptTokens: 3, location: "s.yaml:5:5", baseline: run,
                             steered: quiet, effects: effects,
                             expectations: [AuditReport.Expectation(rule: "r.low", expected: .silent, actual: .silent, passed: true,
                                                                    location: "s.yaml:6:9")],
                             expectationsPassed: true),
            AuditReport.Case(id: "b", index: 1, prompt: "q", promptTokens: 2, location: "s.yaml:7:5", baseline: quiet,
                             steered: nil, effects: nil, expectations: [], expectationsPassed: true),
        ]
        return AuditReport(
            schemaVersion: AuditReport.schemaVersion, probityVersion: "test", complete: true, startedAt: "t0", finishedAt: "t1",
            model: AuditReport.Model(name: "m", sha256: "00", path: "default"), packs: [AuditReport.Pack(name: "p", path: "packs/p", sha256: "11")],
            ruleFiles: [AuditReport.FileDigest(path: "rules/r.yaml", sha256: "22")], rules: rules,
            suite: AuditReport.Suite(name: "s", path: "s.yaml", sha256: "33", cases: 2),
            settings: AuditReport.Settings(maxTokens: 8, temperature: 0, topP: 1, seed: 0, chatFormat: "auto", failOn: .high,
                                           shard: AuditReport.Shard(index: 1, count: 1)),
            timings: AuditReport.Timings(totalSeconds: 2, cases: ["a": 1, "b": 1]),
            summary: AuditReport.Summary(cases: cases, rules: rules.map { ($0.id, $0.severity) }, failOn: .high, complete: true,
                                         reconstruction: [pooled]),
            cases: cases)
    }

    /// Pooled sums of two positions, (0, 0) and (2, 2), with squared error 1.
    static let pooled = AuditReport.PooledReconstruction(
        pack: "p", prompt: AuditReport.PooledFVU(positions: 0, squaredError: 0, totalVariance: 0, fvu: nil, mean: []),
        response: AuditReport.PooledFVU(positions: 2, squaredError: 1, totalVariance: 4, fvu: 0.25, mean: [1, 1]))

    static func text(_ r: AuditReport) throws -> String { String(decoding: try r.json(), as: UTF8.self) }

    /// Decoding `text` fails naming `key`.
    static func expectBadKey(_ text: String, _ key: String, _ reasonPart: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try AuditReport.decode(Data(text.utf8), path: "r.json")
            Issue.record("decoded a report with a bad \(key)", sourceLocation: sourceLocation)
        } catch let AuditError.badReport(path, found, reason) {
            #expect(path == "r.json" && found == key, "key \(found): \(reason)", sourceLocation: sourceLocation)
            #expect(reason.contains(reasonPart), "\(reason)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func summaryCountsFindingsAndVerdict() {
        let s = Self.sample().summary
        #expect(s.findings == 1 && s.findingsBySeverity[.high] == 1 && s.findingsBySeverity[.critical] == 0)
        #expect(s.findingsByRule == ["r.high": 1, "r.low": 0])
        #expect(s.findingsAtOrAboveFailOn == 1 && s.casesFailed == 1 && !s.passed)
    }

    @Test func findingsCarryTheirRulesValidity() {
        let r = Self.sample()
        #expect(r.rules.map(\.trust) == ["AUROC 0.93, benign FPR 2%", "unmeasured"])
        #expect(r.junit().contains("rule r.high fired (severity high, at or above high; validity: AUROC 0.93, benign FPR 2%)"))
    }

    @Test func roundTripIsLossless() throws {
        let r = Self.sample()
        let data = try r.json()
        let back = try AuditReport.decode(data, path: "r.json")
        #expect(back == r)
        #expect(try back.json() == data)
        // Absent optionals stay absent, and keys come sorted.
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"findings_by_severity\" : {\n      \"critical\" : 0,\n      \"high\" : 1,"))
        #expect(!text.contains("\"alone\""))
    }

    /// Schema 5: the model's LoRA adapters round-trip, validate against the schema, and are absent
    /// (not empty) when there are none.
    @Test func adaptersRoundTripAndValidate() throws {
        var r = Self.sample()
        let plain = try Self.text(r)
        #expect(!plain.contains("adapters"))
        r.model.adapters = [AuditReport.Adapter(path: "ft.gguf", sha256: String(repeating: "ab", count: 32), scale: 0.5)]
        let data = try r.json()
        #expect(try AuditReport.decode(data, path: "r.json") == r)
        let schemaData = try Data(contentsOf: URL(fileURLWithPath: AuditFixtures.repo + "/docs/report.schema.json"))
        let schema = JSONSchemaValidator(root: try #require(try JSONSerialization.jsonObject(with: schemaData) as? [String: Any]))
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        // The sample's digests are short placeholders; only the model's part is checked here.
        #expect(schema.validate(object).filter { $0.hasPrefix("$.model") } == [])
        var model = try #require(object["model"] as? [String: Any])
        model["adapters"] = [["path": "ft.gguf", "scale": 0.5]]
        object["model"] = model
        #expect(schema.validate(object).contains { $0.hasPrefix("$.model.adapters[0]") })
        Self.expectBadKey(String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\"scale\" : 0.5", with: "\"strength\" : 0.5"),
                          "model.adapters[0].scale", "missing")
    }

    @Test func badKeysAreNamedByPath() throws {
        let good = try Self.text(Self.sample())
        Self.expectBadKey(good.replacingOccurrences(of: "\"finish_reason\" : \"eos\"", with: "\"finish_reason\" : \"halted\""),
                          "cases[0].baseline.finish_reason", "halted")
        Self.expectBadKey(good.replacingOccurrences(of: "\"prompt_tokens\" : 3", with: "\"prompt_tokens\" : \"3\""),
                          "cases[0].prompt_tokens", "expected an integer")
        Self.expectBadKey(good.replacingOccurrences(of: "\"kl_max\" : 0.5", with: "\"kl_maximum\" : 0.5"),
                          "cases[0].effects.kl_maximum", "unknown key")
        Self.expectBadKey(good.replacingOccurrences(of: "\"severity\" : \"high\"", with: "\"severity\" : \"severe\""),
                          "rules[0].severity", "severe")
        Self.expectBadKey(good.replacingOccurrences(of: "\"passed\" : false", with: "\"verdict\" : false"),
                          "summary.passed", "missing")
        Self.expectBadKey(good.replacingOccurrences(of: "\"high\" : 1,", with: "\"severe\" : 1,"),
                          "summary.findings_by_severity.severe", "RuleSeverity")
        Self.expectBadKey(good.replacingOccurrences(of: "\"schema_version\" : 7", with: "\"schema_version\" : 6"),
                          "schema_version", "expected 7, found 6")
        // Version 2's per-position "fvu" is no longer a key.
        Self.expectBadKey(good.replacingOccurrences(of: "\"relative_squared_error\" : 0.25", with: "\"fvu\" : 0.25"),
                          "cases[0].steered.features[0].packs[0].relative_squared_error", "missing")
        // Pooled sums that describe no set of positions: a mean without positions.
        var meanWithoutPositions = Self.sample()
        meanWithoutPositions.summary.reconstruction[0].prompt.mean = [3]
        Self.expectBadKey(try Self.text(meanWithoutPositions), "summary.reconstruction[0].prompt", "no set of positions")
        Self.expectBadKey("[1]", "$", "expected an object")
        // Strict RFC 8259 before any key is read: a cut text, and a trailing comma Foundation alone accepts.
        #expect { _ = try AuditReport.decode(Data("{".utf8), path: "r.json") } throws: { error in
            "\(error)" == "r.json:1:2: not valid JSON (byte offset 1): expected a key in double quotes or '}', found the end of the text"
        }
        let trailing = good.replacingOccurrences(of: "\n}", with: ",\n}")
        #expect { _ = try AuditReport.decode(Data(trailing.utf8), path: "r.json") } throws: { error in
            "\(error)".contains("trailing commas are not JSON")
        }
    }

    @Test func mergeJoinsShardsAndRefusesStrangers() throws {
        let whole = Self.sample()
        var one = whole, two = whole
        one.cases = [whole.cases[0]]
        one.settings.shard = AuditReport.Shard(index: 1, count: 2)
        one.timings = AuditReport.Timings(totalSeconds: 1, cases: ["a": 1])
        two.cases = [whole.cases[1]]
        two.settings.shard = AuditReport.Shard(index: 2, count: 2)
        two.timings = AuditReport.Timings(totalSeconds: 1, cases: ["b": 1])
        // Each shard's pooled sums: one position each, (0, 0) and (2, 2), with squared errors 0.25 and 0.75.
        one.summary.reconstruction = [AuditReport.PooledReconstruction(
            pack: "p", prompt: Self.pooled.prompt,
            response: AuditReport.PooledFVU(positions: 1, squaredError: 0.25, totalVariance: 0, fvu: nil, mean: [0, 0]))]
        two.summary.reconstruction = [AuditReport.PooledReconstruction(
            pack: "p", prompt: Self.pooled.prompt,
            response: AuditReport.PooledFVU(positions: 1, squaredError: 0.75, totalVariance: 0, fvu: nil, mean: [2, 2]))]
        let merged = try AuditReport.merge([("2.json", two), ("1.json", one)])
        #expect(merged == whole)
        var wide = two
        wide.summary.reconstruction[0].response.mean = [2, 2, 2]
        #expect(throws: AuditError.badMerge(path: "w.json", reason: "pack 'p' has a mean of width 3, not 2")) {
            _ = try AuditReport.merge([("1.json", one), ("w.json", wide)])
        }

        #expect(throws: AuditError.badMerge(path: "1b.json", reason: "case 0 appears in more than one report")) {
            _ = try AuditReport.merge([("1.json", one), ("1b.json", one)])
        }
        var other = two
        other.model.sha256 = "ff"
        #expect(throws: AuditError.badMerge(path: "o.json", reason: "not a shard of the same suite, model, rules and settings as 1.json")) {
            _ = try AuditReport.merge([("1.json", one), ("o.json", other)])
        }
    }
}
