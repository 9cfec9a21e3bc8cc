// Sampling: greedy, seeded repeatability, softmax frequencies, and the exact sets top-k, top-p and
// min-p keep, checked against sorting the whole vocabulary.

import Foundation
import ProbityTensor
import Testing
import ProbityLM

/// Logits of a vocabulary-sized random vector, the same on every run.
private func randomLogits(_ n: Int = 49152, seed: UInt64 = 7) -> [Float] {
    var g = Xoshiro256StarStar(seed: seed)
    return (0..<n).map { _ in Float(g.nextUnitDouble() * 20 - 10) }
}

private func sample(_ options: SamplingOptions, _ logits: [Float], times: Int = 1) throws -> [Int] {
    var sampler = try Sampler(options)
    return logits.withUnsafeBufferPointer { buffer in (0..<times).map { _ in sampler.sample(buffer) } }
}

private func distribution(_ options: SamplingOptions, _ logits: [Float]) throws -> [Int: Double] {
    var sampler = try Sampler(options)
    let pairs = logits.withUnsafeBufferPointer { sampler.distribution($0) }
    return Dictionary(uniqueKeysWithValues: pairs.map { ($0.token, $0.probability) })
}

private func softmax(_ logits: [Float], temperature: Double = 1) -> [Double] {
    let m = Double(logits.max() ?? 0)
    let e = logits.map { exp((Double($0) - m) / temperature) }
    let s = e.reduce(0, +)
    return e.map { $0 / s }
}

@Suite struct SamplerTests {
    @Test func greedyIsArgmaxWithLowestIdOnTies() throws {
        #expect(try sample(SamplingOptions(), [0.5, 3, -1, 3, 2]) == [1])
        #expect(try sample(SamplingOptions(), [.nan, -2, -1, .nan]) == [2])
        let logits = randomLogits()
        let argmax = logits.indices.max { logits[$0] < logits[$1] }
        #expect(try sample(SamplingOptions(seed: 9), logits, times: 3) == Array(repeating: argmax, count: 3))
        // Filters never change a greedy choice.
        #expect(try sample(SamplingOptions(topK: 5, topP: 0.5, minP: 0.2), logits) == [argmax!])
    }

