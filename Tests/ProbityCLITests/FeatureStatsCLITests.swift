// `probity features stats`, `show` and `search` through the real binary on the default model, with a
// planted SAE: latent 7 reads the embedding of " Paris" at blocks.0.hook_resid_pre (taken from
// `probity activations`), so it fires on that token and hardly anywhere else.

import Foundation
import ProbityFormats
import Testing

@Suite(.serialized) struct FeatureStatsCLITests {
    static let documents = [
        "The capital of France is Paris, a city on the Seine.",
        "We walked along the river for an hour and then had lunch near the old bridge.",
        "Many tourists visit Paris every spring to see the museums.",
        "The train from London arrives in the late afternoon, just before dinner.",
    ]

    /// A scratch directory holding `pack/` (the planted SAE, pack.json without labels) and `cities.txt`.
    static func setUp() throws -> (dir: URL, pack: String, corpus: String) {
        let dir = try CLI.scratch()
        let r = try CLI.run(["activations", "--hook", "blocks.0.hook_resid_pre", "--text", "in Paris", "--json"])
        guard r.status == 0, let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
              let pieces = o["pieces"] as? [String], let values = o["values"] as? [[Double]],
              let at = pieces.firstIndex(of: " Paris") else {
            throw CLIFixtureError("could not read the embedding of ' Paris': \(r.stderr)")
        }
        let e = values[at], d = e.count, n = 16
        let norm2 = e.map { $0 * $0 }.reduce(0, +)
        var seed: UInt32 = 7
        func small() -> Float {
            seed = seed &* 1_664_525 &+ 1_013_904_223
            return Float(Int(seed >> 9) % 2001 - 1000) / 500_000
        }
        var wEnc = (0..<(d * n)).map { _ in small() }
        for j in 0..<d { wEnc[j * n + 7] = Float(4 * e[j] / norm2) }
        var bEnc = [Float](repeating: 0, count: n)
        bEnc[7] = -2
        let pack = dir.appendingPathComponent("pack")
        try FileManager.default.createDirectory(at: pack, withIntermediateDirectories: true)
        var w = SafeTensorsWriter()
        try w.addTensor(name: "W_enc", shape: [d, n], floats: wEnc)
        try w.addTensor(name: "b_enc", shape: [n], floats: bEnc)
        try w.addTensor(name: "W_dec", shape: [n, d], floats: (0..<(n * d)).map { _ in small() })
        try w.addTensor(name: "b_dec", shape: [d], floats: [Float](repeating: 0, count: d))
        try w.write(to: pack.appendingPathComponent("sae_weights.safetensors").path)
        try JSONSerialization.data(withJSONObject: ["d_in": d, "d_sae": n, "architecture": "standard",
                                                    "metadata": ["hook_name": "blocks.0.hook_resid_pre"]])
            .write(to: pack.appendingPathComponent("cfg.json"))
        try JSONSerialization.data(withJSONObject: ["schema_version": 1, "name": "planted", "kind": "sae",
                                                    "hook": "blocks.0.hook_resid_pre"])
            .write(to: pack.appendingPathComponent("pack.json"))
        let corpus = dir.appendingPathComponent("cities.txt").path
        try documents.joined(separator: "\n\n").write(toFile: corpus, atomically: true, encoding: .utf8)
        return (dir, pack.path, corpus)
    }

    static func stats(_ pack: String, _ corpus: String) throws -> CLIResult {
        try CLI.run(["features", "stats", pack, "--corpus", corpus, "--tokens", "1000", "--split", "all", "--window", "64"])
    }

