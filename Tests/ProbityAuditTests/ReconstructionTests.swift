// The reconstruction figures of an audit report on the default model and the committed SAE,
// recomputed in float64 from the raw activations: each position's relative squared error, each
// run's FVU over its prompt and response positions, and the audit's FVU pooled over all cases.

import Foundation
import ProbityFeatures
import ProbityLM
import ProbityTestSupport
import Testing
@testable import ProbityAudit

@Suite(.serialized) struct ReconstructionTests {
    /// Σ‖x − x̂‖² and Σ‖x − x̄‖² in float64, two passes.
    static func sums(_ rows: [(x: [Double], xHat: [Double])]) -> (n: Int, error: Double, total: Double, mean: [Double]) {
        guard let d = rows.first?.x.count else { return (0, 0, 0, []) }
        var mean = [Double](repeating: 0, count: d)
        for r in rows { for j in 0..<d { mean[j] += r.x[j] } }
        for j in 0..<d { mean[j] /= Double(rows.count) }
        var error = 0.0, total = 0.0
        for r in rows {
            for j in 0..<d {
                error += (r.x[j] - r.xHat[j]) * (r.x[j] - r.xHat[j])
                total += (r.x[j] - mean[j]) * (r.x[j] - mean[j])
            }
        }
        return (rows.count, error, total, mean)
    }

    static func close(_ a: Double, _ b: Double, _ tolerance: Double) -> Bool { abs(a - b) <= tolerance * max(abs(b), 1e-12) }

