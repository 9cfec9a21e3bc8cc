// The committed default packs (packs/caa-*, made by scripts/derive-packs): each loads, matches the
// default model, and its direction separates held-out positive from negative pairs
// (packs/sources/heldout) on that model: the positives project further along it.

import Foundation
import ProbityFormats
import ProbityTensor
import Testing
import ProbityFeatures
import ProbityLM

@Suite(.serialized) struct DefaultPackTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let names = ["sycophancy", "deception", "secret-keeping"]

    @Test func defaultPacksSeparateHeldOutPairs() throws {
        // scripts/derive-packs --sweep points this at packs derived at other layers.
        let packs = ProcessInfo.processInfo.environment["PROBITY_PACKS_DIR"] ?? Self.repo + "/packs"
        let path = try ModelLocator.resolve("default")
        let gguf = try GGUFFile(path: path)
        let model = try ModelRegistry.load(gguf, pool: ThreadPool(threads: 2))
        let tokenizer = try Tokenizer(gguf: gguf)
        for name in Self.names {
            let pack = try FeaturePack.load(path: "\(packs)/caa-\(name)")
            #expect(pack.kind == .directions)
            #expect(try pack.checkCompatibility(model: model.info, modelPath: path, modelName: nil, allowModelMismatch: false) == nil)
            let direction = try #require(pack.directions.first { $0.name == name }, "pack caa-\(name) has no direction '\(name)'")
            #expect(direction.vector.count == 576)
            let norm = direction.vector.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
            let unit = direction.vector.map { Double($0) / norm }
            // The same reduction (last position or mean) the pack was derived with.
            let provenance = try #require(pack.manifest?.provenanceJSON.flatMap {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            })
            let reduction = try #require((provenance["at"] as? String).flatMap(ContrastiveDerivation.Reduction.init(rawValue:)))

            func projections(_ side: String) throws -> [Double] {
                let prompts = try PromptSet.prompts(path: "\(Self.repo)/packs/sources/heldout/\(name).\(side).jsonl",
                                                    tokenizer: tokenizer, chatFormat: .chatmlSmolLM)
                let reps = try ContrastiveDerivation.representations(model: model, prompts: prompts, point: direction.point, at: reduction)
                return reps.map { r in zip(r, unit).map { Double($0) * $1 }.reduce(0, +) }
            }
            let pos = try projections("positive"), neg = try projections("negative")
            #expect(pos.count == neg.count && pos.count >= 4)
            let meanPos = pos.reduce(0, +) / Double(pos.count), meanNeg = neg.reduce(0, +) / Double(neg.count)
            let pairsRight = zip(pos, neg).filter { $0 > $1 }.count
            let variance = (pos.map { ($0 - meanPos) * ($0 - meanPos) } + neg.map { ($0 - meanNeg) * ($0 - meanNeg) })
                .reduce(0, +) / Double(pos.count + neg.count - 2)
            print(String(format: "pack-separation: %@ at %@ (%@): mean positive %.3f, negative %.3f, d' %.2f, pairs ordered %d/%d",
                         name, direction.point.name, reduction.rawValue, meanPos, meanNeg, (meanPos - meanNeg) / variance.squareRoot(),
                         pairsRight, pos.count))
            #expect(meanPos > meanNeg, "caa-\(name): held-out positives should project further along the direction")
            if name == "sycophancy" {
                // Hand-written conversations (packs/sources/contrast), the mean over each reply: d' was
                // 5.76 with all 15 held-out pairs ordered when derived.
                #expect(reduction == .reply)
                #expect((meanPos - meanNeg) / variance.squareRoot() > 3)
                #expect(pairsRight == pos.count)
            }
            if name == "deception" {
                // Hand-written question/answer pairs (packs/sources/deception.jsonl): 20 held out; d' was
                // 0.81 with 18 of 20 pairs ordered when derived. Below these the pack has regressed.
                #expect((meanPos - meanNeg) / variance.squareRoot() > 0.6)
                #expect(pairsRight >= 16)
            }
        }
    }
}
