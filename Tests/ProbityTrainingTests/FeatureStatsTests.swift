// Feature statistics on the real default model with a planted latent: latent 7 of a small standard
// SAE at blocks.0.hook_resid_pre reads the embedding row of " Paris", so it fires on that token and
// hardly anywhere else. Stats, the labels file, text search and differential search must find it.

import Foundation
import ProbityFormats
import ProbityTensor
import Testing
@testable import ProbityFeatures
@testable import ProbityTraining
import ProbityLM

/// The default model with a planted SAE and a tiny corpus, built once for the suite.
final class PlantedFixture: @unchecked Sendable {
    static let shared: Result<PlantedFixture, Error> = Result { try PlantedFixture() }

    let model: any LanguageModel
    let tokenizer: Tokenizer
    let point = HookPoint.residPre(0)
    let sae: SparseAutoencoder
    let parisToken: Int
    let directory: URL
    let corpusPath: String
    static let planted = 7
    static let documents = [
        "The capital of France is Paris, a city on the Seine.",
        "We walked along the river for an hour and then had lunch near the old bridge.",
        "Many tourists visit Paris every spring to see the museums.",
        "The train from London arrives in the late afternoon, just before dinner.",
        "She bought a new bicycle and rode it to work on Monday morning.",
    ]

    init() throws {
        let gguf = try GGUFFile(path: try ModelLocator.resolve("default"))
        model = try ModelRegistry.load(gguf, pool: ThreadPool(threads: 2))
        tokenizer = try Tokenizer(gguf: gguf)
        let paris = tokenizer.encode(" Paris", addSpecial: false, parseSpecial: false)
        precondition(paris.count == 1, "' Paris' is one token in the default model")
        parisToken = paris[0]
        // The embedding row of " Paris", read where the SAE will read it.
        var row: [Float] = []
        let hooks = HookSet()
        let point = self.point
        hooks.attach(at: point) { acts in row = Array(UnsafeBufferPointer(start: acts.values, count: acts.width)) }
        try model.makeSession(capacity: 4).forward([parisToken], origins: nil, hooks: hooks, through: point)
        let d = model.info.width, n = 16
        let norm2 = row.map { Double($0) * Double($0) }.reduce(0, +)
        var rng = SplitMix64(seed: 3)
        var wEnc = (0..<(d * n)).map { _ in rng.nextGaussian() * 0.002 }
        var bEnc = [Float](repeating: 0, count: n)
        // pre_7 = 4·(x·e)/‖e‖² − 2: 2 on " Paris", positive only where x leans toward it.
        for j in 0..<d { wEnc[j * n + Self.planted] = Float(4 * Double(row[j]) / norm2) }
        bEnc[Self.planted] = -2
        let wDec = (0..<(n * d)).map { _ in rng.nextGaussian() * 0.05 }
        sae = try SparseAutoencoder(config: SAEConfig(dIn: d, dSAE: n, architecture: .standard, hookName: point.name),
                                    wEnc: wEnc, bEnc: bEnc, wDec: wDec, bDec: [Float](repeating: 0, count: d), threshold: nil)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("probity-stats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        corpusPath = directory.appendingPathComponent("cities.txt").path
        try Self.documents.joined(separator: "\n\n").write(toFile: corpusPath, atomically: true, encoding: .utf8)
    }

    static func get() throws -> PlantedFixture { try shared.get() }

    /// Writes the SAE as a pack (SAELens layout + pack.json without labels) under the fixture's
    /// directory and returns its path.
    func writePack(_ name: String) throws -> String {
        let dir = directory.appendingPathComponent(name).path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var w = SafeTensorsWriter(name: "sae_weights.safetensors")
        let d = sae.dIn, n = sae.dSAE
        try w.addTensor(name: "W_enc", shape: [d, n], floats: sae.wEnc)
        try w.addTensor(name: "b_enc", shape: [n], floats: sae.bEnc)
        try w.addTensor(name: "W_dec", shape: [n, d], floats: sae.wDec)
        try w.addTensor(name: "b_dec", shape: [d], floats: sae.bDec)
        try w.write(to: dir + "/sae_weights.safetensors")
        let cfg: [String: Any] = ["d_in": d, "d_sae": n, "architecture": "standard", "metadata": ["hook_name": point.name]]
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: dir + "/cfg.json"))
        try PackManifest(name: name, kind: .sae, modelName: nil, modelSHA256: nil, hook: point.name, labels: nil)
            .jsonData().write(to: URL(fileURLWithPath: dir + "/pack.json"))
        return dir
    }

    func scan(split: CorpusSplit = .all, tokens: Int = 10_000) throws -> FeatureStatistics {
        var request = FeatureScanRequest(corpora: [corpusPath], split: split, tokens: tokens)
        request.window = 64
        return try FeatureScan.run(request, sae: sae, model: model, tokenizer: tokenizer, point: point, chatFormat: nil).0
    }

    /// Latents at every non-special position of `text`, each position encoded on its own.
    func directLatents(_ text: String) throws -> [(token: Int, latents: [Float])] {
        let tokens = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        var rows: [Float] = []
        let hooks = HookSet()
        hooks.attach(at: point) { acts in rows.append(contentsOf: UnsafeBufferPointer(start: acts.values, count: acts.count * acts.width)) }
        try model.makeSession(capacity: tokens.count).forward(tokens, origins: nil, hooks: hooks, through: point)
        let d = model.info.width
        return tokens.indices.filter { !tokenizer.isSpecial(tokens[$0]) }.map { p in
            let enc = rows.withUnsafeBufferPointer { sae.encode($0.baseAddress! + p * d, count: 1) }
            return (tokens[p], enc.latents)
        }
    }
}

