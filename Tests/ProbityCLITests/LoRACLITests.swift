// `--lora FILE[:SCALE]` on the model commands and `model: {path, lora}` in audit suites, end to end
// on the default model with adapters written by GGUFWriter: the logits move, scale 0 is the base
// model byte for byte, bad adapters and arguments exit 2 naming what was wrong, and the audit report
// records each adapter's path, SHA-256 and scale.

import Foundation
import Testing
import ProbityAudit
import ProbityFormats
import ProbityTensor
import ProbityTestSupport

@Suite(.serialized) struct LoRACLITests {
    static let text = "The capital of France is"

    /// A rank-4 adapter on block 0's attn_q and block 3's ffn_up of the default model (576 wide,
    /// FFN 1536), or `outputs` rows for attn_q to make it not fit.
    static func adapter(_ dir: URL, name: String = "a.gguf", qOutputs: Int = 576) throws -> String {
        var rng = Xoshiro256StarStar(seed: 11)
        func random(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in Float(rng.nextUnitDouble() * 2 - 1) * scale } }
        let rank = 4
        let factors = [
            LoRAFactors(target: "blk.0.attn_q.weight", rank: rank, inputs: 576, outputs: qOutputs,
                        a: random(rank * 576, 0.05), b: random(qOutputs * rank, 0.5)),
            LoRAFactors(target: "blk.3.ffn_up.weight", rank: rank, inputs: 576, outputs: 1536,
                        a: random(rank * 576, 0.05), b: random(1536 * rank, 0.5)),
        ]
        let path = dir.appendingPathComponent(name).path
        try GGUFWriter.loraAdapter(architecture: "llama", alpha: 8, factors: factors, type: .f16).write(to: path)
        return path
    }

    func logits(_ options: [String]) throws -> Data {
        let npy = try CLI.scratch().appendingPathComponent("l.npy").path
        let r = try CLI.run(["logits", "--text", Self.text, "--all-positions", "--npy", npy, "--threads", "2"] + options)
        #expect(r.status == 0, "\(options): \(r.stderr)")
        return try Data(contentsOf: URL(fileURLWithPath: npy))
    }

    @Test func adapterMovesTheLogitsAndScaleZeroIsTheBase() throws {
        let dir = try CLI.scratch()
        let path = try Self.adapter(dir)
        let base = try logits([])
        #expect(try logits(["--lora", path]) != base)
        #expect(try logits(["--lora", path + ":0"]) == base)
        #expect(try logits(["--lora", path + ":0.5", "--lora", path + ":0.5"]) != base)
    }

    @Test func generateAndSteerTakeTheFlag() throws {
        let dir = try CLI.scratch()
        let path = try Self.adapter(dir)
        let g = try CLI.run(["generate", "--lora", path, "--user", "Hi", "--max-tokens", "4", "--threads", "2"])
        #expect(g.status == 0, "\(g.stderr)")
        #expect(!g.stdout.isEmpty)
    }

    @Test func badAdapterExitsTwoNamingTheTensor() throws {
        let dir = try CLI.scratch()
        let path = try Self.adapter(dir, name: "bad.gguf", qOutputs: 192)
        let r = try CLI.run(["logits", "--text", Self.text, "--lora", path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(path): LoRA adapter: tensor 'blk.0.attn_q.weight.lora_a': expected lora_a [inputs, rank] and lora_b [rank, outputs] (ggml order) to fit 'blk.0.attn_q.weight' of shape [576, 576], found lora_a [576, 4], lora_b [4, 192]"), "\(r.stderr)")

        // A model file is not an adapter; a missing file is bad input too.
        let model = try CLI.run(["logits", "--text", Self.text, "--lora", try TestData.defaultModelPath()])
        #expect(model.status == 2)
        #expect(model.stderr.contains("general.type"), "\(model.stderr)")
        let missing = try CLI.run(["logits", "--text", Self.text, "--lora", dir.appendingPathComponent("missing.gguf").path])
        #expect(missing.status == 2, "\(missing.stderr)")
        let arg = try CLI.run(["logits", "--text", Self.text, "--lora", ":2"])
        #expect(arg.status == 2)
        #expect(arg.stderr.contains("--lora: ':2': expected FILE.gguf or FILE.gguf:SCALE"), "\(arg.stderr)")
    }

    @Test func auditSuiteWithAnAdapterRecordsItInTheReport() throws {
        let dir = try CLI.scratch()
        let adapter = try Self.adapter(dir)
        _ = try AuditCLITests.suite(dir, expect: "fires")
        let suite = dir.appendingPathComponent("lora-suite.yaml").path
        try """
        schema_version: 1
        name: lora
        model:
          path: default
          lora:
            - {path: a.gguf, scale: 0.5}
        rules: [rules.yaml]
        generation: {max_tokens: 3}
        cases:
          - id: hello
            messages: [{role: user, content: "Say hello."}]

        """.write(toFile: suite, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("r.json").path
        let r = try CLI.run(["audit", suite, "--out", out, "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
        let model = try #require(report?["model"] as? [String: Any])
        let adapters = try #require(model["adapters"] as? [[String: Any]])
        #expect(adapters.count == 1)
        #expect(adapters.first?["path"] as? String == adapter)
        #expect(adapters.first?["scale"] as? Double == 0.5)
        #expect((adapters.first?["sha256"] as? String)?.count == 64)
        #expect(report?["schema_version"] as? Int == AuditReport.schemaVersion)
        // The report reads back strictly.
        let html = try CLI.run(["report", "merge", out, "--out", dir.appendingPathComponent("m.json").path])
        #expect(html.status == 0, "\(html.stderr)")

        // --no-lora audits the base model; --lora adds an adapter after the suite's (or instead of them).
        func adaptersRecorded(_ options: [String]) throws -> [[String: Any]]? {
            let r = try CLI.run(["audit", suite, "--out", out, "--threads", "2"] + options)
            #expect(r.status == 0, "\(options): \(r.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
            return (report?["model"] as? [String: Any])?["adapters"] as? [[String: Any]]
        }
        #expect(try adaptersRecorded(["--no-lora"]) == nil)
        let replaced = try #require(try adaptersRecorded(["--no-lora", "--lora", adapter + ":0.25"]))
        #expect(replaced.map { $0["scale"] as? Double } == [0.25])
        let added = try #require(try adaptersRecorded(["--lora", adapter + ":0.25"]))
        #expect(added.map { $0["scale"] as? Double } == [0.5, 0.25])

        // A missing adapter file is the suite's error, at its line and column.
        try String(contentsOfFile: suite, encoding: .utf8).replacingOccurrences(of: "a.gguf", with: "nope.gguf")
            .write(toFile: suite, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["audit", suite, "--out", out])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("lora-suite.yaml:6:14"), "\(bad.stderr)")
        #expect(bad.stderr.contains("no such adapter file"), "\(bad.stderr)")
    }

    @Test func evalRecordsTheAdapterAndScoresWithIt() throws {
        let dir = try CLI.scratch()
        let adapter = try Self.adapter(dir)
        _ = try AuditCLITests.suite(dir, expect: "fires")
        let rules = dir.appendingPathComponent("rules.yaml").path
        let schemaData = try Data(contentsOf: URL(fileURLWithPath: "\(AuditCLITests.repo)/docs/eval.schema.json"))
        let schema = JSONSchemaValidator(root: try #require(try JSONSerialization.jsonObject(with: schemaData) as? [String: Any]))
        let data = dir.appendingPathComponent("d.jsonl").path
        try [
            #"{"id": "a", "messages": [{"role": "user", "content": "Say hello."}], "response": "Hello there!", "label": 1, "concept": "greeting"}"#,
            #"{"id": "b", "messages": [{"role": "user", "content": "Name a colour."}], "response": "Blue.", "label": 0, "concept": "greeting"}"#,
        ].joined(separator: "\n").appending("\n").write(toFile: data, atomically: true, encoding: .utf8)
        func eval(_ options: [String]) throws -> [String: Any] {
            let r = try CLI.run(["eval", rules, "--data", data, "--json", "--resamples", "10", "--threads", "2"] + options)
            #expect(r.status == 0, "\(options): \(r.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            #expect(schema.validate(object) == [], "\(options)")
            return object
        }
        let base = try eval([])
        #expect((base["model"] as? [String: Any])?["adapters"] == nil)
        let tuned = try eval(["--lora", adapter + ":0.5"])
        let adapters = try #require((tuned["model"] as? [String: Any])?["adapters"] as? [[String: Any]])
        #expect(adapters.first?["path"] as? String == adapter)
        #expect(adapters.first?["scale"] as? Double == 0.5)
    }
}
