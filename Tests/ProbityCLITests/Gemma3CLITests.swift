// The model commands on Gemma 3 270M by name (`gemma3-270m`, scripts/setup --models), checked
// against Tests/Fixtures/gemma3/reference.json (llama.cpp's greedy tokens, the float64 residual).

import Foundation
import ProbityFormats
import Testing

@Suite struct Gemma3CLITests {
    static let fixture = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gemma3/reference.json")

    /// The fixture's prompt named `name`.
    func prompt(_ name: String) throws -> [String: Any] {
        let root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixture)) as? [String: Any])
        let prompts = try #require(root["prompts"] as? [[String: Any]])
        return try #require(prompts.first { $0["name"] as? String == name })
    }

    /// Greedy generation gives llama.cpp's 16 greedy tokens (prompts without a near-tie on the way).
    @Test(arguments: ["story", "facts"]) func generateGreedyMatchesLlamaCpp(name: String) throws {
        let p = try prompt(name)
        let text = try #require(p["text"] as? String), expected = try #require(p["llamacpp_greedy"] as? [Int])
        let r = try CLI.run(["generate", "gemma3-270m", "--prompt", text, "--max-tokens", "16", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["tokens"] as? [Int] == expected)
        #expect(object["text"] as? String == p["llamacpp_greedy_text"] as? String)
    }

    /// `activations --hook blocks.5.hook_resid_post`: one row per token, the last within 2e-3 (rel L2)
    /// of the float64 forward's.
    @Test func activationsAtAResidualHook() throws {
        let p = try prompt("plain")
        let text = try #require(p["text"] as? String), tokens = try #require(p["tokens"] as? [Int])
        let reference = try #require(p["f64_resid_post"] as? [Double])
        let npy = try CLI.scratch().appendingPathComponent("resid.npy").path
        let r = try CLI.run(["activations", "gemma3-270m", "--hook", "blocks.5.hook_resid_post", "--text", text,
                             "--npy", npy])
        #expect(r.status == 0, "\(r.stderr)")
        let array = try NPY.read(path: npy)
        #expect(array.shape == [tokens.count, 640])
        let last = Array(array.values.suffix(640))
        var num = 0.0, den = 0.0
        for (a, b) in zip(last, reference) { num += (a - b) * (a - b); den += b * b }
        #expect((num / den).squareRoot() <= 2e-3)
    }

    /// The base model has no chat template: chat needs `--chat-format gemma`, which renders Gemma's
    /// turns with one BOS.
    @Test func chatNeedsAFormatAndRendersGemmaTurns() throws {
        let dir = try CLI.scratch()
        let messages = dir.appendingPathComponent("m.json")
        try Data(#"[{"role": "user", "content": "Hi"}]"#.utf8).write(to: messages)
        let bare = try CLI.run(["chat-template", "gemma3-270m", "--messages", messages.path])
        #expect(bare.status == 2)
        #expect(bare.stderr.contains("no chat template") && bare.stderr.contains("gemma"), "\(bare.stderr)")
        let r = try CLI.run(["chat-template", "gemma3-270m", "--messages", messages.path, "--chat-format", "gemma"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"), "\(r.stdout)")
        let g = try CLI.run(["generate", "gemma3-270m", "--user", "Hi", "--chat-format", "gemma", "--max-tokens", "1", "--json"])
        #expect(g.status == 0, "\(g.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(g.stdout.utf8)) as? [String: Any])
        // <bos> <start_of_turn> user \n Hi <end_of_turn> \n <start_of_turn> model \n: one BOS.
        #expect(object["prompt_tokens"] as? Int == 10)
    }

    /// A named model that is not fetched is bad input naming the setup step.
    @Test func missingNamedModelNamesTheSetupStep() throws {
        let empty = try CLI.scratch()
        let r = try CLI.run(["inspect", "gemma3-270m"], environment: ["PROBITY_CACHE": empty.path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("scripts/setup --models"), "\(r.stderr)")
    }
}
