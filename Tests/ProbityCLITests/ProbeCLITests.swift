// Probes end to end on the default model: `features train-probe` on development items writes a pack
// recording its data and items; a rule watching it lints, explains and is scored by `probity eval`
// (whose AUROC follows from its per-item scores); the probe's per-token value is w·x + b of the
// activations `probity activations` prints; bad probe packs and arguments exit 2.

import Foundation
import ProbityAudit
import ProbityFeatures
import ProbityFormats
import ProbityLM
import Testing

private let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// AUROC by counting pairs, ties half.
private func pairAUROC(_ pos: [Double], _ neg: [Double]) -> Double {
    var wins = 0.0
    for p in pos { for n in neg { wins += p > n ? 1 : (p == n ? 0.5 : 0) } }
    return wins / Double(pos.count * neg.count)
}

@Suite(.serialized) struct ProbeCLITests {
    @Test func trainsAProbeThatRulesWatchAndEvalScores() throws {
        let dir = try CLI.scratch()
        // The first 12 pairs of the secret-keeping development items and 16 benign chitchat turns.
        let conceptLines = try String(contentsOfFile: repo + "/evals/dev/secret-keeping.dev.jsonl", encoding: .utf8)
            .split(separator: "\n").prefix(24)
        let concept = dir.appendingPathComponent("secret-keeping.jsonl").path
        try (conceptLines.joined(separator: "\n") + "\n").write(toFile: concept, atomically: true, encoding: .utf8)
        let benignLines = try String(contentsOfFile: repo + "/evals/dev/benign-chitchat.dev.jsonl", encoding: .utf8)
            .split(separator: "\n").prefix(16)
        let benign = dir.appendingPathComponent("benign.jsonl").path
        try (benignLines.joined(separator: "\n") + "\n").write(toFile: benign, atomically: true, encoding: .utf8)
        let pack = dir.appendingPathComponent("probe-sk").path
        let cv = dir.appendingPathComponent("cv.json").path

        let t = try CLI.run(["features", "train-probe", "default", "--data", concept, "--data", benign, "--layers", "3,9",
                             "--folds", "3", "--out", pack, "--name", "sk", "--cv-out", cv, "--threads", "2"])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("cross-validation: 3 folds grouped by pair (seed 0), 12 positive / 12 negative / 16 benign, pool mean"), "\(t.stdout)")
        #expect(t.stdout.contains("blocks.3.hook_resid_post") && t.stdout.contains("blocks.9.hook_resid_post"))
        #expect(t.stdout.contains("wrote \(pack): probe 'sk' at blocks."), "\(t.stdout)")