@Suite(.serialized) struct FeatureStatsTests {
    let f: PlantedFixture
    init() throws { f = try PlantedFixture.get() }
    var planted: Int { PlantedFixture.planted }

    @Test func plantedLatentTopContextIsParis() throws {
        let stats = try f.scan()
        // Direct reference: every document encoded position by position.
        var count = 0, positions = 0
        var maxValue: Float = 0
        var counts = [Int](repeating: 0, count: f.sae.dSAE)
        for doc in PlantedFixture.documents {
            for (_, latents) in try f.directLatents(doc) {
                positions += 1
                for i in 0..<f.sae.dSAE where latents[i] > 0 { counts[i] += 1 }
                if latents[planted] > 0 { count += 1 }
                maxValue = max(maxValue, latents[planted])
            }
        }
        #expect(stats.positions == positions)
        #expect(stats.counts == counts)
        #expect(stats.counts[planted] == count)
        #expect(count >= 2 && count < positions / 4, "planted latent fires on \(count) of \(positions) positions")
        #expect(abs(stats.maxActivations[planted] - maxValue) <= 1e-4 * maxValue, "\(stats.maxActivations[planted]) vs \(maxValue)")
        #expect(abs(maxValue - 2) < 1e-3)
        let contexts = stats.contexts(planted)
        let top = try #require(contexts.first)
        #expect(top.tokens[top.peakIndex] == " Paris", "\(top.tokens)")
        #expect(top.text.contains("Paris"))
        #expect(top.source == "cities.txt")
        #expect(top.document == 0 || top.document == 2)
        #expect(top.peakIndex <= 8 && top.tokens.count <= 13)
        #expect(top.activations[top.peakIndex] == top.peakActivation)
        #expect(contexts.count <= 5)
        #expect(zip(contexts, contexts.dropFirst()).allSatisfy { $0.peakActivation >= $1.peakActivation })
        // Both Paris documents give a context, each peaking on " Paris".
        let parisContexts = contexts.filter { $0.tokens[$0.peakIndex] == " Paris" }
        #expect(Set(parisContexts.map(\.document)) == [0, 2])
        // Every latent's histogram counts each of its firing positions once, in bins ending at its
        // max activation (which falls in the last bin).
        for i in 0..<f.sae.dSAE {
            guard let h = stats.histogram(i) else {
                #expect(stats.counts[i] == 0, "latent \(i) fired but has no histogram")
                continue
            }
            #expect(h.total == stats.counts[i] && h.upper == stats.maxActivations[i] && h.bins == 20, "latent \(i)")
            #expect((h.counts.last ?? 0) >= 1, "latent \(i)")
        }
    }