    @Test func statsWritesLabelsWithContexts() throws {
        let (dir, pack, corpus) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try Self.stats(pack, corpus)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("scanning all split of cities.txt"), "\(r.stdout)")
        #expect(r.stdout.contains("tokens/s") && r.stdout.contains("dead latents") && r.stdout.contains("dense latents"))
        #expect(r.stdout.contains("wrote \(pack)/labels.json"))
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: pack + "/pack.json"))) as? [String: Any]
        #expect(manifest?["labels"] as? String == "labels.json")
        let labels = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: pack + "/labels.json"))) as? [String: Any]
        let features = labels?["features"] as? [[String: Any]] ?? []
        #expect(features.count == 16)
        let seven = try #require(features.first { $0["id"] as? String == "7" })
        let contexts = seven["contexts"] as? [[String: Any]] ?? []
        let top = try #require(contexts.first)
        let tokens = top["tokens"] as? [String] ?? []
        let peak = top["peak_index"] as? Int ?? -1
        #expect(tokens.indices.contains(peak) && tokens[peak] == " Paris", "\(top)")
        #expect(abs((seven["max_activation"] as? Double ?? 0) - 2) < 1e-3)
        let scan = labels?["scan"] as? [String: Any]
        #expect(scan?["corpora"] as? [String] == ["cities.txt"] && scan?["split"] as? String == "all")
        #expect((scan?["model"] as? [String: Any])?["gguf_sha256"] is String)

        // A rerun gives the same file, byte for byte.
        let first = try Data(contentsOf: URL(fileURLWithPath: pack + "/labels.json"))
        #expect(try Self.stats(pack, corpus).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: pack + "/labels.json")) == first)
    }

    @Test func statsBadInputIsExit2() throws {
        let (dir, pack, corpus) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let directions = dir.appendingPathComponent("dirs")
        try FileManager.default.createDirectory(at: directions, withIntermediateDirectories: true)
        var w = SafeTensorsWriter()
        try w.addTensor(name: "v", shape: [576], floats: [Float](repeating: 0.1, count: 576))
        try w.write(to: directions.appendingPathComponent("directions.safetensors").path)
        try JSONSerialization.data(withJSONObject: ["name": "dirs", "kind": "directions", "hook": "blocks.1.hook_resid_post"])
            .write(to: directions.appendingPathComponent("pack.json"))
        let base = ["--tokens", "100", "--corpus", corpus]
        let cases: [([String], String)] = [
            ([pack, "--split", "dev"] + base, "--split: expected train, held-out or all, found dev"),
            ([pack, "--tokens", "0", "--corpus", corpus], "--tokens: expected a positive number, found 0"),
            ([pack, "--tokens", "10", "--corpus", dir.appendingPathComponent("none.txt").path], "none.txt: no such corpus file"),
            ([pack, "--contexts", "0"] + base, "--contexts: expected 1 to 1000, found 0"),
            ([directions.path] + base, "pack 'dirs': features stats needs an SAE pack"),
            ([dir.appendingPathComponent("nothing").path] + base, "not a feature pack"),
            ([pack, "--split", "held-out", "--tokens", "100", "--corpus", corpus, "--window", "64"], "no held-out tokens in the corpus"),
        ]
        for (arguments, message) in cases {
            let r = try CLI.run(["features", "stats"] + arguments)
            #expect(r.status == 2, "\(arguments): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(arguments): \(r.stderr)")
            #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(r.stderr)")
        }
    }
}

extension FeatureStatsCLITests {
    @Test func showAndSearchAfterStats() throws {
        let (dir, pack, corpus) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Before any statistics: search --text has nothing to search.
        let early = try CLI.run(["features", "search", pack, "--text", "Paris"])
        #expect(early.status == 2 && early.stderr.contains("labels hold no top contexts"), "\(early.stderr)")
        #expect(try Self.stats(pack, corpus).status == 0)

        // show: plain text when piped, the planted latent's contexts with activations in brackets.
        let s = try CLI.run(["features", "show", pack, "7"])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(s.stdout.contains("latent 7 of planted at blocks.0.hook_resid_pre"), "\(s.stdout)")
        #expect(s.stdout.contains("The capital of France") && s.stdout.contains(" is Paris[2], a city"), "\(s.stdout)")
        #expect(s.stdout.contains("cities.txt #0") && s.stdout.contains("cities.txt #2"))
        #expect(!s.stdout.contains("\u{1B}["))
        let colored = try CLI.run(["features", "show", pack, "7", "--color", "always"])
        #expect(colored.stdout.contains("\u{1B}[38;5;16;48;5;196;4m Paris\u{1B}[0m"), "\(colored.stdout)")
        let j = try CLI.run(["features", "show", pack, "7", "--json"])
        let o = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any]
        #expect(o?["id"] as? Int == 7 && (o?["contexts"] as? [[String: Any]])?.first?["text"] as? String != nil)

