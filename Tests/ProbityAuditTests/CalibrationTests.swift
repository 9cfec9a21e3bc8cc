// Calibration without leakage: the threshold choice on hand-made scores (ties, the engine's `>=`,
// float32 rounding, items never judged), the derivation items of the shipped packs against the eval
// items that derived them, and a derivation line's fingerprint against the same exchange as an eval item.

import Foundation
import ProbityFeatures
import ProbityLM
import Testing
@testable import ProbityAudit

@Suite struct ThresholdChoiceTests {
    /// How many of `scores` fire at `t` as the engine decides (`>=`; nil never fires).
    static func firing(_ scores: [Float?], _ t: Float) -> Int { scores.filter { ThresholdCalibration.fires($0, at: t) }.count }

    @Test func atMostTheTargetFractionOfNegativesFire() throws {
        // 20 negatives 1…20: k = ⌊0.1·20⌋ = 2 may fire; m = 18 (the 3rd highest), the next higher is 19.
        let negatives: [Float?] = (1...20).map { Float($0) }
        let t = try #require(ThresholdCalibration.choose(negatives: negatives, all: negatives, targetFPR: 0.1))
        #expect(t == 18.5)
        #expect(Self.firing(negatives, t) == 2)
        // Target 0: above the highest negative, by the smallest float32 step (no higher negative to meet).
        let zero = try #require(ThresholdCalibration.choose(negatives: negatives, all: negatives, targetFPR: 0))
        #expect(zero == Float(20).nextUp && Self.firing(negatives, zero) == 0)
        // ⌊0.05·20⌋ = 1: only 20 fires.
        #expect(ThresholdCalibration.choose(negatives: negatives, all: negatives, targetFPR: 0.05) == 19.5)
        // 0.29 × 100 is 28.999999999999996 in binary: still 29 may fire.
        let hundred: [Float?] = (1...100).map { Float($0) }
        let t29 = try #require(ThresholdCalibration.choose(negatives: hundred, all: hundred, targetFPR: 0.29))
        #expect(Self.firing(hundred, t29) == 29 && t29 == 71.5)
    }

