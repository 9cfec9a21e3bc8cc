// Batched decode (BatchDecoder) on the default model: every sequence's logits bit-identical to its
// own unbatched decode, sequences joining and leaving between steps, hooks and interventions that
// act on their own sequence only, and bad input refused before any session changes.

import Foundation
import Testing
import ProbityTensor
@testable import ProbityLM
import ProbityTestSupport

/// One sequence of a batched schedule: its prompt, the step it joins at, how many tokens it
/// decodes, and the hooks made for it (called once per run, so a run's recorders are its own).
struct BatchedSequence {
    var prompt: [Int]
    var joins = 0
    var steps: Int
    var hooks: (() -> HookSet?) = { nil }
}

enum BatchedRun {
    static func argmax(_ v: [Float]) -> Int {
        var best = 0
        for i in v.indices where v[i] > v[best] { best = i }
        return best
    }

    /// Each sequence alone: prefill, then greedy decode one `forward([token])` at a time. Returns
    /// the logits of every decode step, per sequence, and the hook sets used.
    static func unbatched(_ model: any LanguageModel, _ seqs: [BatchedSequence]) throws -> ([[[Float]]], [HookSet?]) {
        var all: [[[Float]]] = [], sets: [HookSet?] = []
        for s in seqs {
            let hooks = s.hooks()
            let session = try model.makeSession(capacity: s.prompt.count + s.steps + 1)
            var logits = try session.forward(s.prompt, origins: nil, hooks: hooks, logits: .last)
            var steps: [[Float]] = []
            for _ in 0..<s.steps {
                logits = try session.forward([argmax(logits)], origins: [.generated], hooks: hooks, logits: .last)
                steps.append(logits)
            }
            all.append(steps)
            sets.append(hooks)
        }
        return (all, sets)
    }

    /// The same schedule through one BatchDecoder: sequence i joins at step `joins` (its prefill
    /// runs then, alone) and leaves after `steps` decode steps.
    static func batched(_ model: any LanguageModel, _ seqs: [BatchedSequence]) throws -> ([[[Float]]], [HookSet?], Int) {
        let decoder = BatchDecoder(model: model)
        let hooks = seqs.map { $0.hooks() }
        var sessions: [InferenceSession?] = Array(repeating: nil, count: seqs.count)
        var last: [[Float]] = Array(repeating: [], count: seqs.count)
        var out: [[[Float]]] = Array(repeating: [], count: seqs.count)
        var step = 0, widest = 0
        while zip(seqs, out).contains(where: { $1.count < $0.steps }) {
            for (i, s) in seqs.enumerated() where s.joins == step {
                let session = try model.makeSession(capacity: s.prompt.count + s.steps + 1)
                last[i] = try session.forward(s.prompt, origins: nil, hooks: hooks[i], logits: .last)
                sessions[i] = session
            }
            let active = seqs.indices.filter { sessions[$0] != nil && out[$0].count < seqs[$0].steps }
            let requests = active.compactMap { i in
                sessions[i].map { DecodeRequest(session: $0, token: argmax(last[i]), hooks: hooks[i]) }
            }
            widest = max(widest, requests.count)
            let logits = try decoder.step(requests)
            for (j, i) in active.enumerated() {
                last[i] = logits[j]
                out[i].append(logits[j])
            }
            step += 1
        }
        return (out, hooks, widest)
    }

    static func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

    /// Runs both and expects every step's logits to have the same bits; returns the widest batch.
    @discardableResult
    static func expectIdentical(_ model: any LanguageModel, _ seqs: [BatchedSequence], _ label: String) throws -> Int {
        let (want, _) = try unbatched(model, seqs)
        let (got, _, widest) = try batched(model, seqs)
        for i in seqs.indices {
            #expect(got[i].count == want[i].count, "\(label): sequence \(i) steps")
            for (t, (g, w)) in zip(got[i], want[i]).enumerated() {
                #expect(g.count == w.count && bits(g) == bits(w), "\(label): sequence \(i) step \(t) logits differ")
            }
        }
        return widest
    }

    /// Prompts of ordinary token ids, seeded.
    static func prompts(_ count: Int, vocab: Int, seed: UInt64) -> [[Int]] {
        var rng = Xoshiro256StarStar(seed: seed)
        let low = min(300, vocab / 2)
        return (0..<count).map { i in (0..<(3 + 5 * (i % 4))).map { _ in low + Int(rng.next() % UInt64(vocab - low)) } }
    }
}

@Suite(.serialized) struct BatchedForwardTests {
    let model: LlamaModel

    init() throws { model = try Reference.defaultModel() }

    @Test func fusesOnTheDefaultModel() {
        #expect(BatchDecoder(model: model).fusesBatches)
    }

    /// Six sequences of different prompt lengths decoded together: bit-identical logits each step.
    @Test func logitsBitIdenticalToUnbatched() throws {
        let prompts = BatchedRun.prompts(6, vocab: model.info.vocabularySize, seed: 1)
        let seqs = prompts.map { BatchedSequence(prompt: $0, steps: 6) }
        let widest = try BatchedRun.expectIdentical(model, seqs, "six together")
        #expect(widest == 6)
    }