    @Test func topKOneIsGreedy() throws {
        let logits = randomLogits(seed: 11)
        let greedy = try sample(SamplingOptions(), logits)[0]
        for seed: UInt64 in [1, 2, 3] {
            #expect(try sample(SamplingOptions(temperature: 1.5, topK: 1, seed: seed), logits, times: 20)
                == Array(repeating: greedy, count: 20))
        }
    }

    @Test func seededRunsRepeat() throws {
        let logits = randomLogits(seed: 3).map { $0 / 4 }  // flat enough that draws vary
        let options = SamplingOptions(temperature: 1, seed: 1234)
        let first = try sample(options, logits, times: 200)
        #expect(try sample(options, logits, times: 200) == first)
        #expect(Set(first).count > 100)
        var other = options
        other.seed = 1235
        #expect(try sample(other, logits, times: 200) != first)
    }

    @Test func frequenciesMatchSoftmax() throws {
        let logits: [Float] = [1, 2, 0.5, -1, 3]
        let draws = 200_000
        for temperature: Float in [1, 0.5] {
            let tokens = try sample(SamplingOptions(temperature: temperature, seed: 42), logits, times: draws)
            let expected = softmax(logits, temperature: Double(temperature))
            for id in logits.indices {
                let frequency = Double(tokens.filter { $0 == id }.count) / Double(draws)
                // The standard error is at most 0.0011 here; 0.005 is four and a half of them.
                #expect(abs(frequency - expected[id]) < 0.005, "token \(id) at T=\(temperature): \(frequency) vs \(expected[id])")
            }
        }
    }

    // Probabilities 0.15, 0.5, 0.1, 0.25 for ids 0...3, so ranks differ from ids.
    private let known: [Float] = [0.15, 0.5, 0.1, 0.25].map { Float(log($0)) }

    @Test func topPKeepsTheSmallestSetReachingP() throws {
        for topK in [0, 3] {  // the heap path and the already-sorted path
            let keep1 = try distribution(SamplingOptions(temperature: 1, topK: topK, topP: 0.4), known)
            #expect(keep1.keys.sorted() == [1])
            let keep2 = try distribution(SamplingOptions(temperature: 1, topK: topK, topP: 0.7), known)
            #expect(keep2.keys.sorted() == [1, 3])
            #expect(abs((keep2[1] ?? 0) - 2.0 / 3) < 1e-6)
        }
        #expect(try distribution(SamplingOptions(temperature: 1, topP: 0.8), known).keys.sorted() == [0, 1, 3])
        // After top-k the mass is renormalised over the survivors, as in llama.cpp: with the top
        // three kept, ids 1 and 3 hold 0.75 / 0.9 > 0.8 of it.
        #expect(try distribution(SamplingOptions(temperature: 1, topK: 3, topP: 0.8), known).keys.sorted() == [1, 3])
        let all = try distribution(SamplingOptions(temperature: 1, topP: 1), known)
        #expect(all.keys.sorted() == [0, 1, 2, 3])
    }

    @Test func minPKeepsTokensAboveAFractionOfTheTop() throws {
        let quarter = try distribution(SamplingOptions(temperature: 1, minP: 0.25), known)
        #expect(quarter.keys.sorted() == [0, 1, 3])  // p >= 0.125
        let twoFifths = try distribution(SamplingOptions(temperature: 1, minP: 0.4), known)
        #expect(twoFifths.keys.sorted() == [1, 3])  // p >= 0.2
        #expect(abs((twoFifths[3] ?? 0) - 1.0 / 3) < 1e-6)
        // min-p looks at the untempered distribution; temperature only reshapes the survivors.
        let hot = try distribution(SamplingOptions(temperature: 2, minP: 0.4), known)
        #expect(hot.keys.sorted() == [1, 3])
        #expect(abs((hot[1] ?? 0) - sqrt(0.5) / (sqrt(0.5) + sqrt(0.25))) < 1e-6)
    }

    @Test func filtersAgreeWithSortingTheVocabulary() throws {
        let logits = randomLogits(seed: 5)
        let ranked = logits.indices.sorted { logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1 }
        let topK = try distribution(SamplingOptions(temperature: 1, topK: 40), logits)
        #expect(Set(topK.keys) == Set(ranked.prefix(40)))

        let p = softmax(logits)
        var mass = 0.0
        var nucleus: [Int] = []
        for id in ranked where mass < 0.9 {
            mass += p[id]
            nucleus.append(id)
        }
        let topP = try distribution(SamplingOptions(temperature: 1, topP: 0.9), logits)
        #expect(Set(topP.keys) == Set(nucleus))
        #expect(nucleus.count > 100)

        let combined = try distribution(SamplingOptions(temperature: 0.7, topK: 500, topP: 0.9, minP: 0.05), logits)
        let pk = softmax(ranked.prefix(500).map { logits[$0] })
        var kept: [Int] = []
        mass = 0
        for (rank, id) in ranked.prefix(500).enumerated() where mass < 0.9 {
            mass += pk[rank]
            kept.append(id)
        }
        let floor = logits[ranked[0]] + log(Float(0.05))
        #expect(Set(combined.keys) == Set(kept.filter { logits[$0] >= floor }))
    }

    @Test func invalidOptionsAreInputErrors() {
        #expect(throws: GenerationError.invalidSamplingOption(name: "temperature", value: "-0.5", expected: "a finite number >= 0 (0 = greedy)")) {
            try Sampler(SamplingOptions(temperature: -0.5))
        }
        #expect(throws: GenerationError.invalidSamplingOption(name: "temperature", value: "nan", expected: "a finite number >= 0 (0 = greedy)")) {
            try Sampler(SamplingOptions(temperature: .nan))
        }
        #expect(throws: GenerationError.invalidSamplingOption(name: "top_k", value: "-1", expected: "an integer >= 0 (0 = off)")) {
            try Sampler(SamplingOptions(topK: -1))
        }
        for bad: Float in [0, 1.5, -0.1] {
            #expect(throws: GenerationError.invalidSamplingOption(name: "top_p", value: "\(bad)", expected: "a number in (0, 1] (1 = off)")) {
                try Sampler(SamplingOptions(topP: bad))
            }
        }
        #expect(throws: GenerationError.invalidSamplingOption(name: "min_p", value: "1.1", expected: "a number in [0, 1] (0 = off)")) {
            try Sampler(SamplingOptions(minP: 1.1))
        }
    }

    @Test func generatorMatchesTheReferenceAlgorithm() {
        // xoshiro256** seeded by SplitMix64, computed independently from the published algorithm.
        var zero = Xoshiro256StarStar(seed: 0)
        #expect([zero.next(), zero.next(), zero.next()] == [0x99EC_5F36_CB75_F2B4, 0xBF6E_1F78_4956_452A, 0x1A5F_849D_4933_E6E0])
        var answer = Xoshiro256StarStar(seed: 42)
        #expect([answer.next(), answer.next(), answer.next()] == [0x1578_0B2E_0C2E_C716, 0x6104_D986_6D11_3A7E, 0xAE17_5332_39E4_99A1])
    }
}