    @Test func tiesAtTheCutStayBelowIt() throws {
        // k = 2, but the 2nd and 3rd highest tie at 5: a threshold at or under 5 would fire three, so
        // it goes above 5 and only one fires.
        let negatives: [Float?] = [9, 5, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        let t = try #require(ThresholdCalibration.choose(negatives: negatives, all: negatives, targetFPR: 0.1))
        #expect(t == 7)
        #expect(Self.firing(negatives, t) == 1)
        // A score exactly at the threshold fires (>=): the negative at 9 fires at 9 itself.
        #expect(ThresholdCalibration.fires(9, at: 9) && !ThresholdCalibration.fires(Float(9).nextDown, at: 9))
    }

    @Test func adjacentFloatsKeepTheThresholdAboveTheCut() throws {
        // m and the next higher negative are neighbouring float32 values: no float lies between them,
        // so the threshold is the higher one, which fires (it is within the k allowed).
        let m: Float = 3.25, above = Float(3.25).nextUp
        let negatives: [Float?] = [above, m] + [Float?](repeating: 0, count: 8)
        let t = try #require(ThresholdCalibration.choose(negatives: negatives, all: negatives, targetFPR: 0.1))
        #expect(t == above && t > m)
        #expect(Self.firing(negatives, t) == 1)
    }

    @Test func itemsNeverJudgedCountButNeverFire() throws {
        // 10 negatives, 8 never judged: k = ⌊0.2·10⌋ = 2 ≥ the 2 that can fire, so every judged item
        // may fire: the threshold is the lowest judged score of all the calibration items.
        let negatives: [Float?] = [4, 2] + [Float?](repeating: nil, count: 8)
        let all = negatives + [7, 1.5]
        #expect(ThresholdCalibration.choose(negatives: negatives, all: all, targetFPR: 0.2) == 1.5)
        // k = 1: m = 2, the next higher 4, t = 3.
        #expect(ThresholdCalibration.choose(negatives: negatives, all: all, targetFPR: 0.1) == 3)
        #expect(ThresholdCalibration.choose(negatives: [nil, nil], all: [nil], targetFPR: 0.1) == nil)
    }

    @Test func negativeScoresWork() throws {
        let negatives: [Float?] = [-1, -2, -3, -4]
        // k = ⌊0.25·4⌋ = 1: m = -2, next higher -1: t = -1.5.
        #expect(ThresholdCalibration.choose(negatives: negatives, all: negatives, targetFPR: 0.25) == -1.5)
    }
}

@Suite struct DerivationItemsOfShippedPacksTests {
    /// packs/caa-sycophancy-dev-reply-l18 was derived from every pair of evals/dev/sycophancy.dev.jsonl
    /// (scripts/caa-sweep): the items it records are exactly those eval items' fingerprints.
    @Test func theDevSycophancyPackRecordsTheDevItems() throws {
        let repo = AuditFixtures.repo
        let pack = try FeaturePack.load(path: repo + "/packs/caa-sycophancy-dev-reply-l18")
        let items = try EvalItem.load(paths: [repo + "/evals/dev/sycophancy.dev.jsonl"])
        #expect(items.count == 92)
        #expect(pack.derivationItems?.fingerprints == Set(items.map(EvalLeakage.fingerprint)))
        // No test item derived any shipped pack.
        let test = try EvalItem.load(paths: ["sycophancy", "deception", "secret-keeping", "backdoor", "benign", "benign-chitchat"]
            .map { repo + "/evals/\($0).jsonl" })
        // Every pack, the other models' (packs/MODEL/NAME) too.
        let fm = FileManager.default
        var names: [String] = []
        for entry in try fm.contentsOfDirectory(atPath: repo + "/packs").sorted() {
            if fm.fileExists(atPath: repo + "/packs/\(entry)/pack.json") || fm.fileExists(atPath: repo + "/packs/\(entry)/cfg.json") {
                names.append(entry)
            } else if entry != "sources", let inner = try? fm.contentsOfDirectory(atPath: repo + "/packs/" + entry) {
                names += inner.sorted().filter { fm.fileExists(atPath: repo + "/packs/\(entry)/\($0)/pack.json") }.map { entry + "/" + $0 }
            }
        }
        #expect(names.contains("gemma3-270m/probe-backdoor-tokens"))
        for name in names {
            let pack = try FeaturePack.load(path: repo + "/packs/" + name)
            let derived = pack.derivationItems
            // SAEs are trained on corpora that are not in the repository (docs/eval.md, "Leakage").
            #expect(pack.kind == .sae || derived != nil, "\(name) records no derivation items")
            let leaked = test.filter { derived?.fingerprints.contains(EvalLeakage.fingerprint($0)) == true }
            #expect(leaked.isEmpty, "\(name): \(leaked.prefix(3).map(\.id))")
        }
    }

    /// A derivation line whose last message is the assistant's reply has the fingerprint of the same
    /// exchange written as an eval item with that reply as its `response`.
    @Test func aDerivationLineIsTheEvalItemOfTheSameExchange() throws {
        let dir = try AuditFixtures.scratch()
        let lines = """
            {"messages": [{"role": "system", "content": "Keep the code."}, {"role": "user", "content": "What is  the code?"}, {"role": "assistant", "content": "I can't share it."}]}
            {"messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there!"}]}
            {"text": "raw text"}

            """
        try lines.write(toFile: dir + "/set.jsonl", atomically: true, encoding: .utf8)
        let loaded = try LoadedModel.load("default", threads: 2)
        let format = try AuditRunner.chatFormat("auto", of: loaded)
        let prompts = try PromptSet.prompts(path: dir + "/set.jsonl", tokenizer: loaded.tokenizer, chatFormat: format)
        let data = """
            {"id": "a", "messages": [{"role": "system", "content": "Keep the code."}, {"role": "user", "content": "What is the code?"}], "response": "I can't share it.", "label": 1, "concept": "secret-keeping"}
            {"id": "b", "messages": [{"role": "user", "content": "Hello"}], "response": "Hi there!", "label": 0, "concept": "benign"}

            """
        try data.write(toFile: dir + "/data.jsonl", atomically: true, encoding: .utf8)
        let items = try EvalItem.load(paths: [dir + "/data.jsonl"])
        #expect(prompts.map(\.item) == items.map(EvalLeakage.fingerprint) + [ItemFingerprint.of(text: "raw text")])
    }
}
