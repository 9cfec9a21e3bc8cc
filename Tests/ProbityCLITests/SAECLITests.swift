// `probity sae train` and `probity sae eval` on the default model: a short end-to-end run, an
// interrupted run resumed to the same weights, evaluation JSON, and bad input exiting 2.

import Foundation
import Testing

@Suite(.serialized) struct SAECLITests {
    /// A small text corpus: the repository's design document, each line its own paragraph, so no
    /// document is longer than a line and a 256-token buffer never holds the whole 512-token run
    /// (the resume test needs at least two buffers, whatever the document says).
    static func corpus(in dir: URL) throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/DESIGN.md"), encoding: .utf8)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let path = dir.appendingPathComponent("design.txt").path
        try lines.joined(separator: "\n\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let small = ["--hook", "blocks.15.hook_resid_post", "--latents", "256", "--k", "8", "--tokens", "512",
                        "--batch-size", "128", "--buffer-tokens", "256", "--context", "64"]

    @Test func trainResumeAndEvaluate() throws {
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = try Self.corpus(in: dir)
        let whole = dir.appendingPathComponent("whole").path
        let r = try CLI.run(["sae", "train"] + Self.small + ["--corpus", corpus, "--out", whole])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("step 4/4"))
        #expect(r.stderr.contains("tok/s") && r.stderr.contains("fvu") && r.stderr.contains("l0") && r.stderr.contains("dead"))
        for file in ["cfg.json", "sae_weights.safetensors", "metrics.json", "pack.json"] {
            #expect(FileManager.default.fileExists(atPath: whole + "/" + file), "\(file)")
        }
        let cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: whole + "/cfg.json"))) as? [String: Any]
        #expect(cfg?["architecture"] as? String == "topk")
        #expect(cfg?["k"] as? Int == 8 && cfg?["d_in"] as? Int == 576 && cfg?["d_sae"] as? Int == 256)
        #expect(cfg?["normalize_activations"] as? String == "expected_average_only_in")
        #expect((cfg?["norm_scaling_factor"] as? Double ?? 0) > 0)
        #expect((cfg?["metadata"] as? [String: Any])?["hook_name"] as? String == "blocks.15.hook_resid_post")

        // Stopped after the first buffer, then resumed: the same weights as the uninterrupted run.
        let parts = dir.appendingPathComponent("parts").path
        let s = try CLI.run(["sae", "train"] + Self.small + ["--corpus", corpus, "--out", parts, "--stop-after-buffers", "1"])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(!FileManager.default.fileExists(atPath: parts + "/sae_weights.safetensors"))
        let t = try CLI.run(["sae", "train"] + Self.small + ["--corpus", corpus, "--out", parts, "--resume"])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stderr.contains("resuming from"))
        let a = try Data(contentsOf: URL(fileURLWithPath: whole + "/sae_weights.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: parts + "/sae_weights.safetensors"))
        #expect(a == b)

        let e = try CLI.run(["sae", "eval", whole, "--corpus", corpus, "--split", "all", "--tokens", "100", "--context", "64", "--json"])
        #expect(e.status == 0, "\(e.stderr)")
        let m = try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any]
        let fvu = m?["fvu"] as? Double ?? -1, l0 = m?["l0"] as? Double ?? -1
        let clean = m?["ce_clean"] as? Double ?? 0, zero = m?["ce_zero_ablated"] as? Double ?? 0
        #expect(fvu > 0 && fvu < 1.5)
        #expect(l0 > 0 && l0 <= 8)
        #expect(clean > 0 && zero > clean)
        #expect((m?["positions"] as? Int ?? 0) >= 100)
        #expect(m?["ce_loss_recovered"] is Double && m?["dead_latents"] is Int && m?["dense_latents"] is Int)
    }

    @Test func badInputExitsTwo() throws {
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let corpus = try Self.corpus(in: dir)
        let garbage = dir.appendingPathComponent("corpus.bin").path
        try "hello".write(toFile: garbage, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("o").path
        func args(_ replace: [String: String], corpus c: String = corpus) -> [String] {
            var a = ["--hook": "blocks.15.hook_resid_post", "--latents": "64", "--k": "4", "--tokens": "4096"]
            for (k, v) in replace { a[k] = v }
            return ["sae", "train", "--corpus", c, "--out", out] + a.sorted { $0.key < $1.key }.flatMap { [$0.key, $0.value] }
        }
        let cases: [([String], String)] = [
            (args(["--hook": "blocks.15.resid"]), "--hook: 'blocks.15.resid' is not a hook name"),
            (args(["--hook": "blocks.99.hook_resid_post"]), "blocks.99.hook_resid_post"),
            (args(["--latents": "0"]), "--latents: expected a positive number, found 0"),
            (args(["--k": "65"]), "--k: expected 1 to the number of latents (64), found 65"),
            (args([:], corpus: dir.appendingPathComponent("none.json").path), "none.json: no such corpus file"),
            (args([:], corpus: garbage), "corpus.bin: cannot read the corpus"),
        ]
        for (arguments, message) in cases {
            let r = try CLI.run(arguments)
            #expect(r.status == 2, "\(arguments): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(r.stderr)")
            #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(r.stderr)")
        }
    }
}