    /// Sequences join at steps 0, 2 and 3 and leave after different step counts (continuous batching).
    @Test func sequencesJoinAndLeave() throws {
        let p = BatchedRun.prompts(5, vocab: model.info.vocabularySize, seed: 2)
        let seqs = [BatchedSequence(prompt: p[0], joins: 0, steps: 7), BatchedSequence(prompt: p[1], joins: 0, steps: 2),
                    BatchedSequence(prompt: p[2], joins: 2, steps: 3), BatchedSequence(prompt: p[3], joins: 3, steps: 4),
                    BatchedSequence(prompt: p[4], joins: 3, steps: 1)]
        let widest = try BatchedRun.expectIdentical(model, seqs, "join and leave")
        #expect(widest == 4)
    }

    /// One sequence steered (a vector added at blocks.10.hook_resid_post), one recorded at
    /// blocks.3.hook_attn_out, one with a hook that zeroes a slice of the MLP output, one bare: each
    /// matches its own unbatched run, the recorder sees exactly its own rows, and the steering moves
    /// only its sequence.
    @Test func hooksAndInterventionsStayWithTheirSequence() throws {
        let width = model.info.width
        let p = BatchedRun.prompts(4, vocab: model.info.vocabularySize, seed: 3)
        var rng = Xoshiro256StarStar(seed: 4)
        let direction = (0..<width).map { _ in Float(rng.nextUnitDouble() * 2 - 1) * 4 }
        let steer: () -> HookSet? = {
            let h = HookSet()
            h.attach(at: .residPost(10)) { acts in
                for i in 0..<acts.count {
                    let row = acts.row(i)
                    for j in 0..<width { row[j] += direction[j] }
                }
            }
            return h
        }
        final class Recorder { var rows: [(position: Int, values: [Float])] = [] }
        var recorders: [Recorder] = []
        let record: () -> HookSet? = {
            let r = Recorder()
            recorders.append(r)
            let h = HookSet()
            h.attach(at: .attnOut(3)) { acts in
                for i in 0..<acts.count { r.rows.append((acts.positions.lowerBound + i, Array(acts.row(i)))) }
            }
            return h
        }
        let ablate: () -> HookSet? = {
            let h = HookSet()
            h.attach(at: .mlpOut(7)) { acts in
                for i in 0..<acts.count { let row = acts.row(i); for j in 0..<64 { row[j] = 0 } }
            }
            return h
        }
        let seqs = [BatchedSequence(prompt: p[0], steps: 5, hooks: steer),
                    BatchedSequence(prompt: p[1], steps: 5, hooks: record),
                    BatchedSequence(prompt: p[2], steps: 5, hooks: ablate),
                    BatchedSequence(prompt: p[3], steps: 5)]
        try BatchedRun.expectIdentical(model, seqs, "hooks")
        // expectIdentical ran unbatched then batched: one recorder each.
        try #require(recorders.count == 2)
        let (alone, batched) = (recorders[0].rows, recorders[1].rows)
        #expect(alone.map(\.position) == Array(0..<(p[1].count + 5)))
        #expect(batched.map(\.position) == alone.map(\.position))
        #expect(zip(alone, batched).allSatisfy { BatchedRun.bits($0.values) == BatchedRun.bits($1.values) })
        // Steering changed its own sequence's first step and no one else's.
        let bare = try BatchedRun.batched(model, seqs.map { BatchedSequence(prompt: $0.prompt, steps: 1) }).0
        let hooked = try BatchedRun.batched(model, seqs.map { s in
            var t = s; t.steps = 1; return t
        }).0
        #expect(BatchedRun.bits(bare[0][0]) != BatchedRun.bits(hooked[0][0]))
        #expect(BatchedRun.bits(bare[3][0]) == BatchedRun.bits(hooked[3][0]))
    }

    /// A request without logits advances its session and returns none.
    @Test func requestsWithoutLogits() throws {
        let decoder = BatchDecoder(model: model)
        let (a, b) = (try model.makeSession(capacity: 8), try model.makeSession(capacity: 8))
        let out = try decoder.step([DecodeRequest(session: a, token: 500, wantsLogits: false),
                                    DecodeRequest(session: b, token: 501)])
        #expect(out[0].isEmpty && out[1].count == model.info.vocabularySize)
        #expect(a.tokens == [500] && b.tokens == [501])
        let alone = try model.makeSession(capacity: 8).forward([501], logits: .last)
        #expect(BatchedRun.bits(alone) == BatchedRun.bits(out[1]))
    }

    /// Bad input throws before any session moves.
    @Test func badInputChangesNothing() throws {
        let decoder = BatchDecoder(model: model)
        let a = try model.makeSession(capacity: 2), full = try model.makeSession(capacity: 1)
        _ = try full.forward([400], logits: .none)
        let other = try Reference.defaultModel().makeSession(capacity: 4)
        let badHooks = HookSet()
        badHooks.attach(at: .residPost(99)) { _ in }
        let cases: [([DecodeRequest], String)] = [
            ([DecodeRequest(session: a, token: 1), DecodeRequest(session: a, token: 2)], "repeats a session"),
            ([DecodeRequest(session: a, token: 1), DecodeRequest(session: full, token: 2)], "needs 2 positions"),
            ([DecodeRequest(session: a, token: -1)], "outside the vocabulary"),
            ([DecodeRequest(session: a, token: 1), DecodeRequest(session: other, token: 2)], "another model"),
            ([DecodeRequest(session: a, token: 1, hooks: badHooks)], "does not exist"),
        ]
        for (requests, message) in cases {
            do {
                _ = try decoder.step(requests)
                Issue.record("expected an error containing '\(message)'")
            } catch {
                #expect("\(error)".contains(message), "\(error)")
            }
            #expect(a.length == 0 && full.length == 1 && other.length == 0)
        }
        #expect(try decoder.step([]).isEmpty)
    }
}