        // The manifest: kind, hook, the data's digests, counts, and every training item's fingerprint.
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: pack + "/pack.json"))) as? [String: Any])
        #expect(manifest["kind"] as? String == "probe" && manifest["probe"] as? String == "probe.safetensors")
        let provenance = try #require(manifest["provenance"] as? [String: Any])
        #expect(provenance["pooling"] as? String == "mean" && provenance["concept"] as? String == "secret-keeping")
        #expect(provenance["hook"] as? String == manifest["hook"] as? String)
        let n = try #require(provenance["n"] as? [String: Int])
        #expect(n == ["positive": 12, "negative": 12, "benign": 16])
        let files = try #require(provenance["data"] as? [[String: Any]])
        #expect(files.map { $0["sha256"] as? String } == [try SHA256.hex(file: concept), try SHA256.hex(file: benign)])
        let items = try EvalItem.load(paths: [concept, benign])
        let recorded = try #require((provenance["items"] as? [String: Any])?["sha256"] as? [String])
        #expect(recorded == Set(items.map { ItemFingerprint.of(messages: $0.messages, response: $0.response) }).sorted())
        #expect((provenance["items"] as? [String: Any])?["scheme"] as? String == "probity-item-v1")
        // A threshold from what the rule would score on the 16 benign items out of fold.
        let calibration = try #require(provenance["calibration"] as? [String: Any])
        #expect(calibration["benign"] as? Int == 16 && calibration["threshold"] is Double)
        #expect(t.stdout.contains("threshold for a mean-over-response rule at ≤ 5% FPR on benign items: "), "\(t.stdout)")
        let cvTable = try #require((provenance["cross_validation"] as? [String: Any])?["table"] as? [[String: Any]])
        #expect(cvTable.count == 2 * 6)

        // Out-of-fold scores, as scripts/pick-threshold reads them: the 24 concept items and 16 benign.
        let cvResult = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cv))) as? [String: Any])
        let cvItems = try #require(((cvResult["rules"] as? [[String: Any]])?.first)?["items"] as? [[String: Any]])
        #expect(cvItems.count == 40)

        let info = try CLI.run(["features", "info", pack, "--json"])
        #expect(info.status == 0, "\(info.stderr)")
        let infoObject = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any]
        #expect(infoObject?["kind"] as? String == "probe" && (infoObject?["probe"] as? [String: Any])?["name"] as? String == "sk")
        let show = try CLI.run(["features", "show", pack, "sk"])
        #expect(show.status == 0 && show.stdout.contains("w·x + b (the logit)") && show.stdout.contains("40 fingerprints"), "\(show.stdout)\(show.stderr)")

        // A rule watching the probe: lint, explain, eval.
        let rules = dir.appendingPathComponent("probe.yaml").path
        try """
        schema_version: 1
        packs:
          - {name: sk, path: probe-sk}
        rules:
          - id: probe.sk
            description: The secret-keeping probe's mean over the response.
            severity: info
            tags: [secret-keeping]
            watch: {probe: sk}
            detect: {threshold: 0, scope: response, aggregate: mean}

        """.write(toFile: rules, atomically: true, encoding: .utf8)
        let lint = try CLI.run(["rules", "lint", rules])
        #expect(lint.status == 0, "\(lint.stdout)\(lint.stderr)")
        let explain = try CLI.run(["rules", "explain", "probe.sk", rules])
        #expect(explain.status == 0 && explain.stdout.contains("probe 'sk' of pack 'sk' at blocks."), "\(explain.stdout)\(explain.stderr)")
        // Scoring the items that trained the probe is refused (they derived the pack it watches)...
        let leaked = try CLI.run(["eval", "default", rules, "--data", concept, "--data", benign, "--json", "--threads", "2"])
        #expect(leaked.status == 2 && leaked.stderr.contains("leakage: 40 data items"), "\(leaked.stderr)")
        // ...so eval scores the next 12 pairs and 16 benign turns, which it never saw.
        let heldConcept = dir.appendingPathComponent("secret-keeping-held.jsonl").path
        try (try String(contentsOfFile: repo + "/evals/dev/secret-keeping.dev.jsonl", encoding: .utf8)
            .split(separator: "\n").dropFirst(24).prefix(24).joined(separator: "\n") + "\n").write(toFile: heldConcept, atomically: true, encoding: .utf8)
        let heldBenign = dir.appendingPathComponent("benign-held.jsonl").path
        try (try String(contentsOfFile: repo + "/evals/dev/benign-chitchat.dev.jsonl", encoding: .utf8)
            .split(separator: "\n").dropFirst(16).prefix(16).joined(separator: "\n") + "\n").write(toFile: heldBenign, atomically: true, encoding: .utf8)
        let e = try CLI.run(["eval", "default", rules, "--data", heldConcept, "--data", heldBenign, "--json", "--resamples", "50", "--threads", "2"])
        #expect(e.status == 0, "\(e.stderr)")
        let result = try JSONDecoder().decode(EvalResult.self, from: Data(e.stdout.utf8))
        let r = try #require(result.rules.first)
        #expect(r.positives == 12 && r.negatives == 12 && r.benign == 16)
        let pos = r.items.filter { $0.label == 1 }.map(\.score)
        let neg = r.items.filter { $0.label == 0 }.map(\.score)
        let own = r.items.filter { $0.label == 0 && $0.concept != "benign" }.map(\.score)
        #expect(abs(try #require(r.auroc) - pairAUROC(pos, neg)) < 1e-12)
        #expect(abs(try #require(r.aurocConcept) - pairAUROC(pos, own)) < 1e-12)
        #expect(r.tpr == Double(r.items.filter { $0.label == 1 && $0.fires }.count) / 12)
        for item in r.items { #expect(item.fires == (item.score >= 0), "\(item.id)") }
    }

    /// A token-level probe (--pool tokens) on the same items, its threshold kept to 5% of the benign
    /// and of the concept's own negatives out of fold; a rule reading its maximum over the response
    /// is scored by eval on held-out items exactly as that maximum.
    @Test func trainsATokenLevelProbeReadAsItsMaximum() throws {
        let dir = try CLI.scratch()
        func lines(_ file: String, drop: Int, take: Int, to name: String) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try (try String(contentsOfFile: repo + "/evals/dev/" + file, encoding: .utf8).split(separator: "\n")
                .dropFirst(drop).prefix(take).joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let concept = try lines("secret-keeping.dev.jsonl", drop: 0, take: 24, to: "sk.jsonl")
        let benign = try lines("benign-chitchat.dev.jsonl", drop: 0, take: 16, to: "benign.jsonl")
        let pack = dir.appendingPathComponent("probe-skt").path
        let t = try CLI.run(["features", "train-probe", "default", "--data", concept, "--data", benign, "--layers", "9",
                             "--pool", "tokens", "--folds", "3", "--l2", "0.1", "--calibrate-on", "benign,concept",
                             "--out", pack, "--name", "skt", "--threads", "2"])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("12 positive / 12 negative / 16 benign, pool tokens ("), "\(t.stdout)")
        #expect(t.stdout.contains("threshold for a max-over-response rule at ≤ 5% FPR on benign and concept negatives: "), "\(t.stdout)")
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: pack + "/pack.json"))) as? [String: Any])
        let provenance = try #require(manifest["provenance"] as? [String: Any])
        #expect(provenance["pooling"] as? String == "tokens")
        // Training tokens: every token of the 12 label-0 and 16 benign responses, and the tokens where
        // each of the 12 label-1 responses differs from its pair's: more than the negatives' alone.
        let tokens = try #require(provenance["training_tokens"] as? Int)
        #expect(tokens > 28)
        // With 16 benign and 12 own negatives, 5% lets none of either fire out of fold.
        let calibration = try #require(provenance["calibration"] as? [String: Any])
        #expect(calibration["on"] as? [String] == ["benign", "concept"])
        #expect(calibration["benign_fpr"] as? Double == 0 && calibration["concept_fpr"] as? Double == 0)
        let threshold = try #require(calibration["threshold"] as? Double)

        let rules = dir.appendingPathComponent("probe.yaml").path
        try """
        schema_version: 1
        packs:
          - {name: skt, path: probe-skt}
        rules:
          - id: probe.skt
            description: The token-level secret-keeping probe's maximum over the response.
            severity: info
            tags: [secret-keeping]
            watch: {probe: skt}
            detect: {threshold: \(threshold), scope: response, aggregate: max}

        """.write(toFile: rules, atomically: true, encoding: .utf8)
        let heldConcept = try lines("secret-keeping.dev.jsonl", drop: 24, take: 8, to: "sk-held.jsonl")
        let heldBenign = try lines("benign-chitchat.dev.jsonl", drop: 16, take: 4, to: "benign-held.jsonl")
        let e = try CLI.run(["eval", "default", rules, "--data", heldConcept, "--data", heldBenign, "--json", "--resamples", "20", "--threads", "2"])
        #expect(e.status == 0, "\(e.stderr)")
        let r = try #require(try JSONDecoder().decode(EvalResult.self, from: Data(e.stdout.utf8)).rules.first)
        #expect(r.positives == 4 && r.negatives == 4 && r.benign == 4)
        // The rule fires where its maximum reaches the calibrated threshold, as the runtime compares.
        for item in r.items { #expect(item.fires == (item.score >= Double(Float(threshold))), "\(item.id): \(item.score)") }
        let pos = r.items.filter { $0.label == 1 }.map(\.score)
        let own = r.items.filter { $0.label == 0 && $0.concept != "benign" }.map(\.score)
        #expect(abs(try #require(r.aurocConcept) - pairAUROC(pos, own)) < 1e-12)
    }

    @Test func theFeatureValueIsTheLogitOfTheActivations() throws {
        let dir = try CLI.scratch().appendingPathComponent("probe-x")
        var rng = SeededValues(seed: 4)
        let probe = Probe(name: "x", point: .residPost(6), weights: (0..<576).map { _ in rng.next() }, bias: 0.375)
        try FeaturePack.writeProbe(probe, to: dir.path, modelName: nil, modelSHA256: nil, provenance: ["method": "test"])
        let text = "The committee met on Tuesday to discuss the budget."
        let f = try CLI.run(["features", "activations", "--pack", dir.path, "--text", text, "--json", "--threads", "2"])
        #expect(f.status == 0, "\(f.stderr)")
        let a = try CLI.run(["activations", "--hook", "blocks.6.hook_resid_post", "--text", text, "--json", "--threads", "2"])
        #expect(a.status == 0, "\(a.stderr)")
        let features = try #require((try JSONSerialization.jsonObject(with: Data(f.stdout.utf8)) as? [String: Any])?["tokens"] as? [[String: Any]])
        let acts = try #require((try JSONSerialization.jsonObject(with: Data(a.stdout.utf8)) as? [String: Any])?["values"] as? [[Double]])
        #expect(features.count == acts.count && features.count > 5)
        // The weights as the pack stores them, read back from its file.
        let stored = try SafeTensorsFile(path: dir.path + "/probe.safetensors")
        let w = try stored.floats(named: "weight"), b = try stored.floats(named: "bias")
        for (row, x) in zip(features, acts) {
            let value = try #require(row["value"] as? Double)
            let expected = zip(w, x).reduce(Double(b[0])) { $0 + Double($1.0) * $1.1 }
            #expect(abs(value - expected) <= 1e-4 * max(1, abs(expected)), "\(value) vs \(expected)")
        }
    }

    @Test func badProbePacksAndArgumentsExit2() throws {
        let dir = try CLI.scratch().appendingPathComponent("probe-bad")
        try FeaturePack.writeProbe(Probe(name: "bad", point: .residPost(3), weights: [Float](repeating: 0.1, count: 576), bias: 0),
                                   to: dir.path, modelName: nil, modelSHA256: nil, provenance: [:])
        var w = SafeTensorsWriter()
        try w.addTensor(name: "weight", shape: [576], floats: [Float](repeating: .nan, count: 576))
        try w.addTensor(name: "bias", shape: [1], floats: [0])
        try w.write(to: dir.path + "/probe.safetensors")
        let r = try CLI.run(["features", "info", dir.path])
        #expect(r.status == 2 && r.stderr.contains("tensor weight holds a NaN or infinity at element 0"), "\(r.stderr)")
        let rules = dir.deletingLastPathComponent().appendingPathComponent("r.yaml").path
        try "schema_version: 1\npacks: [{name: bad, path: probe-bad}]\nrules:\n  - {id: r, description: d, severity: info, watch: {probe: bad}, detect: {threshold: 0}}\n"
            .write(toFile: rules, atomically: true, encoding: .utf8)
        let lint = try CLI.run(["rules", "lint", rules])
        #expect(lint.status == 2 && (lint.stdout + lint.stderr).contains("holds a NaN"), "\(lint.stdout)\(lint.stderr)")
        let pool = try CLI.run(["features", "train-probe", "--data", "x.jsonl", "--layers", "3", "--pool", "max", "--out", "o"])
        #expect(pool.status == 2 && pool.stderr.contains("--pool: expected mean, last, mean,last or tokens, found 'max'"), "\(pool.stderr)")
        let layers = try CLI.run(["features", "train-probe", "--data", "x.jsonl", "--layers", "3,x", "--out", "o"])
        #expect(layers.status == 2 && layers.stderr.contains("--layers"), "\(layers.stderr)")
    }
}

/// Seeded values in [−0.05, 0.05) (a linear congruential generator: the test needs no more).
private struct SeededValues {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> Float {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int(state >> 40) % 1000 - 500) / 10_000
    }
}