    /// The histogram of handcrafted activations added window by window: every firing value (> 0)
    /// counted once in 4 bins on [0, max] (each bin holds its left edge, the last also the max).
    @Test func histogramOfHandcraftedActivations() throws {
        var stats = FeatureStatistics(dSAE: 2, options: FeatureStatisticsOptions(contextsPerLatent: 1, histogramBins: 4))
        // (latent 0, latent 1) per position; latent 1 never fires (0 or negative).
        let windows: [[Float]] = [[0.5, 0, 1, -0.5, 0, 0, 0.25, 0], [2, 0, 1.5, 0, 0, -1, 0.75, 0, 1.9999999, 0]]
        for (d, latents) in windows.enumerated() {
            let n = latents.count / 2
            let encoding = SAEEncoding(count: n, dSAE: 2, latents: latents, scales: [Float](repeating: 1, count: n),
                                       ranked: [[Int]?](repeating: nil, count: n))
            try stats.add(encoding, rows: Array(0..<n), window: [Int](repeating: f.parisToken, count: n), source: "s",
                          document: d, tokenizer: f.tokenizer)
        }
        // Latent 0 fired on 0.5, 1, 0.25 | 2, 1.5, 0.75, 1.9999999; edges 0, 0.5, 1, 1.5, 2.
        let h = try #require(stats.histogram(0))
        #expect(h == ActivationHistogram(upper: 2, counts: [1, 2, 1, 3]))
        #expect(h.total == stats.counts[0] && stats.counts[0] == 7 && stats.positions == 9)
        #expect(stats.histogram(1) == nil && stats.counts[1] == 0)
        let labels = stats.labels(updating: FeatureLabels(), scan: FeatureScanRecord(
            corpora: ["s"], split: "all", tokens: stats.positions, window: 5, hook: f.point.name, modelName: nil,
            modelSHA256: nil, before: 8, after: 4, contextsPerLatent: 1))
        #expect(labels[latent: 0]?.histogram == h && labels[latent: 1]?.histogram == nil)
    }

    @Test func tokenLimitAndSplit() throws {
        let stats = try f.scan(tokens: 20)
        #expect(stats.positions == 20)
        // Every document of this small corpus is in the train split or the held-out one, not both.
        let train = try f.scan(split: .train), heldOut = try f.scan(split: .heldOut), all = try f.scan()
        #expect(train.positions + heldOut.positions == all.positions)
    }

    @Test func labelsFileRoundTripAndPack() throws {
        let stats = try f.scan()
        let dir = try f.writePack("pack")
        let pack = try FeaturePack.load(path: dir)
        #expect(pack.manifest?.labels == nil)
        var existing = FeatureLabels([FeatureLabel(id: "7", name: "paris", description: "the token Paris", maxActivation: 99,
                                                   topExamples: ["old"]),
                                      FeatureLabel(id: "direction-x", name: "kept")])
        existing.set(FeatureLabel(id: "3", name: "three"))
        let scan = FeatureScanRecord(corpora: ["cities.txt"], split: "all", tokens: stats.positions, window: 64,
                                     hook: f.point.name, modelName: "m", modelSHA256: String(repeating: "a", count: 64),
                                     before: 8, after: 4, contextsPerLatent: 5)
        let labels = stats.labels(updating: existing, scan: scan)
        let (path, wroteManifest) = try pack.writeLabels(labels, modelName: "m", modelSHA256: nil)
        #expect(wroteManifest)
        #expect(path == dir + "/labels.json")
        let reloaded = try FeaturePack.load(path: dir)
        #expect(reloaded.manifest?.labels == "labels.json")
        #expect(reloaded.labels == labels)
        let l7 = try #require(reloaded.labels[latent: planted])
        #expect(l7.name == "paris" && l7.description == "the token Paris" && l7.topExamples == ["old"])
        #expect(l7.maxActivation == stats.maxActivations[planted])
        #expect(l7.histogram != nil && l7.histogram == stats.histogram(planted))
        #expect(abs((l7.frequency ?? -1) - stats.frequency(planted)) <= 1e-3 * stats.frequency(planted))
        #expect(reloaded.labels["direction-x"]?.name == "kept")
        #expect(reloaded.labels.scan == scan)
        #expect(reloaded.labels.count == f.sae.dSAE + 1)
        // Writing again gives the same bytes: reruns diff cleanly.
        let again = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(reloaded.labels.encoded() == again)
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
    }