    @Test func reportFiguresMatchAFloat64Recomputation() throws {
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
        let path = try AuditFixtures.suite(in: dir, cases: """
          - id: capital
            messages: [{role: user, content: "What is the capital of France?"}]
          - id: bees
            messages: [{role: user, content: "How do bees make honey?"}]
          - id: committee
            text: "The committee met on Tuesday to discuss the budget for the new library, and after a long debate they"
        """, maxTokens: 12, rules: "sae.yaml")
        let suite = try AuditSuite.load(path: path)
        let loaded = try LoadedModel.load("default", threads: 2)
        let rules = try AuditRuleSet(files: suite.ruleFiles, model: loaded)
        let runner = AuditRunner(loaded: loaded, rules: rules, settings: suite.settings)
        let results = try suite.cases.enumerated().map { i, c in try #require(try runner.run(c, index: i, interrupted: { false })) }
        let header = AuditReport.Header(
            probityVersion: "test", suite: suite, suiteSHA256: "0", model: AuditReport.Model(name: "m", sha256: "0", path: "default"),
            packs: rules.packDigests, ruleFiles: [], failOn: .high, shard: AuditReport.Shard(index: 1, count: 1))
        let report = AuditReport(header: header, rules: rules.infos, results: results, complete: true, startedAt: Date(),
                                 finishedAt: Date(), tokenizer: { _ in "" })
        // It reads back strictly and validates against the published schema.
        #expect(try AuditReport.decode(report.json(), path: "r.json") == report)
        let schemaData = try Data(contentsOf: URL(fileURLWithPath: AuditFixtures.repo + "/docs/report.schema.json"))
        let schema = try #require(try JSONSchemaValidator(root: JSONSerialization.jsonObject(with: schemaData) as? [String: Any] ?? [:]))
        #expect(schema.validate(try JSONSerialization.jsonObject(with: report.json())) == [])
        // One report per case, merged, pool to the same figures (up to rounding).
        let shards = results.enumerated().map { i, r in
            var h = header
            h.shard = AuditReport.Shard(index: i + 1, count: results.count)
            return ("\(i).json", AuditReport(header: h, rules: rules.infos, results: [r], complete: true, startedAt: Date(),
                                              finishedAt: Date(), tokenizer: { _ in "" }))
        }
        let merged = try #require(try AuditReport.merge(shards).summary.reconstruction.first)
        let whole = try #require(report.summary.reconstruction.first)
        for (m, w) in [(merged.prompt, whole.prompt), (merged.response, whole.response)] {
            #expect(m.positions == w.positions)
            #expect(Self.close(try #require(m.fvu), try #require(w.fvu), 1e-9) && Self.close(m.totalVariance, w.totalVariance, 1e-9))
        }

        let pack = try FeaturePack.load(path: AuditFixtures.repo + "/packs/smollm2-l15")
        let sae = try #require(pack.sae)
        let tokenizer = loaded.tokenizer
        let bDec = sae.bDec.map(Double.init)
        var decoderRows: [Int: [Double]] = [:]
        var pooledResponse: [(x: [Double], xHat: [Double])] = []
        var sharedMeanRows: [(x: [Double], xHat: [Double])] = []
        for (r, c) in zip(results, report.cases) {
            let features = try #require(c.baseline.features)
            // The positions that went through the model: the prompt and all generated tokens but the last.
            let n = features.count
            let path = Array((r.promptTokens + r.baseline.tokens).prefix(n))
            #expect(path.count == n && n > r.promptTokens.count)
            var raw: [Float] = []
            let hooks = HookSet()
            hooks.attach(at: pack.hook) { acts in raw += UnsafeBufferPointer(start: acts.values, count: acts.count * acts.width) }
            try loaded.model.makeSession(capacity: n).forward(path, origins: nil, hooks: hooks, through: pack.hook)
            let d = sae.dIn
            let encoding = raw.withUnsafeBufferPointer { sae.encode($0.baseAddress!, count: n) }
            var prompt: [(x: [Double], xHat: [Double])] = [], response: [(x: [Double], xHat: [Double])] = []
            var sink: (x: [Double], xHat: [Double])?
            for p in 0..<n {
                let x = raw[(p * d)..<((p + 1) * d)].map(Double.init)
                // x̂ = (b_dec + Σ f_i W_dec[i]) / scale, in float64.
                var xHat = bDec
                for a in encoding.active(p) {
                    let row = decoderRows[a.index] ?? sae.decoderRow(a.index).map(Double.init)
                    decoderRows[a.index] = row
                    for j in 0..<d { xHat[j] += Double(a.activation) * row[j] }
                }
                let scale = Double(encoding.scales[p])
                for j in 0..<d { xHat[j] /= scale }
                let error = zip(x, xHat).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                let norm = x.reduce(0.0) { $0 + $1 * $1 }
                let shown = try #require(features[p].packs.first).relativeSquaredError
                #expect(features[p].position == p)
                #expect(Self.close(shown, error / norm, 2e-3), "\(c.id) position \(p): \(shown) vs \(error / norm)")
                // Position 0 (the attention sink) and special tokens are not counted.
                if p == 0 { sink = (x, xHat) }
                if p == 0 || tokenizer.isSpecial(path[p]) { continue }
                if p < r.promptTokens.count { prompt.append((x, xHat)) } else { response.append((x, xHat)) }
            }
            let shown = try #require(c.baseline.reconstruction?.first)
            #expect(shown.pack == "smollm2-l15")
            for (scope, rows) in [(shown.prompt, prompt), (shown.response, response)] {
                let ref = Self.sums(rows)
                #expect(scope.positions == ref.n)
                #expect(Self.close(scope.squaredError, ref.error, 2e-3) && Self.close(scope.totalVariance, ref.total, 1e-4),
                        "\(c.id): \(scope) vs \(ref.error), \(ref.total)")
                #expect(Self.close(try #require(scope.fvu), ref.error / ref.total, 2e-3))
            }
            // Where the sink is an ordinary token (raw text: no BOS), counting it would swamp the
            // prompt's variance and flatter its FVU several times over.
            if let sink, !tokenizer.isSpecial(path[0]) {
                let with = Self.sums([sink] + prompt), without = Self.sums(prompt)
                #expect(with.error / with.total < 0.5 * without.error / without.total,
                        "\(c.id): FVU \(with.error / with.total) with the sink, \(without.error / without.total) without")
            }
            pooledResponse += response
            let mean = Self.sums(response).mean
            sharedMeanRows += response.map { ($0.x, mean) }
        }
        // The audit's FVU: all cases' response positions, centred on the mean of them all.
        let pooled = try #require(report.summary.reconstruction.first)
        let ref = Self.sums(pooledResponse)
        #expect(pooled.response.positions == ref.n)
        #expect(Self.close(try #require(pooled.response.fvu), ref.error / ref.total, 2e-3))
        #expect(zip(pooled.response.mean, ref.mean).allSatisfy { abs($0 - $1) <= 1e-4 * max(abs($1), 1) })
        // It is not the mean of the cases' FVUs: each case centres on its own mean.
        let perCase = report.cases.compactMap { $0.baseline.reconstruction?.first?.response.totalVariance }.reduce(0, +)
        #expect(pooled.response.totalVariance > perCase)

        // Why the per-position error is no FVU: at layer 15 the positions share a large common
        // component, so even "reconstructing" each response position by its case's mean activation
        // (which explains nothing of how the positions differ: FVU 1) has a median relative squared
        // error well below 1, and below the SAE's own FVU would suggest it does badly.
        let meanErrors = sharedMeanRows.map { r in
            zip(r.x, r.xHat).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / r.x.reduce(0.0) { $0 + $1 * $1 }
        }.sorted()
        let median = meanErrors[meanErrors.count / 2]
        #expect(median < 0.8, "median relative squared error of the mean predictor: \(median)")
        let saeMedian = pooledResponse.map { r in
            zip(r.x, r.xHat).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / r.x.reduce(0.0) { $0 + $1 * $1 }
        }.sorted()[pooledResponse.count / 2]
        #expect(saeMedian < (pooled.response.fvu ?? 0), "SAE: median relative error \(saeMedian), FVU \(pooled.response.fvu ?? .nan)")
    }
}