        // search --text ranks the planted latent first.
        let t = try CLI.run(["features", "search", pack, "--text", "paris", "--json"])
        #expect(t.status == 0, "\(t.stderr)")
        let hits = (try JSONSerialization.jsonObject(with: Data(t.stdout.utf8)) as? [String: Any])?["results"] as? [[String: Any]]
        #expect(hits?.first?["id"] as? Int == 7, "\(t.stdout)")

        // Differential search: prompts with Paris against prompts without.
        let pos = dir.appendingPathComponent("pos.jsonl").path, neg = dir.appendingPathComponent("neg.txt").path
        try """
            {"text": "I flew to Paris last week."}
            {"prompt": "Paris is lovely in the spring."}
            "We met in Paris."
            {"messages": [{"role": "user", "content": "Is the Paris metro busy?"}]}
            """.write(toFile: pos, atomically: true, encoding: .utf8)
        try "I flew to Rome last week.\nBerlin is lovely in the spring.\nWe met in the park.\nIs the city bus busy?\n"
            .write(toFile: neg, atomically: true, encoding: .utf8)
        let d = try CLI.run(["features", "search", pack, "--positive", pos, "--negative", neg, "--top", "3"])
        #expect(d.status == 0, "\(d.stderr)")
        let lines = d.stdout.split(separator: "\n")
        #expect(lines.count == 5, "\(d.stdout)")
        let first = lines.count > 2 ? lines[2].split(separator: " ") : []
        #expect(first.count > 2 && first[1] == "7" && (Double(first[2]) ?? 0) > 5, "\(d.stdout)")
    }

    @Test func showAndSearchBadInputIsExit2() throws {
        let (dir, pack, corpus) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try Self.stats(pack, corpus).status == 0)
        let one = dir.appendingPathComponent("one.txt").path
        try "only one prompt\n".write(toFile: one, atomically: true, encoding: .utf8)
        let broken = dir.appendingPathComponent("broken.jsonl").path
        try "{\"text\": \"fine\"}\n{\"text\": \"also fine\"}\n{\"txt\": \"typo\"}\n".write(toFile: broken, atomically: true, encoding: .utf8)
        let empty = dir.appendingPathComponent("empty.jsonl").path
        try "\n".write(toFile: empty, atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["show", pack, "16"], "feature 16 out of range for pack 'planted' (d_sae 16)"),
            (["show", pack, "99999"], "feature 99999 out of range"),
            (["show", pack, "golden gate"], "pack 'planted' has no feature or direction named 'golden gate'"),
            (["show", pack, "7", "--color", "blue"], "--color: expected auto, always or never, found 'blue'"),
            (["show", dir.appendingPathComponent("none").path, "7"], "not a feature pack"),
            (["search", pack], "give either --text WORDS or both --positive and --negative"),
            (["search", pack, "--text", "a", "--positive", one, "--negative", one], "give either --text WORDS or both"),
            (["search", pack, "--positive", one], "--positive and --negative go together"),
            (["search", pack, "--positive", broken, "--negative", one], "broken.jsonl:3: expected a JSON string or an object"),
            (["search", pack, "--positive", one, "--negative", broken], "one.txt: 1 prompt: a prompt set needs at least 2"),
            (["search", pack, "--positive", empty, "--negative", broken], "empty.jsonl: no prompts"),
            (["search", pack, "--positive", broken, "--negative", broken, "--aggregate", "median"], "--aggregate: expected max or mean"),
        ]
        for (arguments, message) in cases {
            let r = try CLI.run(["features"] + arguments)
            #expect(r.status == 2, "\(arguments): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(arguments): \(r.stderr)")
        }
    }
}

struct CLIFixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