    @Test func textSearchFindsPlantedLatent() throws {
        let stats = try f.scan()
        let labels = stats.labels(updating: FeatureLabels(), scan: FeatureScanRecord(
            corpora: [], split: "all", tokens: stats.positions, window: 64, hook: f.point.name, modelName: nil,
            modelSHA256: nil, before: 8, after: 4, contextsPerLatent: 5))
        let hits = try FeatureSearch.text("paris", in: labels, path: "labels.json")
        let first = try #require(hits.first)
        #expect(first.latent == planted, "\(hits.prefix(3))")
        #expect(first.matchingContexts == 2)
        #expect(try FeatureSearch.text("zeppelin", in: labels, path: "labels.json").isEmpty)
        #expect(throws: FeatureError.noContexts(path: "labels.json")) {
            try FeatureSearch.text("paris", in: FeatureLabels([FeatureLabel(id: "1", name: "x")]), path: "labels.json")
        }
    }

    @Test func differentialSearchFindsPlantedLatent() throws {
        let positive = ["I flew to Paris last week.", "Paris is lovely in the spring.", "We met in Paris.", "The Paris metro is busy."]
        let negative = ["I flew to Rome last week.", "Berlin is lovely in the spring.", "We met in the park.", "The city bus is busy."]
        let encode = { (s: String) in self.f.tokenizer.encode(s, addSpecial: true, parseSpecial: false) }
        for aggregate in [FeatureSearch.Aggregate.max, .mean] {
            let results = try FeatureSearch.differential(sae: f.sae, model: f.model, tokenizer: f.tokenizer, point: f.point,
                                                         positive: positive.map(encode), negative: negative.map(encode),
                                                         aggregate: aggregate)
            let first = try #require(results.first)
            #expect(first.latent == planted, "\(aggregate): \(results.prefix(3))")
            #expect(first.t > 5, "\(first)")
            #expect(first.cohensD > 2)
            #expect(first.difference > 0)
            #expect(results.count == f.sae.dSAE)
            #expect(zip(results, results.dropFirst()).allSatisfy { $0.t >= $1.t || $0.t.isNaN })
        }
    }
}

@Suite struct FeatureStatisticsUnitTests {
    /// Welch's t and Cohen's d against values worked by hand.
    @Test func welchAndCohen() {
        let s = FeatureSearch.compare([1, 2, 3, 4], [0, 0, 1, 1])
        // means 2.5 and 0.5; variances 5/3 and 1/3; se = sqrt(5/12 + 1/12) = sqrt(0.5).
        #expect(abs(s.difference - 2) < 1e-12)
        #expect(abs(s.t - 2 / 0.5.squareRoot()) < 1e-12)
        // pooled sd = sqrt((3·5/3 + 3·1/3) / 6) = 1.
        #expect(abs(s.cohensD - 2) < 1e-12)
        let same = FeatureSearch.compare([1, 1], [1, 1])
        #expect(same.t == 0 && same.cohensD == 0)
        let apart = FeatureSearch.compare([2, 2], [0, 0])
        #expect(apart.t == .infinity)
    }
}

@Suite struct PromptSetTests {
    let tokenizer: Tokenizer
    init() throws { tokenizer = try Tokenizer(gguf: try GGUFFile(path: try ModelLocator.resolve("default"))) }

