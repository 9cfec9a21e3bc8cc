// The feature commands run as the real binary: pack info, bad packs and control vectors exit 2 with
// one message, derive → export → --control-vector round trip on the default model, steer --compare.

import Foundation
import ProbityFormats
import Testing

@Suite(.serialized) struct FeaturesCLITests {
    /// A small SAELens directory (d_in 576, so it fits the default model) with optional edits.
    func writeSAE(_ dir: URL, dSAE: Int = 16, config: [String: Any]? = nil, wEncShape: [Int]? = nil) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let d = 576
        let cfg: [String: Any] = config ?? ["d_in": d, "d_sae": dSAE, "architecture": "standard",
                                            "apply_b_dec_to_input": true, "normalize_activations": "none",
                                            "metadata": ["hook_name": "blocks.15.hook_resid_post", "model_name": "smollm2"]]
        try JSONSerialization.data(withJSONObject: cfg).write(to: dir.appendingPathComponent("cfg.json"))
        var w = SafeTensorsWriter()
        var seed: UInt32 = 1
        func next() -> Float {
            seed = seed &* 1_664_525 &+ 1_013_904_223
            return Float(Int(seed >> 9) % 2001 - 1000) / 20000
        }
        try w.addTensor(name: "W_enc", shape: wEncShape ?? [d, dSAE], floats: (0..<(d * dSAE)).map { _ in next() })
        try w.addTensor(name: "b_enc", shape: [dSAE], floats: [Float](repeating: 0, count: dSAE))
        try w.addTensor(name: "W_dec", shape: [dSAE, d], floats: (0..<(d * dSAE)).map { _ in next() })
        try w.addTensor(name: "b_dec", shape: [d], floats: [Float](repeating: 0, count: d))
        try w.write(to: dir.appendingPathComponent("sae_weights.safetensors").path)
    }

    @Test func infoDescribesABareSAELensDirectory() throws {
        let dir = try CLI.scratch().appendingPathComponent("l15-sae")
        try writeSAE(dir)
        let r = try CLI.run(["features", "info", dir.path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(o?["hook"] as? String == "blocks.15.hook_resid_post")
        #expect(o?["d_sae"] as? Int == 16)
        #expect(o?["name"] as? String == "l15-sae")
    }

    @Test func badPackIsExit2() throws {
        let dir = try CLI.scratch().appendingPathComponent("bad")
        try writeSAE(dir, wEncShape: [16, 576])
        let r = try CLI.run(["features", "info", dir.path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("tensor W_enc: expected shape [576, 16], found [16, 576]"), "\(r.stderr)")

        let arch = try CLI.scratch().appendingPathComponent("arch")
        try writeSAE(arch, config: ["d_in": 576, "d_sae": 16, "architecture": "gated"])
        let r2 = try CLI.run(["features", "info", arch.path])
        #expect(r2.status == 2 && r2.stderr.contains("architecture 'gated' is not supported"), "\(r2.stderr)")
    }

    @Test func dInMismatchIsExit2() throws {
        let dir = try CLI.scratch().appendingPathComponent("narrow")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: ["d_in": 4, "d_sae": 2, "architecture": "standard",
                                                    "metadata": ["hook_name": "blocks.1.hook_resid_post"]])
            .write(to: dir.appendingPathComponent("cfg.json"))
        var w = SafeTensorsWriter()
        try w.addTensor(name: "W_enc", shape: [4, 2], floats: [Float](repeating: 0.1, count: 8))
        try w.addTensor(name: "b_enc", shape: [2], floats: [0, 0])
        try w.addTensor(name: "W_dec", shape: [2, 4], floats: [Float](repeating: 0.1, count: 8))
        try w.addTensor(name: "b_dec", shape: [4], floats: [0, 0, 0, 0])
        try w.write(to: dir.appendingPathComponent("sae_weights.safetensors").path)
        let r = try CLI.run(["features", "activations", "--pack", dir.path, "--text", "hello"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("d_in is 4 but the model's width is 576"), "\(r.stderr)")
    }

    @Test func badControlVectorIsExit2() throws {
        let path = try CLI.scratch().appendingPathComponent("zero.gguf").path
        var w = GGUFWriter()
        try w.set("general.architecture", .string("controlvector"))
        try w.addTensor(name: "direction.0", shape: [576], floats: [Float](repeating: 0, count: 576))
        try w.write(to: path)
        let r = try CLI.run(["steer", "--prompt", "Hi", "--max-tokens", "1", "--control-vector", path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("direction.0"), "\(r.stderr)")
    }

    @Test func activationsShowFeaturesAndFVU() throws {
        let dir = try CLI.scratch().appendingPathComponent("sae")
        try writeSAE(dir)
        let r = try CLI.run(["features", "activations", "--pack", dir.path, "--text", "The cat sat", "--top", "3", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let rows = o?["tokens"] as? [[String: Any]] ?? []
        #expect(rows.count >= 3)
        #expect(rows.allSatisfy { ($0["features"] as? [Any])?.count ?? 99 <= 3 && $0["relative_squared_error"] is Double })
        // The FVU over the text's non-special positions, centred on their mean.
        #expect((o?["positions"] as? Int).map { $0 >= 2 && $0 <= rows.count } == true && (o?["fvu"] as? Double).map { $0 > 0 } == true, "\(o ?? [:])")
    }

    /// derive → export-control-vector, then steering with the exported vector (--control-vector) and
    /// with the pack (--add) give the same tokens, and differ from the unsteered ones.
    @Test func deriveExportAndSteer() throws {
        let dir = try CLI.scratch()
        let pos = dir.appendingPathComponent("pos.jsonl"), neg = dir.appendingPathComponent("neg.jsonl")
        try Data("{\"text\": \"I love it, wonderful\"}\n{\"text\": \"Great, I am happy\"}\n".utf8).write(to: pos)
        try Data("{\"text\": \"I hate it, terrible\"}\n{\"text\": \"Awful, I am sad\"}\n".utf8).write(to: neg)
        let pack = dir.appendingPathComponent("joy").path
        let d = try CLI.run(["features", "derive", "--positive", pos.path, "--negative", neg.path,
                             "--hook", "blocks.10.hook_resid_post", "--at", "mean", "--out", pack])
        #expect(d.status == 0, "\(d.stderr)")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: pack + "/pack.json"))) as? [String: Any]
        let prov = manifest?["provenance"] as? [String: Any]
        #expect(prov?["pairs"] as? Int == 2)
        #expect(((prov?["positive"] as? [String: Any])?["sha256"] as? String)?.count == 64)

        let acts = try CLI.run(["features", "activations", "--pack", pack, "--text", "I love it but I hate it", "--json"])
        #expect(acts.status == 0, "\(acts.stderr)")
        let rows = (try JSONSerialization.jsonObject(with: Data(acts.stdout.utf8)) as? [String: Any])?["tokens"] as? [[String: Any]] ?? []
        let projections = rows.compactMap { ($0["projections"] as? [String: Double])?["joy"] }
        #expect(projections.count == rows.count && !rows.isEmpty)

        let gguf = dir.appendingPathComponent("joy.gguf").path
        let e = try CLI.run(["features", "export-control-vector", pack, "--out", gguf])
        #expect(e.status == 0, "\(e.stderr)")
        let viaCV = try CLI.run(["steer", "--user", "Describe your day.", "--max-tokens", "12", "--control-vector", gguf + ":3", "--json"])
        let viaSteer = try CLI.run(["steer", "--pack", pack, "--add", "joy=3", "--user", "Describe your day.", "--max-tokens", "12",
                                    "--compare", "--json"])
        #expect(viaCV.status == 0 && viaSteer.status == 0, "\(viaCV.stderr) \(viaSteer.stderr)")
        let a = try JSONSerialization.jsonObject(with: Data(viaCV.stdout.utf8)) as? [String: Any]
        let b = try JSONSerialization.jsonObject(with: Data(viaSteer.stdout.utf8)) as? [String: Any]
        #expect(a?["steered_tokens"] as? [Int] == b?["steered_tokens"] as? [Int])
        #expect(b?["unsteered_tokens"] as? [Int] != b?["steered_tokens"] as? [Int])
        let text = try CLI.run(["steer", "--pack", pack, "--add", "joy=3", "--user", "Describe your day.", "--max-tokens", "8", "--compare"])
        #expect(text.status == 0 && text.stdout.contains("| unsteered"), "\(text.stdout)")
    }

    /// `--at reply` averages each conversation's last message: replies that differ only in their
    /// words give a direction, and a line with no conversation is one message naming it, exit 2.
    @Test func deriveFromReplies() throws {
        let dir = try CLI.scratch()
        let pos = dir.appendingPathComponent("pos.jsonl"), neg = dir.appendingPathComponent("neg.jsonl")
        func line(_ user: String, _ reply: String) -> String {
            "{\"messages\": [{\"role\": \"user\", \"content\": \"\(user)\"}, {\"role\": \"assistant\", \"content\": \"\(reply)\"}]}\n"
        }
        try Data((line("Is my plan good?", "It is brilliant, you are a genius!") + line("Rate my poem.", "A masterpiece, truly wonderful!")).utf8).write(to: pos)
        try Data((line("Is my plan good?", "It has two weak points to fix first.") + line("Rate my poem.", "The second verse loses the rhythm.")).utf8).write(to: neg)
        let pack = dir.appendingPathComponent("praise").path
        let d = try CLI.run(["features", "derive", "--positive", pos.path, "--negative", neg.path,
                             "--hook", "blocks.15.hook_resid_post", "--at", "reply", "--out", pack])
        #expect(d.status == 0, "\(d.stderr)")
        #expect(d.stdout.contains("from 2 pairs"), "\(d.stdout)")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: pack + "/pack.json"))) as? [String: Any]
        #expect((manifest?["provenance"] as? [String: Any])?["at"] as? String == "reply")

        let text = dir.appendingPathComponent("text.jsonl")
        try Data((line("Is my plan good?", "Yes!") + "{\"text\": \"no conversation\"}\n").utf8).write(to: text)
        let bad = try CLI.run(["features", "derive", "--positive", text.path, "--negative", neg.path,
                               "--hook", "blocks.15.hook_resid_post", "--at", "reply", "--out", dir.appendingPathComponent("x").path])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("\(text.path):2:") && bad.stderr.contains("--at reply"), "\(bad.stderr)")
    }
}