    func file(_ name: String, _ text: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probity-prompts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func readsEveryLineForm() throws {
        let path = try file("p.jsonl", """
            {"text": "Paris"}
            "Rome"

            {"prompt": "Berlin"}
            {"messages": [{"role": "user", "content": "Hi"}]}
            """)
        let prompts = try PromptSet.load(path: path, tokenizer: tokenizer, chatFormat: .chatmlSmolLM)
        #expect(prompts.count == 4)
        #expect(prompts[0] == tokenizer.encode("Paris", addSpecial: true, parseSpecial: true))
        let chat = try ChatFormat.chatmlSmolLM.render([.user("Hi")], addGenerationPrompt: false)
        #expect(prompts[3] == tokenizer.encode(chat, addSpecial: true, parseSpecial: true))
        let txt = try PromptSet.load(path: try file("p.txt", "one line\n{\"text\": \"kept as text\"}\n"), tokenizer: tokenizer, chatFormat: nil)
        #expect(txt == [tokenizer.encode("one line", addSpecial: true, parseSpecial: true),
                        tokenizer.encode("{\"text\": \"kept as text\"}", addSpecial: true, parseSpecial: true)])
    }

    @Test func chatPromptsKnowTheirReply() throws {
        let path = try file("r.jsonl", """
            {"messages": [{"role": "user", "content": "Is the Earth flat?"}, {"role": "assistant", "content": "No, it is round."}]}
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there!"}]}
            {"text": "no conversation here"}
            """)
        let prompts = try PromptSet.prompts(path: path, tokenizer: tokenizer, chatFormat: .chatmlSmolLM)
        #expect(prompts.map(\.line) == [1, 2, 3])
        for (prompt, reply) in zip(prompts.prefix(2), ["No, it is round.", "Hello there!"]) {
            let range = try #require(prompt.reply)
            #expect(try tokenizer.decode(Array(prompt.tokens[range])) == reply)
            // What follows the reply is the template's end of turn, nothing of the reply.
            #expect(prompt.tokens[range.upperBound...].allSatisfy { tokenizer.isSpecial($0) || (try? tokenizer.decode([$0])) == "\n" })
        }
        #expect(prompts[2].reply == nil)
    }

    @Test func badPromptSetsAreSpecificErrors() throws {
        let broken = try file("b.jsonl", "{\"text\": \"a\"}\n{\"text\": 3}\n")
        #expect(throws: FeatureError.badPairs(path: broken, line: 2, reason: "expected a JSON string or an object with \"text\", \"prompt\" or \"messages\"")) {
            try PromptSet.load(path: broken, tokenizer: tokenizer, chatFormat: nil)
        }
        let notJSON = try file("c.jsonl", "{\"text\": \"a\"}\n\n{oops\n")
        #expect(throws: JSONSyntaxError(path: notJSON, what: "the file", offset: 16, line: 3, column: 2,
                                        expected: "a key in double quotes or '}'", found: "'oops'")) {
            try PromptSet.load(path: notJSON, tokenizer: tokenizer, chatFormat: nil)
        }
        let chat = try file("d.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}\n")
        #expect(throws: FeatureError.noChatFormat(path: chat, line: 1)) {
            try PromptSet.load(path: chat, tokenizer: tokenizer, chatFormat: nil)
        }
        let special = try file("e.jsonl", "\"<|im_start|>\"\n\"a\"\n")
        #expect(throws: FeatureError.badPairs(path: special, line: 1, reason: "the prompt has no tokens other than special ones")) {
            try PromptSet.load(path: special, tokenizer: tokenizer, chatFormat: nil)
        }
        let empty = try file("f.jsonl", "\n\n")
        #expect(throws: FeatureError.promptSetSize(path: empty, count: 0, minimum: 2)) {
            try PromptSet.load(path: empty, tokenizer: tokenizer, chatFormat: nil)
        }
        let one = try file("g.txt", "just one\n")
        #expect(throws: FeatureError.promptSetSize(path: one, count: 1, minimum: 2)) {
            try PromptSet.load(path: one, tokenizer: tokenizer, chatFormat: nil)
        }
    }
}
